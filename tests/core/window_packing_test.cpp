// WindowPacker (robust planning's swap search) against a plain re-implementation of the same
// steepest descent: every candidate swap of the busiest GPUs scored over every window, no
// bounds, no early exit. The packer prunes with bounds that must never change a choice, so the
// packings must be identical, swap for swap, on random inputs with few and many windows; and
// every packing keeps the no-duplicate rule and never raises the objective.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "window_packing.hpp"

namespace eplb {
namespace {

struct Case {
  std::uint32_t gpus, slots_per_gpu, experts;
  std::size_t windows;
  std::vector<std::int32_t> replica_expert;  // per replica
  std::vector<double> replica_loads;         // [replica][window]
  std::vector<std::int32_t> slot_replica;    // GPU-major
};

// Experts with 1-3 replicas each, dealt round-robin so that no GPU holds two replicas of one
// expert; loads per window lognormal, with whole numbers (ties) in some cases.
Case random_case(std::mt19937_64& rng, std::uint32_t gpus, std::uint32_t slots_per_gpu,
                 std::size_t windows, bool whole) {
  Case c{gpus, slots_per_gpu, 0, windows, {}, {}, {}};
  const std::uint32_t slots = gpus * slots_per_gpu;
  while (c.replica_expert.size() < slots) {
    const auto copies = std::min<std::uint32_t>(
        std::uniform_int_distribution<std::uint32_t>(1, std::min(3U, gpus))(rng),
        slots - static_cast<std::uint32_t>(c.replica_expert.size()));
    for (std::uint32_t k = 0; k < copies; ++k) {
      c.replica_expert.push_back(static_cast<std::int32_t>(c.experts));
    }
    ++c.experts;
  }
  std::lognormal_distribution<double> load(0.0, 1.0);
  for (std::size_t i = 0; i < c.replica_expert.size() * windows; ++i) {
    const double x = load(rng) * 10;
    c.replica_loads.push_back(whole ? std::floor(x) : x);
  }
  // Replica r goes to GPU r % gpus: the copies of an expert are consecutive and at most `gpus`.
  c.slot_replica.assign(slots, -1);
  std::vector<std::uint32_t> fill(gpus, 0);
  for (std::uint32_t r = 0; r < slots; ++r) {
    const std::uint32_t g = r % gpus;
    c.slot_replica[g * slots_per_gpu + fill[g]++] = static_cast<std::int32_t>(r);
  }
  return c;
}

// The steepest descent the packer implements, written plainly: loads kept per GPU and window
// the same way (summed in slot order, then moved by each swap's difference, so the rounding is
// the same), every window's busiest GPU found by a scan (lowest index on ties), every swap of a
// candidate GPU scored over every window.
double reference_improve(const Case& c, std::vector<std::int32_t>& slot_replica) {
  const std::size_t windows = c.windows;
  const std::uint32_t per = c.slots_per_gpu;
  const auto expert_of = [&](std::size_t slot) {
    return c.replica_expert[static_cast<std::size_t>(slot_replica[slot])];
  };
  const auto loads_of = [&](std::size_t slot) {
    return &c.replica_loads[static_cast<std::size_t>(slot_replica[slot]) * windows];
  };
  std::vector<double> load(std::size_t{c.gpus} * windows, 0.0);  // [gpu][window]
  for (std::uint32_t g = 0; g < c.gpus; ++g) {
    for (std::uint32_t s = 0; s < per; ++s) {
      for (std::size_t w = 0; w < windows; ++w) load[g * windows + w] += loads_of(g * per + s)[w];
    }
  }
  const auto holds = [&](std::uint32_t g, std::int32_t expert) {
    for (std::uint32_t s = 0; s < per; ++s) {
      if (expert_of(g * per + s) == expert) return true;
    }
    return false;
  };
  const auto busiest = [&](std::size_t w, std::uint32_t skip1, std::uint32_t skip2) {
    std::int64_t best = -1;
    for (std::uint32_t g = 0; g < c.gpus; ++g) {
      if (g == skip1 || g == skip2) continue;
      if (best < 0 || load[g * windows + w] > load[static_cast<std::size_t>(best) * windows + w]) {
        best = g;
      }
    }
    return best;
  };
  double total = 0;
  for (std::size_t w = 0; w < windows; ++w) {
    total += load[static_cast<std::size_t>(busiest(w, c.gpus, c.gpus)) * windows + w];
  }
  for (std::uint32_t step = 0; step < 64 * c.gpus; ++step) {
    std::vector<std::uint32_t> count(c.gpus, 0);
    for (std::size_t w = 0; w < windows; ++w) ++count[busiest(w, c.gpus, c.gpus)];
    std::vector<std::uint32_t> candidates;
    for (std::uint32_t g = 0; g < c.gpus; ++g) {
      if (count[g] > 0) candidates.push_back(g);
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [&](std::uint32_t x, std::uint32_t y) { return count[x] > count[y]; });
    double best_delta = -total * 1e-12;
    std::size_t best_a = 0, best_b = 0;
    std::uint32_t h = 0;
    bool found = false;
    for (const std::uint32_t candidate : candidates) {
      h = candidate;
      for (std::size_t sa = h * per; sa < (h + 1) * per; ++sa) {
        for (std::uint32_t g = 0; g < c.gpus; ++g) {
          if (g == h || holds(g, expert_of(sa))) continue;
          for (std::size_t sb = g * per; sb < (g + 1) * per; ++sb) {
            if (expert_of(sa) == expert_of(sb) || holds(h, expert_of(sb))) continue;
            double delta = 0;
            for (std::size_t w = 0; w < windows; ++w) {
              const double d = loads_of(sa)[w] - loads_of(sb)[w];
              const double peak =
                  load[static_cast<std::size_t>(busiest(w, c.gpus, c.gpus)) * windows + w];
              const std::int64_t other = busiest(w, h, g);
              const double other_peak =
                  other < 0 ? 0.0 : load[static_cast<std::size_t>(other) * windows + w];
              delta +=
                  std::max({load[h * windows + w] - d, load[g * windows + w] + d, other_peak}) -
                  peak;
            }
            if (delta < best_delta) {
              best_delta = delta;
              best_a = sa;
              best_b = sb;
              found = true;
            }
          }
        }
      }
      if (found) break;
    }
    if (!found) break;
    const auto g = static_cast<std::uint32_t>(best_b / per);
    for (std::size_t w = 0; w < windows; ++w) {
      const double d = loads_of(best_a)[w] - loads_of(best_b)[w];
      load[h * windows + w] -= d;
      load[g * windows + w] += d;
    }
    std::swap(slot_replica[best_a], slot_replica[best_b]);
    total += best_delta;
  }
  return WindowPacker::objective(c.replica_loads, windows, c.gpus, per, slot_replica);
}

void expect_no_duplicates(const Case& c, const std::vector<std::int32_t>& slot_replica) {
  for (std::uint32_t g = 0; g < c.gpus; ++g) {
    std::vector<std::int32_t> experts;
    for (std::uint32_t s = 0; s < c.slots_per_gpu; ++s) {
      experts.push_back(
          c.replica_expert[static_cast<std::size_t>(slot_replica[g * c.slots_per_gpu + s])]);
    }
    std::sort(experts.begin(), experts.end());
    EXPECT_EQ(std::adjacent_find(experts.begin(), experts.end()), experts.end()) << "GPU " << g;
  }
}

TEST(WindowPacker, SwapsExactlyAsThePlainSteepestDescent) {
  std::mt19937_64 rng(2026);
  struct Shape {
    std::uint32_t gpus, slots_per_gpu;
    std::size_t windows;
  };
  // Few windows (the plain sum), many (bounds and early exits), one GPU's worth of each.
  const Shape shapes[] = {{4, 2, 1},   {8, 3, 3},   {6, 4, 8},   {8, 2, 9},
                          {16, 3, 17}, {12, 4, 40}, {32, 2, 64}, {5, 5, 100}};
  for (const Shape& shape : shapes) {
    for (const bool whole : {false, true}) {
      for (int rep = 0; rep < 3; ++rep) {
        SCOPED_TRACE(testing::Message() << shape.gpus << " GPUs x " << shape.slots_per_gpu
                                        << " slots, " << shape.windows << " windows, "
                                        << (whole ? "whole" : "real") << " loads, case " << rep);
        const Case c = random_case(rng, shape.gpus, shape.slots_per_gpu, shape.windows, whole);
        const double before = WindowPacker::objective(c.replica_loads, c.windows, c.gpus,
                                                      c.slots_per_gpu, c.slot_replica);
        std::vector<std::int32_t> expected = c.slot_replica;
        const double expected_objective = reference_improve(c, expected);
        std::vector<std::int32_t> packed = c.slot_replica;
        WindowPacker packer;
        const double objective = packer.improve(c.replica_expert, c.replica_loads, c.windows,
                                                c.gpus, c.slots_per_gpu, c.experts, packed);
        EXPECT_EQ(packed, expected);
        EXPECT_EQ(objective, expected_objective);
        EXPECT_LE(objective, before);
        expect_no_duplicates(c, packed);
      }
    }
  }
}

}  // namespace
}  // namespace eplb
