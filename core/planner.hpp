// A planner: the topology and algorithm fixed at creation, scratch space reused across plans.
#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <vector>

#include "affinity_planner.hpp"
#include "algorithms.hpp"
#include "balanced_planner.hpp"
#include "deepseek_planner.hpp"
#include "near_planner.hpp"
#include "placement.hpp"
#include "plan_control.hpp"
#include "topology.hpp"
#include "tracker.hpp"

namespace eplb {

struct PlannerSettings {
  std::uint32_t algorithm = 0;          // eplb_algorithm id; 0 = the default
  std::uint32_t cross_node_budget = 0;  // balanced-relaxed: replicas per layer off their node
  std::uint32_t num_threads = 1;        // layers are split across this many threads
  bool affinity = false;                // plan_tracked: lower nodes touched per token
  double affinity_min_balance = 0.99;   // affinity: balancedness >= this x the balance-only plan's
};

class Planner {
 public:
  // Validates the topology and the settings; throws Error(invalid_argument).
  Planner(const Topology& topology, const PlannerSettings& settings);
  Planner(const Topology& topology, std::uint32_t algorithm)
      : Planner(topology, PlannerSettings{algorithm, 0, 1, false, 0.99}) {}

  // Plans all layers from `loads` [layers][E] (validated here). Not thread-safe: one plan at a
  // time per planner. Throws Error(invalid_argument) when the settings ask for affinity, which
  // needs plan_tracked.
  [[nodiscard]] Placement plan(std::span<const double> loads);

  // Plans from `loads` (or, when empty, the tracker's loads) and, with settings.affinity, then
  // moves replicas to lower the nodes touched per token of the tracker's sampled rows
  // (affinity_planner.hpp; the balance-only plan of the same algorithm is the starting point and
  // the balance reference). The tracker must have the planner's layers and experts.
  [[nodiscard]] Placement plan_tracked(std::span<const double> loads, const Tracker& stats);

  // How many layers of a plan_near kept, rebalanced or re-planned their current layout.
  struct NearReport {
    std::uint32_t kept = 0, rebalanced = 0, partly_replanned = 0, replanned = 0;
  };
  // Plans from `loads` near `current` (what the GPUs hold now; same layers, experts, slots, GPUs
  // and nodes as the planner, else Error(invalid_argument) naming the field): per layer, the
  // planner's own plan sets the target (balancedness >= min_balance x its own, min_balance in
  // (0, 1]) and plan_layer_near keeps, rebalances or replaces the current layer, under the
  // algorithm's locality. Refuses with settings.affinity, like plan.
  [[nodiscard]] Placement plan_near(std::span<const double> loads, const Placement& current,
                                    double min_balance, NearReport* report = nullptr);

  // Plans from `num_windows` load matrices [windows][layers][E] (validated here): the balanced
  // algorithms minimise the mean over windows of each window's busiest GPU; the others plan on
  // the sum of the windows.
  [[nodiscard]] Placement plan_windows(std::span<const double> loads, std::size_t num_windows);

  // Plans from now on report their progress to `control` and stop when it is cancelled
  // (Error(cancelled), at the next layer boundary: the planner stays usable); nullptr detaches.
  // The planner shares ownership, so the control outlives every plan that uses it.
  void set_control(std::shared_ptr<PlanControl> control) { control_ = std::move(control); }

  [[nodiscard]] const Topology& topology() const { return topology_; }
  [[nodiscard]] Algorithm algorithm() const { return algorithm_; }

 private:
  // Scratch for one thread's share of the layers.
  struct Worker {
    DeepseekScratch deepseek;
    BalancedPlanner balanced;
    std::vector<double> window_loads;  // one layer's [windows][E]
    AffinityPlanner affinity;
  };
  void plan_slots(std::span<const double> loads, std::span<std::int32_t> phy2log,
                  std::span<std::int32_t> replica_rank);
  [[nodiscard]] AffinityScope affinity_scope() const;
  // The locality plan_near keeps: the one the algorithm keeps on this topology.
  [[nodiscard]] NearLocality near_locality() const;
  // Announces a plan of `passes` passes over the layers to the control; throws Error(cancelled)
  // when it is cancelled already.
  void begin_plan(std::uint64_t passes) const;
  // Throws Error(cancelled), naming the layer about to be planned and `pass` (appended to "of N
  // layers"; "" for the balance pass), when the control is cancelled.
  void stop_if_cancelled(std::size_t layer, const char* pass) const;
  // Runs plan_one(layer, worker) for every layer, split into contiguous ranges over the
  // workers' threads, counting each layer as a step of the control and stopping between layers
  // when it is cancelled; rethrows the first error.
  template <typename PlanOne>
  void for_each_layer(PlanOne&& plan_one, const char* pass = "");
  [[nodiscard]] Placement finish(std::vector<std::int32_t> phy2log,
                                 std::span<const std::int32_t> replica_rank,
                                 std::chrono::steady_clock::time_point start) const;

  Topology topology_;
  Algorithm algorithm_;
  PlannerSettings settings_;
  std::vector<Worker> workers_;
  std::shared_ptr<PlanControl> control_;
};

}  // namespace eplb
