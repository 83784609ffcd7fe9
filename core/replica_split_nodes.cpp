#include "replica_split_nodes.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "error.hpp"

namespace eplb {

void NodeSplitWorkspace::add_edge(std::int32_t from, std::int32_t to, std::int64_t capacity,
                                  std::int32_t cost) {
  for (const auto& [a, b, c, k] :
       {std::tuple{from, to, capacity, cost}, std::tuple{to, from, std::int64_t{0}, -cost}}) {
    to_.push_back(b);
    cap_.push_back(c);
    cost_.push_back(k);
    next_.push_back(head_[static_cast<std::size_t>(a)]);
    head_[static_cast<std::size_t>(a)] = static_cast<std::int32_t>(to_.size()) - 1;
  }
}

// Primal-dual min-cost flow. Reduced costs cost + h[u] - h[v] stay >= 0 on residual edges, so
// Dijkstra finds the cheapest remaining path length; then a blocking-flow max flow routes as
// much as possible over the edges whose reduced cost is 0 (all cheapest paths at once). With
// costs of 0 and 1 this takes a handful of phases instead of one augmentation per path.
bool NodeSplitWorkspace::update_potentials() {
  constexpr std::int64_t kFar = std::numeric_limits<std::int64_t>::max() / 4;
  const auto n = static_cast<std::size_t>(num_nodes_);
  dist_.assign(n, kFar);
  done_.assign(n, 0);
  dist_[static_cast<std::size_t>(source_)] = 0;
  for (;;) {  // O(V^2) Dijkstra: the graph is a few hundred nodes
    std::size_t u = n;
    for (std::size_t v = 0; v < n; ++v) {
      if (!done_[v] && dist_[v] < kFar && (u == n || dist_[v] < dist_[u])) u = v;
    }
    if (u == n) break;
    done_[u] = 1;
    for (std::int32_t e = head_[u]; e >= 0; e = next_[static_cast<std::size_t>(e)]) {
      const auto ei = static_cast<std::size_t>(e);
      const auto v = static_cast<std::size_t>(to_[ei]);
      if (cap_[ei] <= 0) continue;
      const std::int64_t d = dist_[u] + cost_[ei] + potential_[u] - potential_[v];
      if (d < dist_[v]) dist_[v] = d;
    }
  }
  const std::int64_t to_sink = dist_[static_cast<std::size_t>(sink_)];
  if (to_sink >= kFar) return false;
  for (std::size_t v = 0; v < n; ++v) potential_[v] += std::min(dist_[v], to_sink);
  return true;
}

bool NodeSplitWorkspace::admissible(std::size_t e, std::size_t u) const {
  const auto v = static_cast<std::size_t>(to_[e]);
  return cap_[e] > 0 && cost_[e] + potential_[u] - potential_[v] == 0;
}

std::int64_t NodeSplitWorkspace::push(std::int32_t node, std::int64_t limit) {
  if (node == sink_) return limit;
  const auto u = static_cast<std::size_t>(node);
  for (std::int32_t& e = iter_[u]; e >= 0; e = next_[static_cast<std::size_t>(e)]) {
    const auto ei = static_cast<std::size_t>(e);
    const auto v = static_cast<std::size_t>(to_[ei]);
    if (!admissible(ei, u) || level_[v] != level_[u] + 1) continue;
    const std::int64_t pushed = push(to_[ei], std::min(limit, cap_[ei]));
    if (pushed > 0) {
      cap_[ei] -= pushed;
      cap_[ei ^ 1U] += pushed;
      return pushed;
    }
  }
  return 0;
}

std::int64_t NodeSplitWorkspace::admissible_max_flow(std::int64_t limit) {
  const auto n = static_cast<std::size_t>(num_nodes_);
  std::int64_t total = 0;
  while (total < limit) {
    level_.assign(n, -1);
    queue_.clear();
    queue_.push_back(source_);
    level_[static_cast<std::size_t>(source_)] = 0;
    for (std::size_t at = 0; at < queue_.size(); ++at) {
      const auto u = static_cast<std::size_t>(queue_[at]);
      for (std::int32_t e = head_[u]; e >= 0; e = next_[static_cast<std::size_t>(e)]) {
        const auto ei = static_cast<std::size_t>(e);
        const auto v = static_cast<std::size_t>(to_[ei]);
        if (level_[v] < 0 && admissible(ei, u)) {
          level_[v] = level_[u] + 1;
          queue_.push_back(to_[ei]);
        }
      }
    }
    if (level_[static_cast<std::size_t>(sink_)] < 0) break;
    iter_.assign(head_.begin(), head_.end());
    while (total < limit) {
      const std::int64_t pushed = push(source_, limit - total);
      if (pushed == 0) break;
      total += pushed;
    }
  }
  return total;
}

NodeSplitResult NodeSplitWorkspace::solve(const Placement& placement, std::size_t layer,
                                          std::span<const std::int32_t> counts_by_node,
                                          const SplitGpuTerms& terms, double slack,
                                          std::span<std::int32_t> quotas_by_node) {
  const Topology& t = placement.topology();
  const std::size_t experts = t.num_logical, slots = t.num_physical, nodes = t.num_nodes;
  const std::size_t gpus = t.num_gpus;
  if (counts_by_node.size() != experts * nodes) {
    fail_invalid("counts_by_node has ", counts_by_node.size(),
                 " entries, expected num_logical_experts x num_nodes = ", experts * nodes);
  }
  if (quotas_by_node.size() != slots * nodes) {
    fail_invalid("quotas_by_node has ", quotas_by_node.size(),
                 " entries, expected num_physical_experts x num_nodes = ", slots * nodes);
  }
  if (!std::isfinite(slack) || slack < 0.0)
    fail_invalid("slack (", slack, ") must be finite and >= 0");
  counts_.assign(experts, 0);
  for (std::size_t i = 0; i < counts_by_node.size(); ++i) {
    const std::int32_t c = counts_by_node[i];
    if (c < 0) fail_invalid("counts_by_node[", i, "] = ", c, " must be >= 0");
    const std::int64_t sum = std::int64_t{counts_[i / nodes]} + c;
    if (sum > std::numeric_limits<std::int32_t>::max()) {
      fail_invalid("expert ", i / nodes, " has more than INT32_MAX tokens in counts_by_node");
    }
    counts_[i / nodes] = static_cast<std::int32_t>(sum);
  }
  plain_quotas_.resize(slots);
  // Validates the layer and the GPU terms, and gives the optimum of the plain split.
  const SplitResult plain = plain_.solve(placement, layer, counts_, terms, plain_quotas_);

  NodeSplitResult result;
  result.optimum = plain.max_load;
  const double bound = plain.max_load * (1.0 + slack);
  const auto row = placement.phy2log_layer(layer);
  const auto replicas = placement.replica_counts_layer(layer);
  const auto node_of_slot = [&](std::size_t s) {
    return static_cast<std::size_t>(t.node_of_gpu(t.gpu_of_slot(static_cast<std::uint32_t>(s))));
  };

  // The plain solve's GPU terms and single-replica tokens per GPU (same placement and counts).
  const auto weight = plain_.gpu_weights();
  const auto extra = plain_.gpu_extra();
  const auto fixed = plain_.fixed_tokens();

  // Single-replica experts have no choice: their slot takes every token, from every node.
  std::fill(quotas_by_node.begin(), quotas_by_node.end(), 0);
  pair_node_.assign(experts * nodes, -1);
  std::int32_t next_node = 1;  // 0 = source
  std::int64_t split_total = 0;
  for (std::size_t s = 0; s < slots; ++s) {
    const auto e = static_cast<std::size_t>(row[s]);
    if (replicas[e] == 1) {
      for (std::size_t n = 0; n < nodes; ++n) {
        const std::int32_t c = counts_by_node[e * nodes + n];
        quotas_by_node[s * nodes + n] = c;
        if (n != node_of_slot(s)) result.fixed_cross += c;
      }
      continue;
    }
    for (std::size_t n = 0; n < nodes; ++n) {
      if (counts_by_node[e * nodes + n] > 0 && pair_node_[e * nodes + n] < 0) {
        pair_node_[e * nodes + n] = next_node++;
        split_total += counts_by_node[e * nodes + n];
      }
    }
  }

  // Flow graph: source -> (expert, node) -> slot's GPU -> sink; one edge per replica slot so
  // that the flow on it is that slot's quota from that node.
  const std::int32_t gpu0 = next_node;
  sink_ = gpu0 + static_cast<std::int32_t>(gpus);
  source_ = 0;
  num_nodes_ = sink_ + 1;
  head_.assign(static_cast<std::size_t>(num_nodes_), -1);
  to_.clear();
  cap_.clear();
  cost_.clear();
  next_.clear();
  slot_edge_.assign(slots * nodes, -1);
  for (std::size_t i = 0; i < pair_node_.size(); ++i) {
    if (pair_node_[i] >= 0) add_edge(source_, pair_node_[i], counts_by_node[i], 0);
  }
  for (std::size_t s = 0; s < slots; ++s) {
    const auto e = static_cast<std::size_t>(row[s]);
    if (replicas[e] == 1) continue;
    const auto g = static_cast<std::int32_t>(t.gpu_of_slot(static_cast<std::uint32_t>(s)));
    for (std::size_t n = 0; n < nodes; ++n) {
      if (pair_node_[e * nodes + n] < 0) continue;
      slot_edge_[s * nodes + n] = static_cast<std::int32_t>(to_.size());
      add_edge(pair_node_[e * nodes + n], gpu0 + g, split_total, n == node_of_slot(s) ? 0 : 1);
    }
  }
  for (std::size_t g = 0; g < gpus; ++g) {
    // The plain solver's capacity rule (non-strict), so the optimum itself stays feasible.
    const std::int64_t cap = std::max<std::int64_t>(
        0, gpu_token_room(weight[g], extra[g], fixed[g], bound, false, split_total));
    add_edge(gpu0 + static_cast<std::int32_t>(g), sink_, cap, 0);
  }

  // Primal-dual phases: cheapest path length, then a blocking flow over the cheapest edges.
  potential_.assign(static_cast<std::size_t>(num_nodes_), 0);
  std::int64_t routed = 0;
  while (routed < split_total && update_potentials()) {
    const std::int64_t pushed = admissible_max_flow(split_total - routed);
    if (pushed == 0) break;
    routed += pushed;
  }
  EPLB_ASSERT(routed == split_total);  // the plain optimum is feasible under the bound

  gpu_flow_.assign(gpus, 0);
  for (std::size_t s = 0; s < slots; ++s) {
    for (std::size_t n = 0; n < nodes; ++n) {
      const std::int32_t e = slot_edge_[s * nodes + n];
      if (e < 0) continue;
      const std::int64_t flow = cap_[static_cast<std::size_t>(e) ^ 1U];  // the reverse edge
      quotas_by_node[s * nodes + n] = static_cast<std::int32_t>(flow);
      gpu_flow_[t.gpu_of_slot(static_cast<std::uint32_t>(s))] += flow;
      if (n != node_of_slot(s)) result.cross_node += flow;
    }
  }
  result.cross_node += result.fixed_cross;
  for (std::size_t g = 0; g < gpus; ++g) {  // the load expression the capacities bounded
    result.max_load =
        std::max(result.max_load, split_gpu_load(weight[g], extra[g], fixed[g] + gpu_flow_[g]));
  }
  return result;
}

}  // namespace eplb
