// The exact smallest busiest-GPU load of a layer, over every choice of replica counts and every
// placement without two replicas of one expert on a GPU, for instances small enough to solve by
// exhaustive search: one slot per GPU (water-filling is exact), or two slots per GPU with at most
// 16 slots (every composition of the slots into replica counts, each paired by dynamic
// programming over subsets).
#pragma once

#include <optional>
#include <span>

#include "topology.hpp"

namespace eplb {

// std::nullopt when the instance is too large to solve exactly. `loads` holds the layer's E
// loads.
[[nodiscard]] std::optional<double> exact_optimum(std::span<const double> loads,
                                                  const Topology& topology);

}  // namespace eplb
