// C shims of the migration planner (core/migration_plan.hpp).
#include <algorithm>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "../../core/migration_plan.hpp"
#include "buffers.hpp"
#include "guard.hpp"
#include "handles.hpp"
#include "struct_io.hpp"

namespace {

constexpr std::size_t kOptionsV1Size = sizeof(eplb_migration_options);
constexpr std::size_t kSummaryV1Size = sizeof(eplb_migration_summary);

eplb_migration_options default_options() {
  eplb_migration_options options{};
  options.struct_size = sizeof(options);
  options.relabel = EPLB_MIGRATION_RELABEL_NODES_AND_GPUS;
  options.bytes_per_expert = 1;
  options.min_gain = 0.005;
  return options;
}

eplb::MigrationOptions core_options(const eplb_migration_options* options) {
  const auto o = options == nullptr ? default_options()
                                    : eplb::capi::read_struct(options, default_options(),
                                                              kOptionsV1Size, "options");
  if (o.reserved0 != 0) eplb::fail_invalid("options->reserved0 (", o.reserved0, ") must be 0");
  eplb::MigrationOptions result;
  result.relabel = static_cast<eplb::MigrationRelabel>(o.relabel);
  result.bytes_per_expert = o.bytes_per_expert;
  result.max_bytes_per_step = o.max_bytes_per_step;
  result.max_total_bytes = o.max_total_bytes;
  result.max_layers_per_step = o.max_layers_per_step;
  result.min_gain = o.min_gain;
  result.min_gain_per_gib = o.min_gain_per_gib;
  return result;
}

std::span<const eplb::Transfer> select_transfers(const eplb::MigrationPlan& plan,
                                                 std::uint32_t step) {
  return step == EPLB_MIGRATION_ALL_STEPS ? plan.transfers() : plan.step_transfers(step);
}

eplb_migration_transfer to_c(const eplb::MigrationPlan& plan, const eplb::Transfer& t) {
  const auto& topology = plan.topology();
  eplb_migration_transfer out{};
  out.step = t.step;
  out.layer = t.layer;
  out.expert = t.expert;
  out.src_slot = t.src_slot;
  out.dst_slot = t.dst_slot;
  out.src_gpu = topology.gpu_of_slot(t.src_slot);
  out.dst_gpu = topology.gpu_of_slot(t.dst_slot);
  out.kind = static_cast<std::uint32_t>(t.kind);
  return out;
}

}  // namespace

extern "C" {

void eplb_migration_options_init(eplb_migration_options* options) {
  if (options != nullptr) *options = default_options();
}

eplb_status eplb_migration_plan(const eplb_placement* old_placement,
                                const eplb_placement* new_placement, const double* loads,
                                size_t loads_len, const eplb_migration_options* options,
                                eplb_migration** out_migration) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(old_placement, "old_placement");
    eplb::capi::require_not_null(new_placement, "new_placement");
    eplb::capi::require_not_null(out_migration, "out_migration");
    if (loads == nullptr && loads_len != 0) {
      eplb::fail_invalid("loads is NULL but loads_len is ", loads_len);
    }
    const auto core = core_options(options);
    const std::span<const double> load_span =
        loads == nullptr ? std::span<const double>() : std::span(loads, loads_len);
    if (loads != nullptr && loads_len == 0) {
      eplb::fail_invalid("loads_len is 0 but loads is not NULL (pass NULL for no loads)");
    }
    auto plan =
        eplb::MigrationPlan::make(old_placement->value, new_placement->value, load_span, core);
    *out_migration = std::make_unique<eplb_migration>(std::move(plan)).release();
  });
}

void eplb_migration_destroy(eplb_migration* migration) { delete migration; }  // NOLINT

eplb_status eplb_migration_get_summary(const eplb_migration* migration,
                                       eplb_migration_summary* out_summary) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(migration, "migration");
    eplb::capi::require_not_null(out_summary, "out_summary");
    const auto& s = migration->value.summary();
    eplb_migration_summary out{};
    out.struct_size = sizeof(out);
    out.num_steps = s.num_steps;
    out.complete = s.complete ? 1 : 0;
    out.worth_it = s.worth_it ? 1 : 0;
    out.has_loads = s.has_loads ? 1 : 0;
    out.max_staging_experts = s.max_staging_slots;
    out.moved_experts = s.moved_experts;
    out.same_gpu_experts = s.same_gpu_experts;
    out.intra_node_experts = s.intra_node_experts;
    out.cross_node_experts = s.cross_node_experts;
    out.moved_bytes = s.moved_bytes;
    out.same_gpu_bytes = s.same_gpu_bytes;
    out.intra_node_bytes = s.intra_node_bytes;
    out.cross_node_bytes = s.cross_node_bytes;
    out.max_step_bytes = s.max_step_bytes;
    out.full_migration_experts = s.full_migration_experts;
    out.same_gpu_rule_experts = s.same_gpu_rule_experts;
    out.naive_experts = s.naive_experts;
    out.old_balancedness = s.old_balancedness;
    out.target_balancedness = s.target_balancedness;
    out.new_balancedness = s.new_balancedness;
    out.gain = s.gain;
    eplb::capi::write_struct(out_summary, out, kSummaryV1Size, "out_summary");
  });
}

eplb_status eplb_migration_get_transfers(const eplb_migration* migration, uint32_t step,
                                         eplb_migration_transfer* out, size_t out_len,
                                         size_t* out_count) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(migration, "migration");
    eplb::capi::require_not_null(out_count, "out_count");
    if (out == nullptr && out_len != 0) eplb::fail_invalid("out is NULL but out_len is ", out_len);
    const auto transfers = select_transfers(migration->value, step);
    if (out == nullptr) {
      *out_count = transfers.size();
      return;
    }
    if (out_len < transfers.size()) {
      *out_count = transfers.size();
      eplb::fail(eplb::Errc::buffer_too_small, "the transfers need ", transfers.size(),
                 " elements but out_len is ", out_len);
    }
    for (std::size_t i = 0; i < transfers.size(); ++i) {
      out[i] = to_c(migration->value, transfers[i]);
    }
    *out_count = transfers.size();
  });
}

eplb_status eplb_migration_copy_transfers(const eplb_migration* migration, uint32_t step,
                                          eplb_migration_transfer** out_transfers,
                                          size_t* out_count) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(migration, "migration");
    eplb::capi::require_not_null(out_transfers, "out_transfers");
    eplb::capi::require_not_null(out_count, "out_count");
    const auto transfers = select_transfers(migration->value, step);
    std::vector<eplb_migration_transfer> converted;
    converted.reserve(transfers.size());
    for (const auto& t : transfers) converted.push_back(to_c(migration->value, t));
    *out_transfers =
        eplb::capi::copy_to_malloc(std::span<const eplb_migration_transfer>(converted));
    *out_count = converted.size();
  });
}

eplb_status eplb_migration_get_gpu_map(const eplb_migration* migration, uint32_t* out,
                                       size_t out_len) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(migration, "migration");
    eplb::capi::require_not_null(out, "out");
    const auto map = migration->value.gpu_map();
    if (out_len < map.size()) {
      eplb::fail(eplb::Errc::buffer_too_small, "the GPU map needs ", map.size(),
                 " elements but out_len is ", out_len);
    }
    std::copy(map.begin(), map.end(), out);
  });
}

eplb_status eplb_migration_get_target(const eplb_migration* migration,
                                      eplb_placement** out_placement) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(migration, "migration");
    eplb::capi::require_not_null(out_placement, "out_placement");
    *out_placement = std::make_unique<eplb_placement>(migration->value.target()).release();
  });
}

eplb_status eplb_migration_get_step_placement(const eplb_migration* migration, uint32_t step,
                                              eplb_placement** out_placement) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(migration, "migration");
    eplb::capi::require_not_null(out_placement, "out_placement");
    *out_placement =
        std::make_unique<eplb_placement>(migration->value.placement_after_step(step)).release();
  });
}

}  // extern "C"
