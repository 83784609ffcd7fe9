// Choosing how many replicas each expert gets by water-filling: each extra slot goes to the
// expert with the largest load per replica. This minimises the largest load per replica for a
// given number of slots.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace eplb {

struct ReplicationScratch {
  std::vector<std::pair<float, std::int32_t>> heap;
};

// DeepSeek's `replicate_experts` for one row, bit-compatible with the reference: slots
// 0..n-1 hold experts 0..n-1 (rank 0); each further slot goes to argmax(float32(w / count)),
// the lowest index on ties. Writes the expert and replica rank of each of the num_slots slots
// and each expert's count. O(num_slots log n).
void deepseek_replicate(std::span<const float> weights, std::uint32_t num_slots,
                        std::span<std::int32_t> expert_of_slot,
                        std::span<std::int32_t> rank_of_slot, std::span<std::int32_t> count,
                        ReplicationScratch& scratch);

// The smallest achievable maximum of weight[e] / count[e] over replica counts with
// 1 <= count[e] <= max_count and sum(count) <= num_slots (double precision water-filling).
[[nodiscard]] double min_max_load_per_replica(std::span<const double> weights,
                                              std::uint32_t num_slots, std::uint32_t max_count);

}  // namespace eplb
