#include "trivial_planner.hpp"

namespace eplb {

void trivial_plan_layer(const Topology& topology, std::span<std::int32_t> phy2log,
                        std::span<std::int32_t> replica_rank) {
  const std::uint32_t num_experts = topology.num_logical;
  for (std::uint32_t slot = 0; slot < topology.num_physical; ++slot) {
    phy2log[slot] = static_cast<std::int32_t>(slot % num_experts);
    replica_rank[slot] = static_cast<std::int32_t>(slot / num_experts);
  }
}

}  // namespace eplb
