// Re-planning near the current placement ("warm start"): a server that re-plans for new loads
// usually needs balance, not a new layout. Each layer keeps what the GPUs hold now and moves only
// as many replicas as it takes to come within a tolerance of the planner's own plan.
#pragma once

#include <cstdint>
#include <span>

#include "topology.hpp"

namespace eplb {

// Which placements a layer may move to: replicas anywhere, DeepSeek's locality (every replica on
// its group's node), or that plus at most `cross_node_budget` replicas off their group's node.
enum class NearLocality { global, hierarchical, relaxed };

struct NearSettings {
  NearLocality locality = NearLocality::global;
  std::uint32_t cross_node_budget = 0;  // relaxed only
  double min_balance = 0.998;           // (0, 1]: balancedness >= this x the fresh plan's
};

// What plan_layer_near did with a layer.
enum class NearOutcome {
  kept,              // the current layer was balanced enough already (or is the fresh plan)
  rebalanced,        // the current layer with some replicas moved
  partly_replanned,  // local policies: some nodes rebalanced, the others the fresh plan's
  replanned,         // the fresh plan: rebalancing fell short, or the layer breaks the locality
};

// One layer. `fresh` is the planner's own plan of `loads`; the target is a busiest GPU of at most
// fresh's / settings.min_balance (under even splitting of each expert's load over its replicas).
// Writes to `out`: `current` when it meets the target; else `current` rebalanced until it does
// (rebalance_layer_toward, inside nodes for the local policies); else, for the local policies,
// the smallest sets of nodes that hold all replicas of their experts in both the rebalanced
// layer and `fresh` relabeled (its nodes and GPUs permuted to keep the most experts on their
// GPU): a set keeps the rebalanced content where all its GPUs meet the target and it keeps at
// least as many experts on their GPU, and takes the fresh plan's otherwise (partly_replanned
// when both kinds occur and the GPUs do not hold just what the relabeled fresh plan's do); else
// `fresh`. A current layer
// that breaks the locality (a replica off its group's node; relaxed: more than the budget) gets
// `fresh`. The rebalance gives up once it has changed as many slots as moving to `fresh` without
// relabeling would. `out` may not alias the inputs. `bound_changes = false` scores every move,
// afresh at every step (the tests' reference; the same result).
NearOutcome plan_layer_near(const Topology& topology, const NearSettings& settings,
                            std::span<const std::int32_t> current, std::span<const double> loads,
                            std::span<const std::int32_t> fresh, std::span<std::int32_t> out,
                            bool bound_changes = true);

}  // namespace eplb
