#include "relaxed_nodes.hpp"

#include <algorithm>
#include <queue>
#include <tuple>

namespace eplb {

bool relaxed_node_layout(std::span<const double> loads, std::span<const std::uint32_t> home,
                         std::uint32_t nodes, std::uint32_t slots_per_node,
                         std::uint32_t gpus_per_node, std::uint32_t budget, double target,
                         RelaxedNodeLayout& out) {
  const std::size_t num_experts = loads.size();
  std::vector<double> home_load(nodes, 0.0);
  std::vector<std::uint32_t> used(nodes, 0);
  for (std::size_t e = 0; e < num_experts; ++e) {
    home_load[home[e]] += loads[e];
    ++used[home[e]];
  }
  std::vector<std::int32_t> remote(num_experts, 0);
  std::vector<double> node_load = home_load;
  std::uint32_t cross = 0;
  // Shedding: per hot node, the next remote replica with the largest marginal gain first,
  // (gain, -expert) so that ties go to the lowest expert.
  using Next = std::tuple<double, std::int64_t>;
  for (std::uint32_t n = 0; n < nodes; ++n) {
    if (home_load[n] <= target) continue;
    std::priority_queue<Next> next;
    for (std::size_t e = 0; e < num_experts; ++e) {
      if (home[e] == n && loads[e] > 0) next.emplace(loads[e] / 2, -static_cast<std::int64_t>(e));
    }
    while (node_load[n] > target) {
      if (next.empty() || cross == budget) return false;
      const auto [gain, minus_e] = next.top();
      next.pop();
      const auto e = static_cast<std::size_t>(-minus_e);
      node_load[n] -= gain;
      ++remote[e];
      ++cross;
      const double k = remote[e];
      next.emplace(loads[e] / ((k + 1) * (k + 2)), minus_e);
    }
  }
  out.copies.assign(num_experts * nodes, 0);
  out.counts.assign(num_experts, 1);
  for (std::size_t e = 0; e < num_experts; ++e) {
    out.copies[e * nodes + home[e]] = 1;
    out.counts[e] = 1 + remote[e];
  }
  // Place the remote replicas, heaviest first, where there is most room under the target.
  std::vector<std::pair<double, std::int32_t>> replicas;
  for (std::size_t e = 0; e < num_experts; ++e) {
    for (std::int32_t k = 0; k < remote[e]; ++k) {
      replicas.emplace_back(loads[e] / out.counts[e], static_cast<std::int32_t>(e));
    }
  }
  std::stable_sort(replicas.begin(), replicas.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  // The home node's share of a shed expert is already in node_load.
  for (std::uint32_t n = 0; n < nodes; ++n) node_load[n] = 0;
  for (std::size_t e = 0; e < num_experts; ++e) node_load[home[e]] += loads[e] / out.counts[e];
  const double slack = target * 1e-12;
  for (const auto& [load, expert] : replicas) {
    const auto e = static_cast<std::size_t>(expert);
    std::uint32_t best = nodes;
    for (std::uint32_t m = 0; m < nodes; ++m) {
      if (m == home[e] || used[m] >= slots_per_node ||
          out.copies[e * nodes + m] >= static_cast<std::int32_t>(gpus_per_node))
        continue;
      if (best == nodes || node_load[m] < node_load[best]) best = m;
    }
    if (best == nodes || node_load[best] + load > target + slack) return false;
    node_load[best] += load;
    ++used[best];
    ++out.copies[e * nodes + best];
  }
  // Fill every node's free slots with extra home replicas (node loads do not change).
  for (std::uint32_t n = 0; n < nodes; ++n) {
    while (used[n] < slots_per_node) {
      std::size_t best = num_experts;
      double best_load = 0;
      for (std::size_t e = 0; e < num_experts; ++e) {
        if (home[e] != n || remote[e] > 0 ||
            out.copies[e * nodes + n] >= static_cast<std::int32_t>(gpus_per_node))
          continue;
        const double replica = loads[e] / out.counts[e];
        if (best == num_experts || replica > best_load) {
          best = e;
          best_load = replica;
        }
      }
      if (best == num_experts) return false;
      ++out.copies[best * nodes + n];
      ++out.counts[best];
      ++used[n];
    }
  }
  out.cross = cross;
  out.peak = *std::max_element(node_load.begin(), node_load.end());
  return true;
}

}  // namespace eplb
