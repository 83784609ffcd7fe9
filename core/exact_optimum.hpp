// The exact smallest busiest-GPU load of a layer, over every choice of replica counts and every
// placement without two replicas of one expert on a GPU, for instances small enough to solve by
// exhaustive search: one slot per GPU (water-filling is exact), or two slots per GPU with at most
// 16 slots (every composition of the slots into replica counts, each paired by dynamic
// programming over subsets). For two slots per GPU the optimal arrangement itself is available
// too; the balanced planner uses it on blocks that small.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "topology.hpp"

namespace eplb {

// The most slots the two-slots-per-GPU search accepts.
inline constexpr std::uint32_t kExactMaxPairedSlots = 16;

// std::nullopt when the instance is too large to solve exactly. `loads` holds the layer's E
// loads.
[[nodiscard]] std::optional<double> exact_optimum(std::span<const double> loads,
                                                  const Topology& topology);

// An optimal two-slots-per-GPU arrangement: `slots[2 g]` and `slots[2 g + 1]` are the indices
// (into `loads`) of the experts on GPU g, never one expert twice on a GPU; `peak` is its busiest
// GPU under even splitting.
struct TwoSlotArrangement {
  double peak = 0;
  std::vector<std::int32_t> slots;
};

// The optimum over every replica-count vector and every twin-free pairing of `loads` onto
// `num_gpus` GPUs of two slots each, if it is below `below` (pass infinity for no cut-off; a
// tighter cut-off prunes the search). std::nullopt when no arrangement beats `below`, or when
// the instance is too large (more than kExactMaxPairedSlots slots) or has more experts than
// slots.
[[nodiscard]] std::optional<TwoSlotArrangement> exact_two_slot_arrangement(
    std::span<const double> loads, std::uint32_t num_gpus, double below);

}  // namespace eplb
