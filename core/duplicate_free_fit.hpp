// Whether a block's experts can be placed on its GPUs with no GPU busier than a target and no two
// replicas of one expert on a GPU, over every choice of replica counts: a depth-first search over
// the experts in decreasing load, each given a replica count and a set of distinct GPUs with a
// free slot and room for one replica (tightest fit first), with GPUs in identical states tried
// once and branches cut when the load left exceeds the room left or a GPU has more free slots
// than experts left to fill them. Complete within its step budget, so "impossible" is a proof.
// The balanced planner uses it where DeepSeek's plan wins a layer with duplicates: a duplicate
// is kept only where no plan without one is as little busy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace eplb {

enum class DuplicateFreeFit {
  found,       // gpu_expert holds a placement
  impossible,  // the search ended: no placement exists
  gave_up,     // the step budget ran out first
};

// `loads` holds the block's experts' loads (each expert gets at least one replica, each replica
// an even share); `num_gpus` GPUs have `slots_per_gpu` slots each, every slot filled. A GPU may
// exceed `target` by rounding noise (1e-12 relative). On `found`, writes `gpu_expert`:
// slots_per_gpu indices into `loads` per GPU, GPU by GPU. `max_steps` bounds the search nodes;
// blocks of more than 1024 slots are not searched (gave_up), as the search recurses once per
// replica. Deterministic.
[[nodiscard]] DuplicateFreeFit fit_without_duplicates(std::span<const double> loads,
                                                      std::uint32_t num_gpus,
                                                      std::uint32_t slots_per_gpu, double target,
                                                      std::size_t max_steps,
                                                      std::vector<std::int32_t>& gpu_expert);

}  // namespace eplb
