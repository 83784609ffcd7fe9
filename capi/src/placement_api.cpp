#include <memory>
#include <span>
#include <vector>

#include "guard.hpp"
#include "handles.hpp"
#include "struct_io.hpp"

namespace {

constexpr std::size_t kInfoV1Size = sizeof(eplb_placement_info);

void copy_out(std::span<const int32_t> source, int32_t* out, size_t out_len, const char* what) {
  eplb::capi::require_not_null(out, "out");
  if (out_len < source.size()) {
    eplb::fail(eplb::Errc::buffer_too_small, what, " needs ", source.size(),
               " elements but out_len is ", out_len);
  }
  std::copy(source.begin(), source.end(), out);
}

}  // namespace

extern "C" {

eplb_status eplb_placement_get_info(const eplb_placement* placement,
                                    eplb_placement_info* out_info) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    eplb::capi::require_not_null(out_info, "out_info");
    const auto& p = placement->value;
    const auto& t = p.topology();
    eplb_placement_info info{};
    info.struct_size = sizeof(info);
    info.num_layers = t.num_layers;
    info.num_logical_experts = t.num_logical;
    info.num_physical_experts = t.num_physical;
    info.num_nodes = t.num_nodes;
    info.num_gpus = t.num_gpus;
    info.num_groups = t.num_groups;
    info.slots_per_gpu = t.slots_per_gpu();
    info.log2phy_width = p.log2phy_width();
    info.algorithm = p.provenance().algorithm;
    info.hierarchical = p.provenance().hierarchical ? 1 : 0;
    info.plan_seconds = p.provenance().plan_seconds;
    eplb::capi::write_struct(out_info, info, kInfoV1Size, "out_info");
  });
}

eplb_status eplb_placement_get_phy2log(const eplb_placement* placement, int32_t* out,
                                       size_t out_len) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    copy_out(placement->value.phy2log(), out, out_len, "phy2log");
  });
}

eplb_status eplb_placement_get_replica_counts(const eplb_placement* placement, int32_t* out,
                                              size_t out_len) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    copy_out(placement->value.replica_counts(), out, out_len, "replica counts");
  });
}

eplb_status eplb_placement_get_log2phy(const eplb_placement* placement, int32_t* out,
                                       size_t out_len) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    copy_out(placement->value.log2phy(), out, out_len, "log2phy");
  });
}

eplb_status eplb_placement_create_from_phy2log(uint32_t num_layers, uint32_t num_logical_experts,
                                               uint32_t num_physical_experts, uint32_t num_nodes,
                                               uint32_t num_gpus, const int32_t* phy2log,
                                               size_t phy2log_len, eplb_placement** out_placement) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(phy2log, "phy2log");
    eplb::capi::require_not_null(out_placement, "out_placement");
    eplb::Topology topology;
    topology.num_layers = num_layers;
    topology.num_logical = num_logical_experts;
    topology.num_physical = num_physical_experts;
    topology.num_nodes = num_nodes;
    topology.num_gpus = num_gpus;
    topology.num_groups = 1;
    topology.validate();
    // Check the length before copying: the caller's buffer holds only phy2log_len elements.
    if (phy2log_len != topology.slot_count()) {
      eplb::fail_invalid("phy2log has ", phy2log_len, " entries but num_layers (", num_layers,
                         ") * num_physical_experts (", num_physical_experts,
                         ") = ", topology.slot_count());
    }
    std::vector<int32_t> map(phy2log, phy2log + phy2log_len);
    auto placement = eplb::Placement::from_phy2log(topology, std::move(map));
    *out_placement = std::make_unique<eplb_placement>(std::move(placement)).release();
  });
}

void eplb_placement_destroy(eplb_placement* placement) { delete placement; }  // NOLINT

}  // extern "C"
