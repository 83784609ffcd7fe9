// The balanced planners: against the exact optimum of small instances found by brute force,
// never worse than DeepSeek on the same layer, no duplicate where a brute force finds a plan
// without one that is no busier than DeepSeek's (and the search behind that rule against the
// brute force), locality of the hierarchical policy, the relaxed policy's budget, and
// determinism across thread counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "balanced_planner.hpp"
#include "duplicate_free_fit.hpp"
#include "error.hpp"
#include "metrics.hpp"
#include "planner.hpp"
#include "support/random_cases.hpp"

namespace eplb {
namespace {

Placement plan_with(const Topology& t, Algorithm algorithm, const std::vector<double>& loads,
                    std::uint32_t budget = 0, std::uint32_t threads = 1) {
  Planner planner(t, PlannerSettings{static_cast<std::uint32_t>(algorithm), budget, threads});
  return planner.plan(loads);
}

// Exact optima with two slots per GPU, over every composition of the R slots into replica
// counts (each expert on at most R/2 GPUs):
//   any       pairs the largest replica with the smallest (optimal for a fixed multiset) even if
//             the two are replicas of one expert;
//   no_twins  the exact best pairing without two replicas of one expert on a GPU (the rule the
//             planner keeps), by dynamic programming over subsets, for the compositions whose
//             unconstrained pairing could still beat the best found.
struct TwoSlotOptimum {
  double any = INFINITY;
  double no_twins = INFINITY;
};

double best_pairing_without_twins(const std::vector<std::pair<double, int>>& items) {
  const std::size_t n = items.size();
  std::vector<double> best(std::size_t{1} << n, INFINITY);
  best[0] = 0;
  for (std::size_t mask = 0; mask < best.size(); ++mask) {
    if (best[mask] == INFINITY) continue;
    std::size_t i = 0;
    while (i < n && (mask >> i & 1U) != 0) ++i;  // lowest unpaired item
    if (i == n) continue;
    for (std::size_t j = i + 1; j < n; ++j) {
      if ((mask >> j & 1U) != 0 || items[i].second == items[j].second) continue;
      const std::size_t next = mask | (std::size_t{1} << i) | (std::size_t{1} << j);
      best[next] = std::min(best[next], std::max(best[mask], items[i].first + items[j].first));
    }
  }
  return best.back();
}

TwoSlotOptimum exact_two_slot_optimum(const std::vector<double>& w, std::uint32_t num_slots) {
  const std::size_t n = w.size();
  std::vector<int> counts(n, 1);
  TwoSlotOptimum best;
  std::function<void(std::size_t, int)> visit = [&](std::size_t i, int left) {
    if (i + 1 == n) {
      counts[i] = 1 + left;
      if (counts[i] > static_cast<int>(num_slots / 2)) return;
      std::vector<std::pair<double, int>> items;
      for (std::size_t e = 0; e < n; ++e) {
        for (int c = 0; c < counts[e]; ++c)
          items.emplace_back(w[e] / counts[e], static_cast<int>(e));
      }
      std::sort(items.begin(), items.end());
      double peak = 0;
      for (std::size_t k = 0; k < items.size() / 2; ++k) {
        peak = std::max(peak, items[k].first + items[items.size() - 1 - k].first);
      }
      best.any = std::min(best.any, peak);
      if (peak < best.no_twins)
        best.no_twins = std::min(best.no_twins, best_pairing_without_twins(items));
      return;
    }
    for (int extra = 0; extra <= left && 1 + extra <= static_cast<int>(num_slots / 2); ++extra) {
      counts[i] = 1 + extra;
      visit(i + 1, left - extra);
    }
  };
  visit(0, static_cast<int>(num_slots - n));
  return best;
}

// Whether some placement of `loads` on `gpus` GPUs of `slots` slots each has no two replicas of
// one expert on a GPU and no GPU above `target` (up to rounding): every vector of replica counts
// (only `fixed_counts` when given), each packed by trying every GPU for every replica, heaviest
// first (of the empty GPUs only the first, as they are interchangeable). Small blocks only.
bool duplicate_free_plan_exists(const std::vector<double>& loads, std::uint32_t gpus,
                                std::uint32_t slots, double target,
                                const std::vector<int>& fixed_counts = {}) {
  const std::size_t n = loads.size();
  const double ceiling = target * (1 + 1e-9);
  std::vector<double> gpu_load(gpus, 0.0);
  std::vector<std::uint32_t> used(gpus, 0);
  std::vector<std::vector<bool>> holds(gpus, std::vector<bool>(n, false));
  std::vector<std::pair<double, std::size_t>> replicas;
  std::function<bool(std::size_t)> pack = [&](std::size_t k) {
    if (k == replicas.size()) return true;
    const auto [replica, e] = replicas[k];
    bool tried_empty = false;
    for (std::uint32_t g = 0; g < gpus; ++g) {
      if (used[g] == 0) {
        if (tried_empty) continue;
        tried_empty = true;
      }
      if (used[g] == slots || holds[g][e] || gpu_load[g] + replica > ceiling) continue;
      gpu_load[g] += replica;
      ++used[g];
      holds[g][e] = true;
      const bool fits = pack(k + 1);
      gpu_load[g] -= replica;
      --used[g];
      holds[g][e] = false;
      if (fits) return true;
    }
    return false;
  };
  const auto pack_counts = [&](const std::vector<int>& counts) {
    replicas.clear();
    for (std::size_t e = 0; e < n; ++e) {
      for (int c = 0; c < counts[e]; ++c) replicas.emplace_back(loads[e] / counts[e], e);
    }
    std::sort(replicas.rbegin(), replicas.rend());
    return pack(0);
  };
  if (!fixed_counts.empty()) return pack_counts(fixed_counts);
  std::vector<int> counts(n, 0);
  std::function<bool(std::size_t, int)> choose = [&](std::size_t e, int left) {
    if (e == n) return left == 0 && pack_counts(counts);
    for (int c = 1; c <= static_cast<int>(gpus) && c <= left; ++c) {
      if (loads[e] / c > ceiling) continue;
      counts[e] = c;
      if (choose(e + 1, left - c)) return true;
    }
    return false;
  };
  return choose(0, static_cast<int>(gpus * slots));
}

// Whether one GPU's slots hold an expert twice.
bool gpu_has_duplicate(std::span<const std::int32_t> gpu_slots) {
  for (std::size_t i = 0; i < gpu_slots.size(); ++i) {
    for (std::size_t j = i + 1; j < gpu_slots.size(); ++j) {
      if (gpu_slots[i] == gpu_slots[j]) return true;
    }
  }
  return false;
}

TEST(BalancedPlanner, FlashLbExampleWithinOnePercentOfTheOptimum) {
  Topology t;
  t.num_layers = 1;
  t.num_logical = 8;
  t.num_physical = 16;
  t.num_gpus = 8;
  const std::vector<double> loads = {600, 560, 120, 120, 20, 10, 10, 10};
  const TwoSlotOptimum exact = exact_two_slot_optimum(loads, 16);
  EXPECT_NEAR(exact.any, 196.6667, 1e-3);
  EXPECT_NEAR(exact.no_twins, 196.6667, 1e-3);
  const double optimum = exact.no_twins;
  const Placement p = plan_with(t, Algorithm::balanced, loads);
  const LayerMetrics m = compute_layer_metrics(p, 0, loads);
  EXPECT_LE(m.max_gpu_load, optimum * 1.01) << "DeepSeek reaches 232";
  EXPECT_NEAR(m.max_gpu_load, optimum, 1e-9 * optimum);
  EXPECT_EQ(m.duplicate_gpus, 0U);
}

TEST(BalancedPlanner, TwoSlotsPerGpuAtTheExactOptimum) {
  // Random two-slots-per-GPU instances of several shapes and skews: the planner solves blocks
  // this small exactly, so it must match the brute-force optimum without twins (the 1 % of the
  // issue is the ceiling; equality up to rounding is what it reaches).
  std::mt19937_64 rng(17);
  double worst = 1;
  int trials = 0;
  for (const double sigma : {0.5, 1.0, 1.5}) {
    std::lognormal_distribution<double> popularity(0.0, sigma);
    for (std::uint32_t gpus = 3; gpus <= 8; ++gpus) {
      for (int repeat = 0; repeat < 6; ++repeat) {
        Topology t;
        t.num_layers = 1;
        t.num_gpus = gpus;
        t.num_physical = 2 * gpus;
        t.num_logical = gpus + 1 + static_cast<std::uint32_t>(rng() % gpus);  // E in (G, 2G]
        std::vector<double> loads(t.num_logical);
        for (double& w : loads) w = std::round(1000 * popularity(rng)) + 1;
        const TwoSlotOptimum exact = exact_two_slot_optimum(loads, t.num_physical);
        const Placement p = plan_with(t, Algorithm::balanced, loads);
        const LayerMetrics m = compute_layer_metrics(p, 0, loads);
        // A duplicate must pay for itself: beat every plan without one (it is kept only where
        // DeepSeek's plan has it and is better than the twin-free optimum).
        if (m.duplicate_gpus > 0) {
          EXPECT_LT(m.max_gpu_load, exact.no_twins) << "trial " << trials;
        }
        const double ratio = m.max_gpu_load / exact.no_twins;
        worst = std::max(worst, ratio);
        EXPECT_LE(ratio, 1 + 1e-9) << "trial " << trials << " sigma " << sigma << " gpus " << gpus;
        ++trials;
      }
    }
  }
  EXPECT_EQ(trials, 108);
  RecordProperty("worst_ratio_to_optimum", std::to_string(worst));
}

TEST(BalancedPlanner, NeverWorseThanDeepseekAndNoAvoidableDuplicates) {
  // A duplicate is allowed only where every plan of its block (the layer, or the node when
  // locality is kept) has one, or where none without one is as little busy as DeepSeek's layer:
  // a brute force over every count vector and packing of that block must find none. (This test
  // once allowed duplicates wherever DeepSeek's plan had some, in up to 2 % of the layers; its
  // cases reach DeepSeek's fallback only a few times, so FallbackToDeepseekRemovesAvoidable-
  // Duplicates below reaches it often.)
  std::mt19937_64 rng(23);
  int kept_duplicates = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const bool hierarchical = trial % 2 == 0;
    const Topology t = test::random_topology(rng, hierarchical);
    const auto loads =
        trial % 3 == 0 ? test::random_small_loads(rng, t, 4) : test::random_tie_free_loads(rng, t);
    const Algorithm ours = hierarchical ? Algorithm::balanced_hierarchical : Algorithm::balanced;
    Topology reference_topology = t;
    const bool per_node = hierarchical && balanced_is_hierarchical(t, BalancedPolicy::hierarchical);
    if (!per_node) {
      reference_topology.num_groups = 1;  // DeepSeek's global policy
      reference_topology.num_nodes = 1;
    }
    const Placement p = plan_with(t, ours, loads);
    const Placement reference = plan_with(reference_topology, Algorithm::deepseek, loads);
    const std::uint32_t block_gpus = per_node ? t.gpus_per_node() : t.num_gpus;
    const std::uint32_t per_gpu = t.slots_per_gpu();
    const std::uint32_t block_slots = block_gpus * per_gpu;
    for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
      const auto row = std::span(loads).subspan(layer * t.num_logical, t.num_logical);
      const LayerMetrics mine = compute_layer_metrics(p, layer, row);
      const LayerMetrics theirs = compute_layer_metrics(reference, layer, row);
      ASSERT_LE(mine.max_gpu_load, theirs.max_gpu_load * (1 + 1e-12))
          << "trial " << trial << " layer " << layer;
      if (mine.duplicate_gpus == 0) continue;
      ASSERT_GT(theirs.duplicate_gpus, 0U) << "trial " << trial << " layer " << layer;
      const auto slots = p.phy2log_layer(layer);
      for (std::uint32_t first = 0; first < t.num_physical; first += block_slots) {
        const auto block = slots.subspan(first, block_slots);
        bool duplicate = false;
        for (std::uint32_t g = 0; g < block_gpus; ++g) {
          duplicate =
              duplicate || gpu_has_duplicate(block.subspan(std::size_t{g} * per_gpu, per_gpu));
        }
        if (!duplicate) continue;
        std::vector<std::int32_t> experts(block.begin(), block.end());
        std::sort(experts.begin(), experts.end());
        experts.erase(std::unique(experts.begin(), experts.end()), experts.end());
        // More slots than GPUs times experts: every plan of the block has a duplicate.
        if (experts.size() * block_gpus < block_slots) continue;
        std::vector<double> block_loads(experts.size());
        for (std::size_t i = 0; i < experts.size(); ++i) {
          block_loads[i] = row[static_cast<std::size_t>(experts[i])];
        }
        ASSERT_LE(block_slots, 24U) << "trial " << trial << ": too large for the brute force";
        EXPECT_FALSE(
            duplicate_free_plan_exists(block_loads, block_gpus, per_gpu, theirs.max_gpu_load))
            << "trial " << trial << " layer " << layer << ": an avoidable duplicate";
        ++kept_duplicates;
      }
    }
  }
  RecordProperty("unavoidable_duplicate_blocks", kept_duplicates);
}

// Mixtral's 8 experts on up to 288 slots of 32 GPUs: a block this small gets the branch and bound
// over replica counts, which once never returned here (it counted only the count vectors that
// fit, and visited every split of 288 slots among 8 experts looking for one). Every plan must
// come back and stay no busier than DeepSeek's.
TEST(BalancedPlanner, FewExpertsOnManySlotsComeBackNoBusierThanDeepseek) {
  std::mt19937_64 rng(29);
  std::lognormal_distribution<double> skew(0.0, 1.0);
  for (const std::uint32_t slots : {64U, 96U, 192U, 288U}) {
    Topology t;
    t.num_layers = 2;
    t.num_logical = 8;
    t.num_physical = slots;
    t.num_gpus = 32;
    t.num_nodes = 1;
    t.num_groups = 1;
    std::vector<double> loads(std::size_t{t.num_layers} * t.num_logical);
    for (double& x : loads) x = 1000 * skew(rng);
    const Placement p = plan_with(t, Algorithm::balanced, loads);
    const Placement reference = plan_with(t, Algorithm::deepseek, loads);
    for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
      const auto row = std::span(loads).subspan(layer * t.num_logical, t.num_logical);
      EXPECT_LE(compute_layer_metrics(p, layer, row).max_gpu_load,
                compute_layer_metrics(reference, layer, row).max_gpu_load * (1 + 1e-12))
          << slots << " slots, layer " << layer;
    }
  }
}

TEST(BalancedPlanner, FallbackToDeepseekRemovesAvoidableDuplicates) {
  // Layer 24 of the Mixtral-8x7B gsm8k routing trace (real data), 16 slots on 4 GPUs. DeepSeek
  // reaches 124 with experts 7, 5 and 6 each twice on one GPU; the balanced search alone stops
  // at 124.17 and so takes DeepSeek's plan. No packing of DeepSeek's replica counts without
  // duplicates reaches 124 (124.67 is the best), but other counts do, e.g. two replicas each.
  Topology t;
  t.num_layers = 1;
  t.num_logical = 8;
  t.num_physical = 16;
  t.num_gpus = 4;
  t.num_nodes = 2;
  const std::vector<double> loads = {36, 64, 76, 72, 30, 94, 67, 55};
  Topology global = t;
  global.num_nodes = 1;
  const Placement theirs = plan_with(global, Algorithm::deepseek, loads);
  const LayerMetrics reference = compute_layer_metrics(theirs, 0, loads);
  EXPECT_DOUBLE_EQ(reference.max_gpu_load, 124);
  EXPECT_EQ(reference.duplicate_gpus, 3U);
  const auto deepseek_counts = theirs.replica_counts_layer(0);
  EXPECT_FALSE(duplicate_free_plan_exists(
      loads, 4, 4, 124, std::vector<int>(deepseek_counts.begin(), deepseek_counts.end())));
  EXPECT_TRUE(duplicate_free_plan_exists(loads, 4, 4, 124, std::vector<int>(8, 2)));
  for (Algorithm algorithm : {Algorithm::balanced, Algorithm::balanced_hierarchical}) {
    const LayerMetrics mine = compute_layer_metrics(plan_with(t, algorithm, loads), 0, loads);
    EXPECT_EQ(mine.duplicate_gpus, 0U);
    EXPECT_LE(mine.max_gpu_load, reference.max_gpu_load * (1 + 1e-12));
  }

  // Small layers with whole-number loads (ties, as in recorded traces), where DeepSeek's plan
  // often wins with duplicates: a duplicate stays only where the brute force finds no plan
  // without one as little busy as DeepSeek's.
  std::mt19937_64 rng(43);
  int repaired = 0;
  int kept = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    Topology small;
    small.num_layers = 1;
    small.num_gpus = 2 + static_cast<std::uint32_t>(rng() % 3);
    const auto per_gpu = 2 + static_cast<std::uint32_t>(rng() % 3);
    small.num_physical = small.num_gpus * per_gpu;
    small.num_logical = std::min<std::uint32_t>(
        8, small.num_gpus +
               static_cast<std::uint32_t>(rng() % (small.num_physical - small.num_gpus + 1)));
    const auto spread = 5 + static_cast<int>(rng() % 100);
    std::vector<double> row(small.num_logical);
    for (double& load : row) load = 1 + static_cast<double>(rng() % spread);
    const LayerMetrics mine =
        compute_layer_metrics(plan_with(small, Algorithm::balanced, row), 0, row);
    const LayerMetrics deepseek =
        compute_layer_metrics(plan_with(small, Algorithm::deepseek, row), 0, row);
    ASSERT_LE(mine.max_gpu_load, deepseek.max_gpu_load * (1 + 1e-12)) << "trial " << trial;
    if (mine.duplicate_gpus > 0) {
      ++kept;
      EXPECT_FALSE(duplicate_free_plan_exists(row, small.num_gpus, per_gpu, deepseek.max_gpu_load))
          << "trial " << trial << ": an avoidable duplicate";
    } else if (deepseek.duplicate_gpus > 0 && mine.max_gpu_load == deepseek.max_gpu_load) {
      ++repaired;  // DeepSeek's peak without its duplicates
    }
  }
  EXPECT_GE(repaired, 100) << "the cases should reach the fallback often";
  RecordProperty("repaired", repaired);
  RecordProperty("unavoidable", kept);
}

TEST(DuplicateFreeFit, AgreesWithTheBruteForceAndWritesValidPlacements) {
  std::mt19937_64 rng(47);
  int found = 0;
  int impossible = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const auto gpus = 2 + static_cast<std::uint32_t>(rng() % 3);
    const auto per_gpu = 1 + static_cast<std::uint32_t>(rng() % 4);
    const std::uint32_t slots = gpus * per_gpu;
    const auto experts = std::min<std::uint32_t>(8, 1 + static_cast<std::uint32_t>(rng() % slots));
    std::vector<double> loads(experts);
    for (double& load : loads) load = static_cast<double>(rng() % 60);
    double total = 0;
    for (double load : loads) total += load;
    const double target = total / gpus * (1 + 0.02 * static_cast<double>(rng() % 8));
    std::vector<std::int32_t> gpu_expert;
    const DuplicateFreeFit outcome =
        fit_without_duplicates(loads, gpus, per_gpu, target, std::size_t{1} << 20, gpu_expert);
    ASSERT_NE(outcome, DuplicateFreeFit::gave_up) << "trial " << trial;
    const bool exists = duplicate_free_plan_exists(loads, gpus, per_gpu, target);
    ASSERT_EQ(outcome == DuplicateFreeFit::found, exists) << "trial " << trial;
    if (outcome != DuplicateFreeFit::found) {
      ++impossible;
      continue;
    }
    ++found;
    ASSERT_EQ(gpu_expert.size(), slots);
    std::vector<int> counts(experts, 0);
    for (std::int32_t e : gpu_expert) {
      ASSERT_GE(e, 0);
      ASSERT_LT(e, static_cast<std::int32_t>(experts));
      ++counts[static_cast<std::size_t>(e)];
    }
    for (std::uint32_t g = 0; g < gpus; ++g) {
      const auto gpu =
          std::span<const std::int32_t>(gpu_expert).subspan(std::size_t{g} * per_gpu, per_gpu);
      ASSERT_FALSE(gpu_has_duplicate(gpu)) << "trial " << trial;
      double load = 0;
      for (std::int32_t e : gpu) {
        load += loads[static_cast<std::size_t>(e)] / counts[static_cast<std::size_t>(e)];
      }
      ASSERT_LE(load, target * (1 + 1e-9)) << "trial " << trial;
    }
    for (int c : counts) ASSERT_GE(c, 1);
  }
  EXPECT_GT(found, 100);
  EXPECT_GT(impossible, 50);
}

TEST(BalancedPlanner, HierarchicalKeepsGroupsOnOneNode) {
  std::mt19937_64 rng(29);
  for (int trial = 0; trial < 100; ++trial) {
    const Topology t = test::random_topology(rng, true);
    const auto loads = test::random_tie_free_loads(rng, t);
    const Placement p = plan_with(t, Algorithm::balanced_hierarchical, loads);
    const std::uint32_t group_size = t.num_logical / t.num_groups;
    const std::uint32_t slots_per_node = t.num_physical / t.num_nodes;
    for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
      std::vector<int> node_of_group(t.num_groups, -1);
      const auto row = p.phy2log_layer(layer);
      for (std::uint32_t slot = 0; slot < t.num_physical; ++slot) {
        const auto group = static_cast<std::uint32_t>(row[slot]) / group_size;
        const int node = static_cast<int>(slot / slots_per_node);
        if (node_of_group[group] < 0) node_of_group[group] = node;
        ASSERT_EQ(node_of_group[group], node) << "trial " << trial;
      }
      ASSERT_EQ(compute_layer_metrics(
                    p, layer, std::span(loads).subspan(layer * t.num_logical, t.num_logical))
                    .cross_node_replicas,
                0U);
    }
  }
}

TEST(BalancedPlanner, RelaxedStaysWithinItsBudgetAndLiftsTheNodeCeiling) {
  // 8 groups on 8 nodes: hierarchical placement is stuck with each group's load on its node.
  Topology t;
  t.num_layers = 6;
  t.num_logical = 64;
  t.num_physical = 80;
  t.num_groups = 8;
  t.num_nodes = 8;
  t.num_gpus = 16;
  std::mt19937_64 rng(31);
  auto loads = test::random_tie_free_loads(rng, t);
  for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
    for (std::uint32_t e = 0; e < 8; ++e) loads[layer * 64 + e] *= 4;  // a hot group
  }
  const Placement strict = plan_with(t, Algorithm::balanced_hierarchical, loads);
  const Placement relaxed = plan_with(t, Algorithm::balanced_relaxed, loads, 12);
  const Metrics a = compute_metrics(strict, loads);
  const Metrics b = compute_metrics(relaxed, loads);
  EXPECT_GT(b.balancedness, a.balancedness + 0.05);
  for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
    EXPECT_LE(compute_layer_metrics(relaxed, layer, std::span(loads).subspan(layer * 64, 64))
                  .cross_node_replicas,
              12U);
  }
}

TEST(BalancedPlanner, SameResultForAnyThreadCount) {
  Topology t;
  t.num_layers = 13;
  t.num_logical = 64;
  t.num_physical = 96;
  t.num_groups = 8;
  t.num_nodes = 4;
  t.num_gpus = 16;
  std::mt19937_64 rng(37);
  const auto loads = test::random_tie_free_loads(rng, t);
  for (Algorithm algorithm : {Algorithm::balanced, Algorithm::balanced_hierarchical,
                              Algorithm::balanced_relaxed, Algorithm::deepseek}) {
    const std::uint32_t budget = algorithm == Algorithm::balanced_relaxed ? 4 : 0;
    const Placement one = plan_with(t, algorithm, loads, budget, 1);
    for (std::uint32_t threads : {3U, 16U}) {
      const Placement many = plan_with(t, algorithm, loads, budget, threads);
      ASSERT_TRUE(std::equal(one.phy2log().begin(), one.phy2log().end(), many.phy2log().begin()));
      ASSERT_TRUE(std::equal(one.log2phy().begin(), one.log2phy().end(), many.log2phy().begin()));
    }
  }
}

}  // namespace
}  // namespace eplb

namespace eplb {
namespace {

// Mean over windows of each window's busiest GPU, for a placement.
double mean_window_peak(const Placement& p, const std::vector<double>& windows,
                        std::size_t num_windows) {
  const Topology& t = p.topology();
  double sum = 0;
  for (std::size_t w = 0; w < num_windows; ++w) {
    for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
      const auto row =
          std::span(windows).subspan((w * t.num_layers + layer) * t.num_logical, t.num_logical);
      sum += compute_layer_metrics(p, layer, row).max_gpu_load;
    }
  }
  return sum / static_cast<double>(num_windows);
}

TEST(RobustPlanning, NeverWorseOnTheWindowsThanPlanningTheirSum) {
  std::mt19937_64 rng(41);
  for (int trial = 0; trial < 40; ++trial) {
    const bool hierarchical = trial % 2 == 0;
    const Topology t = test::random_topology(rng, hierarchical);
    const std::size_t num_windows = 2 + static_cast<std::size_t>(trial % 4);
    std::vector<double> windows;
    std::vector<double> sum(t.load_count(), 0.0);
    for (std::size_t w = 0; w < num_windows; ++w) {
      const auto one = test::random_tie_free_loads(rng, t);
      windows.insert(windows.end(), one.begin(), one.end());
      for (std::size_t i = 0; i < one.size(); ++i) sum[i] += one[i];
    }
    for (Algorithm algorithm :
         {Algorithm::balanced, Algorithm::balanced_hierarchical, Algorithm::balanced_relaxed}) {
      const std::uint32_t budget = algorithm == Algorithm::balanced_relaxed ? 2 : 0;
      Planner planner(t, PlannerSettings{static_cast<std::uint32_t>(algorithm), budget, 1});
      const Placement robust = planner.plan_windows(windows, num_windows);
      const Placement plain = planner.plan(sum);
      ASSERT_LE(mean_window_peak(robust, windows, num_windows),
                mean_window_peak(plain, windows, num_windows) * (1 + 1e-9))
          << "trial " << trial;
      const Metrics m = compute_metrics(robust, sum);
      const auto counts = robust.replica_counts();
      if (*std::max_element(counts.begin(), counts.end()) <=
          static_cast<std::int32_t>(t.gpus_per_node())) {
        ASSERT_EQ(m.duplicate_pairs, 0U) << "trial " << trial;
      }
      if (algorithm == Algorithm::balanced_hierarchical &&
          balanced_is_hierarchical(t, BalancedPolicy::hierarchical)) {
        ASSERT_EQ(m.cross_node_replicas, 0U);
      }
    }
  }
}

TEST(RobustPlanning, OneWindowIsAPlainPlanAndOtherAlgorithmsPlanTheSum) {
  std::mt19937_64 rng(43);
  const Topology t = test::random_topology(rng, true);
  const auto a = test::random_tie_free_loads(rng, t);
  const auto b = test::random_tie_free_loads(rng, t);
  std::vector<double> both(a);
  both.insert(both.end(), b.begin(), b.end());
  std::vector<double> sum(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) sum[i] = a[i] + b[i];
  Planner balanced(t, static_cast<std::uint32_t>(Algorithm::balanced));
  const Placement one = balanced.plan_windows(a, 1);
  const Placement direct = balanced.plan(a);
  EXPECT_TRUE(std::equal(one.phy2log().begin(), one.phy2log().end(), direct.phy2log().begin()));
  Planner deepseek(t, static_cast<std::uint32_t>(Algorithm::deepseek));
  const Placement windows = deepseek.plan_windows(both, 2);
  const Placement summed = deepseek.plan(sum);
  EXPECT_TRUE(
      std::equal(windows.phy2log().begin(), windows.phy2log().end(), summed.phy2log().begin()));
}

TEST(RobustPlanning, RejectsBadWindows) {
  Topology t;
  t.num_layers = 2;
  t.num_logical = 4;
  t.num_physical = 4;
  t.num_gpus = 2;
  Planner planner(t, static_cast<std::uint32_t>(Algorithm::balanced));
  std::vector<double> loads(3 * 8, 1.0);
  EXPECT_THROW((void)planner.plan_windows(loads, 0), Error);
  EXPECT_THROW((void)planner.plan_windows(loads, 2), Error);
  loads[2 * 8 + 5] = -1;  // window 2, layer 1, expert 1
  try {
    (void)planner.plan_windows(loads, 3);
    FAIL() << "negative load accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("loads[2][1][1] = -1 is negative"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace eplb

#include "exact_optimum.hpp"

namespace eplb {
namespace {

TEST(ExactOptimum, MatchesTheTestsOwnBruteForceAndBoundsEveryPlan) {
  std::mt19937_64 rng(53);
  std::lognormal_distribution<double> popularity(0.0, 1.0);
  for (int trial = 0; trial < 25; ++trial) {
    Topology t;
    t.num_layers = 1;
    t.num_logical = 8;
    t.num_physical = 16;
    t.num_gpus = 8;
    std::vector<double> loads(8);
    for (double& w : loads) w = std::round(1000 * popularity(rng)) + 1;
    const auto optimum = exact_optimum(loads, t);
    ASSERT_TRUE(optimum.has_value());
    EXPECT_NEAR(*optimum, exact_two_slot_optimum(loads, 16).no_twins, 1e-9 * *optimum);
    for (Algorithm a : {Algorithm::deepseek, Algorithm::balanced}) {
      const Placement p = plan_with(t, a, loads);
      const LayerMetrics m = compute_layer_metrics(p, 0, loads);
      if (m.duplicate_gpus == 0) {
        EXPECT_GE(m.max_gpu_load, *optimum * (1 - 1e-12));
      }
    }
  }
  Topology big;
  big.num_layers = 1;
  big.num_logical = 256;
  big.num_physical = 288;
  big.num_gpus = 32;
  EXPECT_FALSE(exact_optimum(std::vector<double>(256, 1.0), big).has_value());
}

TEST(ExactOptimum, ArrangementIsValidAndReachesItsPeak) {
  std::mt19937_64 rng(59);
  std::lognormal_distribution<double> popularity(0.0, 1.0);
  for (int trial = 0; trial < 20; ++trial) {
    const std::uint32_t gpus = 4 + static_cast<std::uint32_t>(trial % 5);
    std::vector<double> loads(gpus + 1 + static_cast<std::size_t>(rng() % gpus));
    for (double& w : loads) w = std::round(1000 * popularity(rng)) + 1;
    const auto arrangement =
        exact_two_slot_arrangement(loads, gpus, std::numeric_limits<double>::infinity());
    ASSERT_TRUE(arrangement.has_value());
    ASSERT_EQ(arrangement->slots.size(), 2 * gpus);
    std::vector<int> counts(loads.size(), 0);
    for (std::int32_t e : arrangement->slots) ++counts.at(static_cast<std::size_t>(e));
    double peak = 0;
    for (std::uint32_t g = 0; g < gpus; ++g) {
      const auto a = static_cast<std::size_t>(arrangement->slots[2 * g]);
      const auto b = static_cast<std::size_t>(arrangement->slots[2 * g + 1]);
      EXPECT_NE(a, b) << "trial " << trial << " gpu " << g;
      peak = std::max(peak, loads[a] / counts[a] + loads[b] / counts[b]);
    }
    for (int c : counts) EXPECT_GE(c, 1);
    EXPECT_NEAR(peak, arrangement->peak, 1e-9 * peak);
    const double oracle = exact_two_slot_optimum(loads, 2 * gpus).no_twins;
    EXPECT_NEAR(arrangement->peak, oracle, 1e-9 * oracle);
    // Nothing beats the optimum, so a cut-off at it finds nothing.
    EXPECT_FALSE(exact_two_slot_arrangement(loads, gpus, oracle * (1 - 1e-9)).has_value());
  }
}

}  // namespace
}  // namespace eplb
