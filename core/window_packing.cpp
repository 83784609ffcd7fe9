#include "window_packing.hpp"

#include <algorithm>
#include <limits>

#include "error.hpp"

namespace eplb {

namespace {

constexpr double kRelativeGain = 1e-12;
constexpr std::uint32_t kMaxSwapsPerGpu = 64;
// Up to this many windows a swap's change is summed as it is, without a bound or an early exit.
constexpr std::size_t kPlainSumWindows = 8;

}  // namespace

double WindowPacker::objective(std::span<const double> replica_loads, std::size_t num_windows,
                               std::uint32_t num_gpus, std::uint32_t slots_per_gpu,
                               std::span<const std::int32_t> slot_replica) {
  std::vector<double> peak(num_windows, 0.0);
  std::vector<double> load(num_windows);
  for (std::uint32_t g = 0; g < num_gpus; ++g) {
    std::fill(load.begin(), load.end(), 0.0);
    for (std::uint32_t s = 0; s < slots_per_gpu; ++s) {
      const auto r = static_cast<std::size_t>(slot_replica[g * slots_per_gpu + s]);
      for (std::size_t w = 0; w < num_windows; ++w) load[w] += replica_loads[r * num_windows + w];
    }
    for (std::size_t w = 0; w < num_windows; ++w) peak[w] = std::max(peak[w], load[w]);
  }
  double sum = 0;
  for (double p : peak) sum += p;
  return sum;
}

void WindowPacker::rank_windows() {
  std::fill(busiest_count_.begin(), busiest_count_.end(), 0U);
  for (std::size_t w = 0; w < windows_; ++w) {
    std::array<std::int32_t, 3> top{-1, -1, -1};
    const auto load = [&](std::int32_t g) {
      return g < 0 ? -1.0 : gpu_load_[static_cast<std::size_t>(g) * windows_ + w];
    };
    for (std::uint32_t g = 0; g < num_gpus_; ++g) {
      const double l = gpu_load_[std::size_t{g} * windows_ + w];
      const auto gi = static_cast<std::int32_t>(g);
      if (l > load(top[0])) {
        top = {gi, top[0], top[1]};
      } else if (l > load(top[1])) {
        top = {top[0], gi, top[1]};
      } else if (l > load(top[2])) {
        top[2] = gi;
      }
    }
    top_[w] = top;
    ++busiest_count_[static_cast<std::size_t>(top[0])];
  }
  // The windows of each GPU's busiest, GPU by GPU (counting sort).
  busiest_begin_.assign(std::size_t{num_gpus_} + 1, 0);
  for (std::uint32_t g = 0; g < num_gpus_; ++g) {
    busiest_begin_[g + 1] = busiest_begin_[g] + busiest_count_[g];
  }
  busiest_windows_.resize(windows_);
  std::vector<std::uint32_t>& next = candidates_;  // free scratch until the step lists them
  next.assign(busiest_begin_.begin(), busiest_begin_.end() - 1);
  for (std::size_t w = 0; w < windows_; ++w) {
    busiest_windows_[next[static_cast<std::size_t>(top_[w][0])]++] = static_cast<std::uint32_t>(w);
  }
}

double WindowPacker::improve(std::span<const std::int32_t> replica_expert,
                             std::span<const double> replica_loads, std::size_t num_windows,
                             std::uint32_t num_gpus, std::uint32_t slots_per_gpu,
                             std::uint32_t num_experts, std::span<std::int32_t> slot_replica) {
  EPLB_ASSERT(slot_replica.size() == std::size_t{num_gpus} * slots_per_gpu);
  EPLB_ASSERT(replica_loads.size() == replica_expert.size() * num_windows);
  windows_ = num_windows;
  num_gpus_ = num_gpus;
  gpu_load_.assign(std::size_t{num_gpus} * num_windows, 0.0);
  copies_.assign(std::size_t{num_gpus} * num_experts, 0);
  top_.assign(num_windows, {-1, -1, -1});
  busiest_count_.assign(num_gpus, 0);
  for (std::uint32_t g = 0; g < num_gpus; ++g) {
    for (std::uint32_t s = 0; s < slots_per_gpu; ++s) {
      const auto r = static_cast<std::size_t>(slot_replica[g * slots_per_gpu + s]);
      ++copies_[std::size_t{g} * num_experts + static_cast<std::size_t>(replica_expert[r])];
      for (std::size_t w = 0; w < num_windows; ++w) {
        gpu_load_[std::size_t{g} * num_windows + w] += replica_loads[r * num_windows + w];
      }
    }
  }
  const auto holds = [&](std::uint32_t g, std::int32_t expert) {
    return copies_[std::size_t{g} * num_experts + static_cast<std::size_t>(expert)] > 0;
  };
  // The busiest load of window w over GPUs other than a and b.
  const auto other_peak = [&](std::size_t w, std::uint32_t a, std::uint32_t b) {
    for (std::int32_t g : top_[w]) {
      if (g >= 0 && static_cast<std::uint32_t>(g) != a && static_cast<std::uint32_t>(g) != b) {
        return gpu_load_[static_cast<std::size_t>(g) * windows_ + w];
      }
    }
    return 0.0;
  };

  rank_windows();
  double total = 0;
  for (std::size_t w = 0; w < num_windows; ++w) {
    total += gpu_load_[static_cast<std::size_t>(top_[w][0]) * num_windows + w];
  }
  for (std::uint32_t step = 0; step < kMaxSwapsPerGpu * num_gpus; ++step) {
    // Try the GPUs that are some window's busiest, most windows first, until one has an
    // improving swap.
    candidates_.clear();
    for (std::uint32_t g = 0; g < num_gpus; ++g) {
      if (busiest_count_[g] > 0) candidates_.push_back(g);
    }
    std::stable_sort(candidates_.begin(), candidates_.end(), [&](std::uint32_t x, std::uint32_t y) {
      return busiest_count_[x] > busiest_count_[y];
    });
    double best_delta = -total * kRelativeGain;
    // Slack for the bound's rounding against the sum in window order: the same terms added in
    // another order, each at most `total` in size.
    const double margin =
        4 * total * static_cast<double>(num_windows) * std::numeric_limits<double>::epsilon();
    std::size_t best_a = 0;
    std::size_t best_b = 0;
    std::uint32_t h = 0;
    bool found = false;
    for (std::uint32_t candidate : candidates_) {
      h = candidate;
      for (std::uint32_t i = 0; i < slots_per_gpu; ++i) {
        const std::size_t slot_a = std::size_t{h} * slots_per_gpu + i;
        const auto a = static_cast<std::size_t>(slot_replica[slot_a]);
        for (std::uint32_t g = 0; g < num_gpus; ++g) {
          if (g == h || holds(g, replica_expert[a])) continue;
          // Only the windows whose busiest GPU is h or g can lose peak; every other window's
          // change is >= 0. The sum of theirs bounds a swap's change from below and rejects
          // most swaps (with slack for the order of the sum), unless it covers more than half
          // the windows (it would cost about as much as the sum); the change itself is summed
          // in window order and given up once past the last window that can lose peak.
          const bool use_bound = num_windows > kPlainSumWindows &&
                                 2 * (busiest_count_[h] + busiest_count_[g]) <= num_windows;
          std::size_t last_negative = 0;
          for (const std::uint32_t x : {h, g}) {
            if (busiest_count_[x] > 0) {
              last_negative =
                  std::max<std::size_t>(last_negative, busiest_windows_[busiest_begin_[x + 1] - 1]);
            }
          }
          for (std::uint32_t j = 0; j < slots_per_gpu; ++j) {
            const std::size_t slot_b = std::size_t{g} * slots_per_gpu + j;
            const auto b = static_cast<std::size_t>(slot_replica[slot_b]);
            if (replica_expert[a] == replica_expert[b] || holds(h, replica_expert[b])) continue;
            const auto change = [&](std::size_t w) {
              const double d =
                  replica_loads[a * num_windows + w] - replica_loads[b * num_windows + w];
              const double new_h = gpu_load_[std::size_t{h} * num_windows + w] - d;
              const double new_g = gpu_load_[std::size_t{g} * num_windows + w] + d;
              const double peak = gpu_load_[static_cast<std::size_t>(top_[w][0]) * num_windows + w];
              return std::max({new_h, new_g, other_peak(w, h, g)}) - peak;
            };
            if (use_bound) {
              double bound = 0;
              for (const std::uint32_t x : {h, g}) {
                for (std::uint32_t k = busiest_begin_[x]; k < busiest_begin_[x + 1]; ++k) {
                  bound += change(busiest_windows_[k]);
                }
              }
              if (bound >= best_delta + margin) continue;
            }
            double delta = 0;
            std::size_t w = 0;
            if (num_windows <= kPlainSumWindows) {
              for (; w < num_windows; ++w) delta += change(w);
            } else {
              for (; w <= last_negative; ++w) delta += change(w);
              bool worse = delta >= best_delta;
              for (; w < num_windows && !worse; ++w) {
                delta += change(w);
                worse = delta >= best_delta;
              }
              if (worse) continue;
            }
            if (delta < best_delta) {
              best_delta = delta;
              best_a = slot_a;
              best_b = slot_b;
              found = true;
            }
          }
        }
      }
      if (found) break;
    }
    if (!found) break;
    const auto g = static_cast<std::uint32_t>(best_b / slots_per_gpu);
    const auto a = static_cast<std::size_t>(slot_replica[best_a]);
    const auto b = static_cast<std::size_t>(slot_replica[best_b]);
    for (std::size_t w = 0; w < num_windows; ++w) {
      const double d = replica_loads[a * num_windows + w] - replica_loads[b * num_windows + w];
      gpu_load_[std::size_t{h} * num_windows + w] -= d;
      gpu_load_[std::size_t{g} * num_windows + w] += d;
    }
    --copies_[std::size_t{h} * num_experts + static_cast<std::size_t>(replica_expert[a])];
    ++copies_[std::size_t{g} * num_experts + static_cast<std::size_t>(replica_expert[a])];
    --copies_[std::size_t{g} * num_experts + static_cast<std::size_t>(replica_expert[b])];
    ++copies_[std::size_t{h} * num_experts + static_cast<std::size_t>(replica_expert[b])];
    std::swap(slot_replica[best_a], slot_replica[best_b]);
    rank_windows();
    total += best_delta;
  }
  return objective(replica_loads, num_windows, num_gpus, slots_per_gpu, slot_replica);
}

}  // namespace eplb
