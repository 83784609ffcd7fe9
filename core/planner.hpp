// A planner: the topology and algorithm fixed at creation, scratch space reused across plans.
#pragma once

#include <span>

#include "algorithms.hpp"
#include "deepseek_planner.hpp"
#include "placement.hpp"
#include "topology.hpp"

namespace eplb {

class Planner {
 public:
  // Validates the topology and the algorithm id; throws Error(invalid_argument).
  Planner(const Topology& topology, std::uint32_t algorithm);

  // Plans all layers from `loads` [layers][E] (validated here). Not thread-safe: one plan at a
  // time per planner.
  [[nodiscard]] Placement plan(std::span<const double> loads);

  [[nodiscard]] const Topology& topology() const { return topology_; }
  [[nodiscard]] Algorithm algorithm() const { return algorithm_; }

 private:
  Topology topology_;
  Algorithm algorithm_;
  DeepseekScratch deepseek_scratch_;
};

}  // namespace eplb
