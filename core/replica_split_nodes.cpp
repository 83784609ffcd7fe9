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

// Cheapest source -> sink path in the residual graph (SPFA: costs are 0, 1 and -1 on reverse
// edges, no negative cycle after successive shortest paths). Fills parent_edge_.
bool NodeSplitWorkspace::shortest_path() {
  constexpr std::int64_t kFar = std::numeric_limits<std::int64_t>::max() / 4;
  const auto n = static_cast<std::size_t>(num_nodes_);
  dist_.assign(n, kFar);
  parent_edge_.assign(n, -1);
  queued_.assign(n, 0);
  queue_.clear();
  dist_[static_cast<std::size_t>(source_)] = 0;
  queue_.push_back(source_);
  queued_[static_cast<std::size_t>(source_)] = 1;
  for (std::size_t at = 0; at < queue_.size(); ++at) {
    const auto u = static_cast<std::size_t>(queue_[at]);
    queued_[u] = 0;
    for (std::int32_t e = head_[u]; e >= 0; e = next_[static_cast<std::size_t>(e)]) {
      const auto ei = static_cast<std::size_t>(e);
      const auto v = static_cast<std::size_t>(to_[ei]);
      if (cap_[ei] > 0 && dist_[u] + cost_[ei] < dist_[v]) {
        dist_[v] = dist_[u] + cost_[ei];
        parent_edge_[v] = e;
        if (!queued_[v]) {
          queued_[v] = 1;
          queue_.push_back(static_cast<std::int32_t>(v));
        }
      }
    }
  }
  return dist_[static_cast<std::size_t>(sink_)] < kFar;
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

  // Single-replica experts have no choice: their slot takes every token, from every node.
  std::vector<double> base(gpus, 0.0);
  for (std::size_t g = 0; g < gpus; ++g) base[g] = terms.extra.empty() ? 0.0 : terms.extra[g];
  std::fill(quotas_by_node.begin(), quotas_by_node.end(), 0);
  std::vector<std::int32_t> pair_node;  // flow node of (split expert, source node), or -1
  pair_node.assign(experts * nodes, -1);
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
      base[t.gpu_of_slot(static_cast<std::uint32_t>(s))] += counts_[e];
      continue;
    }
    for (std::size_t n = 0; n < nodes; ++n) {
      if (counts_by_node[e * nodes + n] > 0 && pair_node[e * nodes + n] < 0) {
        pair_node[e * nodes + n] = next_node++;
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
  std::vector<std::int32_t> slot_edge(slots * nodes, -1);
  for (std::size_t i = 0; i < pair_node.size(); ++i) {
    if (pair_node[i] >= 0) add_edge(source_, pair_node[i], counts_by_node[i], 0);
  }
  for (std::size_t s = 0; s < slots; ++s) {
    const auto e = static_cast<std::size_t>(row[s]);
    if (replicas[e] == 1) continue;
    const auto g = static_cast<std::int32_t>(t.gpu_of_slot(static_cast<std::uint32_t>(s)));
    for (std::size_t n = 0; n < nodes; ++n) {
      if (pair_node[e * nodes + n] < 0) continue;
      slot_edge[s * nodes + n] = static_cast<std::int32_t>(to_.size());
      add_edge(pair_node[e * nodes + n], gpu0 + g, split_total, n == node_of_slot(s) ? 0 : 1);
    }
  }
  for (std::size_t g = 0; g < gpus; ++g) {
    const double w = terms.weights.empty() ? 1.0 : terms.weights[g];
    // The plain solver's capacity rule (non-strict), so the optimum itself stays feasible.
    const double room = bound / w - base[g];
    const double c = std::floor(room + 1e-9 * std::max(1.0, std::abs(bound / w)));
    const std::int64_t cap = c <= 0.0                                ? 0
                             : c >= static_cast<double>(split_total) ? split_total
                                                                     : static_cast<std::int64_t>(c);
    add_edge(gpu0 + static_cast<std::int32_t>(g), sink_, cap, 0);
  }

  // Successive shortest paths: each augmentation routes the cheapest remaining tokens.
  std::int64_t routed = 0;
  while (routed < split_total && shortest_path()) {
    std::int64_t push = split_total - routed;
    for (std::int32_t v = sink_; v != source_;) {
      const auto e = static_cast<std::size_t>(parent_edge_[static_cast<std::size_t>(v)]);
      push = std::min(push, cap_[e]);
      v = to_[e ^ 1U];
    }
    for (std::int32_t v = sink_; v != source_;) {
      const auto e = static_cast<std::size_t>(parent_edge_[static_cast<std::size_t>(v)]);
      cap_[e] -= push;
      cap_[e ^ 1U] += push;
      v = to_[e ^ 1U];
    }
    routed += push;
  }
  EPLB_ASSERT(routed == split_total);  // the plain optimum is feasible under the bound

  std::vector<double> load(base);
  for (std::size_t s = 0; s < slots; ++s) {
    for (std::size_t n = 0; n < nodes; ++n) {
      const std::int32_t e = slot_edge[s * nodes + n];
      if (e < 0) continue;
      const std::int64_t flow = cap_[static_cast<std::size_t>(e) ^ 1U];  // the reverse edge
      quotas_by_node[s * nodes + n] = static_cast<std::int32_t>(flow);
      load[t.gpu_of_slot(static_cast<std::uint32_t>(s))] += static_cast<double>(flow);
      if (n != node_of_slot(s)) result.cross_node += flow;
    }
  }
  result.cross_node += result.fixed_cross;
  for (std::size_t g = 0; g < gpus; ++g) {
    const double w = terms.weights.empty() ? 1.0 : terms.weights[g];
    result.max_load = std::max(result.max_load, w * load[g]);
  }
  return result;
}

}  // namespace eplb
