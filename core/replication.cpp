#include "replication.hpp"

#include <algorithm>

#include "error.hpp"

namespace eplb {

namespace {

// Heap order: largest load per replica on top; on equal loads the lowest expert index.
struct HeavierReplicaFirst {
  bool operator()(const std::pair<float, std::int32_t>& a,
                  const std::pair<float, std::int32_t>& b) const {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  }
};

}  // namespace

void deepseek_replicate(std::span<const float> weights, std::uint32_t num_slots,
                        std::span<std::int32_t> expert_of_slot,
                        std::span<std::int32_t> rank_of_slot, std::span<std::int32_t> count,
                        ReplicationScratch& scratch) {
  const std::size_t num_experts = weights.size();
  EPLB_ASSERT(num_slots >= num_experts && count.size() == num_experts);
  EPLB_ASSERT(expert_of_slot.size() == num_slots && rank_of_slot.size() == num_slots);
  auto& heap = scratch.heap;
  heap.clear();
  for (std::size_t e = 0; e < num_experts; ++e) {
    expert_of_slot[e] = static_cast<std::int32_t>(e);
    rank_of_slot[e] = 0;
    count[e] = 1;
    heap.emplace_back(weights[e], static_cast<std::int32_t>(e));
  }
  std::make_heap(heap.begin(), heap.end(), HeavierReplicaFirst{});
  for (std::size_t slot = num_experts; slot < num_slots; ++slot) {
    std::pop_heap(heap.begin(), heap.end(), HeavierReplicaFirst{});
    const std::int32_t expert = heap.back().second;
    heap.pop_back();
    const auto e = static_cast<std::size_t>(expert);
    expert_of_slot[slot] = expert;
    rank_of_slot[slot] = count[e];
    ++count[e];
    // The reference divides float32 loads by the int64 count promoted to float32.
    heap.emplace_back(weights[e] / static_cast<float>(count[e]), expert);
    std::push_heap(heap.begin(), heap.end(), HeavierReplicaFirst{});
  }
}

double min_max_load_per_replica(std::span<const double> weights, std::uint32_t num_slots,
                                std::uint32_t max_count) {
  if (weights.empty() || max_count == 0) return 0.0;
  std::vector<std::pair<double, std::uint32_t>> heap;  // (load per replica, expert)
  std::vector<std::uint32_t> count(weights.size(), 1);
  heap.reserve(weights.size());
  for (std::size_t e = 0; e < weights.size(); ++e) {
    heap.emplace_back(weights[e], static_cast<std::uint32_t>(e));
  }
  std::make_heap(heap.begin(), heap.end());
  std::size_t spare = num_slots > weights.size() ? num_slots - weights.size() : 0;
  while (spare > 0 && !heap.empty()) {
    const auto [load, expert] = heap.front();
    if (count[expert] >= max_count || load == 0.0) break;  // the top can no longer improve
    std::pop_heap(heap.begin(), heap.end());
    heap.pop_back();
    ++count[expert];
    --spare;
    heap.emplace_back(weights[expert] / count[expert], expert);
    std::push_heap(heap.begin(), heap.end());
  }
  return heap.empty() ? 0.0 : heap.front().first;
}

}  // namespace eplb
