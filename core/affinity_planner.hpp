// Affinity-aware placement: moves replicas so that experts which tokens pick together share a
// node, lowering the traffic metric of traffic.hpp (nodes touched per token), while the busiest
// GPU stays within a user-set factor of the starting plan's.
//
// It starts from a balance-only plan and works on replicas, not on blocks of slots:
//   global        swaps two replicas on different nodes (each keeps its replica rank);
//   relaxed       the same swaps, but every expert keeps at least one replica on its home node
//                 (the node of its group) and at most `cross_node_budget` replicas per layer lie
//                 off their home node;
//   hierarchical  an expert's replicas must stay with its group, so whole groups trade nodes
//                 and the two nodes are planned again (balanced planner, within the node). With
//                 one group per node this cannot change the metric, and the plan is kept.
// Replica counts, per-GPU slot counts and the no-duplicate rule are kept: a swap never puts a
// second replica of an expert on a GPU. Candidate swaps are ranked by a co-activation proxy (how
// many sampled tokens pair an expert with experts already on the destination node) and accepted
// only when the exact metric over the sampled rows improves and the balance bound holds. Large
// layers then rank every swap by an estimate of its change of the metric (per row: a node added
// for the moved expert, its old node dropped), kept up to date move by move; a swap that lowers
// the metric but leaves a node over the bound may bring a second, compensating swap along.
// Deterministic: the result depends only on the inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "balanced_planner.hpp"
#include "topology.hpp"

namespace eplb {

enum class AffinityScope { global, hierarchical, relaxed };

struct AffinitySettings {
  AffinityScope scope = AffinityScope::global;
  std::uint32_t cross_node_budget = 0;  // relaxed: replicas per layer off their home node
  // The busiest GPU may grow to (starting plan's busiest GPU) / min_balance_ratio, i.e. the
  // balancedness stays >= min_balance_ratio x the starting plan's. In (0, 1].
  double min_balance_ratio = 0.99;
  std::uint32_t max_rounds = 60;  // improvement rounds per layer
};

struct AffinityLayerResult {
  double nodes_touched_before = 0;  // mean over the sampled rows with a valid id
  double nodes_touched_after = 0;
  std::uint32_t moves = 0;  // swaps (or group exchanges) applied
};

// Reusable scratch; one instance per thread.
class AffinityPlanner {
 public:
  // Improves one layer in place. `phy2log` and `replica_rank` ([R] each) are the starting plan;
  // `rows` holds [num_rows][top_k] sampled logical ids (-1 = masked; ids trusted to be < E).
  AffinityLayerResult improve_layer(const Topology& topology, const AffinitySettings& settings,
                                    std::span<const double> loads,
                                    std::span<const std::int32_t> rows, std::size_t num_rows,
                                    std::uint32_t top_k, std::span<std::int32_t> phy2log,
                                    std::span<std::int32_t> replica_rank);

 private:
  struct Candidate {
    double proxy;
    std::uint32_t s1, s2;
  };

  void load_rows(std::uint32_t num_experts, std::span<const std::int32_t> rows,
                 std::size_t num_rows, std::uint32_t top_k);
  // The nodes the rule of traffic.hpp chooses for row r under mask_.
  [[nodiscard]] std::uint64_t row_nodes(std::size_t r);
  // Calls visit(r) once for every deduplicated sampled row r that holds one of `experts`.
  template <typename Visit>
  void for_each_row_of(std::span<const std::uint32_t> experts, Visit&& visit);
  [[nodiscard]] double mean_nodes_touched();
  // The two strategies; each returns the number of moves applied.
  std::uint32_t swap_replicas(const Topology& topology, const AffinitySettings& settings,
                              std::span<const double> loads, std::span<std::int32_t> phy2log,
                              std::span<std::int32_t> replica_rank);
  std::uint32_t exchange_groups(const Topology& topology, const AffinitySettings& settings,
                                std::span<const double> loads, std::span<std::int32_t> phy2log,
                                std::span<std::int32_t> replica_rank);
  // Swaps replicas between the GPUs of each node (no node's experts change) to lower each node's
  // busiest GPU.
  void rebalance_nodes(const Topology& topology, std::span<const double> share,
                       std::span<double> gpu_load, std::span<std::int32_t> phy2log,
                       std::span<std::int32_t> replica_rank);
  // Changes one replica of e from node `from` to node `to` in cnt_/mask_ (and pull_ when
  // `track_pull`).
  void move_replica(std::uint32_t e, std::uint32_t from, std::uint32_t to, bool track_pull);
  void update_pull(std::uint32_t e, std::uint32_t node, std::int32_t sign);
  // Adds (sign +1) or removes (-1) row r's estimated changes (-1, 0 or +1) of its nodes touched
  // when one replica of a member moves to another node, under the current state, to gain_.
  void add_row_gains(std::size_t r, std::int32_t sign);

  std::uint32_t nodes_ = 0;
  std::uint32_t experts_ = 0;
  // Sampled rows with at least one valid id, deduplicated: row r is row_ids_[row_off_[r] ..
  // row_off_[r+1]).
  std::vector<std::uint32_t> row_off_, row_ids_;
  std::size_t constant_rows_ = 0;  // rows with one distinct expert: always one node
  std::vector<std::uint32_t> rows_of_off_, rows_of_;  // inverted index expert -> rows
  std::vector<std::uint64_t> chosen_;                 // nodes each row touches now
  std::vector<std::uint64_t> row_stamp_;
  std::uint64_t stamp_ = 0;
  std::vector<std::int32_t> cnt_;    // [E][nodes] replicas per node
  std::vector<std::uint64_t> mask_;  // [E] nodes holding a replica
  std::vector<std::int64_t> pull_;   // [E][nodes] co-selections with experts on the node
  // [E][from][to]: estimated change of the metric's sum over the sampled rows if one replica of
  // e moved from node `from` to node `to` (add_row_gains); kept in step with every applied move
  // of the estimate phase (the rows it changes are taken out and added back).
  std::vector<std::int32_t> gain_;
  std::vector<Candidate> candidates_;
  std::vector<std::uint64_t> uncovered_;  // row_nodes and add_row_gains scratch, longest row
  BalancedPlanner node_planner_;
};

}  // namespace eplb
