// DeepSeek's hierarchical EPLB (deepseek-ai/EPLB `rebalance_experts`), reproduced exactly on
// inputs where the reference makes no tie decision between different experts.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "deepseek_packing.hpp"
#include "replication.hpp"
#include "topology.hpp"

namespace eplb {

// Per-layer scratch, reused across layers and plans.
struct DeepseekScratch {
  std::vector<float> weights;        // [E] the layer's loads as float32
  std::vector<float> group_weights;  // [groups]
  std::vector<std::int32_t> group_pack, group_rank;
  std::vector<std::int32_t> node_major_to_logical;                // mlog2log [E]
  std::vector<float> node_weights;                                // [E/N]
  std::vector<std::int32_t> slot_expert, slot_rank, node_counts;  // replicate_experts outputs
  std::vector<float> replica_loads;                               // [R/N]
  std::vector<std::int32_t> replica_gpu, replica_position;
  PackingScratch packing;
  ReplicationScratch replication;
};

// True when the reference would use its hierarchical policy (groups divisible by nodes).
[[nodiscard]] bool deepseek_is_hierarchical(const Topology& topology);

// Plans one layer. `loads` holds the layer's E loads (finite, >= 0, <= FLT_MAX). Writes the
// logical expert and the replica rank of each of the R slots. A layer with zero total load gets
// the trivial placement (slot p holds expert p % E).
void deepseek_plan_layer(const Topology& topology, std::span<const double> loads,
                         std::span<std::int32_t> phy2log, std::span<std::int32_t> replica_rank,
                         DeepseekScratch& scratch);

}  // namespace eplb
