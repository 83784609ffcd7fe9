// How balanced a placement is under a load matrix. Load model: an expert's load is split evenly
// over its replicas; a GPU's load is the sum over its slots of load / replicas. Double precision.
#pragma once

#include <cstdint>
#include <span>

#include "placement.hpp"

namespace eplb {

struct LayerMetrics {
  double total_load = 0;
  double mean_gpu_load = 0;
  double max_gpu_load = 0;
  double lower_bound = 0;  // no placement with this R and topology has a lower max GPU load
  double balancedness = 1;
  double node_balancedness = 1;
  double max_load_over_bound = 1;
  double node_bound = 0;             // busiest node's load / GPUs per node
  std::uint32_t duplicate_gpus = 0;  // GPUs holding two or more replicas of one expert
  std::uint32_t max_replicas = 0;
  std::uint32_t cross_node_replicas = 0;  // replicas off their expert's main node
};

// Over the layers that carry load: a layer whose loads are all zero (a dense model's leading
// layers, a layer nothing was routed to) has nothing to balance or send, so it is left out of
// every field but num_layers. When no layer has load, every layer counts.
struct Metrics {
  std::uint32_t num_layers = 0;
  std::uint32_t loaded_layers = 0;  // layers with a nonzero total load
  std::uint32_t max_replicas = 0;
  std::uint64_t duplicate_pairs = 0;
  std::uint64_t cross_node_replicas = 0;
  double balancedness = 1;
  double min_balancedness = 1;
  double node_balancedness = 1;
  double max_load_over_bound = 1;
  double worst_max_load_over_bound = 1;
  double max_over_mean = 1;
  double max_load_over_node_bound = 1;
};

// Balancedness: the mean of `count` values summing to `total`, over their max `max_load`; 1 when
// max_load is 0. Where the mean underflows (subnormal loads) total / max_load, in [1, count],
// is divided by count instead, so the result stays in (0, 1].
[[nodiscard]] double balancedness_of(double total, std::size_t count, double max_load);

// Per-GPU loads of one layer; `gpu_loads` has num_gpus entries. Inputs are trusted (validated by
// the caller).
void layer_gpu_loads(const Placement& placement, std::size_t layer,
                     std::span<const double> layer_loads, std::span<double> gpu_loads);

// Lower bound on the max GPU load of any placement with the topology's R and GPUs:
// max(total / gpus, min over replica counts of the max load per replica, each expert on at most
// `gpus` GPUs).
[[nodiscard]] double max_gpu_load_lower_bound(std::span<const double> layer_loads,
                                              const Topology& topology);

// Validates `layer_loads` and computes the layer's metrics.
[[nodiscard]] LayerMetrics compute_layer_metrics(const Placement& placement, std::size_t layer,
                                                 std::span<const double> layer_loads);

// Validates `loads` [layers][E] and computes the metrics over all layers.
[[nodiscard]] Metrics compute_metrics(const Placement& placement, std::span<const double> loads);

}  // namespace eplb
