#include "duplicate_free_fit.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "error.hpp"

namespace eplb {

namespace {

// Room comparisons tolerate this much rounding noise, relative to the target.
constexpr double kSlack = 1e-12;
// The search recurses once per replica and once per expert: larger blocks are not searched, so
// that the stack stays small (about 100 kB here) on any thread.
constexpr std::size_t kMaxSlots = 1024;

class Search {
 public:
  Search(std::span<const double> loads, std::uint32_t num_gpus, std::uint32_t slots_per_gpu,
         double target, std::size_t max_steps)
      : loads_(loads),
        target_(target),
        slack_(std::max(target, 0.0) * kSlack),
        max_steps_(max_steps),
        room_(num_gpus, target),
        free_(num_gpus, slots_per_gpu),
        order_(loads.size()),
        mandatory_(loads.size()),
        candidates_(loads.size()),
        taken_(loads.size()),
        slots_left_(std::size_t{num_gpus} * slots_per_gpu) {
    std::iota(order_.begin(), order_.end(), 0);
    std::stable_sort(order_.begin(), order_.end(), [&](std::int32_t a, std::int32_t b) {
      return loads_[static_cast<std::size_t>(a)] > loads_[static_cast<std::size_t>(b)];
    });
    for (double load : loads) load_left_ += load;
  }

  DuplicateFreeFit run(std::uint32_t slots_per_gpu, std::vector<std::int32_t>& gpu_expert) {
    if (!place(0)) return gave_up_ ? DuplicateFreeFit::gave_up : DuplicateFreeFit::impossible;
    gpu_expert.assign(room_.size() * slots_per_gpu, -1);
    std::vector<std::uint32_t> filled(room_.size(), 0);
    for (std::size_t depth = 0; depth < order_.size(); ++depth) {
      for (const auto& [gpu, room_before] : taken_[depth]) {
        gpu_expert[std::size_t{gpu} * slots_per_gpu + filled[gpu]++] = order_[depth];
      }
    }
    for (std::uint32_t f : filled) EPLB_ASSERT(f == slots_per_gpu);
    return DuplicateFreeFit::found;
  }

 private:
  // Places order_[depth...]; on success the GPUs of each are left in taken_.
  bool place(std::size_t depth) {
    if (depth == order_.size()) return slots_left_ == 0;
    if (++steps_ > max_steps_) {
      gave_up_ = true;
      return false;
    }
    // Each expert left puts at most one replica on a GPU, so a GPU with as many free slots as
    // experts left must take this one, and one with more can never be filled.
    const std::size_t left = order_.size() - depth;
    std::vector<std::uint32_t>& mandatory = mandatory_[depth];
    mandatory.clear();
    double open_room = 0;
    std::size_t open = 0;
    for (std::uint32_t g = 0; g < free_.size(); ++g) {
      if (free_[g] == 0) continue;
      if (free_[g] > left) return false;
      if (free_[g] == left) mandatory.push_back(g);
      ++open;
      open_room += std::max(room_[g], 0.0);
    }
    // Full GPUs keep their unused room: the open ones must hold the load left.
    if (slots_left_ < left || load_left_ > open_room + slack_ * static_cast<double>(open)) {
      return false;
    }
    // At most one replica per open GPU while leaving a slot to each expert after this one; at
    // least enough that one replica fits under the target and that the experts after it (one
    // replica per open GPU each) can fill the slots left.
    const double load = loads_[static_cast<std::size_t>(order_[depth])];
    double lo = std::max<double>(1, static_cast<double>(mandatory.size()));
    if (load > target_ + slack_) lo = std::max(lo, std::ceil(load / target_ * (1 - kSlack)));
    if (slots_left_ > (left - 1) * open) {
      lo = std::max(lo, static_cast<double>(slots_left_ - (left - 1) * open));
    }
    const std::size_t hi = std::min(open, slots_left_ - (left - 1));
    if (lo > static_cast<double>(hi)) return false;
    const auto fewest = static_cast<std::size_t>(lo);
    // The count nearest this expert's share of the slots left first, then alternately one more
    // and one fewer.
    const double share = load_left_ > 0 ? load * static_cast<double>(slots_left_) / load_left_ : 0;
    const auto hint = std::clamp(static_cast<std::size_t>(std::llround(share)), fewest, hi);
    for (std::size_t d = 0; d <= hi - fewest; ++d) {
      if (hint + d <= hi && try_count(depth, hint + d)) return true;
      if (gave_up_) return false;
      if (d > 0 && hint >= fewest + d && try_count(depth, hint - d)) return true;
      if (gave_up_) return false;
    }
    return false;
  }

  bool try_count(std::size_t depth, std::size_t count) {
    const double replica =
        loads_[static_cast<std::size_t>(order_[depth])] / static_cast<double>(count);
    const std::vector<std::uint32_t>& mandatory = mandatory_[depth];
    for (std::uint32_t g : mandatory) {
      if (room_[g] + slack_ < replica) return false;
    }
    const std::size_t left = order_.size() - depth;
    std::vector<std::uint32_t>& candidates = candidates_[depth];
    candidates.clear();
    for (std::uint32_t g = 0; g < free_.size(); ++g) {
      if (free_[g] > 0 && free_[g] < left && room_[g] + slack_ >= replica) candidates.push_back(g);
    }
    if (candidates.size() + mandatory.size() < count) return false;
    // Tightest fit first; GPUs in the same state end up next to each other.
    std::sort(candidates.begin(), candidates.end(), [&](std::uint32_t a, std::uint32_t b) {
      if (room_[a] != room_[b]) return room_[a] < room_[b];
      if (free_[a] != free_[b]) return free_[a] < free_[b];
      return a < b;
    });
    const double load_left = load_left_;
    load_left_ -= loads_[static_cast<std::size_t>(order_[depth])];
    slots_left_ -= count;
    for (std::uint32_t g : mandatory) take(depth, g, replica);
    if (choose(depth, replica, 0, count - mandatory.size())) return true;
    while (!taken_[depth].empty()) give_back(depth);
    slots_left_ += count;
    load_left_ = load_left;
    return false;
  }

  // Picks `need` more GPUs for order_[depth] from candidates_[depth][from...], then goes on.
  bool choose(std::size_t depth, double replica, std::size_t from, std::size_t need) {
    if (need == 0) return place(depth + 1);
    const std::vector<std::uint32_t>& candidates = candidates_[depth];
    for (std::size_t i = from; i + need <= candidates.size(); ++i) {
      const std::uint32_t g = candidates[i];
      // GPUs in one state lead to the same placements: of several, the first ones only.
      if (i > from && room_[candidates[i - 1]] == room_[g] &&
          free_[candidates[i - 1]] == free_[g]) {
        continue;
      }
      take(depth, g, replica);
      if (choose(depth, replica, i + 1, need - 1)) return true;
      give_back(depth);
      if (gave_up_) return false;
    }
    return false;
  }

  void take(std::size_t depth, std::uint32_t gpu, double replica) {
    taken_[depth].emplace_back(gpu, room_[gpu]);
    room_[gpu] -= replica;
    --free_[gpu];
  }

  // Restores the room exactly, so that GPUs in equal states still compare equal.
  void give_back(std::size_t depth) {
    const auto [gpu, room_before] = taken_[depth].back();
    taken_[depth].pop_back();
    room_[gpu] = room_before;
    ++free_[gpu];
  }

  std::span<const double> loads_;
  double target_;
  double slack_;
  std::size_t max_steps_;
  std::vector<double> room_;                                          // [gpu] target minus load
  std::vector<std::uint32_t> free_;                                   // [gpu] free slots
  std::vector<std::int32_t> order_;                                   // experts by decreasing load
  std::vector<std::vector<std::uint32_t>> mandatory_, candidates_;    // [depth]
  std::vector<std::vector<std::pair<std::uint32_t, double>>> taken_;  // [depth] (GPU, room before)
  std::size_t slots_left_;
  double load_left_ = 0;
  std::size_t steps_ = 0;
  bool gave_up_ = false;
};

}  // namespace

DuplicateFreeFit fit_without_duplicates(std::span<const double> loads, std::uint32_t num_gpus,
                                        std::uint32_t slots_per_gpu, double target,
                                        std::size_t max_steps,
                                        std::vector<std::int32_t>& gpu_expert) {
  if (std::size_t{num_gpus} * slots_per_gpu > kMaxSlots) return DuplicateFreeFit::gave_up;
  Search search(loads, num_gpus, slots_per_gpu, target, max_steps);
  return search.run(slots_per_gpu, gpu_expert);
}

}  // namespace eplb
