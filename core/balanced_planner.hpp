// libeplb's own planner: replica counts and packing chosen together, no duplicate replicas on a
// GPU where avoidable, and never a higher busiest-GPU load than DeepSeek's plan of the same layer
// under the same policy (it is computed too, and improved by the same local search, when it
// would win). Where DeepSeek's plan wins with duplicates, they are removed, by other replica
// counts if need be (duplicate_free_fit.hpp), unless no plan without one is as little busy:
// only then is a duplicate the price of being no busier than DeepSeek.
//
// Policies:
//   global        replicas anywhere;
//   hierarchical  DeepSeek's locality: whole expert groups per node, replicas on their group's
//                 node; groups packed onto nodes by LPT plus pairwise swaps;
//   relaxed       hierarchical, plus up to `cross_node_budget` replicas per layer of an expert
//                 outside its home node, placed where they lower the busiest node the most.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "deepseek_planner.hpp"
#include "replica_packing.hpp"
#include "topology.hpp"
#include "window_packing.hpp"

namespace eplb {

enum class BalancedPolicy { global, hierarchical, relaxed };

struct BalancedSettings {
  BalancedPolicy policy = BalancedPolicy::global;
  std::uint32_t cross_node_budget = 0;  // relaxed only: replicas per layer outside home nodes
};

// True when the policy keeps node locality for this topology (hierarchical and relaxed need
// num_groups % num_nodes == 0 and more than one node; otherwise they plan globally, as DeepSeek
// falls back to its global policy).
[[nodiscard]] bool balanced_is_hierarchical(const Topology& topology, BalancedPolicy policy);

class BalancedPlanner {
 public:
  // Plans one layer: writes each slot's logical expert and replica rank (ascending slot order).
  void plan_layer(const Topology& topology, const BalancedSettings& settings,
                  std::span<const double> loads, std::span<std::int32_t> phy2log,
                  std::span<std::int32_t> replica_rank);

  // Plans one layer from several windows (`window_loads` is [num_windows][E]) for the smallest
  // mean over windows of the busiest GPU: the plan of the mean load, then its replicas swapped
  // between GPUs (per node when locality is kept) while that lowers the windows' mean peak.
  void plan_layer_windows(const Topology& topology, const BalancedSettings& settings,
                          std::span<const double> window_loads, std::size_t num_windows,
                          std::span<std::int32_t> phy2log, std::span<std::int32_t> replica_rank);

 private:
  // Counts and packing for `experts` on `num_gpus` GPUs (slots_per_gpu each): the experts'
  // replicas are written to `block` (num_gpus * slots_per_gpu logical ids). Returns the busiest
  // GPU's load.
  double plan_block(std::span<const std::int32_t> experts, std::span<const double> loads,
                    std::uint32_t num_gpus, std::uint32_t slots_per_gpu,
                    std::span<std::int32_t> block);
  // One block of a layer: a set of experts planned onto a set of GPUs.
  struct Block {
    std::span<const std::int32_t> experts;  // logical ids
    std::span<const double> loads;          // the whole layer's loads, by logical id
    std::vector<double> local;              // loads of `experts`
    std::uint32_t num_gpus;
    std::uint32_t slots_per_gpu;
    std::uint32_t cap;  // most replicas of one expert (num_gpus unless slots force more)
    double bound;       // lower bound on the block's busiest GPU
  };
  // Improves `counts` by moving single replicas between experts; writes the best block found.
  double exchange_counts(const Block& b, std::vector<std::int32_t>& counts,
                         std::span<std::int32_t> block);
  // exchange_counts for large blocks, scoring each move incrementally.
  double exchange_counts_incremental(const Block& b, std::vector<std::int32_t>& counts,
                                     std::span<std::int32_t> block);
  // Counts from the smallest bottleneck the constructive fit reaches below `peak`, if any.
  bool fit_bottleneck(const Block& b, double peak, std::vector<std::int32_t>& counts);
  // Branch and bound over replica counts for small blocks; the best count vector it scores.
  bool search_counts(const Block& b, double peak, std::vector<std::int32_t>& best_counts);
  // Packs a fixed multiset of replicas (counts[e] copies of experts[e], load loads/total_counts)
  // and writes the block. Returns the busiest GPU's load.
  double pack_counts(std::span<const std::int32_t> experts, std::span<const double> loads,
                     std::span<const std::int32_t> copies, std::span<const std::int32_t> counts,
                     std::uint32_t num_gpus, std::uint32_t slots_per_gpu,
                     std::span<std::int32_t> block);
  void plan_nodes(const Topology& topology, const BalancedSettings& settings,
                  std::span<const double> loads, std::span<std::int32_t> phy2log);
  void keep_better_deepseek(const Topology& topology, bool hierarchical,
                            std::span<const double> loads, std::span<std::int32_t> phy2log);
  // The swap search on one block of a plan (its experts have no replicas outside it), first
  // moving duplicates apart if `separate_duplicates`. Returns the block's busiest GPU.
  double polish_block(std::span<const double> loads, std::uint32_t num_gpus,
                      std::uint32_t slots_per_gpu, std::span<std::int32_t> block,
                      bool separate_duplicates);
  // Replaces `block` by a plan of its experts without duplicates and no GPU above `target`
  // (any replica counts), if fit_without_duplicates finds one; false leaves it unchanged.
  bool fit_block_without_duplicates(std::span<const double> loads, std::uint32_t num_gpus,
                                    std::uint32_t slots_per_gpu, double target,
                                    std::span<std::int32_t> block);

  ReplicaPacker packer_;
  WindowPacker window_packer_;
  DeepseekScratch deepseek_;
  std::vector<Replica> replicas_;
  std::vector<std::int32_t> slot_replica_;
  std::vector<std::int32_t> counts_, fit_counts_, trial_counts_, alternative_, trial_block_;
};

// Each GPU's load of one layer's phy2log under even splitting of each expert's load over its
// replicas.
[[nodiscard]] std::vector<double> gpu_loads_of(const Topology& topology,
                                               std::span<const double> loads,
                                               std::span<const std::int32_t> phy2log);

// The busiest GPU's load of one layer's phy2log under even splitting (shared with tests).
[[nodiscard]] double max_gpu_load(const Topology& topology, std::span<const double> loads,
                                  std::span<const std::int32_t> phy2log);

}  // namespace eplb
