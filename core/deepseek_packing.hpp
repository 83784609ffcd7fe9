// DeepSeek's `balanced_packing`: n weighted items into m packs of exactly n/m items each, by
// greedy LPT (heaviest item first into the lightest non-full pack). Bit-compatible with the
// reference: float32 pack sums, lowest pack index on equal sums, and the reference's (unstable)
// descending sort order on equal item weights. O(n log n + n log m).
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace eplb {

struct PackingScratch {
  std::vector<std::pair<float, std::int32_t>> order;
  std::vector<std::pair<float, std::int32_t>> heap;
  std::vector<std::int32_t> items_in_pack;
};

// Writes, for each item, its pack and its rank within the pack (0 = placed first).
// With exactly one item per pack the result is the identity, without looking at the weights,
// as in the reference.
void deepseek_balanced_packing(std::span<const float> weights, std::uint32_t num_packs,
                               std::span<std::int32_t> pack_of_item,
                               std::span<std::int32_t> rank_in_pack, PackingScratch& scratch);

// The order in which the reference visits items: `torch.sort(descending=True)` on CPU, which is
// libstdc++'s introsort over (value, index) pairs comparing values only. Exposed for tests.
void deepseek_descending_order(std::span<const float> weights,
                               std::vector<std::pair<float, std::int32_t>>& order);

}  // namespace eplb
