// Metrics against a brute-force computation written independently here, and the lower bound
// against the exact optimum of tiny instances (enumerating every placement).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "metrics.hpp"
#include "placement.hpp"
#include "support/random_cases.hpp"

namespace eplb {
namespace {

struct Brute {
  std::vector<double> gpu;
  double balancedness = 1, node_balancedness = 1;
  std::uint32_t duplicates = 0;
};

Brute brute_force(const Topology& t, const std::vector<int>& map, const std::vector<double>& w) {
  Brute b;
  b.gpu.assign(t.num_gpus, 0.0);
  std::vector<int> count(t.num_logical, 0);
  for (int e : map) ++count[e];
  const std::uint32_t per_gpu = t.num_physical / t.num_gpus;
  for (std::uint32_t s = 0; s < t.num_physical; ++s)
    b.gpu[s / per_gpu] += w[map[s]] / count[map[s]];
  for (std::uint32_t g = 0; g < t.num_gpus; ++g) {
    bool dup = false;
    for (std::uint32_t a = 0; a < per_gpu; ++a) {
      for (std::uint32_t c = a + 1; c < per_gpu; ++c) {
        dup = dup || map[g * per_gpu + a] == map[g * per_gpu + c];
      }
    }
    b.duplicates += dup ? 1 : 0;
  }
  auto ratio = [](const std::vector<double>& v) {
    const double mx = *std::max_element(v.begin(), v.end());
    double sum = 0;
    for (double x : v) sum += x;
    return mx > 0 ? sum / static_cast<double>(v.size()) / mx : 1.0;
  };
  b.balancedness = ratio(b.gpu);
  std::vector<double> node(t.num_nodes, 0.0);
  for (std::uint32_t g = 0; g < t.num_gpus; ++g) node[g / (t.num_gpus / t.num_nodes)] += b.gpu[g];
  b.node_balancedness = ratio(node);
  return b;
}

// A random map where every expert appears at least once.
std::vector<int> random_map(std::mt19937_64& rng, const Topology& t) {
  std::vector<int> map(t.num_physical);
  for (std::uint32_t s = 0; s < t.num_physical; ++s) {
    map[s] = s < t.num_logical
                 ? static_cast<int>(s)
                 : std::uniform_int_distribution<int>(0, static_cast<int>(t.num_logical) - 1)(rng);
  }
  std::shuffle(map.begin(), map.end(), rng);
  return map;
}

TEST(Metrics, MatchBruteForceOnRandomPlacements) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 500; ++trial) {
    Topology t = test::random_topology(rng, trial % 2 == 0);
    t.num_layers = 1;
    const auto map = random_map(rng, t);
    const Placement p =
        Placement::from_phy2log(t, std::vector<std::int32_t>(map.begin(), map.end()));
    const auto w =
        trial % 4 == 0 ? test::random_small_loads(rng, t, 2) : test::random_tie_free_loads(rng, t);
    const Brute b = brute_force(t, map, w);
    const LayerMetrics m = compute_layer_metrics(p, 0, w);
    std::vector<double> gpu(t.num_gpus);
    layer_gpu_loads(p, 0, w, gpu);
    for (std::uint32_t g = 0; g < t.num_gpus; ++g)
      ASSERT_NEAR(gpu[g], b.gpu[g], 1e-9 * (1 + b.gpu[g]));
    ASSERT_NEAR(m.balancedness, b.balancedness, 1e-12);
    ASSERT_NEAR(m.node_balancedness, b.node_balancedness, 1e-12);
    ASSERT_EQ(m.duplicate_gpus, b.duplicates);
    ASSERT_NEAR(m.max_gpu_load, *std::max_element(b.gpu.begin(), b.gpu.end()),
                1e-9 * (1 + m.max_gpu_load));
    ASSERT_LE(m.lower_bound, m.max_gpu_load * (1 + 1e-12));
    ASSERT_GE(m.lower_bound, m.mean_gpu_load * (1 - 1e-12));
    ASSERT_GE(m.max_load_over_bound, 1.0 - 1e-12);
  }
}

// Enumerates every phy2log of a tiny instance and returns the smallest max GPU load.
double exact_optimum(const Topology& t, const std::vector<double>& w) {
  std::vector<int> map(t.num_physical, 0);
  double best = INFINITY;
  while (true) {
    std::vector<int> count(t.num_logical, 0);
    for (int e : map) ++count[e];
    if (std::all_of(count.begin(), count.end(), [](int c) { return c > 0; })) {
      const Brute b = brute_force(t, map, w);
      best = std::min(best, *std::max_element(b.gpu.begin(), b.gpu.end()));
    }
    std::size_t i = 0;
    while (i < map.size() && ++map[i] == static_cast<int>(t.num_logical)) map[i++] = 0;
    if (i == map.size()) break;
  }
  return best;
}

TEST(Metrics, LowerBoundNeverExceedsTheExactOptimum) {
  std::mt19937_64 rng(9);
  for (int trial = 0; trial < 60; ++trial) {
    Topology t;
    t.num_layers = 1;
    t.num_gpus = std::uniform_int_distribution<std::uint32_t>(1, 3)(rng);
    t.num_physical =
        t.num_gpus * std::uniform_int_distribution<std::uint32_t>(1, 6 / t.num_gpus + 1)(rng);
    t.num_physical = std::min<std::uint32_t>(t.num_physical, 7);
    t.num_physical -= t.num_physical % t.num_gpus;
    t.num_logical = std::uniform_int_distribution<std::uint32_t>(1, t.num_physical)(rng);
    const auto w = test::random_tie_free_loads(rng, t);
    const Placement p = Placement::from_phy2log(t, [&] {
      std::vector<std::int32_t> m(t.num_physical);
      for (std::uint32_t s = 0; s < t.num_physical; ++s)
        m[s] = static_cast<std::int32_t>(s % t.num_logical);
      return m;
    }());
    const double optimum = exact_optimum(t, w);
    const LayerMetrics m = compute_layer_metrics(p, 0, w);
    ASSERT_LE(m.lower_bound, optimum * (1 + 1e-12)) << "trial " << trial;
  }
}

TEST(Metrics, LayersWithoutLoadAreLeftOutOfTheAggregates) {
  Topology t;
  t.num_layers = 2;
  t.num_logical = 4;
  t.num_physical = 6;
  t.num_gpus = 2;
  // Layer 0 (no load) would add a duplicate pair on GPU 0 and 3 replicas if it counted.
  const Placement p = Placement::from_phy2log(t, {0, 0, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1});
  const std::vector<double> loads = {0, 0, 0, 0, 1, 2, 3, 4};
  const LayerMetrics zero = compute_layer_metrics(p, 0, std::span(loads).subspan(0, 4));
  EXPECT_EQ(zero.balancedness, 1.0);
  EXPECT_EQ(zero.lower_bound, 0.0);
  EXPECT_EQ(zero.max_load_over_bound, 1.0);
  EXPECT_EQ(zero.duplicate_gpus, 1U);
  const Metrics m = compute_metrics(p, loads);
  EXPECT_EQ(m.num_layers, 2U);
  EXPECT_EQ(m.loaded_layers, 1U);
  // Layer 1 alone: GPU loads 1/2 + 2/2 + 3 = 4.5 and 4 + 1/2 + 2/2 = 5.5, mean 5.
  EXPECT_DOUBLE_EQ(m.balancedness, 5.0 / 5.5);
  EXPECT_DOUBLE_EQ(m.min_balancedness, 5.0 / 5.5);
  EXPECT_DOUBLE_EQ(m.max_over_mean, 5.5 / 5.0);
  EXPECT_EQ(m.duplicate_pairs, 0U);
  EXPECT_EQ(m.max_replicas, 2U);

  // Without any load, every layer counts.
  const Metrics idle = compute_metrics(p, std::vector<double>(8, 0.0));
  EXPECT_EQ(idle.loaded_layers, 0U);
  EXPECT_EQ(idle.balancedness, 1.0);
  EXPECT_EQ(idle.duplicate_pairs, 1U);
  EXPECT_EQ(idle.max_replicas, 3U);
}

// Loads so small that the mean GPU load underflows (subnormal doubles) are still loads: the
// balancedness stays in (0, 1] and close to the exact ratio, never 0.
TEST(Metrics, SubnormalLoadsKeepBalancednessInItsRange) {
  Topology t;
  t.num_layers = 1;
  t.num_logical = 3;
  t.num_physical = 4;
  t.num_gpus = 4;
  const Placement p = Placement::from_phy2log(t, {0, 1, 2, 2});
  for (const double unit : {std::numeric_limits<double>::denorm_min(), 1e-320, 1e-310}) {
    const std::vector<double> loads = {unit, 3 * unit, 0};
    const LayerMetrics layer = compute_layer_metrics(p, 0, loads);
    // GPU loads unit, 3 unit, 0, 0: mean unit, balancedness 1/3, max/mean 3.
    EXPECT_NEAR(layer.balancedness, 1.0 / 3.0, 1e-3) << unit;
    const Metrics m = compute_metrics(p, loads);
    EXPECT_EQ(m.loaded_layers, 1U);
    EXPECT_NEAR(m.balancedness, 1.0 / 3.0, 1e-3) << unit;
    EXPECT_NEAR(m.min_balancedness, 1.0 / 3.0, 1e-3) << unit;
    EXPECT_NEAR(m.max_over_mean, 3.0, 1e-2) << unit;
  }
}

// Property: idle layers anywhere in a placement leave every aggregate as it is without them.
TEST(Metrics, IdleLayersChangeNothingButTheLayerCount) {
  std::mt19937_64 rng(17);
  for (int trial = 0; trial < 200; ++trial) {
    Topology busy = test::random_topology(rng, trial % 2 == 0);
    busy.num_layers = 1 + trial % 3;
    Topology padded = busy;
    padded.num_layers = busy.num_layers + 1 + trial % 2;
    std::vector<std::uint8_t> idle(padded.num_layers, 0);
    for (std::uint32_t layer = busy.num_layers; layer < padded.num_layers; ++layer) idle[layer] = 1;
    std::shuffle(idle.begin(), idle.end(), rng);
    Topology one_layer = busy;
    one_layer.num_layers = 1;
    std::vector<std::int32_t> busy_map, padded_map;
    std::vector<double> busy_loads, padded_loads;
    for (std::uint32_t layer = 0; layer < padded.num_layers; ++layer) {
      const auto map = random_map(rng, busy);
      const auto w = idle[layer] ? std::vector<double>(busy.num_logical, 0.0)
                                 : test::random_tie_free_loads(rng, one_layer);
      padded_map.insert(padded_map.end(), map.begin(), map.end());
      padded_loads.insert(padded_loads.end(), w.begin(), w.end());
      if (!idle[layer]) {
        busy_map.insert(busy_map.end(), map.begin(), map.end());
        busy_loads.insert(busy_loads.end(), w.begin(), w.end());
      }
    }
    const Metrics a = compute_metrics(Placement::from_phy2log(busy, busy_map), busy_loads);
    const Metrics b = compute_metrics(Placement::from_phy2log(padded, padded_map), padded_loads);
    ASSERT_EQ(b.num_layers, padded.num_layers);
    ASSERT_EQ(a.loaded_layers, busy.num_layers);
    ASSERT_EQ(b.loaded_layers, busy.num_layers);
    ASSERT_DOUBLE_EQ(a.balancedness, b.balancedness);
    ASSERT_DOUBLE_EQ(a.min_balancedness, b.min_balancedness);
    ASSERT_DOUBLE_EQ(a.node_balancedness, b.node_balancedness);
    ASSERT_DOUBLE_EQ(a.max_load_over_bound, b.max_load_over_bound);
    ASSERT_DOUBLE_EQ(a.worst_max_load_over_bound, b.worst_max_load_over_bound);
    ASSERT_DOUBLE_EQ(a.max_over_mean, b.max_over_mean);
    ASSERT_DOUBLE_EQ(a.max_load_over_node_bound, b.max_load_over_node_bound);
    ASSERT_EQ(a.duplicate_pairs, b.duplicate_pairs);
    ASSERT_EQ(a.cross_node_replicas, b.cross_node_replicas);
    ASSERT_EQ(a.max_replicas, b.max_replicas);
  }
}

}  // namespace
}  // namespace eplb
