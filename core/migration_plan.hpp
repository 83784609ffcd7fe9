// Weight migration after a re-plan: which expert weights move where, from which source, in which
// step, so that every GPU ends up holding the new plan's experts while moving as few bytes as the
// plan's legal relabelings allow.
//
// Per layer the planner
//   1. relabels the new plan without changing any of its metrics: whole nodes may trade places,
//      GPUs within a node may trade places, and slots within a GPU may trade places. The node and
//      GPU permutations maximise the experts that are already on their GPU (two nested
//      assignment problems, solved exactly); an expert already on its GPU keeps its slot;
//   2. orders the remaining slot changes so that every prefix leaves each expert with at least
//      one replica (a servable placement after every step); with loads, the change that lowers the
//      busiest GPU most goes first, and layers are interleaved by balancedness gain per byte;
//   3. cuts the order into steps (optional byte budget and layers per step; an optional total
//      budget stops early and leaves a partial placement — with loads, the better of that prefix
//      and a greedy rebalance of the old placement within the budget) and picks a source for
//      every transfer from the placement in force before its step: same GPU, then same node,
//      then another node, the least busy sender of the step first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "placement.hpp"

namespace eplb {

enum class MigrationRelabel : std::uint32_t {
  nodes_and_gpus = 0,  // permute nodes, GPUs within a node and slots within a GPU
  gpus_in_node = 1,    // permute GPUs within their node and slots within a GPU
  none = 2,            // only slots within a GPU (vLLM's rule: keep what stays on its GPU)
  // nodes_and_gpus, then (with loads) exchanges of replicas between GPUs of a node that keep
  // more experts in place: node loads, replica counts and off-node replicas are unchanged, and no
  // GPU goes above the layer's busiest GPU, so balancedness never drops
  repack_in_node = 3,
};

enum class TransferKind : std::uint32_t { same_gpu = 0, intra_node = 1, cross_node = 2 };

struct MigrationOptions {
  MigrationRelabel relabel = MigrationRelabel::nodes_and_gpus;
  std::uint64_t bytes_per_expert = 1;     // weights of one expert (all its tensors), > 0
  std::uint64_t max_bytes_per_step = 0;   // 0: no limit
  std::uint64_t max_total_bytes = 0;      // 0: migrate completely
  std::uint32_t max_layers_per_step = 0;  // 0: no limit
  double min_gain = 0.0;                  // worth-it gate: balancedness gain at least this
  double min_gain_per_gib = 0.0;          // ... and at least this gain per GiB moved
  // Not in the C API: false scores every candidate change, afresh at every step (the tests'
  // reference for the bounded scan and the cached scores, which must choose exactly the same
  // changes).
  bool bound_changes = true;
};

// One expert's weights copied from a slot of the placement in force before `step` into a slot.
struct Transfer {
  std::uint32_t step = 0;
  std::uint32_t layer = 0;
  std::uint32_t expert = 0;
  std::uint32_t src_slot = 0;
  std::uint32_t dst_slot = 0;
  TransferKind kind = TransferKind::same_gpu;
};

struct MigrationSummary {
  std::uint32_t num_steps = 0;
  bool complete = true;  // the schedule reaches the relabeled new plan (no total budget cut)
  bool has_loads = false;
  bool worth_it = false;
  std::uint64_t moved_experts = 0;  // transfers of the schedule
  std::uint64_t same_gpu_experts = 0, intra_node_experts = 0, cross_node_experts = 0;
  std::uint64_t moved_bytes = 0, same_gpu_bytes = 0, intra_node_bytes = 0, cross_node_bytes = 0;
  std::uint64_t full_migration_experts = 0;  // slot changes to reach the relabeled new plan
  std::uint64_t naive_experts = 0;           // every slot of every layer reloaded
  std::uint64_t same_gpu_rule_experts = 0;   // no relabeling: experts not already on their GPU
  std::uint32_t max_staging_slots = 0;       // most experts one rank receives in one step
  std::uint64_t max_step_bytes = 0;          // largest step, all ranks together
  // Under the loads given (0 without): mean balancedness over layers of the old placement, of
  // the schedule's target and of the new plan.
  double old_balancedness = 0, target_balancedness = 0, new_balancedness = 0;
  double gain = 0;  // target - old
};

class MigrationPlan {
 public:
  // `loads` is [layers][E] (empty: no load-aware ordering, no gain prediction). Throws
  // Error(invalid_argument) naming the field when the two placements' shapes differ, an option
  // is out of range, or a load is negative or not finite.
  static MigrationPlan make(const Placement& old_placement, const Placement& new_placement,
                            std::span<const double> loads, const MigrationOptions& options);

  [[nodiscard]] const Topology& topology() const { return relabeled_.topology(); }
  [[nodiscard]] const MigrationOptions& options() const { return options_; }
  [[nodiscard]] const MigrationSummary& summary() const { return summary_; }
  // The new plan relabeled: same metrics, as many experts as possible already in place.
  [[nodiscard]] const Placement& relabeled() const { return relabeled_; }
  // Where the schedule ends: relabeled() when complete, otherwise the partial placement.
  [[nodiscard]] const Placement& target() const { return target_; }
  // For each layer and GPU of the new plan, the physical GPU it was relabeled to [layers][gpus].
  [[nodiscard]] std::span<const std::uint32_t> gpu_map() const { return gpu_map_; }
  // Every transfer, ordered by step, then layer, then destination slot.
  [[nodiscard]] std::span<const Transfer> transfers() const { return transfers_; }
  // Transfers of one step (step < summary().num_steps).
  [[nodiscard]] std::span<const Transfer> step_transfers(std::uint32_t step) const;
  // The placement in force after `step` (0-based) has been committed: the old placement with
  // every transfer up to that step applied. Replica order is ascending slot, except after the
  // last step of a complete migration, which returns relabeled().
  [[nodiscard]] Placement placement_after_step(std::uint32_t step) const;
  [[nodiscard]] const Placement& old_placement() const { return old_; }

 private:
  MigrationPlan(Placement old_placement, Placement relabeled, Placement target)
      : old_(std::move(old_placement)),
        relabeled_(std::move(relabeled)),
        target_(std::move(target)) {}

  Placement old_;
  Placement relabeled_;
  Placement target_;
  MigrationOptions options_;
  MigrationSummary summary_;
  std::vector<std::uint32_t> gpu_map_;
  std::vector<Transfer> transfers_;
  std::vector<std::size_t> step_offsets_;  // num_steps + 1
};

// The relabeling step alone, for one layer: for each GPU b of `new_row`, the physical GPU it
// moves to, maximising the experts (with multiplicity) already on that GPU in `old_row`.
[[nodiscard]] std::vector<std::uint32_t> relabel_gpus(const Topology& topology,
                                                      std::span<const std::int32_t> old_row,
                                                      std::span<const std::int32_t> new_row,
                                                      MigrationRelabel relabel);

// Experts (with multiplicity) of `new_row` already on GPU gpu_map[b] in `old_row`, summed over b.
[[nodiscard]] std::uint64_t experts_kept(const Topology& topology,
                                         std::span<const std::int32_t> old_row,
                                         std::span<const std::int32_t> new_row,
                                         std::span<const std::uint32_t> gpu_map);

// The same, per GPU b of `new_row`.
[[nodiscard]] std::vector<std::uint32_t> experts_kept_per_gpu(
    const Topology& topology, std::span<const std::int32_t> old_row,
    std::span<const std::int32_t> new_row, std::span<const std::uint32_t> gpu_map);

// For each expert, the node holding the most replicas of its group's experts in `row` (ties: the
// lowest node): its group's node in a plan that keeps DeepSeek's locality.
[[nodiscard]] std::vector<std::uint32_t> group_home_nodes(const Topology& topology,
                                                          std::span<const std::int32_t> row);

// The budgeted migration's rebalance (see MigrationOptions::max_total_bytes) on its own, for
// one layer: rewrites `row` in place by greedy moves of the busiest GPU's experts (a replica
// copied onto another GPU's slot whose expert keeps another replica, or a trade of two experts;
// no expert gains a second replica on a GPU) until the busiest GPU is at most `target_max` under
// `loads`, no move lowers it, or `max_changed_slots` slots differ from the original row. Each
// move is the one that lowers the busiest GPU most per slot it newly changes from the original
// row; a slot may be written again, and a move that changes no new slot or writes an original
// expert back counts as half a slot per slot it earns back. With `keep_locality` moves stay inside
// the busiest GPU's node and copy a replica only onto its group's node (group_home_nodes). When
// no move lowers the busiest GPU, the same moves from every GPU above `target_max` are taken
// instead, each the one that lowers the excess, sum of max(0, load - target_max)^2, most per slot
// newly changed, while one does. `bound_changes` as MigrationOptions::bound_changes (the same
// choices either way). Returns whether the busiest GPU reached `target_max`.
bool rebalance_layer_toward(const Topology& topology, std::span<std::int32_t> row,
                            std::span<const double> loads, double target_max, bool keep_locality,
                            std::size_t max_changed_slots, bool bound_changes = true);

}  // namespace eplb
