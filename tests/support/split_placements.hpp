// Random one-layer placements for the replica-split tests: every expert once, the remaining slots
// random experts (so some experts get several replicas, sometimes twice on one GPU).
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "placement.hpp"

namespace eplb::test {

inline Placement random_split_placement(std::mt19937& rng, std::uint32_t experts,
                                        std::uint32_t nodes, std::uint32_t gpus_per_node,
                                        std::uint32_t per_gpu) {
  Topology t;
  t.num_layers = 1;
  t.num_logical = experts;
  t.num_nodes = nodes;
  t.num_gpus = nodes * gpus_per_node;
  t.num_physical = t.num_gpus * per_gpu;
  std::vector<std::int32_t> phy2log(t.num_physical);
  for (std::uint32_t s = 0; s < t.num_physical; ++s) {
    phy2log[s] = s < experts
                     ? static_cast<std::int32_t>(s)
                     : static_cast<std::int32_t>(static_cast<std::uint32_t>(rng()) % experts);
  }
  std::shuffle(phy2log.begin(), phy2log.end(), rng);
  return Placement::from_phy2log(t, std::move(phy2log));
}

}  // namespace eplb::test
