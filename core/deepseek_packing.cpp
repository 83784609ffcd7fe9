#include "deepseek_packing.hpp"

#include <algorithm>
#include <functional>

#include "error.hpp"

namespace eplb {

void deepseek_descending_order(std::span<const float> weights,
                               std::vector<std::pair<float, std::int32_t>>& order) {
  order.clear();
  for (std::size_t i = 0; i < weights.size(); ++i) {
    order.emplace_back(weights[i], static_cast<std::int32_t>(i));
  }
  // Deliberately std::sort (not stable_sort) with a value-only comparison: this is what the
  // reference's torch CPU sort does, and equal-weight items (replicas of one expert) must come
  // out in the same order for log2phy's replica ranks to match.
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
}

void deepseek_balanced_packing(std::span<const float> weights, std::uint32_t num_packs,
                               std::span<std::int32_t> pack_of_item,
                               std::span<std::int32_t> rank_in_pack, PackingScratch& scratch) {
  const std::size_t num_items = weights.size();
  EPLB_ASSERT(num_packs > 0 && num_items % num_packs == 0);
  EPLB_ASSERT(pack_of_item.size() == num_items && rank_in_pack.size() == num_items);
  const std::size_t per_pack = num_items / num_packs;
  if (per_pack == 1) {
    for (std::size_t i = 0; i < num_items; ++i) {
      pack_of_item[i] = static_cast<std::int32_t>(i);
      rank_in_pack[i] = 0;
    }
    return;
  }
  deepseek_descending_order(weights, scratch.order);

  // Min-heap of (pack sum, pack index) over non-full packs: the top is the lightest pack, lowest
  // index on equal sums, exactly Python's min() over packs in index order.
  auto& heap = scratch.heap;
  heap.clear();
  for (std::uint32_t p = 0; p < num_packs; ++p)
    heap.emplace_back(0.0F, static_cast<std::int32_t>(p));
  const auto lighter_first = std::greater<>();
  std::make_heap(heap.begin(), heap.end(), lighter_first);
  scratch.items_in_pack.assign(num_packs, 0);

  for (const auto& [weight, item] : scratch.order) {
    std::pop_heap(heap.begin(), heap.end(), lighter_first);
    auto [sum, pack] = heap.back();
    heap.pop_back();
    const auto item_index = static_cast<std::size_t>(item);
    pack_of_item[item_index] = pack;
    rank_in_pack[item_index] = scratch.items_in_pack[static_cast<std::size_t>(pack)]++;
    sum = sum + weight;  // float32 accumulation, as the reference's 0-d float32 tensors
    if (static_cast<std::size_t>(scratch.items_in_pack[static_cast<std::size_t>(pack)]) <
        per_pack) {
      heap.emplace_back(sum, pack);
      std::push_heap(heap.begin(), heap.end(), lighter_first);
    }
  }
}

}  // namespace eplb
