// Seeded random topologies and load matrices for property tests.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "topology.hpp"

namespace eplb::test {

// A random valid topology: E a multiple of groups, R >= E a multiple of GPUs, GPUs a multiple of
// nodes. `hierarchical` makes groups a multiple of nodes (DeepSeek's hierarchical policy).
Topology random_topology(std::mt19937_64& rng, bool hierarchical);

// Loads drawn as float32-exact reals from a wide lognormal range, so that no two experts (or
// sums of them) tie: an oracle with a different but valid tie rule must agree.
std::vector<double> random_tie_free_loads(std::mt19937_64& rng, const Topology& topology);

// Small whole-number loads in [0, max_value]: full of ties and zeros.
std::vector<double> random_small_loads(std::mt19937_64& rng, const Topology& topology,
                                       int max_value);

}  // namespace eplb::test
