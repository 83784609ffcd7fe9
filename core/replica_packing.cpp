#include "replica_packing.hpp"

#include <algorithm>
#include <limits>

#include "error.hpp"

namespace eplb {

namespace {

// A swap must lower the pair's maximum by more than rounding noise, so the search cannot cycle.
constexpr double kRelativeGain = 1e-12;
// Bounds the local search; each step strictly lowers the sorted load vector, so it also ends
// without this, but a bound keeps the worst case predictable.
constexpr std::uint32_t kMaxSwapsPerGpu = 64;

}  // namespace

bool ReplicaPacker::holds(std::uint32_t gpu, std::int32_t expert) const {
  return copies_[std::size_t{gpu} * num_experts_ + static_cast<std::size_t>(expert)] > 0;
}

void ReplicaPacker::load_state(std::span<const Replica> replicas, std::uint32_t num_gpus,
                               std::uint32_t slots_per_gpu, std::uint32_t num_experts,
                               std::span<const std::int32_t> slot_replica) {
  num_gpus_ = num_gpus;
  slots_ = slots_per_gpu;
  num_experts_ = num_experts;
  gpu_load_.assign(num_gpus, 0.0);
  copies_.assign(std::size_t{num_gpus} * num_experts, 0);
  for (std::uint32_t g = 0; g < num_gpus; ++g) {
    for (std::uint32_t s = 0; s < slots_per_gpu; ++s) {
      const Replica& r = replicas[static_cast<std::size_t>(slot_replica[g * slots_per_gpu + s])];
      gpu_load_[g] += r.load;
      ++copies_[std::size_t{g} * num_experts + static_cast<std::size_t>(r.expert)];
    }
  }
}

double ReplicaPacker::pack(std::span<const Replica> replicas, std::uint32_t num_gpus,
                           std::uint32_t slots_per_gpu, std::uint32_t num_experts,
                           std::span<std::int32_t> slot_replica) {
  EPLB_ASSERT(replicas.size() == std::size_t{num_gpus} * slots_per_gpu);
  EPLB_ASSERT(slot_replica.size() == replicas.size());
  num_gpus_ = num_gpus;
  slots_ = slots_per_gpu;
  num_experts_ = num_experts;
  gpu_load_.assign(num_gpus, 0.0);
  copies_.assign(std::size_t{num_gpus} * num_experts, 0);
  filled_.assign(num_gpus, 0);

  order_.resize(replicas.size());
  for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<std::int32_t>(i);
  std::sort(order_.begin(), order_.end(), [&](std::int32_t a, std::int32_t b) {
    const Replica& ra = replicas[static_cast<std::size_t>(a)];
    const Replica& rb = replicas[static_cast<std::size_t>(b)];
    if (ra.load != rb.load) return ra.load > rb.load;
    if (ra.expert != rb.expert) return ra.expert < rb.expert;
    return a < b;
  });

  // Min-heap of GPUs with a free slot, by (load, index).
  const auto heavier = [this](std::int32_t a, std::int32_t b) {
    const double la = gpu_load_[static_cast<std::size_t>(a)];
    const double lb = gpu_load_[static_cast<std::size_t>(b)];
    return la > lb || (la == lb && a > b);
  };
  heap_.clear();
  for (std::uint32_t g = 0; g < num_gpus; ++g) heap_.push_back(static_cast<std::int32_t>(g));
  std::make_heap(heap_.begin(), heap_.end(), heavier);

  for (std::int32_t index : order_) {
    const Replica& r = replicas[static_cast<std::size_t>(index)];
    // The lightest GPU that does not hold this expert yet; if every GPU with a free slot holds
    // it, the lightest of them (a duplicate that cannot be avoided).
    skipped_.clear();
    std::int32_t chosen = -1;
    while (!heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), heavier);
      const std::int32_t gpu = heap_.back();
      heap_.pop_back();
      if (!holds(static_cast<std::uint32_t>(gpu), r.expert)) {
        chosen = gpu;
        break;
      }
      skipped_.push_back(gpu);
    }
    if (chosen < 0) {
      chosen = skipped_.front();
      skipped_.erase(skipped_.begin());
    }
    for (std::int32_t gpu : skipped_) {
      heap_.push_back(gpu);
      std::push_heap(heap_.begin(), heap_.end(), heavier);
    }
    const auto g = static_cast<std::size_t>(chosen);
    slot_replica[g * slots_per_gpu + filled_[g]] = index;
    ++filled_[g];
    gpu_load_[g] += r.load;
    ++copies_[g * num_experts + static_cast<std::size_t>(r.expert)];
    if (filled_[g] < slots_per_gpu) {
      heap_.push_back(chosen);
      std::push_heap(heap_.begin(), heap_.end(), heavier);
    }
  }
  // The last replicas can find only GPUs that already hold their expert; move them apart.
  remove_duplicates(replicas, slot_replica);
  const double peak = swap_search(replicas, slot_replica);
  order_slots(replicas, slot_replica);
  return peak;
}

double ReplicaPacker::improve(std::span<const Replica> replicas, std::uint32_t num_gpus,
                              std::uint32_t slots_per_gpu, std::uint32_t num_experts,
                              std::span<std::int32_t> slot_replica, bool separate_duplicates) {
  EPLB_ASSERT(replicas.size() == std::size_t{num_gpus} * slots_per_gpu);
  load_state(replicas, num_gpus, slots_per_gpu, num_experts, slot_replica);
  if (separate_duplicates) remove_duplicates(replicas, slot_replica);
  const double peak = swap_search(replicas, slot_replica);
  order_slots(replicas, slot_replica);
  return peak;
}

void ReplicaPacker::remove_duplicates(std::span<const Replica> replicas,
                                      std::span<std::int32_t> slot_replica) {
  for (std::uint32_t h = 0; h < num_gpus_; ++h) {
    for (std::uint32_t i = 0; i < slots_; ++i) {
      const std::size_t slot_a = std::size_t{h} * slots_ + i;
      const Replica& a = replicas[static_cast<std::size_t>(slot_replica[slot_a])];
      if (copies_[std::size_t{h} * num_experts_ + static_cast<std::size_t>(a.expert)] < 2) {
        continue;
      }
      // Swap this duplicate with the replica elsewhere that keeps the pair's maximum lowest.
      double best = std::numeric_limits<double>::infinity();
      std::size_t best_slot = slot_a;
      for (std::uint32_t g = 0; g < num_gpus_; ++g) {
        if (g == h || holds(g, a.expert)) continue;
        for (std::uint32_t j = 0; j < slots_; ++j) {
          const std::size_t slot_b = std::size_t{g} * slots_ + j;
          const Replica& b = replicas[static_cast<std::size_t>(slot_replica[slot_b])];
          if (holds(h, b.expert)) continue;
          const double d = a.load - b.load;
          const double pair = std::max(gpu_load_[h] - d, gpu_load_[g] + d);
          if (pair < best) {
            best = pair;
            best_slot = slot_b;
          }
        }
      }
      if (best_slot == slot_a) continue;  // nowhere to go: the duplicate is unavoidable
      const auto g = static_cast<std::uint32_t>(best_slot / slots_);
      const Replica& b = replicas[static_cast<std::size_t>(slot_replica[best_slot])];
      const double d = a.load - b.load;
      gpu_load_[h] -= d;
      gpu_load_[g] += d;
      --copies_[std::size_t{h} * num_experts_ + static_cast<std::size_t>(a.expert)];
      ++copies_[std::size_t{g} * num_experts_ + static_cast<std::size_t>(a.expert)];
      --copies_[std::size_t{g} * num_experts_ + static_cast<std::size_t>(b.expert)];
      ++copies_[std::size_t{h} * num_experts_ + static_cast<std::size_t>(b.expert)];
      std::swap(slot_replica[slot_a], slot_replica[best_slot]);
    }
  }
}

double ReplicaPacker::swap_search(std::span<const Replica> replicas,
                                  std::span<std::int32_t> slot_replica) {
  gpu_order_.clear();
  const std::uint32_t max_swaps = kMaxSwapsPerGpu * num_gpus_;
  for (std::uint32_t step = 0; step < max_swaps; ++step) {
    const auto h = static_cast<std::uint32_t>(std::max_element(gpu_load_.begin(), gpu_load_.end()) -
                                              gpu_load_.begin());
    const double peak = gpu_load_[h];
    double best = peak * (1 - kRelativeGain);
    std::size_t best_a = 0;
    std::size_t best_b = 0;
    bool found = false;
    // A swap with GPU g leaves the pair at no less than (peak + load_g) / 2, so visit GPUs from
    // the lightest and stop once that bound cannot beat the best swap found.
    if (gpu_order_.size() != num_gpus_) {
      gpu_order_.resize(num_gpus_);
      for (std::uint32_t g = 0; g < num_gpus_; ++g) gpu_order_[g] = g;
    }
    // Insertion sort: after a swap only two GPUs moved, so the order is nearly sorted.
    const auto lighter = [this](std::uint32_t x, std::uint32_t y) {
      return gpu_load_[x] < gpu_load_[y] || (gpu_load_[x] == gpu_load_[y] && x < y);
    };
    for (std::size_t i = 1; i < gpu_order_.size(); ++i) {
      const std::uint32_t g = gpu_order_[i];
      std::size_t j = i;
      for (; j > 0 && lighter(g, gpu_order_[j - 1]); --j) gpu_order_[j] = gpu_order_[j - 1];
      gpu_order_[j] = g;
    }
    for (std::uint32_t g : gpu_order_) {
      if (0.5 * (peak + gpu_load_[g]) >= best) break;
      if (g == h) continue;
      for (std::uint32_t i = 0; i < slots_; ++i) {
        const std::size_t slot_a = std::size_t{h} * slots_ + i;
        const Replica& a = replicas[static_cast<std::size_t>(slot_replica[slot_a])];
        if (holds(g, a.expert)) continue;
        for (std::uint32_t j = 0; j < slots_; ++j) {
          const std::size_t slot_b = std::size_t{g} * slots_ + j;
          const Replica& b = replicas[static_cast<std::size_t>(slot_replica[slot_b])];
          const double d = a.load - b.load;
          if (d <= 0 || holds(h, b.expert)) continue;
          const double pair = std::max(peak - d, gpu_load_[g] + d);
          if (pair < best) {
            best = pair;
            best_a = slot_a;
            best_b = slot_b;
            found = true;
          }
        }
      }
    }
    if (!found) break;
    const auto g = static_cast<std::uint32_t>(best_b / slots_);
    const Replica& a = replicas[static_cast<std::size_t>(slot_replica[best_a])];
    const Replica& b = replicas[static_cast<std::size_t>(slot_replica[best_b])];
    const double d = a.load - b.load;
    gpu_load_[h] -= d;
    gpu_load_[g] += d;
    --copies_[std::size_t{h} * num_experts_ + static_cast<std::size_t>(a.expert)];
    ++copies_[std::size_t{g} * num_experts_ + static_cast<std::size_t>(a.expert)];
    --copies_[std::size_t{g} * num_experts_ + static_cast<std::size_t>(b.expert)];
    ++copies_[std::size_t{h} * num_experts_ + static_cast<std::size_t>(b.expert)];
    std::swap(slot_replica[best_a], slot_replica[best_b]);
  }
  return *std::max_element(gpu_load_.begin(), gpu_load_.end());
}

void ReplicaPacker::order_slots(std::span<const Replica> replicas,
                                std::span<std::int32_t> slot_replica) const {
  for (std::uint32_t g = 0; g < num_gpus_; ++g) {
    auto begin = slot_replica.begin() + std::ptrdiff_t{g} * slots_;
    std::sort(begin, begin + slots_, [&](std::int32_t a, std::int32_t b) {
      const Replica& ra = replicas[static_cast<std::size_t>(a)];
      const Replica& rb = replicas[static_cast<std::size_t>(b)];
      if (ra.load != rb.load) return ra.load > rb.load;
      return ra.expert < rb.expert || (ra.expert == rb.expert && a < b);
    });
  }
}

}  // namespace eplb
