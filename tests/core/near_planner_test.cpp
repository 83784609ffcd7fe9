// Re-planning near the current placement (Planner::plan_near): the target balance always holds,
// layers are kept, rebalanced or replaced as reported, the algorithm's locality holds, no expert
// gains a second replica on a GPU, and on small cases the moves are compared with the fewest
// any placement meeting the target needs (every placement enumerated).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "balanced_planner.hpp"
#include "error.hpp"
#include "migration_plan.hpp"
#include "near_planner.hpp"
#include "placement.hpp"
#include "planner.hpp"
#include "topology.hpp"

namespace eplb {
namespace {

Topology topology_of(std::uint32_t layers, std::uint32_t experts, std::uint32_t slots,
                     std::uint32_t gpus, std::uint32_t nodes, std::uint32_t groups) {
  Topology t;
  t.num_layers = layers;
  t.num_logical = experts;
  t.num_physical = slots;
  t.num_gpus = gpus;
  t.num_nodes = nodes;
  t.num_groups = groups;
  t.validate();
  return t;
}

// Lognormal loads, a few experts idle.
std::vector<double> random_loads(std::mt19937_64& rng, const Topology& t, double sigma) {
  std::lognormal_distribution<double> draw(0.0, sigma);
  std::bernoulli_distribution idle(0.05);
  std::vector<double> loads(t.load_count());
  for (double& load : loads) load = idle(rng) ? 0.0 : std::round(1000 * draw(rng));
  return loads;
}

// Experts moved from `from` to `to`: per GPU, the slots whose expert (with multiplicity) the GPU
// does not hold already (what the migration planner moves without relabeling).
std::size_t moved_experts(const Topology& t, std::span<const std::int32_t> from,
                          std::span<const std::int32_t> to) {
  const std::uint32_t per_gpu = t.slots_per_gpu();
  std::size_t moved = 0;
  for (std::uint32_t gpu = 0; gpu < from.size() / per_gpu; ++gpu) {
    std::vector<std::int32_t> a(from.begin() + gpu * per_gpu, from.begin() + (gpu + 1) * per_gpu);
    std::vector<std::int32_t> b(to.begin() + gpu * per_gpu, to.begin() + (gpu + 1) * per_gpu);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    std::vector<std::int32_t> kept;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(kept));
    moved += per_gpu - kept.size();
  }
  return moved;
}

// The node holding the most replicas of each group in `row` (ties: lowest), computed here
// independently of the planner.
std::vector<std::uint32_t> home_of_groups(const Topology& t, std::span<const std::int32_t> row) {
  const std::uint32_t per_group = t.num_logical / t.num_groups;
  std::vector<std::vector<std::uint32_t>> count(t.num_groups,
                                                std::vector<std::uint32_t>(t.num_nodes));
  for (std::uint32_t s = 0; s < row.size(); ++s) {
    ++count[static_cast<std::uint32_t>(row[s]) / per_group][t.node_of_gpu(t.gpu_of_slot(s))];
  }
  std::vector<std::uint32_t> home(t.num_groups);
  for (std::uint32_t g = 0; g < t.num_groups; ++g) {
    home[g] = static_cast<std::uint32_t>(std::max_element(count[g].begin(), count[g].end()) -
                                         count[g].begin());
  }
  return home;
}

std::uint32_t off_home(const Topology& t, std::span<const std::int32_t> row,
                       const std::vector<std::uint32_t>& home) {
  const std::uint32_t per_group = t.num_logical / t.num_groups;
  std::uint32_t off = 0;
  for (std::uint32_t s = 0; s < row.size(); ++s) {
    off += home[static_cast<std::uint32_t>(row[s]) / per_group] != t.node_of_gpu(t.gpu_of_slot(s));
  }
  return off;
}

std::uint32_t replicas_on(const Topology& t, std::span<const std::int32_t> row, std::uint32_t gpu,
                          std::int32_t expert) {
  const std::uint32_t per_gpu = t.slots_per_gpu();
  return static_cast<std::uint32_t>(
      std::count(row.begin() + gpu * per_gpu, row.begin() + (gpu + 1) * per_gpu, expert));
}

// `to` with its nodes and GPUs relabeled as the migration planner would from `from`.
std::vector<std::int32_t> relabeled_like(const Topology& t, std::span<const std::int32_t> from,
                                         std::span<const std::int32_t> to) {
  const auto gpu_map = relabel_gpus(t, from, to, MigrationRelabel::nodes_and_gpus);
  const std::uint32_t per_gpu = t.slots_per_gpu();
  std::vector<std::int32_t> row(to.size());
  for (std::uint32_t b = 0; b < t.num_gpus; ++b) {
    std::copy_n(to.begin() + b * per_gpu, per_gpu, row.begin() + gpu_map[b] * per_gpu);
  }
  return row;
}

TEST(NearPlanner, KeepsAPlacementThatIsBalancedEnough) {
  std::mt19937_64 rng(7);
  const Topology t = topology_of(6, 32, 48, 8, 2, 4);
  for (const auto algorithm :
       {Algorithm::balanced, Algorithm::balanced_hierarchical, Algorithm::deepseek}) {
    Planner planner(t, static_cast<std::uint32_t>(algorithm));
    const auto loads = random_loads(rng, t, 1.0);
    const Placement current = planner.plan(loads);
    Planner::NearReport report;
    const Placement near = planner.plan_near(loads, current, 0.998, &report);
    EXPECT_EQ(report.kept, t.num_layers);
    EXPECT_EQ(report.rebalanced + report.replanned, 0u);
    EXPECT_TRUE(
        std::equal(near.phy2log().begin(), near.phy2log().end(), current.phy2log().begin()));
    // Replica ranks too (DeepSeek's are not in slot order).
    EXPECT_TRUE(std::equal(near.log2phy().begin(), near.log2phy().end(), current.log2phy().begin(),
                           current.log2phy().end()));
  }
}

struct Case {
  Algorithm algorithm;
  Topology topology;
  std::uint32_t budget;
};

// Random shapes and algorithms; the current placement is the plan of other loads (or, for the
// global policy, sometimes a random map: a server that imported its placement).
TEST(NearPlanner, MeetsTheTargetKeepsLocalityAndReportsEveryLayer) {
  std::mt19937_64 rng(2026);
  const auto below = [&](std::uint32_t n) { return static_cast<std::uint32_t>(rng() % n); };
  std::size_t moved_near = 0, moved_fresh = 0;
  Planner::NearReport total;
  for (int trial = 0; trial < 120; ++trial) {
    const std::uint32_t nodes = 1u << below(3);             // 1, 2, 4
    const std::uint32_t gpus = nodes * (1 + below(4));      // 1..4 per node
    const std::uint32_t groups = nodes * (1 + below(2));    // a multiple of the nodes
    const std::uint32_t experts = groups * (2 + below(4));  // 2..5 per group
    const std::uint32_t slots = gpus * (experts / gpus + 1 + below(3));
    const Topology t = topology_of(3, experts, slots, gpus, nodes, groups);
    const Algorithm algorithms[] = {Algorithm::balanced, Algorithm::balanced_hierarchical,
                                    Algorithm::balanced_relaxed, Algorithm::deepseek};
    const Algorithm algorithm = algorithms[below(4)];
    PlannerSettings settings;
    settings.algorithm = static_cast<std::uint32_t>(algorithm);
    if (algorithm == Algorithm::balanced_relaxed) settings.cross_node_budget = below(4);
    const double min_balance = std::array{0.9, 0.99, 0.998, 1.0}[below(4)];
    Planner planner(t, settings);
    const auto old_loads = random_loads(rng, t, 1.2);
    // The load drifts: each expert's new load is its old one times lognormal noise, in a quarter
    // of the trials that of the same expert of another group (whole groups trade their loads,
    // which leaves nodes busier than in-node moves can fix).
    const bool groups_trade = below(4) == 0;
    std::vector<std::uint32_t> group_of_load(groups);
    std::iota(group_of_load.begin(), group_of_load.end(), 0u);
    if (groups_trade) std::shuffle(group_of_load.begin(), group_of_load.end(), rng);
    auto new_loads = random_loads(rng, t, 0.5);
    const std::uint32_t per_group = experts / groups;
    for (std::size_t i = 0; i < new_loads.size(); ++i) {
      const std::size_t layer = i / experts, e = i % experts;
      const std::size_t source = group_of_load[e / per_group] * per_group + e % per_group;
      new_loads[i] *= old_loads[layer * experts + source] / 1000;
    }
    Placement current = planner.plan(old_loads);
    if (algorithm == Algorithm::balanced && rng() % 2 == 0) {
      std::vector<std::int32_t> map(t.slot_count());
      for (std::uint32_t l = 0; l < t.num_layers; ++l) {
        for (std::uint32_t s = 0; s < slots; ++s) {
          map[l * slots + s] = static_cast<std::int32_t>(s < experts ? s : below(experts));
        }
        std::shuffle(map.begin() + l * slots, map.begin() + (l + 1) * slots, rng);
      }
      current = Placement::from_phy2log(t, map);
    }
    Planner::NearReport report;
    const Placement near = planner.plan_near(new_loads, current, min_balance, &report);
    const Placement fresh = planner.plan(new_loads);
    SCOPED_TRACE(::testing::Message()
                 << "trial " << trial << ", algorithm " << static_cast<int>(algorithm) << ", "
                 << experts << " on " << slots << ", " << gpus << " GPUs, " << nodes << " nodes");
    EXPECT_EQ(report.kept + report.rebalanced + report.partly_replanned + report.replanned,
              t.num_layers);
    const bool local = algorithm != Algorithm::balanced && nodes > 1 && groups % nodes == 0;
    const std::uint32_t allowed =
        algorithm == Algorithm::balanced_relaxed ? settings.cross_node_budget : 0;
    NearSettings near_settings;
    near_settings.locality = !local ? NearLocality::global
                             : algorithm == Algorithm::balanced_relaxed
                                 ? NearLocality::relaxed
                                 : NearLocality::hierarchical;
    near_settings.cross_node_budget = allowed;
    near_settings.min_balance = min_balance;
    Planner::NearReport counted;
    for (std::uint32_t l = 0; l < t.num_layers; ++l) {
      const auto loads = std::span<const double>(new_loads).subspan(l * experts, experts);
      const auto now = current.phy2log_layer(l), out = near.phy2log_layer(l),
                 best = fresh.phy2log_layer(l);
      const double target = max_gpu_load(t, loads, best) / min_balance;
      EXPECT_LE(max_gpu_load(t, loads, out), target * (1 + 1e-12)) << "layer " << l;
      moved_near += moved_experts(t, now, out);
      moved_fresh += moved_experts(t, now, best);
      // The layer's outcome, from the per-layer function the planner calls (which must agree).
      std::vector<std::int32_t> layer(out.size());
      const NearOutcome outcome = plan_layer_near(t, near_settings, now, loads, best, layer);
      EXPECT_TRUE(std::equal(layer.begin(), layer.end(), out.begin())) << "layer " << l;
      const bool is_fresh = std::equal(out.begin(), out.end(), best.begin());
      const bool is_current = std::equal(out.begin(), out.end(), now.begin());
      switch (outcome) {
        case NearOutcome::kept:
          ++counted.kept;
          EXPECT_TRUE(is_current || is_fresh) << "layer " << l;
          continue;
        case NearOutcome::replanned:
          ++counted.replanned;
          EXPECT_TRUE(is_fresh) << "layer " << l;
          continue;
        case NearOutcome::partly_replanned:
          ++counted.partly_replanned;
          ASSERT_TRUE(local) << "layer " << l;
          // Some nodes from the fresh plan: the locality holds by the layer's own groups' homes,
          // and it moves no more experts than the fresh plan.
          EXPECT_FALSE(is_fresh || is_current) << "layer " << l;
          EXPECT_LE(off_home(t, out, home_of_groups(t, out)), allowed) << "layer " << l;
          EXPECT_LE(moved_experts(t, now, out), moved_experts(t, now, best)) << "layer " << l;
          // ... and is not just the fresh plan relabeled (what its migration would move to).
          EXPECT_GT(moved_experts(t, relabeled_like(t, now, best), out), 0u) << "layer " << l;
          continue;
        case NearOutcome::rebalanced:
          ++counted.rebalanced;
          break;
      }
      // A rebalanced layer: no expert gains a second replica on a GPU, and the locality of the
      // current layout holds.
      for (std::uint32_t gpu = 0; gpu < gpus; ++gpu) {
        for (std::int32_t e = 0; e < static_cast<std::int32_t>(experts); ++e) {
          EXPECT_LE(replicas_on(t, out, gpu, e), std::max(1u, replicas_on(t, now, gpu, e)))
              << "layer " << l << " GPU " << gpu << " expert " << e;
        }
      }
      if (local) {
        const auto home = home_of_groups(t, now);
        // Counted against the current layer's homes: moves never add an off-home replica.
        EXPECT_LE(off_home(t, out, home), allowed) << "layer " << l;
      }
    }
    EXPECT_EQ(report.kept, counted.kept);
    EXPECT_EQ(report.rebalanced, counted.rebalanced);
    EXPECT_EQ(report.partly_replanned, counted.partly_replanned);
    EXPECT_EQ(report.replanned, counted.replanned);
    total.kept += report.kept;
    total.rebalanced += report.rebalanced;
    total.partly_replanned += report.partly_replanned;
    total.replanned += report.replanned;
    // The plan does not depend on the number of threads.
    settings.num_threads = 3;
    Planner threaded(t, settings);
    const Placement again = threaded.plan_near(new_loads, current, min_balance);
    EXPECT_TRUE(std::equal(again.phy2log().begin(), again.phy2log().end(), near.phy2log().begin()));
  }
  // Every outcome occurs, and staying near moves far fewer experts than the fresh plans (about
  // half on these small random shapes; a fifth on the real recordings, BENCHMARKS.md).
  EXPECT_GT(total.kept, 0u);
  EXPECT_GT(total.rebalanced, 0u);
  EXPECT_GT(total.partly_replanned, 0u);
  EXPECT_GT(total.replanned, 0u);
  EXPECT_LT(moved_near * 10, moved_fresh * 7) << moved_near << " vs " << moved_fresh;
}

// Every placement of 3 experts on 3 GPUs x 2 slots (each expert at least once) is scored: the
// fewest experts any placement meeting the target moves is a lower bound on plan_near's, and the
// greedy should reach it most of the time.
TEST(NearPlanner, MovesCloseToTheFewestAnyPlacementNeeds) {
  const Topology t = topology_of(1, 3, 6, 3, 1, 1);
  std::vector<std::vector<std::int32_t>> all;
  for (int code = 0; code < 729; ++code) {
    std::vector<std::int32_t> row(6);
    for (int s = 0, c = code; s < 6; ++s, c /= 3) row[static_cast<std::size_t>(s)] = c % 3;
    if (std::count(row.begin(), row.end(), 0) && std::count(row.begin(), row.end(), 1) &&
        std::count(row.begin(), row.end(), 2)) {
      all.push_back(row);
    }
  }
  std::mt19937_64 rng(11);
  Planner planner(t, static_cast<std::uint32_t>(Algorithm::balanced));
  int cases = 0, optimal = 0;
  std::size_t sum_near = 0, sum_best = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const auto& now = all[rng() % all.size()];
    const auto loads = random_loads(rng, t, 1.0);
    const double min_balance = std::array{0.95, 0.99, 1.0}[rng() % 3];
    const Placement current = Placement::from_phy2log(t, now);
    Planner::NearReport report;
    const Placement near = planner.plan_near(loads, current, min_balance, &report);
    if (report.rebalanced != 1) continue;
    const double target = max_gpu_load(t, loads, planner.plan(loads).phy2log()) / min_balance;
    std::size_t best = now.size();
    for (const auto& row : all) {
      if (max_gpu_load(t, loads, row) <= target) best = std::min(best, moved_experts(t, now, row));
    }
    const std::size_t moved = moved_experts(t, now, near.phy2log());
    EXPECT_GE(moved, best) << "trial " << trial;
    ++cases;
    optimal += moved == best;
    sum_near += moved;
    sum_best += best;
  }
  ASSERT_GT(cases, 50);
  std::cout << "plan_near on " << cases << " rebalanced cases: optimal in " << optimal << ", moved "
            << sum_near << " experts, the fewest possible " << sum_best << "\n";
  EXPECT_GE(optimal * 10, cases * 7);
  EXPECT_LE(sum_near * 10, sum_best * 13);
}

// Where experts have two or more replicas, single moves are bounded before they are scored; the
// choices must be exactly those of scoring every move. Loads with ties and zeros.
TEST(NearPlanner, BoundedScanChoosesExactlyAsTheFullScan) {
  std::mt19937_64 rng(99);
  const auto below = [&](std::uint32_t n) { return static_cast<std::uint32_t>(rng() % n); };
  int rebalanced = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const std::uint32_t nodes = 1 + below(2);
    const std::uint32_t gpus = nodes * (2 + below(6));
    const std::uint32_t groups = nodes * (1 + below(2));
    const std::uint32_t experts = groups * (1 + below(16 / groups));
    const std::uint32_t slots = gpus * ((2 * experts + gpus - 1) / gpus + below(4));
    const Topology t = topology_of(1, experts, slots, gpus, nodes, groups);
    std::vector<double> loads(experts);
    for (double& load : loads) load = below(4) == 0 ? 0.0 : static_cast<double>(1 + below(5));
    if (trial % 3 == 0) {
      for (double& load : loads) load *= 1e-300;  // subnormal squares
    }
    NearSettings settings;
    settings.min_balance = std::array{0.9, 0.99, 1.0}[below(3)];
    settings.locality = nodes == 1 ? NearLocality::global
                                   : std::array{NearLocality::global, NearLocality::hierarchical,
                                                NearLocality::relaxed}[below(3)];
    settings.cross_node_budget = below(3);
    // Every group on node group % nodes: each of a node's experts once, the other slots random
    // experts of that node, shuffled within the node.
    std::vector<std::int32_t> current(slots), fresh(slots);
    const std::uint32_t per_node = slots / nodes, per_group = experts / groups;
    for (std::uint32_t node = 0; node < nodes; ++node) {
      std::vector<std::int32_t> mine;
      for (std::uint32_t e = 0; e < experts; ++e) {
        if (e / per_group % nodes == node) mine.push_back(static_cast<std::int32_t>(e));
      }
      const auto first = current.begin() + node * per_node;
      for (std::uint32_t i = 0; i < per_node; ++i) {
        first[i] = i < mine.size() ? mine[i] : mine[below(static_cast<std::uint32_t>(mine.size()))];
      }
      std::shuffle(first, first + per_node, rng);
    }
    for (std::uint32_t s = 0; s < slots; ++s) fresh[s] = static_cast<std::int32_t>(s % experts);
    std::vector<std::int32_t> bounded(slots), full(slots);
    const NearOutcome a = plan_layer_near(t, settings, current, loads, fresh, bounded, true);
    const NearOutcome b = plan_layer_near(t, settings, current, loads, fresh, full, false);
    ASSERT_EQ(a, b) << "trial " << trial;
    ASSERT_EQ(bounded, full) << "trial " << trial;
    rebalanced += a == NearOutcome::rebalanced;
  }
  EXPECT_GT(rebalanced, 300);
}

// A current layout that breaks the algorithm's locality (here: a global plan under
// balanced-hierarchical) is not rebalanced but replaced by the fresh plan.
TEST(NearPlanner, ALayoutThatBreaksTheLocalityIsReplanned) {
  const Topology t = topology_of(3, 16, 24, 4, 2, 4);
  std::mt19937_64 rng(4);
  const auto loads = random_loads(rng, t, 0.8);
  std::vector<double> busy(loads);
  for (double& load : busy) load += 1;  // no idle layer
  const Placement global = Planner(t, static_cast<std::uint32_t>(Algorithm::balanced)).plan(busy);
  Planner planner(t, static_cast<std::uint32_t>(Algorithm::balanced_hierarchical));
  Planner::NearReport report;
  const Placement near = planner.plan_near(busy, global, 0.5, &report);
  EXPECT_EQ(report.replanned, t.num_layers);
  const Placement fresh = planner.plan(busy);
  EXPECT_TRUE(std::equal(near.phy2log().begin(), near.phy2log().end(), fresh.phy2log().begin()));
}

// Four nodes of two GPUs, two experts per group, two groups per node. The new loads make node 2
// (two heavy groups) busier than the target, which only moving groups between nodes 2 and 3 can
// fix; nodes 0 and 1 stay within the target as they are, though the fresh plan pairs their
// experts differently on their GPUs (30 + 20 and 26 + 24 instead of 30 + 24 and 26 + 20). So
// nodes 0 and 1 keep what they hold, and nodes 2 and 3 take the fresh plan's content.
TEST(NearPlanner, NodesThatStayBalancedKeepTheirExpertsWhenOthersAreReplanned) {
  const Topology t = topology_of(1, 16, 16, 8, 4, 8);
  const std::vector<std::int32_t> held = {0, 2, 1, 3, 4, 6, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const Placement current = Placement::from_phy2log(t, held);
  const std::vector<double> loads = {30, 26, 24, 20, 30, 26, 24, 20, 45, 45, 45, 45, 5, 5, 5, 5};
  Planner planner(t, static_cast<std::uint32_t>(Algorithm::balanced_hierarchical));
  const Placement fresh = planner.plan(loads);
  ASSERT_DOUBLE_EQ(max_gpu_load(t, loads, fresh.phy2log_layer(0)), 50);
  const double min_balance = 0.9;  // a busiest GPU of at most 55.6: nodes 0 and 1 have 54
  Planner::NearReport report;
  const Placement near = planner.plan_near(loads, current, min_balance, &report);
  EXPECT_EQ(report.partly_replanned, 1u);
  const auto out = near.phy2log_layer(0);
  const std::vector<double> gpu_loads = gpu_loads_of(t, loads, out);
  EXPECT_EQ(std::vector<std::int32_t>(out.begin(), out.begin() + 8),
            std::vector<std::int32_t>(held.begin(), held.begin() + 8));
  // Nodes 2 and 3 as the fresh plan has them: a heavy and a light expert on each GPU.
  for (std::uint32_t gpu = 4; gpu < 8; ++gpu) EXPECT_DOUBLE_EQ(gpu_loads[gpu], 50) << gpu;
  EXPECT_LT(moved_experts(t, held, out), moved_experts(t, held, fresh.phy2log_layer(0)));
}

TEST(NearPlanner, RefusesBadArguments) {
  const Topology t = topology_of(2, 8, 12, 4, 2, 2);
  Planner planner(t, static_cast<std::uint32_t>(Algorithm::balanced));
  std::vector<double> loads(t.load_count(), 1.0);
  const Placement current = planner.plan(loads);
  const auto message = [&](auto&& call) {
    try {
      call();
    } catch (const Error& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { (void)planner.plan_near(loads, current, 0.0); }).find("min_balance (0)"),
            std::string::npos);
  EXPECT_NE(message([&] { (void)planner.plan_near(loads, current, 1.5); }).find("(0, 1]"),
            std::string::npos);
  EXPECT_NE(
      message([&] { (void)planner.plan_near(loads, current, std::nan("")); }).find("min_balance"),
      std::string::npos);
  const Topology other = topology_of(2, 8, 16, 4, 2, 2);
  const Placement wrong = Planner(other, 3).plan(loads);
  EXPECT_NE(message([&] {
              (void)planner.plan_near(loads, wrong, 0.99);
            }).find("num_physical_experts (16)"),
            std::string::npos);
  loads[3] = -1;
  EXPECT_NE(message([&] { (void)planner.plan_near(loads, current, 0.99); }).find("-1"),
            std::string::npos);
}

}  // namespace
}  // namespace eplb
