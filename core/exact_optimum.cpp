#include "exact_optimum.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "replication.hpp"

namespace eplb {

namespace {

constexpr std::uint32_t kMaxPairedSlots = 16;
constexpr double kInfinity = std::numeric_limits<double>::infinity();

// Smallest possible maximum pair sum over perfect matchings of `items` (load, expert) that
// never pair two replicas of one expert; infinity if none exists.
double best_pairing(const std::vector<std::pair<double, std::uint32_t>>& items) {
  const std::size_t n = items.size();
  std::vector<double> best(std::size_t{1} << n, kInfinity);
  best[0] = 0;
  for (std::size_t mask = 0; mask < best.size(); ++mask) {
    if (best[mask] == kInfinity) continue;
    std::size_t i = 0;
    while (i < n && ((mask >> i) & 1U) != 0) ++i;  // the lowest item not yet paired
    if (i == n) continue;
    for (std::size_t j = i + 1; j < n; ++j) {
      if (((mask >> j) & 1U) != 0 || items[i].second == items[j].second) continue;
      const std::size_t next = mask | (std::size_t{1} << i) | (std::size_t{1} << j);
      best[next] = std::min(best[next], std::max(best[mask], items[i].first + items[j].first));
    }
  }
  return best.back();
}

double two_slot_optimum(std::span<const double> loads, const Topology& topology) {
  const std::size_t n = loads.size();
  const std::uint32_t gpus = topology.num_gpus;
  std::vector<std::uint32_t> counts(n, 1);
  std::vector<std::pair<double, std::uint32_t>> items;
  double best = kInfinity;
  const std::function<void(std::size_t, std::uint32_t)> visit = [&](std::size_t e,
                                                                    std::uint32_t left) {
    const std::size_t after = n - e - 1;
    const std::uint32_t lo = after == 0 ? left : 1;
    const std::uint32_t hi = after == 0 ? left : left - static_cast<std::uint32_t>(after);
    for (std::uint32_t c = lo; c <= hi && c <= gpus; ++c) {
      if (c == 0 || loads[e] / c >= best) continue;  // one replica alone would not beat best
      counts[e] = c;
      if (after > 0) {
        visit(e + 1, left - c);
        continue;
      }
      items.clear();
      for (std::size_t x = 0; x < n; ++x) {
        for (std::uint32_t k = 0; k < counts[x]; ++k) {
          items.emplace_back(loads[x] / counts[x], static_cast<std::uint32_t>(x));
        }
      }
      // Largest with smallest is the best pairing when twins are allowed: a lower bound.
      std::sort(items.begin(), items.end());
      double free_pairing = 0;
      for (std::size_t k = 0; k < items.size() / 2; ++k) {
        free_pairing = std::max(free_pairing, items[k].first + items[items.size() - 1 - k].first);
      }
      if (free_pairing < best) best = std::min(best, best_pairing(items));
    }
  };
  visit(0, topology.num_physical);
  return best;
}

}  // namespace

std::optional<double> exact_optimum(std::span<const double> loads, const Topology& topology) {
  const std::uint32_t per_gpu = topology.slots_per_gpu();
  if (per_gpu == 1) {
    // One replica per GPU: the busiest GPU is the largest load per replica.
    return min_max_load_per_replica(loads, topology.num_physical, topology.num_gpus);
  }
  if (per_gpu == 2 && topology.num_physical <= kMaxPairedSlots) {
    const double best = two_slot_optimum(loads, topology);
    if (best < kInfinity) return best;
  }
  return std::nullopt;
}

}  // namespace eplb
