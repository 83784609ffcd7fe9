// The node-level half of the relaxed policy: which experts get replicas off their home node, how
// many, and on which nodes, so that no node exceeds a target load. The balanced planner searches
// for the smallest target this construction reaches (starting from relaxed_node_bound), then
// packs each node's replicas onto its GPUs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace eplb {

struct RelaxedNodeLayout {
  std::vector<std::int32_t> copies;  // [expert][node]: replicas of the expert on the node
  std::vector<std::int32_t> counts;  // [expert]: replicas in all
  std::uint32_t cross = 0;           // replicas off their home node
  double peak = 0;                   // the busiest node's load under even splitting
};

// Builds a layout whose busiest node is at most `target`, or returns false. Each node whose home
// load exceeds the target sheds load through remote replicas of its experts, chosen greedily by
// the load each extra replica takes away (an expert with r remote replicas keeps one at home and
// sheds load * r / (r + 1)); at most `budget` remote replicas in all. The remote replicas go,
// heaviest first, to the node with the most room under the target that has a free slot and
// fewer than `gpus_per_node` replicas of that expert. Every node's remaining slots are extra
// home replicas of its experts without remote replicas (water-filled, at most `gpus_per_node`
// each), which does not change any node's load.
[[nodiscard]] bool relaxed_node_layout(std::span<const double> loads,
                                       std::span<const std::uint32_t> home, std::uint32_t nodes,
                                       std::uint32_t slots_per_node, std::uint32_t gpus_per_node,
                                       std::uint32_t budget, double target, RelaxedNodeLayout& out);

}  // namespace eplb
