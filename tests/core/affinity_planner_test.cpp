// Affinity-aware planning: the invariants it promises (replica counts, slot counts, no new
// duplicates, balance bound, relaxed home replicas and budget, whole groups for hierarchical),
// that the metric it reports equals the independent traffic metric, a constructed case whose
// optimum is known, a brute-force optimum on tiny layers, determinism over thread counts, and a
// real gain on simulated routing with co-activation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "affinity_planner.hpp"
#include "balanced_planner.hpp"
#include "error.hpp"
#include "planner.hpp"
#include "tracker.hpp"
#include "traffic.hpp"
#include "workload_simulator.hpp"

namespace eplb {
namespace {

Topology topology(std::uint32_t layers, std::uint32_t experts, std::uint32_t slots,
                  std::uint32_t nodes, std::uint32_t gpus, std::uint32_t groups) {
  Topology t;
  t.num_layers = layers;
  t.num_logical = experts;
  t.num_physical = slots;
  t.num_nodes = nodes;
  t.num_gpus = gpus;
  t.num_groups = groups;
  return t;
}

// Tracker fed by the simulator (co-activating topics), and its loads.
struct Recorded {
  Tracker tracker;
  std::vector<double> loads;
};

Recorded simulate(const Topology& t, std::uint32_t top_k, std::uint32_t topk_groups,
                  std::uint64_t seed, std::size_t tokens) {
  WorkloadParams p;
  p.num_layers = t.num_layers;
  p.num_experts = t.num_logical;
  p.top_k = top_k;
  p.num_groups = t.num_groups;
  p.topk_groups = topk_groups;
  p.num_topics = 8;
  p.topic_experts = 2 * top_k;
  p.boost = 2.0;
  p.seed = seed;
  WorkloadSimulator sim(p);
  TrackerOptions o;
  o.num_layers = t.num_layers;
  o.num_experts = t.num_logical;
  o.top_k = top_k;
  o.reservoir_capacity = 2048;
  o.seed = seed;
  Recorded r{Tracker(o), std::vector<double>(t.load_count())};
  const auto ids = sim.next_batch(tokens);
  for (std::uint32_t l = 0; l < t.num_layers; ++l) {
    r.tracker.record(l, std::span(ids).subspan(std::size_t{l} * tokens * top_k, tokens * top_k),
                     tokens, top_k);
  }
  r.tracker.loads(r.loads);
  return r;
}

Placement plan(const Topology& t, Algorithm algorithm, bool affinity, const Recorded& r,
               std::uint32_t budget = 0, std::uint32_t threads = 1) {
  PlannerSettings s;
  s.algorithm = static_cast<std::uint32_t>(algorithm);
  s.cross_node_budget = budget;
  s.num_threads = threads;
  s.affinity = affinity;
  Planner planner(t, s);
  return planner.plan_tracked({}, r.tracker);
}

// Checks every promise of an affinity plan against the balance-only plan it started from.
void expect_invariants(const Topology& t, const Placement& base, const Placement& improved,
                       const Recorded& r, double ratio) {
  for (std::uint32_t l = 0; l < t.num_layers; ++l) {
    const auto b = base.phy2log_layer(l);
    const auto a = improved.phy2log_layer(l);
    const auto loads = std::span(r.loads).subspan(std::size_t{l} * t.num_logical, t.num_logical);
    // Same replica counts.
    EXPECT_TRUE(std::ranges::equal(base.replica_counts_layer(l), improved.replica_counts_layer(l)))
        << "layer " << l;
    // No duplicate on a GPU unless the base had one there already (it has none).
    for (std::uint32_t g = 0; g < t.num_gpus; ++g) {
      std::vector<std::int32_t> on(a.begin() + g * t.slots_per_gpu(),
                                   a.begin() + (g + 1) * t.slots_per_gpu());
      std::sort(on.begin(), on.end());
      EXPECT_EQ(std::adjacent_find(on.begin(), on.end()), on.end())
          << "layer " << l << " gpu " << g;
    }
    // Balance bound.
    EXPECT_LE(max_gpu_load(t, loads, a), max_gpu_load(t, loads, b) / ratio * (1 + 1e-9))
        << "layer " << l;
    // Not worse on the sampled rows (the metric it optimises), by the independent metric.
    const auto rows = r.tracker.samples(l);
    const auto n = r.tracker.sample_rows(l);
    const std::uint32_t k = r.tracker.options().top_k;
    EXPECT_LE(nodes_touched(improved, l, rows, n, k).mean,
              nodes_touched(base, l, rows, n, k).mean + 1e-12)
        << "layer " << l;
  }
}

TEST(AffinityPlanner, GlobalKeepsInvariantsAndLowersNodesTouched) {
  const Topology t = topology(4, 64, 80, 4, 16, 1);
  const Recorded r = simulate(t, 4, 0, 11, 4096);
  const Placement base = plan(t, Algorithm::balanced, false, r);
  const Placement improved = plan(t, Algorithm::balanced, true, r);
  expect_invariants(t, base, improved, r, 0.99);
  const TrafficReport before = nodes_touched(base, r.tracker);
  const TrafficReport after = nodes_touched(improved, r.tracker);
  EXPECT_LT(after.mean, before.mean * 0.95) << before.mean << " -> " << after.mean;
}

// A DeepSeek-V3-shaped layer (256 experts, top-8 from 4 of 8 groups, 288 slots on 4 x 8 GPUs):
// large enough for the estimate phase (compensating swaps, nodes packed again) to run.
TEST(AffinityPlanner, DeepSeekShapedLayersKeepInvariants) {
  const Topology t = topology(2, 256, 288, 4, 32, 8);
  const Recorded r = simulate(t, 8, 4, 17, 8192);
  const Placement base = plan(t, Algorithm::balanced, false, r);
  const Placement improved = plan(t, Algorithm::balanced, true, r);
  expect_invariants(t, base, improved, r, 0.99);
  const TrafficReport before = nodes_touched(base, r.tracker);
  const TrafficReport after = nodes_touched(improved, r.tracker);
  EXPECT_LT(after.mean, before.mean * 0.85) << before.mean << " -> " << after.mean;
}

// Several replicas of one expert on a node (4 to 6 per expert on average): the search lists one
// slot per expert and node, lands through three-way moves within a node and packs nodes again;
// every shape keeps the invariants.
TEST(AffinityPlanner, ManyReplicasPerNodeKeepInvariants) {
  struct Shape {
    std::uint32_t experts, slots, nodes, gpus;
  };
  for (const Shape& shape : {Shape{32, 128, 2, 16}, Shape{16, 64, 4, 16}, Shape{24, 96, 3, 12},
                             Shape{64, 256, 2, 32}, Shape{16, 96, 2, 24}}) {
    for (const std::uint64_t seed : {23, 24, 25}) {
      SCOPED_TRACE(testing::Message()
                   << shape.experts << " experts, " << shape.slots << " slots, " << shape.nodes
                   << " nodes, " << shape.gpus << " GPUs, seed " << seed);
      const Topology t = topology(2, shape.experts, shape.slots, shape.nodes, shape.gpus, 1);
      const Recorded r = simulate(t, 4, 0, seed, 2048);
      const Placement base = plan(t, Algorithm::balanced, false, r);
      const Placement improved = plan(t, Algorithm::balanced, true, r);
      expect_invariants(t, base, improved, r, 0.99);
    }
  }
}

TEST(AffinityPlanner, ReportedMetricEqualsTrafficMetric) {
  const Topology t = topology(1, 32, 48, 4, 8, 1);
  const Recorded r = simulate(t, 4, 0, 5, 2048);
  const Placement base = plan(t, Algorithm::balanced, false, r);
  std::vector<std::int32_t> map(base.phy2log_layer(0).begin(), base.phy2log_layer(0).end());
  std::vector<std::int32_t> rank(map.size());
  const auto log2phy = base.log2phy();
  for (std::uint32_t e = 0; e < t.num_logical; ++e) {
    for (std::uint32_t i = 0; i < base.log2phy_width(); ++i) {
      const std::int32_t s = log2phy[e * base.log2phy_width() + i];
      if (s >= 0) rank[static_cast<std::size_t>(s)] = static_cast<std::int32_t>(i);
    }
  }
  AffinityPlanner planner;
  AffinitySettings settings;
  const auto result = planner.improve_layer(t, settings, r.loads, r.tracker.samples(0),
                                            r.tracker.sample_rows(0), 4, map, rank);
  const auto rows = r.tracker.samples(0);
  const auto n = r.tracker.sample_rows(0);
  EXPECT_NEAR(result.nodes_touched_before, nodes_touched(base, 0, rows, n, 4).mean, 1e-12);
  const Placement after = Placement::from_ranked_slots(t, map, rank, Provenance{});
  EXPECT_NEAR(result.nodes_touched_after, nodes_touched(after, 0, rows, n, 4).mean, 1e-12);
  EXPECT_GT(result.moves, 0U);
}

// Tokens pick {0,1} or {2,3}; every expert has the same load, so the balance-only plan may split
// the pairs, and the optimum (each pair on one node) touches one node per token.
TEST(AffinityPlanner, ConstructedPairsReachOneNodePerToken) {
  const Topology t = topology(1, 4, 4, 2, 2, 1);
  TrackerOptions o;
  o.num_layers = 1;
  o.num_experts = 4;
  o.top_k = 2;
  o.reservoir_capacity = 100;
  Tracker tracker(o);
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 50; ++i) ids.insert(ids.end(), {0, 1, 2, 3});
  tracker.record(0, ids, 100, 2);
  // Start from the worst arrangement: 0 and 2 on node 0, 1 and 3 on node 1.
  std::vector<std::int32_t> map = {0, 2, 1, 3};
  std::vector<std::int32_t> rank = {0, 0, 0, 0};
  const std::vector<double> loads = {50, 50, 50, 50};
  AffinityPlanner planner;
  const auto result = planner.improve_layer(t, AffinitySettings{}, loads, tracker.samples(0),
                                            tracker.sample_rows(0), 2, map, rank);
  EXPECT_DOUBLE_EQ(result.nodes_touched_before, 2.0);
  EXPECT_DOUBLE_EQ(result.nodes_touched_after, 1.0);
  EXPECT_EQ(map[0] / 2, map[1] / 2);  // each node holds one pair
  EXPECT_EQ(map[2] / 2, map[3] / 2);
}

// Brute force over every arrangement of a tiny layer's slots (same replica multiset, no
// duplicates on a GPU, balance bound): the local search reaches the optimum here.
TEST(AffinityPlanner, TinyLayersMatchBruteForceOptimum) {
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 20; ++trial) {
    const Topology t = topology(1, 6, 8, 2, 4, 1);
    TrackerOptions o;
    o.num_layers = 1;
    o.num_experts = 6;
    o.top_k = 2;
    o.reservoir_capacity = 400;
    Tracker tracker(o);
    std::vector<std::int32_t> ids;
    // Pairs drawn from a skewed distribution over the 15 pairs.
    std::vector<std::pair<int, int>> pairs;
    for (int a = 0; a < 6; ++a) {
      for (int b = a + 1; b < 6; ++b) pairs.emplace_back(a, b);
    }
    std::vector<double> weight(pairs.size());
    for (auto& w : weight) w = std::exp(std::normal_distribution<double>(0, 1.5)(rng));
    std::discrete_distribution<std::size_t> pick(weight.begin(), weight.end());
    for (int i = 0; i < 400; ++i) {
      const auto& [a, b] = pairs[pick(rng)];
      ids.push_back(a);
      ids.push_back(b);
    }
    tracker.record(0, ids, 400, 2);
    std::vector<double> loads(6);
    tracker.layer_loads(0, loads);
    PlannerSettings s;
    s.algorithm = static_cast<std::uint32_t>(Algorithm::balanced);
    s.affinity = true;
    s.affinity_min_balance = 0.9;
    Planner planner(t, s);
    const Placement improved = planner.plan_tracked(loads, tracker);
    s.affinity = false;
    s.affinity_min_balance = PlannerSettings{}.affinity_min_balance;
    const Placement base = Planner(t, s).plan_tracked(loads, tracker);
    const double cap = max_gpu_load(t, loads, base.phy2log_layer(0)) / 0.9 * (1 + 1e-9);
    const auto rows = tracker.samples(0);
    const auto n = tracker.sample_rows(0);
    // Every distinct permutation of the base's slots.
    std::vector<std::int32_t> perm(base.phy2log_layer(0).begin(), base.phy2log_layer(0).end());
    std::sort(perm.begin(), perm.end());
    double best = 1e9;
    do {
      bool ok = true;
      for (std::uint32_t g = 0; g < 4 && ok; ++g) ok = perm[2 * g] != perm[2 * g + 1];
      if (!ok || max_gpu_load(t, loads, perm) > cap) continue;
      const Placement p = Placement::from_phy2log(t, perm);
      best = std::min(best, nodes_touched(p, 0, rows, n, 2).mean);
    } while (std::next_permutation(perm.begin(), perm.end()));
    const double got = nodes_touched(improved, 0, rows, n, 2).mean;
    EXPECT_LE(got, best + 1e-12) << "trial " << trial << ": brute force " << best;
    EXPECT_GE(got, best - 1e-12);
  }
}

TEST(AffinityPlanner, RelaxedKeepsHomeReplicasAndBudget) {
  const Topology t = topology(3, 64, 80, 4, 16, 8);
  const Recorded r = simulate(t, 4, 4, 21, 4096);
  constexpr std::uint32_t kBudget = 6;
  const Placement base = plan(t, Algorithm::balanced_relaxed, false, r, kBudget);
  const Placement improved = plan(t, Algorithm::balanced_relaxed, true, r, kBudget);
  expect_invariants(t, base, improved, r, 0.99);
  const std::uint32_t group_size = 8, groups_per_node = 2, slots_per_node = 20;
  for (std::uint32_t l = 0; l < t.num_layers; ++l) {
    const auto map = improved.phy2log_layer(l);
    // Home node of a group: where the base keeps most of its replicas.
    std::vector<std::vector<int>> per_node(8, std::vector<int>(4, 0));
    for (std::uint32_t s = 0; s < t.num_physical; ++s) {
      ++per_node[static_cast<std::size_t>(base.phy2log_layer(l)[s]) / group_size]
                [s / slots_per_node];
    }
    std::uint32_t off = 0;
    std::vector<int> at_home(64, 0);
    for (std::uint32_t s = 0; s < t.num_physical; ++s) {
      const auto e = static_cast<std::size_t>(map[s]);
      const auto& row = per_node[e / group_size];
      const auto home =
          static_cast<std::uint32_t>(std::max_element(row.begin(), row.end()) - row.begin());
      if (s / slots_per_node == home) {
        ++at_home[e];
      } else {
        ++off;
      }
    }
    EXPECT_LE(off, kBudget) << "layer " << l;
    for (std::size_t e = 0; e < 64; ++e)
      EXPECT_GE(at_home[e], 1) << "layer " << l << " expert " << e;
    (void)groups_per_node;
  }
}

TEST(AffinityPlanner, HierarchicalKeepsWholeGroupsPerNode) {
  const Topology t = topology(3, 64, 80, 2, 16, 4);
  const Recorded r = simulate(t, 4, 2, 9, 4096);
  const Placement base = plan(t, Algorithm::balanced_hierarchical, false, r);
  const Placement improved = plan(t, Algorithm::balanced_hierarchical, true, r);
  for (std::uint32_t l = 0; l < t.num_layers; ++l) {
    const auto map = improved.phy2log_layer(l);
    std::map<int, std::uint32_t> node_of_group;
    for (std::uint32_t s = 0; s < t.num_physical; ++s) {
      const int g = map[s] / 16;
      const auto [it, inserted] = node_of_group.emplace(g, s / 40);
      EXPECT_EQ(it->second, s / 40) << "layer " << l << ": group " << g << " on two nodes";
    }
    const auto loads = std::span(r.loads).subspan(std::size_t{l} * 64, 64);
    EXPECT_LE(max_gpu_load(t, loads, map),
              max_gpu_load(t, loads, base.phy2log_layer(l)) / 0.99 * (1 + 1e-9));
    const auto rows = r.tracker.samples(l);
    const auto n = r.tracker.sample_rows(l);
    EXPECT_LE(nodes_touched(improved, l, rows, n, 4).mean,
              nodes_touched(base, l, rows, n, 4).mean + 1e-12);
  }
}

TEST(AffinityPlanner, DeterministicOverThreadCounts) {
  const Topology t = topology(6, 64, 80, 4, 16, 1);
  const Recorded r = simulate(t, 4, 0, 13, 2048);
  const Placement one = plan(t, Algorithm::balanced, true, r, 0, 1);
  const Placement four = plan(t, Algorithm::balanced, true, r, 0, 4);
  EXPECT_TRUE(std::ranges::equal(one.phy2log(), four.phy2log()));
  EXPECT_TRUE(std::ranges::equal(one.log2phy(), four.log2phy()));
}

TEST(AffinityPlanner, RefusesWithoutStatistics) {
  const Topology t = topology(1, 8, 16, 2, 8, 1);
  PlannerSettings s;
  s.affinity = true;
  Planner planner(t, s);
  const std::vector<double> loads(8, 1.0);
  EXPECT_THROW((void)planner.plan(loads), Error);
  TrackerOptions o;
  o.num_layers = 1;
  o.num_experts = 8;
  o.top_k = 2;
  Tracker no_samples(o);
  EXPECT_THROW((void)planner.plan_tracked(loads, no_samples), Error);
  s.affinity_min_balance = 1.5;
  EXPECT_THROW(Planner(t, s), Error);
}

}  // namespace
}  // namespace eplb
