#include "deepseek_planner.hpp"

#include "error.hpp"
#include "trivial_planner.hpp"

namespace eplb {

bool deepseek_is_hierarchical(const Topology& topology) {
  return topology.num_groups % topology.num_nodes == 0;
}

void deepseek_plan_layer(const Topology& topology, std::span<const double> loads,
                         std::span<std::int32_t> phy2log, std::span<std::int32_t> replica_rank,
                         DeepseekScratch& scratch) {
  const std::uint32_t num_experts = topology.num_logical;
  const std::uint32_t num_slots = topology.num_physical;
  EPLB_ASSERT(loads.size() == num_experts && phy2log.size() == num_slots);

  double total = 0.0;
  for (double load : loads) total += load;
  if (total == 0.0) {
    trivial_plan_layer(topology, phy2log, replica_rank);
    return;
  }

  // The reference falls back to its global policy (one group, one node) unless groups divide
  // evenly over nodes.
  const bool hierarchical = deepseek_is_hierarchical(topology);
  const std::uint32_t groups = hierarchical ? topology.num_groups : 1;
  const std::uint32_t nodes = hierarchical ? topology.num_nodes : 1;
  const std::uint32_t group_size = num_experts / groups;
  const std::uint32_t groups_per_node = groups / nodes;
  const std::uint32_t experts_per_node = num_experts / nodes;
  const std::uint32_t slots_per_node = num_slots / nodes;
  const std::uint32_t gpus_per_node = topology.num_gpus / nodes;
  const std::uint32_t slots_per_gpu = topology.slots_per_gpu();

  auto& w = scratch.weights;
  w.resize(num_experts);
  for (std::uint32_t e = 0; e < num_experts; ++e) w[e] = static_cast<float>(loads[e]);

  // Step 1: pack expert groups onto nodes; relabel experts node-major (group order kept inside).
  scratch.group_weights.resize(groups);
  for (std::uint32_t g = 0; g < groups; ++g) {
    double sum = 0.0;  // exact for integer counts below 2^24, like the reference's float32 sum
    for (std::uint32_t i = 0; i < group_size; ++i) sum += w[g * group_size + i];
    scratch.group_weights[g] = static_cast<float>(sum);
  }
  scratch.group_pack.resize(groups);
  scratch.group_rank.resize(groups);
  deepseek_balanced_packing(scratch.group_weights, nodes, scratch.group_pack, scratch.group_rank,
                            scratch.packing);
  auto& mlog2log = scratch.node_major_to_logical;
  mlog2log.resize(num_experts);
  for (std::uint32_t e = 0; e < num_experts; ++e) {
    const std::uint32_t g = e / group_size;
    const auto position = static_cast<std::uint32_t>(scratch.group_pack[g]) * groups_per_node +
                          static_cast<std::uint32_t>(scratch.group_rank[g]);
    mlog2log[position * group_size + e % group_size] = static_cast<std::int32_t>(e);
  }

  scratch.node_weights.resize(experts_per_node);
  scratch.slot_expert.resize(slots_per_node);
  scratch.slot_rank.resize(slots_per_node);
  scratch.node_counts.resize(experts_per_node);
  scratch.replica_loads.resize(slots_per_node);
  scratch.replica_gpu.resize(slots_per_node);
  scratch.replica_position.resize(slots_per_node);
  for (std::uint32_t node = 0; node < nodes; ++node) {
    const std::int32_t* node_experts = mlog2log.data() + node * experts_per_node;
    for (std::uint32_t j = 0; j < experts_per_node; ++j) {
      scratch.node_weights[j] = w[static_cast<std::size_t>(node_experts[j])];
    }
    // Step 2: replicas by water-filling inside the node (every node gets the same slot count).
    deepseek_replicate(scratch.node_weights, slots_per_node, scratch.slot_expert, scratch.slot_rank,
                       scratch.node_counts, scratch.replication);
    // Step 3: pack the node's replicas onto its GPUs by load per replica.
    for (std::uint32_t k = 0; k < slots_per_node; ++k) {
      const auto j = static_cast<std::size_t>(scratch.slot_expert[k]);
      scratch.replica_loads[k] =
          scratch.node_weights[j] / static_cast<float>(scratch.node_counts[j]);
    }
    deepseek_balanced_packing(scratch.replica_loads, gpus_per_node, scratch.replica_gpu,
                              scratch.replica_position, scratch.packing);
    for (std::uint32_t k = 0; k < slots_per_node; ++k) {
      const std::size_t slot = static_cast<std::size_t>(node) * slots_per_node +
                               static_cast<std::size_t>(scratch.replica_gpu[k]) * slots_per_gpu +
                               static_cast<std::size_t>(scratch.replica_position[k]);
      phy2log[slot] = node_experts[scratch.slot_expert[k]];
      replica_rank[slot] = scratch.slot_rank[k];
    }
  }
}

}  // namespace eplb
