// deepseek-ai/EPLB's README example for the core tests: 2 layers x 12 experts, 16 slots, 4 groups,
// 2 nodes, 8 GPUs, and its loads.
#pragma once

#include <vector>

#include "topology.hpp"

namespace eplb::test {

inline Topology readme_topology() {
  Topology t;
  t.num_layers = 2;
  t.num_logical = 12;
  t.num_physical = 16;
  t.num_nodes = 2;
  t.num_gpus = 8;
  t.num_groups = 4;
  return t;
}

// [layers][experts].
inline std::vector<double> readme_loads() {
  return {90, 132, 40,  61, 104, 165, 39,  4,   73,  56, 183, 86,
          20, 107, 104, 64, 19,  197, 187, 157, 172, 86, 16,  27};
}

}  // namespace eplb::test
