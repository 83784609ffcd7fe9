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

constexpr double kInfinity = std::numeric_limits<double>::infinity();

using Item = std::pair<double, std::int32_t>;  // (replica load, expert)

// Smallest possible maximum pair sum over perfect matchings of `items` that never pair two
// replicas of one expert (infinity if none exists), by dynamic programming over subsets; writes
// the matching as consecutive pairs of item indices.
double best_pairing(const std::vector<Item>& items, std::vector<double>& best,
                    std::vector<std::uint32_t>& from, std::vector<std::int32_t>& pairs) {
  const std::size_t n = items.size();
  best.assign(std::size_t{1} << n, kInfinity);
  from.assign(best.size(), 0);
  best[0] = 0;
  for (std::size_t mask = 0; mask < best.size(); ++mask) {
    if (best[mask] == kInfinity) continue;
    std::size_t i = 0;
    while (i < n && ((mask >> i) & 1U) != 0) ++i;  // the lowest item not yet paired
    if (i == n) continue;
    for (std::size_t j = i + 1; j < n; ++j) {
      if (((mask >> j) & 1U) != 0 || items[i].second == items[j].second) continue;
      const std::size_t next = mask | (std::size_t{1} << i) | (std::size_t{1} << j);
      const double peak = std::max(best[mask], items[i].first + items[j].first);
      if (peak < best[next]) {
        best[next] = peak;
        from[next] = static_cast<std::uint32_t>(mask);
      }
    }
  }
  pairs.clear();
  if (best.back() == kInfinity) return kInfinity;
  for (std::size_t mask = best.size() - 1; mask != 0; mask = from[mask]) {
    const std::size_t pair = mask ^ from[mask];
    for (std::size_t k = 0; k < n; ++k) {
      if (((pair >> k) & 1U) != 0) pairs.push_back(static_cast<std::int32_t>(k));
    }
  }
  return best.back();
}

}  // namespace

std::optional<TwoSlotArrangement> exact_two_slot_arrangement(std::span<const double> loads,
                                                             std::uint32_t num_gpus, double below) {
  const std::size_t n = loads.size();
  const std::uint32_t num_slots = 2 * num_gpus;
  if (n == 0 || num_slots > kExactMaxPairedSlots || n > num_slots) return std::nullopt;
  std::vector<std::uint32_t> counts(n, 1);
  std::vector<Item> items;
  std::vector<double> dp;
  std::vector<std::uint32_t> from;
  std::vector<std::int32_t> pairs;
  double best = below;
  std::optional<TwoSlotArrangement> found;
  const auto record = [&](double peak, const std::vector<std::int32_t>& matching) {
    best = peak;
    TwoSlotArrangement arrangement{peak, {}};
    for (std::int32_t k : matching)
      arrangement.slots.push_back(items[static_cast<std::size_t>(k)].second);
    found = std::move(arrangement);
  };
  std::vector<std::int32_t> folded;
  // Every composition of the slots into counts of 1..num_gpus (no expert twice on a GPU).
  const std::function<void(std::size_t, std::uint32_t)> visit = [&](std::size_t e,
                                                                    std::uint32_t left) {
    const std::size_t after = n - e - 1;
    const std::uint32_t lo = after == 0 ? left : 1;
    const std::uint32_t hi = after == 0 ? left : left - static_cast<std::uint32_t>(after);
    for (std::uint32_t c = lo; c <= hi && c <= num_gpus; ++c) {
      if (c == 0 || loads[e] / c >= best) continue;  // one replica alone would not beat best
      counts[e] = c;
      if (after > 0) {
        visit(e + 1, left - c);
        continue;
      }
      items.clear();
      for (std::size_t x = 0; x < n; ++x) {
        for (std::uint32_t k = 0; k < counts[x]; ++k) {
          items.emplace_back(loads[x] / counts[x], static_cast<std::int32_t>(x));
        }
      }
      // Largest with smallest is the best pairing when twins are allowed: a lower bound for
      // this multiset, and the optimum for it when it pairs no expert with itself.
      std::sort(items.begin(), items.end());
      double free_pairing = 0;
      bool twins = false;
      folded.clear();
      for (std::size_t k = 0; k < items.size() / 2; ++k) {
        const std::size_t other = items.size() - 1 - k;
        free_pairing = std::max(free_pairing, items[k].first + items[other].first);
        twins = twins || items[k].second == items[other].second;
        folded.push_back(static_cast<std::int32_t>(k));
        folded.push_back(static_cast<std::int32_t>(other));
      }
      if (!(free_pairing < best)) continue;
      if (!twins) {
        record(free_pairing, folded);
        continue;
      }
      const double paired = best_pairing(items, dp, from, pairs);
      if (paired < best) record(paired, pairs);
    }
  };
  visit(0, num_slots);
  return found;
}

std::optional<double> exact_optimum(std::span<const double> loads, const Topology& topology) {
  const std::uint32_t per_gpu = topology.slots_per_gpu();
  if (per_gpu == 1) {
    // One replica per GPU: the busiest GPU is the largest load per replica.
    return min_max_load_per_replica(loads, topology.num_physical, topology.num_gpus);
  }
  if (per_gpu == 2 && topology.num_physical <= kExactMaxPairedSlots) {
    const auto best = exact_two_slot_arrangement(loads, topology.num_gpus, kInfinity);
    if (best) return best->peak;
  }
  return std::nullopt;
}

}  // namespace eplb
