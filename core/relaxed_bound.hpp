// Lower bounds for the relaxed policy: DeepSeek's locality (whole expert groups per node, every
// expert with at least one replica on its group's node) plus at most `budget` replicas per layer
// off their group's node. No plan under those rules can have a busier node than the node bound,
// hence a busier GPU than the GPU bound; the quality bench prints them next to the planner and
// derives the smallest budget that could reach a target balancedness.
#pragma once

#include <cstdint>
#include <span>

#include "topology.hpp"

namespace eplb {

// The busiest node's smallest possible load when expert e's home node is `home[e]` (fixed), for
// `budget` replicas off their home node. Relaxation: an expert with r remote replicas keeps one
// replica at home (the most it can shed: load * r / (r + 1)), slot limits and the load the
// remote replicas add to other nodes are ignored except through total / nodes. The node that
// sheds the most per replica is found exactly: each node's shedding is concave in its replica
// count (marginal load / (k (k + 1)) for an expert's k-th remote replica, taken greedily), and
// the budget goes one replica at a time to the busiest node, which is optimal for a min-max of
// non-increasing functions.
[[nodiscard]] double relaxed_node_bound(std::span<const double> loads,
                                        std::span<const std::uint32_t> home, std::uint32_t nodes,
                                        std::uint32_t budget);

// The busiest GPU's smallest possible load of one layer under the relaxed rules on `topology`,
// minimised over every assignment of groups to nodes (whole groups, the same number per node)
// when there are at most 20000 of them, and never below the global bound
// (max_gpu_load_lower_bound). Topologies where the locality does not apply (one node, or
// groups % nodes != 0) and those with too many assignments get the global bound. The budget is
// capped at R - E: every expert holds a slot on its home node, so no more slots are left for
// remote replicas.
[[nodiscard]] double relaxed_gpu_bound(std::span<const double> loads, const Topology& topology,
                                       std::uint32_t budget);

}  // namespace eplb
