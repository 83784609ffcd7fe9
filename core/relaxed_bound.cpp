#include "relaxed_bound.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <queue>
#include <tuple>
#include <vector>

#include "metrics.hpp"

namespace eplb {

namespace {

constexpr std::size_t kMaxAssignments = 20000;

// How many unordered partitions of `groups` items into parts of `per_part` items there are (the
// lowest remaining item picks its per_part - 1 companions, again and again); stops counting once
// past kMaxAssignments.
std::size_t count_assignments(std::uint32_t groups, std::uint32_t per_part) {
  std::size_t total = 1;
  for (std::uint32_t left = groups; left > 0; left -= per_part) {
    // Choose the part of the lowest remaining item: C(left - 1, per_part - 1).
    std::size_t choose = 1;
    for (std::uint32_t i = 0; i + 1 < per_part; ++i) {
      choose = choose * (left - 1 - i) / (i + 1);
    }
    total *= choose;
    if (total > kMaxAssignments) return total;
  }
  return total;
}

}  // namespace

double relaxed_node_bound(std::span<const double> loads, std::span<const std::uint32_t> home,
                          std::uint32_t nodes, std::uint32_t budget) {
  double total = 0;
  std::vector<double> residual(nodes, 0.0);
  for (std::size_t e = 0; e < loads.size(); ++e) {
    residual[home[e]] += loads[e];
    total += loads[e];
  }
  const double mean = total / nodes;
  // Per node, the next remote replica's marginal shedding: (marginal, load, replicas so far).
  using Next = std::tuple<double, double, std::uint32_t>;
  std::vector<std::priority_queue<Next>> next(nodes);
  for (std::size_t e = 0; e < loads.size(); ++e) {
    if (loads[e] > 0) next[home[e]].emplace(loads[e] / 2, loads[e], 1U);
  }
  for (std::uint32_t step = 0; step < budget; ++step) {
    const auto n = static_cast<std::size_t>(std::max_element(residual.begin(), residual.end()) -
                                            residual.begin());
    if (residual[n] <= mean || next[n].empty()) break;
    const auto [marginal, load, k] = next[n].top();
    next[n].pop();
    residual[n] -= marginal;
    next[n].emplace(load / ((k + 1.0) * (k + 2.0)), load, k + 1);
  }
  return std::max(mean, *std::max_element(residual.begin(), residual.end()));
}

double relaxed_gpu_bound(std::span<const double> loads, const Topology& topology,
                         std::uint32_t budget) {
  const double global = max_gpu_load_lower_bound(loads, topology);
  const std::uint32_t nodes = topology.num_nodes;
  const std::uint32_t groups = topology.num_groups;
  if (nodes <= 1 || groups == 0 || groups % nodes != 0 || topology.num_logical % groups != 0) {
    return global;
  }
  // Every expert holds a slot on its home node, so at most R - E slots can hold remote replicas.
  budget = std::min(budget, topology.num_physical - topology.num_logical);
  const std::uint32_t per_node = groups / nodes;
  if (count_assignments(groups, per_node) > kMaxAssignments) return global;
  const std::uint32_t group_size = topology.num_logical / groups;
  std::vector<std::uint32_t> node_of_group(groups, nodes);
  std::vector<std::uint32_t> home(topology.num_logical);
  double best = std::numeric_limits<double>::infinity();
  // Every unordered partition of the groups into nodes: the lowest unassigned group opens the
  // next node, which takes per_node - 1 more groups above it.
  std::function<void(std::uint32_t)> open_node;
  std::function<void(std::uint32_t, std::uint32_t, std::uint32_t)> fill;
  open_node = [&](std::uint32_t node) {
    if (node == nodes) {
      for (std::uint32_t e = 0; e < topology.num_logical; ++e) {
        home[e] = node_of_group[e / group_size];
      }
      best = std::min(best, relaxed_node_bound(loads, home, nodes, budget));
      return;
    }
    std::uint32_t first = 0;
    while (node_of_group[first] != nodes) ++first;
    node_of_group[first] = node;
    fill(node, first + 1, per_node - 1);
    node_of_group[first] = nodes;
  };
  fill = [&](std::uint32_t node, std::uint32_t from, std::uint32_t left) {
    if (left == 0) {
      open_node(node + 1);
      return;
    }
    for (std::uint32_t g = from; g < groups; ++g) {
      if (node_of_group[g] != nodes) continue;
      node_of_group[g] = node;
      fill(node, g + 1, left - 1);
      node_of_group[g] = nodes;
    }
  };
  open_node(0);
  return std::max(global, best / topology.gpus_per_node());
}

}  // namespace eplb
