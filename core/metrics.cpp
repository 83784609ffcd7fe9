#include "metrics.hpp"

#include <algorithm>
#include <limits>
#include <vector>

#include "error.hpp"
#include "loads.hpp"
#include "replication.hpp"

namespace eplb {

namespace {

double mean_over_max(std::span<const double> values) {
  double sum = 0;
  double peak = 0;
  for (double v : values) {
    sum += v;
    peak = std::max(peak, v);
  }
  return balancedness_of(sum, values.size(), peak);
}

LayerMetrics layer_metrics_unchecked(const Placement& placement, std::size_t layer,
                                     std::span<const double> layer_loads) {
  const Topology& topology = placement.topology();
  LayerMetrics m;
  std::vector<double> gpu_loads(topology.num_gpus);
  layer_gpu_loads(placement, layer, layer_loads, gpu_loads);
  for (double load : layer_loads) m.total_load += load;
  m.mean_gpu_load = m.total_load / topology.num_gpus;
  m.max_gpu_load = *std::max_element(gpu_loads.begin(), gpu_loads.end());
  m.balancedness = mean_over_max(gpu_loads);

  std::vector<double> node_loads(topology.num_nodes, 0.0);
  for (std::uint32_t gpu = 0; gpu < topology.num_gpus; ++gpu) {
    node_loads[topology.node_of_gpu(gpu)] += gpu_loads[gpu];
  }
  m.node_balancedness = mean_over_max(node_loads);
  m.node_bound = *std::max_element(node_loads.begin(), node_loads.end()) / topology.gpus_per_node();

  m.lower_bound = max_gpu_load_lower_bound(layer_loads, topology);
  m.max_load_over_bound = m.lower_bound > 0 ? m.max_gpu_load / m.lower_bound : 1.0;

  const auto counts = placement.replica_counts_layer(layer);
  m.max_replicas = static_cast<std::uint32_t>(*std::max_element(counts.begin(), counts.end()));

  // A stamp per expert: the last GPU (plus one) on which it was seen.
  std::vector<std::uint32_t> seen_on(topology.num_logical, 0);
  const auto row = placement.phy2log_layer(layer);
  const std::uint32_t per_gpu = topology.slots_per_gpu();
  for (std::uint32_t gpu = 0; gpu < topology.num_gpus; ++gpu) {
    bool duplicate = false;
    for (std::uint32_t s = 0; s < per_gpu; ++s) {
      auto& stamp = seen_on[static_cast<std::size_t>(row[gpu * per_gpu + s])];
      duplicate = duplicate || stamp == gpu + 1;
      stamp = gpu + 1;
    }
    m.duplicate_gpus += duplicate ? 1 : 0;
  }

  // Replicas outside the node that holds most of their expert's replicas.
  std::vector<std::uint32_t> per_node(std::size_t{topology.num_logical} * topology.num_nodes, 0);
  for (std::uint32_t slot = 0; slot < topology.num_physical; ++slot) {
    const auto expert = static_cast<std::size_t>(row[slot]);
    ++per_node[expert * topology.num_nodes + topology.node_of_gpu(topology.gpu_of_slot(slot))];
  }
  for (std::size_t expert = 0; expert < topology.num_logical; ++expert) {
    const auto first = per_node.begin() + static_cast<std::ptrdiff_t>(expert * topology.num_nodes);
    const std::uint32_t main = *std::max_element(first, first + topology.num_nodes);
    m.cross_node_replicas += static_cast<std::uint32_t>(counts[expert]) - main;
  }
  return m;
}

}  // namespace

double balancedness_of(double total, std::size_t count, double max_load) {
  if (!(max_load > 0)) return 1.0;
  const double mean = total / static_cast<double>(count);
  return mean >= std::numeric_limits<double>::min()
             ? mean / max_load
             : (total / max_load) / static_cast<double>(count);
}

void layer_gpu_loads(const Placement& placement, std::size_t layer,
                     std::span<const double> layer_loads, std::span<double> gpu_loads) {
  const Topology& topology = placement.topology();
  EPLB_ASSERT(gpu_loads.size() == topology.num_gpus);
  std::fill(gpu_loads.begin(), gpu_loads.end(), 0.0);
  const auto row = placement.phy2log_layer(layer);
  const auto counts = placement.replica_counts_layer(layer);
  for (std::uint32_t slot = 0; slot < topology.num_physical; ++slot) {
    const auto expert = static_cast<std::size_t>(row[slot]);
    gpu_loads[topology.gpu_of_slot(slot)] += layer_loads[expert] / counts[expert];
  }
}

double max_gpu_load_lower_bound(std::span<const double> layer_loads, const Topology& topology) {
  double total = 0;
  for (double load : layer_loads) total += load;
  const double mean = total / topology.num_gpus;
  return std::max(mean,
                  min_max_load_per_replica(layer_loads, topology.num_physical, topology.num_gpus));
}

LayerMetrics compute_layer_metrics(const Placement& placement, std::size_t layer,
                                   std::span<const double> layer_loads) {
  if (layer >= placement.topology().num_layers) {
    fail_invalid("layer (", layer, ") must be below num_layers (", placement.topology().num_layers,
                 ")");
  }
  validate_layer_loads(layer_loads, layer, placement.topology(), "layer_loads");
  return layer_metrics_unchecked(placement, layer, layer_loads);
}

Metrics compute_metrics(const Placement& placement, std::span<const double> loads) {
  const Topology& topology = placement.topology();
  validate_loads(loads, topology, "loads");
  std::vector<LayerMetrics> layers;
  layers.reserve(topology.num_layers);
  Metrics total;
  total.num_layers = topology.num_layers;
  for (std::size_t layer = 0; layer < topology.num_layers; ++layer) {
    layers.push_back(layer_metrics_unchecked(
        placement, layer, loads.subspan(layer * topology.num_logical, topology.num_logical)));
    total.loaded_layers += layers.back().total_load > 0 ? 1 : 0;
  }
  double balancedness = 0;
  double node_balancedness = 0;
  double over_bound = 0;
  double over_mean = 0;
  double over_node_bound = 0;
  std::uint32_t counted = 0;
  for (const LayerMetrics& m : layers) {
    if (total.loaded_layers > 0 && m.total_load <= 0) continue;
    ++counted;
    balancedness += m.balancedness;
    node_balancedness += m.node_balancedness;
    over_bound += m.max_load_over_bound;
    over_mean += m.mean_gpu_load >= std::numeric_limits<double>::min()
                     ? m.max_gpu_load / m.mean_gpu_load
                     : 1.0 / m.balancedness;  // (a subnormal mean: see balancedness_of)
    total.min_balancedness = std::min(total.min_balancedness, m.balancedness);
    total.worst_max_load_over_bound =
        std::max(total.worst_max_load_over_bound, m.max_load_over_bound);
    total.max_replicas = std::max(total.max_replicas, m.max_replicas);
    total.duplicate_pairs += m.duplicate_gpus;
    total.cross_node_replicas += m.cross_node_replicas;
    over_node_bound += m.node_bound > 0 ? m.max_gpu_load / m.node_bound : 1.0;
  }
  if (counted == 0) return total;  // a placement without layers
  const double n = counted;
  total.balancedness = balancedness / n;
  total.node_balancedness = node_balancedness / n;
  total.max_load_over_bound = over_bound / n;
  total.max_over_mean = over_mean / n;
  total.max_load_over_node_bound = over_node_bound / n;
  return total;
}

}  // namespace eplb
