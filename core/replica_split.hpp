// Per-batch replica split (issue #9): given this batch's token count per logical expert and a
// placement, decide how many of each expert's tokens each of its replicas takes so that the
// busiest GPU's (weighted) load is minimal. A min-max transportation problem, solved exactly in
// integers: a water-filling heuristic gives a feasible bound, then a bisection on the bottleneck
// T with a max-flow feasibility check (source -> expert (count) -> replica's GPU -> sink
// (capacity floor(T / weight - extra) - single-replica load)) finds the optimum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "placement.hpp"

namespace eplb {

// Optional per-GPU terms; empty spans mean weight 1 and no extra load. GPU g's load is
// weight[g] * (extra[g] + tokens routed to g).
struct SplitGpuTerms {
  std::span<const double> weights;  // [num_gpus], finite and > 0
  std::span<const double> extra;    // [num_gpus], finite and >= 0 (e.g. shared-expert tokens)
};

struct SplitResult {
  double max_load = 0.0;          // weighted load of the busiest GPU under the quotas
  double heuristic_load = 0.0;    // the water-filling warm start's max load (>= max_load)
  std::uint32_t flow_checks = 0;  // max-flow feasibility checks run (0 when nothing to split)
};

// Reusable scratch: after the first solve of a given shape, a solve allocates nothing.
// One thread at a time per workspace.
class SplitWorkspace {
 public:
  // Writes `quotas` [R] (tokens per physical slot of `layer`): integral, >= 0, summing to each
  // expert's count over its replicas. `counts` [E] must be >= 0. Throws Error(invalid_argument)
  // naming the offending argument (layer, a count, a weight, a length).
  SplitResult solve(const Placement& placement, std::size_t layer,
                    std::span<const std::int32_t> counts, const SplitGpuTerms& terms,
                    std::span<std::int32_t> quotas);

  // The last solve's GPU terms and single-replica tokens, each [num_gpus]: GPU g's load is
  // split_gpu_load(gpu_weights()[g], gpu_extra()[g], fixed_tokens()[g] + its split tokens).
  [[nodiscard]] std::span<const double> gpu_weights() const { return weight_; }
  [[nodiscard]] std::span<const double> gpu_extra() const { return extra_; }
  [[nodiscard]] std::span<const std::int64_t> fixed_tokens() const { return fixed_; }

 private:
  bool feasible(double bound, bool strict);
  std::int64_t max_flow();
  std::int64_t augment(std::int32_t node, std::int64_t limit);
  void add_edge(std::int32_t from, std::int32_t to, std::int64_t capacity);

  // Problem (rebuilt per solve, capacity kept).
  std::vector<double> weight_;               // [G]
  std::vector<double> extra_;                // [G] the caller's extra load
  std::vector<std::int64_t> fixed_;          // [G] single-replica tokens
  std::vector<double> base_;                 // [G] extra + fixed (heuristics and bounds only)
  std::vector<std::int32_t> split_experts_;  // experts with >= 2 replicas and count > 0
  std::vector<std::int32_t> expert_node_;    // [E] node index or -1
  std::int64_t split_total_ = 0;

  // Flow graph: nodes 0 = source, 1..n = split experts, then G GPUs, then the sink.
  std::int32_t num_nodes_ = 0;
  std::int32_t sink_ = 0;
  std::int32_t gpu_node0_ = 0;
  std::vector<std::int32_t> head_, next_, to_, level_, iter_, queue_;
  std::vector<std::int64_t> cap_;
  std::vector<std::int64_t> expert_cap_;   // source->expert capacities, parallel to split_experts_
  std::vector<std::int32_t> source_edge_;  // edge index of source -> expert, same order
  std::vector<std::int32_t> gpu_edge_;     // [G] edge index of gpu -> sink
  std::vector<std::int32_t> slot_edge_;    // [R] edge index of expert -> gpu for the slot, or -1

  // Heuristic scratch.
  std::vector<double> heur_load_;  // [G] tokens
  std::vector<std::int64_t> heur_quota_;
  std::vector<std::int32_t> order_, gpus_;
  std::vector<std::int64_t> best_flow_;  // [R] flow of the best feasible check
  std::vector<std::int64_t> gpu_flow_;   // [G] split tokens on each GPU under best_flow_
};

// A GPU's load as the split solvers compute, bound and report it: weight * (extra + tokens), its
// tokens (single-replica and split) summed in integers first, so that every path agrees to the
// bit with fractional extra loads too.
inline double split_gpu_load(double weight, double extra, std::int64_t tokens) {
  return weight * (extra + static_cast<double>(tokens));
}

// The most tokens n in [0, cap] a GPU already holding `fixed` tokens can take with
// split_gpu_load(weight, extra, fixed + n) <= bound (< bound when `strict`): decided by evaluating
// that expression itself, so a load a solver reached is never excluded or admitted by rounding,
// at any magnitude; -1 when not even n = 0 fits.
std::int64_t gpu_token_room(double weight, double extra, std::int64_t fixed, double bound,
                            bool strict, std::int64_t cap);

// The load of every GPU (weight * (extra + tokens)) for given quotas; a helper for tests and
// benches. `gpu_loads` has num_gpus entries.
void split_gpu_loads(const Topology& topology, std::span<const std::int32_t> quotas,
                     const SplitGpuTerms& terms, std::span<double> gpu_loads);

}  // namespace eplb
