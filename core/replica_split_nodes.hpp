// The replica split with a per-node term (issue #9): when the batch's tokens are known per source
// node, split each expert's tokens over its replicas so that, first, the busiest GPU's weighted
// load is at most the optimum of the plain split (SplitWorkspace) times (1 + slack), and second,
// as few tokens as possible are served on a node other than the one they come from. Both parts are
// exact: the bound from the plain solver, then a min-cost flow (cost 1 per cross-node token) under
// that bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "placement.hpp"
#include "replica_split.hpp"

namespace eplb {

struct NodeSplitResult {
  double optimum = 0.0;          // the plain split's minimal max load (every token anywhere)
  double max_load = 0.0;         // this split's max weighted GPU load, <= optimum * (1 + slack)
  std::int64_t cross_node = 0;   // tokens served on another node than their source, minimal
  std::int64_t fixed_cross = 0;  // of which tokens of single-replica experts (no choice)
};

class NodeSplitWorkspace {
 public:
  // `counts_by_node` [E][N]: tokens of expert e from node n in this batch (>= 0). Writes
  // `quotas_by_node` [R][N]: tokens from node n that slot r takes; over an expert's replicas they
  // sum to its count from each node. `slack` >= 0 and finite. Throws Error(invalid_argument)
  // naming the offending argument (layer, a count, a length, the slack, a GPU term).
  NodeSplitResult solve(const Placement& placement, std::size_t layer,
                        std::span<const std::int32_t> counts_by_node, const SplitGpuTerms& terms,
                        double slack, std::span<std::int32_t> quotas_by_node);

 private:
  void add_edge(std::int32_t from, std::int32_t to, std::int64_t capacity, std::int32_t cost);
  bool update_potentials();
  [[nodiscard]] bool admissible(std::size_t edge, std::size_t from) const;
  std::int64_t push(std::int32_t node, std::int64_t limit);
  std::int64_t admissible_max_flow(std::int64_t limit);

  SplitWorkspace plain_;
  std::vector<std::int32_t> counts_, plain_quotas_;
  std::vector<std::int32_t> pair_node_;  // [E][N] flow node of (split expert, source node), or -1
  std::vector<std::int32_t> slot_edge_;  // [R][N] edge of (slot, source node), or -1
  std::vector<std::int64_t> gpu_flow_;   // [G] split tokens routed to each GPU
  // Min-cost flow graph (primal-dual: Dijkstra on reduced costs, then blocking flows).
  std::int32_t num_nodes_ = 0, source_ = 0, sink_ = 0;
  std::vector<std::int32_t> head_, next_, to_, cost_, level_, iter_, queue_;
  std::vector<std::int64_t> cap_, dist_, potential_;
  std::vector<std::uint8_t> done_;
};

}  // namespace eplb
