#include <span>
#include <vector>

#include "../../core/exact_optimum.hpp"
#include "../../core/loads.hpp"
#include "../../core/metrics.hpp"
#include "../../core/relaxed_bound.hpp"
#include "guard.hpp"
#include "handles.hpp"
#include "struct_io.hpp"

namespace {

constexpr std::size_t kMetricsV1Size = sizeof(eplb_metrics);
constexpr std::size_t kLayerMetricsV1Size = sizeof(eplb_layer_metrics);

}  // namespace

extern "C" {

eplb_status eplb_metrics_compute(const eplb_placement* placement, const double* loads,
                                 size_t loads_len, eplb_metrics* out_metrics) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    eplb::capi::require_not_null(loads, "loads");
    eplb::capi::require_not_null(out_metrics, "out_metrics");
    const auto m = eplb::compute_metrics(placement->value, std::span(loads, loads_len));
    eplb_metrics result{};
    result.struct_size = sizeof(result);
    result.num_layers = m.num_layers;
    result.loaded_layers = m.loaded_layers;
    result.max_replicas = m.max_replicas;
    result.duplicate_pairs = m.duplicate_pairs;
    result.balancedness = m.balancedness;
    result.min_balancedness = m.min_balancedness;
    result.node_balancedness = m.node_balancedness;
    result.max_load_over_bound = m.max_load_over_bound;
    result.worst_max_load_over_bound = m.worst_max_load_over_bound;
    result.max_over_mean = m.max_over_mean;
    result.cross_node_replicas = m.cross_node_replicas;
    result.max_load_over_node_bound = m.max_load_over_node_bound;
    eplb::capi::write_struct(out_metrics, result, kMetricsV1Size, "out_metrics");
  });
}

eplb_status eplb_metrics_compute_layer(const eplb_placement* placement, uint32_t layer,
                                       const double* layer_loads, size_t layer_loads_len,
                                       eplb_layer_metrics* out_metrics) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    eplb::capi::require_not_null(layer_loads, "layer_loads");
    eplb::capi::require_not_null(out_metrics, "out_metrics");
    const auto m = eplb::compute_layer_metrics(placement->value, layer,
                                               std::span(layer_loads, layer_loads_len));
    eplb_layer_metrics result{};
    result.struct_size = sizeof(result);
    result.duplicate_gpus = m.duplicate_gpus;
    result.max_replicas = m.max_replicas;
    result.total_load = m.total_load;
    result.mean_gpu_load = m.mean_gpu_load;
    result.max_gpu_load = m.max_gpu_load;
    result.lower_bound = m.lower_bound;
    result.balancedness = m.balancedness;
    result.node_balancedness = m.node_balancedness;
    result.max_load_over_bound = m.max_load_over_bound;
    result.cross_node_replicas = m.cross_node_replicas;
    result.node_bound = m.node_bound;
    eplb::capi::write_struct(out_metrics, result, kLayerMetricsV1Size, "out_metrics");
  });
}

eplb_status eplb_metrics_gpu_loads(const eplb_placement* placement, const double* loads,
                                   size_t loads_len, double* out, size_t out_len) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    eplb::capi::require_not_null(loads, "loads");
    eplb::capi::require_not_null(out, "out");
    const auto& p = placement->value;
    const auto& t = p.topology();
    const auto all = std::span(loads, loads_len);
    eplb::validate_loads(all, t, "loads");
    const std::size_t needed = static_cast<std::size_t>(t.num_layers) * t.num_gpus;
    if (out_len < needed) {
      eplb::fail(eplb::Errc::buffer_too_small, "GPU loads need ", needed,
                 " elements (num_layers * num_gpus) but out_len is ", out_len);
    }
    for (std::size_t layer = 0; layer < t.num_layers; ++layer) {
      eplb::layer_gpu_loads(p, layer, all.subspan(layer * t.num_logical, t.num_logical),
                            std::span(out + layer * t.num_gpus, t.num_gpus));
    }
  });
}

eplb_status eplb_metrics_exact_optimum(const eplb_placement* placement, const double* layer_loads,
                                       size_t layer_loads_len, double* out_optimum) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    eplb::capi::require_not_null(layer_loads, "layer_loads");
    eplb::capi::require_not_null(out_optimum, "out_optimum");
    const auto& topology = placement->value.topology();
    const auto loads = std::span(layer_loads, layer_loads_len);
    eplb::validate_layer_loads(loads, 0, topology, "layer_loads");
    *out_optimum = eplb::exact_optimum(loads, topology).value_or(-1.0);
  });
}

eplb_status eplb_metrics_relaxed_bound(const eplb_placement* placement, const double* layer_loads,
                                       size_t layer_loads_len, uint32_t cross_node_budget,
                                       double* out_bound) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    eplb::capi::require_not_null(layer_loads, "layer_loads");
    eplb::capi::require_not_null(out_bound, "out_bound");
    const auto& topology = placement->value.topology();
    const auto loads = std::span(layer_loads, layer_loads_len);
    eplb::validate_layer_loads(loads, 0, topology, "layer_loads");
    *out_bound = eplb::relaxed_gpu_bound(loads, topology, cross_node_budget);
  });
}

}  // extern "C"
