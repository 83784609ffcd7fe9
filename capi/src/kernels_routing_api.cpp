// C API: device tables, load recorder, logical->physical mapping and co-activation counter
// (kernels/routing.hpp). Each GPU entry point checks host-checkable arguments first, then that a
// device exists, then that its arrays are device memory; the `_cpu` references share the first
// step, so a bad argument gives the same status with and without a GPU.
#include <cstdint>
#include <limits>
#include <memory>

#include "../../kernels/argument_checks.hpp"
#include "../../kernels/device.hpp"
#include "../../kernels/routing.hpp"
#include "guard.hpp"
#include "handles.hpp"
#include "struct_io.hpp"

struct eplb_device_tables {
  eplb_device_tables(const eplb::Placement& placement, std::uint32_t gpu,
                     std::uint32_t max_replicas, std::uint32_t flags, void* stream)
      : value(placement, gpu, max_replicas, flags, stream) {}
  eplb::kernels::DeviceTables value;
};

namespace {

using eplb::fail_invalid;
using eplb::capi::guard;
using eplb::capi::require_not_null;
namespace k = eplb::kernels;

k::TopkIds topk_of(const void* ids, std::uint32_t id_type, std::size_t num_tokens,
                   std::uint32_t top_k, std::uint32_t max_top_k) {
  if (id_type != EPLB_IDS_INT32 && id_type != EPLB_IDS_INT64) {
    fail_invalid("id_type (", id_type, ") is not EPLB_IDS_INT32 (0) or EPLB_IDS_INT64 (1)");
  }
  if (top_k == 0 || top_k > max_top_k) {
    fail_invalid("top_k (", top_k, ") must be in [1, ", max_top_k, "]");
  }
  constexpr auto limit = static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max());
  if (num_tokens > limit / top_k) {
    fail_invalid("num_tokens (", num_tokens, ") * top_k (", top_k, ") must be below 2^31");
  }
  if (num_tokens > 0 && ids == nullptr) fail_invalid("topk_ids is NULL");
  k::require_aligned(
      ids, id_type == EPLB_IDS_INT64 ? 8 : 4, "topk_ids",
      id_type == EPLB_IDS_INT64 ? "its int64 ids are 8 bytes" : "its int32 ids are 4 bytes");
  return k::TopkIds{ids, id_type == EPLB_IDS_INT64, num_tokens, top_k};
}

void check_layer(std::uint32_t layer, std::uint32_t num_layers) {
  if (num_layers == 0) fail_invalid("num_layers (0) must be at least 1");
  if (layer >= num_layers) {
    fail_invalid("layer (", layer, ") must be below num_layers (", num_layers, ")");
  }
}

// The GPU half of every entry point: a device, then device pointers (NULL ones are optional and
// were checked before).
void require_device_arrays(std::initializer_list<std::pair<const void*, const char*>> arrays) {
  k::require_device();
  for (const auto& [pointer, name] : arrays) {
    if (pointer != nullptr) k::require_device_pointer(pointer, name);
  }
}

const k::DeviceTables& device_tables(const eplb_device_tables* tables) {
  require_not_null(tables, "tables");
  if (tables->value.host_only()) {
    fail_invalid(
        "tables were created with EPLB_DEVICE_TABLES_HOST_ONLY; the GPU kernels need "
        "device tables (the _cpu references accept both)");
  }
  // The kernels run on the current device: tables of another device would be an illegal address.
  k::require_current_device(tables->value.device_id(), "tables");
  return tables->value;
}

k::RecordArgs record_args(const void* topk_ids, std::uint32_t id_type, std::size_t num_tokens,
                          std::uint32_t top_k, std::uint32_t num_experts, std::uint32_t num_layers,
                          std::uint32_t layer, const std::int32_t* enable_flag,
                          std::int64_t* counts) {
  k::RecordArgs a;
  a.topk = topk_of(topk_ids, id_type, num_tokens, top_k, k::max_top_k);
  if (num_experts == 0) fail_invalid("num_experts (0) must be at least 1");
  check_layer(layer, num_layers);
  require_not_null(counts, "counts");
  k::require_element_aligned(enable_flag, "enable_flag");
  k::require_element_aligned(counts, "counts");
  a.num_experts = num_experts;
  a.layer = layer;
  a.enable_flag = enable_flag;
  a.counts = counts;
  return a;
}

k::MapArgs map_args(const k::DeviceTables& tables, std::uint32_t layer, std::uint32_t mode,
                    std::uint64_t seed, const std::int32_t* quotas, const void* topk_ids,
                    std::uint32_t id_type, std::size_t num_tokens, std::uint32_t top_k,
                    const std::int32_t* enable_flag, std::int64_t* counts,
                    std::int32_t* out_physical) {
  const eplb::Topology& t = tables.topology();
  check_layer(layer, t.num_layers);
  if (mode >= k::map_mode_count) {
    fail_invalid("mode (", mode, ") is not an EPLB_MAP_* mode (0..", k::map_mode_count - 1, ")");
  }
  if (mode == k::map_node_aware && t.num_nodes > k::max_node_aware_nodes) {
    fail_invalid("EPLB_MAP_NODE_AWARE needs at most ", k::max_node_aware_nodes,
                 " nodes; the tables have ", t.num_nodes);
  }
  if (mode == k::map_quota) {
    if (t.num_logical > k::max_quota_experts) {
      fail_invalid("EPLB_MAP_QUOTA needs at most ", k::max_quota_experts,
                   " logical experts; the tables have ", t.num_logical);
    }
    require_not_null(quotas, "quotas");
  }
  k::MapArgs a;
  a.topk = topk_of(topk_ids, id_type, num_tokens, top_k, k::max_top_k);
  if (num_tokens > 0) require_not_null(out_physical, "out_physical");
  if (mode == k::map_quota) k::require_element_aligned(quotas, "quotas");
  k::require_element_aligned(enable_flag, "enable_flag");
  k::require_element_aligned(counts, "counts");
  k::require_element_aligned(out_physical, "out_physical");
  a.layer = layer;
  a.mode = mode;
  a.seed = seed;
  a.quotas = mode == k::map_quota ? quotas : nullptr;
  a.enable_flag = enable_flag;
  a.counts = counts;
  a.out = out_physical;
  return a;
}

void check_fold_arrays(const std::int64_t* physical_counts, const std::int64_t* logical_counts) {
  require_not_null(physical_counts, "physical_counts");
  require_not_null(logical_counts, "logical_counts");
  k::require_element_aligned(physical_counts, "physical_counts");
  k::require_element_aligned(logical_counts, "logical_counts");
}

k::CoactivationArgs coactivation_args(const void* topk_ids, std::uint32_t id_type,
                                      std::size_t num_tokens, std::uint32_t top_k,
                                      std::uint32_t num_experts, std::uint32_t num_layers,
                                      std::uint32_t layer, const std::int32_t* enable_flag,
                                      std::int64_t* pair_counts, std::uint32_t sample_stride,
                                      std::uint32_t sample_offset, std::uint32_t sample_capacity,
                                      std::int32_t* out_samples) {
  k::CoactivationArgs a;
  a.topk = topk_of(topk_ids, id_type, num_tokens, top_k, k::max_pair_top_k);
  if (num_experts == 0 || num_experts > k::max_pair_experts) {
    fail_invalid("num_experts (", num_experts, ") must be in [1, ", k::max_pair_experts, "]");
  }
  check_layer(layer, num_layers);
  if (sample_capacity > 0) {
    require_not_null(out_samples, "out_samples");
    if (sample_stride == 0) {
      fail_invalid("sample_stride (0) must be at least 1 when sample_capacity (", sample_capacity,
                   ") > 0");
    }
  }
  k::require_element_aligned(enable_flag, "enable_flag");
  k::require_element_aligned(pair_counts, "pair_counts");
  if (sample_capacity > 0) k::require_element_aligned(out_samples, "out_samples");
  a.num_experts = num_experts;
  a.layer = layer;
  a.enable_flag = enable_flag;
  a.pair_counts = pair_counts;
  a.sample_stride = sample_stride;
  a.sample_offset = sample_offset;
  a.sample_capacity = sample_capacity;
  a.samples = sample_capacity > 0 ? out_samples : nullptr;
  return a;
}

}  // namespace

extern "C" {

eplb_status eplb_device_tables_create(const eplb_placement* placement, uint32_t gpu,
                                      uint32_t max_replicas, uint32_t flags, void* stream,
                                      eplb_device_tables** out_tables) {
  return guard([&] {
    require_not_null(placement, "placement");
    require_not_null(out_tables, "out_tables");
    auto tables =
        std::make_unique<eplb_device_tables>(placement->value, gpu, max_replicas, flags, stream);
    *out_tables = tables.release();
  });
}

eplb_status eplb_device_tables_update(eplb_device_tables* tables, const eplb_placement* placement,
                                      void* stream) {
  return guard([&] {
    require_not_null(tables, "tables");
    require_not_null(placement, "placement");
    tables->value.update(placement->value, stream);
  });
}

void eplb_device_tables_destroy(eplb_device_tables* tables) { delete tables; }

eplb_status eplb_device_tables_get_info(const eplb_device_tables* tables,
                                        eplb_device_tables_info* out_info) {
  return guard([&] {
    require_not_null(tables, "tables");
    require_not_null(out_info, "out_info");
    const k::DeviceTables& d = tables->value;
    const eplb::Topology& t = d.topology();
    eplb_device_tables_info info{};
    info.struct_size = sizeof(info);
    info.num_layers = t.num_layers;
    info.num_logical_experts = t.num_logical;
    info.num_physical_experts = t.num_physical;
    info.max_replicas = d.width();
    info.num_nodes = t.num_nodes;
    info.num_gpus = t.num_gpus;
    info.slots_per_gpu = t.slots_per_gpu();
    info.gpus_per_node = t.gpus_per_node();
    info.gpu = d.gpu();
    info.flags = d.flags();
    info.device = d.host_only() ? -1 : d.device_id();
    info.device_bytes = d.host_only() ? 0 : d.device_bytes();
    eplb::capi::write_struct(out_info, info, sizeof(info), "out_info");
  });
}

eplb_status eplb_device_tables_get_static_map(const eplb_device_tables* tables, int32_t* out,
                                              size_t out_len) {
  return guard([&] {
    require_not_null(tables, "tables");
    require_not_null(out, "out");
    const k::TablesView v = tables->value.host();
    const std::size_t n = static_cast<std::size_t>(v.num_layers) * v.num_logical;
    if (out_len < n) {
      eplb::fail(eplb::Errc::buffer_too_small, "out_len (", out_len, ") is below num_layers * ",
                 "num_logical_experts (", n, ")");
    }
    std::copy(v.static_map, v.static_map + n, out);
  });
}

eplb_status eplb_kernel_record_load(const void* topk_ids, uint32_t id_type, size_t num_tokens,
                                    uint32_t top_k, uint32_t num_experts, uint32_t num_layers,
                                    uint32_t layer, const int32_t* enable_flag, int64_t* counts,
                                    void* stream) {
  return guard([&] {
    const k::RecordArgs a = record_args(topk_ids, id_type, num_tokens, top_k, num_experts,
                                        num_layers, layer, enable_flag, counts);
    require_device_arrays({{num_tokens > 0 ? topk_ids : nullptr, "topk_ids"},
                           {enable_flag, "enable_flag"},
                           {counts, "counts"}});
#if EPLB_HAVE_CUDA
    k::record_load_gpu(a, stream);
#else
    static_cast<void>(a);
    static_cast<void>(stream);
#endif
  });
}

eplb_status eplb_kernel_record_load_cpu(const void* topk_ids, uint32_t id_type, size_t num_tokens,
                                        uint32_t top_k, uint32_t num_experts, uint32_t num_layers,
                                        uint32_t layer, const int32_t* enable_flag, int64_t* counts,
                                        void* /*stream*/) {
  return guard([&] {
    k::record_load_cpu(record_args(topk_ids, id_type, num_tokens, top_k, num_experts, num_layers,
                                   layer, enable_flag, counts));
  });
}

eplb_status eplb_kernel_map_record(const eplb_device_tables* tables, uint32_t layer, uint32_t mode,
                                   uint64_t seed, const int32_t* quotas, const void* topk_ids,
                                   uint32_t id_type, size_t num_tokens, uint32_t top_k,
                                   const int32_t* enable_flag, int64_t* counts,
                                   int32_t* out_physical, void* stream) {
  return guard([&] {
    const k::DeviceTables& d = device_tables(tables);
    const k::MapArgs a = map_args(d, layer, mode, seed, quotas, topk_ids, id_type, num_tokens,
                                  top_k, enable_flag, counts, out_physical);
    require_device_arrays({{num_tokens > 0 ? topk_ids : nullptr, "topk_ids"},
                           {a.quotas, "quotas"},
                           {enable_flag, "enable_flag"},
                           {counts, "counts"},
                           {num_tokens > 0 ? out_physical : nullptr, "out_physical"}});
#if EPLB_HAVE_CUDA
    k::map_record_gpu(d.device(), a, stream);
#else
    static_cast<void>(a);
    static_cast<void>(stream);
#endif
  });
}

eplb_status eplb_kernel_map_record_cpu(const eplb_device_tables* tables, uint32_t layer,
                                       uint32_t mode, uint64_t seed, const int32_t* quotas,
                                       const void* topk_ids, uint32_t id_type, size_t num_tokens,
                                       uint32_t top_k, const int32_t* enable_flag, int64_t* counts,
                                       int32_t* out_physical, void* /*stream*/) {
  return guard([&] {
    require_not_null(tables, "tables");
    const k::MapArgs a = map_args(tables->value, layer, mode, seed, quotas, topk_ids, id_type,
                                  num_tokens, top_k, enable_flag, counts, out_physical);
    k::map_record_cpu(tables->value.host(), a);
  });
}

eplb_status eplb_kernel_fold_counts(const eplb_device_tables* tables,
                                    const int64_t* physical_counts, int64_t* logical_counts,
                                    void* stream) {
  return guard([&] {
    const k::DeviceTables& d = device_tables(tables);
    check_fold_arrays(physical_counts, logical_counts);
    require_device_arrays(
        {{physical_counts, "physical_counts"}, {logical_counts, "logical_counts"}});
#if EPLB_HAVE_CUDA
    k::fold_counts_gpu(d.device(), physical_counts, logical_counts, stream);
#else
    static_cast<void>(d);
    static_cast<void>(stream);
#endif
  });
}

eplb_status eplb_kernel_fold_counts_cpu(const eplb_device_tables* tables,
                                        const int64_t* physical_counts, int64_t* logical_counts,
                                        void* /*stream*/) {
  return guard([&] {
    require_not_null(tables, "tables");
    check_fold_arrays(physical_counts, logical_counts);
    k::fold_counts_cpu(tables->value.host(), physical_counts, logical_counts);
  });
}

eplb_status eplb_kernel_coactivation(const void* topk_ids, uint32_t id_type, size_t num_tokens,
                                     uint32_t top_k, uint32_t num_experts, uint32_t num_layers,
                                     uint32_t layer, const int32_t* enable_flag,
                                     int64_t* pair_counts, uint32_t sample_stride,
                                     uint32_t sample_offset, uint32_t sample_capacity,
                                     int32_t* out_samples, void* stream) {
  return guard([&] {
    const k::CoactivationArgs a = coactivation_args(
        topk_ids, id_type, num_tokens, top_k, num_experts, num_layers, layer, enable_flag,
        pair_counts, sample_stride, sample_offset, sample_capacity, out_samples);
    require_device_arrays({{num_tokens > 0 ? topk_ids : nullptr, "topk_ids"},
                           {enable_flag, "enable_flag"},
                           {pair_counts, "pair_counts"},
                           {a.samples, "out_samples"}});
#if EPLB_HAVE_CUDA
    k::coactivation_gpu(a, stream);
#else
    static_cast<void>(a);
    static_cast<void>(stream);
#endif
  });
}

eplb_status eplb_kernel_coactivation_cpu(const void* topk_ids, uint32_t id_type, size_t num_tokens,
                                         uint32_t top_k, uint32_t num_experts, uint32_t num_layers,
                                         uint32_t layer, const int32_t* enable_flag,
                                         int64_t* pair_counts, uint32_t sample_stride,
                                         uint32_t sample_offset, uint32_t sample_capacity,
                                         int32_t* out_samples, void* /*stream*/) {
  return guard([&] {
    k::coactivation_cpu(coactivation_args(
        topk_ids, id_type, num_tokens, top_k, num_experts, num_layers, layer, enable_flag,
        pair_counts, sample_stride, sample_offset, sample_capacity, out_samples));
  });
}

}  // extern "C"
