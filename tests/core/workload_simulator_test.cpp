// The synthetic workload against the calibration targets of ../shared/research/real-data.md §5:
// DeepSeek-like skew, Mixtral-like pair lift, temporal locality from topic persistence, drift,
// and determinism for a seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "error.hpp"
#include "tracker.hpp"
#include "workload_simulator.hpp"

namespace eplb {
namespace {

WorkloadParams deepseek_like(std::uint64_t seed) {
  WorkloadParams p;
  p.num_layers = 4;
  p.num_experts = 256;
  p.top_k = 8;
  p.num_groups = 8;
  p.topk_groups = 4;
  p.seed = seed;
  return p;
}

WorkloadParams mixtral_like(std::uint64_t seed) {
  WorkloadParams p;
  p.num_layers = 4;
  p.num_experts = 8;
  p.top_k = 2;
  // Tuned to §5.4: pair lift p50 ~0.6-0.8, p90 ~1.9, max ~4; max/mean load ~1.8.
  p.sigma_min = 0.1;
  p.sigma_max = 0.3;
  p.num_topics = 16;
  p.topic_experts = 2;
  p.boost = 3.0;
  p.topic_persistence = 0.5;
  p.seed = seed;
  return p;
}

std::vector<double> loads_of(const std::vector<std::int32_t>& ids, std::uint32_t layer,
                             std::size_t tokens, std::uint32_t k, std::uint32_t e) {
  std::vector<double> load(e, 0.0);
  for (std::size_t i = 0; i < tokens * k; ++i) {
    load[static_cast<std::size_t>(ids[layer * tokens * k + i])] += 1;
  }
  return load;
}

TEST(WorkloadSimulator, RowsAreValidDistinctAndDeterministic) {
  WorkloadSimulator a(deepseek_like(3)), b(deepseek_like(3)), c(deepseek_like(4));
  const auto x = a.next_batch(256);
  EXPECT_EQ(x, b.next_batch(256));
  EXPECT_NE(x, c.next_batch(256));
  ASSERT_EQ(x.size(), 4U * 256 * 8);
  for (std::size_t r = 0; r < x.size() / 8; ++r) {
    std::set<std::int32_t> row(x.begin() + static_cast<std::ptrdiff_t>(r * 8),
                               x.begin() + static_cast<std::ptrdiff_t>(r * 8 + 8));
    ASSERT_EQ(row.size(), 8U);
    // Group-limited: at most 4 of the 8 groups of 32.
    std::set<std::int32_t> groups;
    for (std::int32_t v : row) {
      ASSERT_GE(v, 0);
      ASSERT_LT(v, 256);
      groups.insert(v / 32);
    }
    ASSERT_LE(groups.size(), 4U);
  }
}

TEST(WorkloadSimulator, DeepSeekLikeSkewIsInTheRealRange) {
  WorkloadSimulator sim(deepseek_like(1));
  constexpr std::size_t kTokens = 16384;
  const auto ids = sim.next_batch(kTokens);
  for (std::uint32_t l = 0; l < 4; ++l) {
    const auto load = loads_of(ids, l, kTokens, 8, 256);
    const double mean = std::accumulate(load.begin(), load.end(), 0.0) / 256;
    const double max = *std::max_element(load.begin(), load.end());
    EXPECT_GE(max / mean, 3.0) << "layer " << l << " sigma " << sim.sigma(l);
    EXPECT_LE(max / mean, 10.0) << "layer " << l << " sigma " << sim.sigma(l);
  }
}

// Pair lift P(a and b) / (P(a) P(b)), normalised so that uniform distinct top-k gives 1.
std::vector<double> pair_lifts(const std::vector<std::int32_t>& ids, std::uint32_t layer,
                               std::size_t tokens, std::uint32_t k, std::uint32_t e) {
  TrackerOptions o;
  o.num_layers = 1;
  o.num_experts = e;
  o.top_k = k;
  Tracker t(o);
  t.record(0, std::span(ids).subspan(layer * tokens * k, tokens * k), tokens, k);
  std::vector<double> load(e), pairs(pair_count(e));
  t.layer_loads(0, load);
  t.coactivation(0, pairs);
  const double n = static_cast<double>(tokens);
  const double norm = static_cast<double>(k) * (e - 1) / ((k - 1.0) * e);
  std::vector<double> lifts;
  for (std::uint32_t a = 0; a < e; ++a) {
    for (std::uint32_t b = a + 1; b < e; ++b) {
      lifts.push_back(pairs[pair_index(e, a, b)] / n / (load[a] / n * load[b] / n) * norm);
    }
  }
  return lifts;
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

TEST(WorkloadSimulator, MixtralLikePairLiftP90IsAboutTwo) {
  WorkloadSimulator sim(mixtral_like(2));
  constexpr std::size_t kTokens = 20000;
  const auto ids = sim.next_batch(kTokens);
  std::vector<double> all;
  for (std::uint32_t l = 0; l < 4; ++l) {
    const auto lifts = pair_lifts(ids, l, kTokens, 2, 8);
    all.insert(all.end(), lifts.begin(), lifts.end());
  }
  const double p90 = quantile(all, 0.9);
  EXPECT_GE(p90, 1.4);
  EXPECT_LE(p90, 3.0);
  // Without topics the lift stays near the independent baseline.
  auto flat = mixtral_like(2);
  flat.num_topics = 0;
  WorkloadSimulator none(flat);
  const auto ids0 = none.next_batch(kTokens);
  EXPECT_LT(quantile(pair_lifts(ids0, 0, kTokens, 2, 8), 0.9), p90);
}

double consecutive_overlap(const std::vector<std::int32_t>& ids, std::size_t tokens,
                           std::uint32_t k) {
  double shared = 0;
  for (std::size_t t = 1; t < tokens; ++t) {
    std::set<std::int32_t> prev(ids.begin() + static_cast<std::ptrdiff_t>((t - 1) * k),
                                ids.begin() + static_cast<std::ptrdiff_t>(t * k));
    for (std::uint32_t s = 0; s < k; ++s) shared += prev.count(ids[t * k + s]) > 0 ? 1 : 0;
  }
  return shared / static_cast<double>((tokens - 1) * k);
}

TEST(WorkloadSimulator, PersistenceRaisesConsecutiveTokenOverlap) {
  auto p = mixtral_like(5);
  p.topic_persistence = 0.85;
  auto q = p;
  q.topic_persistence = 0.0;
  WorkloadSimulator with(p), without(q);
  const double a = consecutive_overlap(with.next_batch(10000), 10000, 2);
  const double b = consecutive_overlap(without.next_batch(10000), 10000, 2);
  EXPECT_GT(a, b + 0.03);
  EXPECT_GT(a, 0.3);  // Mixtral: 0.34-0.40
}

TEST(WorkloadSimulator, DriftDecorrelatesPopularity) {
  auto p = deepseek_like(6);
  p.num_layers = 1;
  p.drift_rho = 0.9;
  WorkloadSimulator sim(p);
  const std::vector<double> start(sim.log_popularity(0).begin(), sim.log_popularity(0).end());
  for (int i = 0; i < 30; ++i) (void)sim.next_batch(1);
  const auto now = sim.log_popularity(0);
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < start.size(); ++i) {
    sxy += start[i] * now[i];
    sxx += start[i] * start[i];
    syy += now[i] * now[i];
  }
  EXPECT_LT(sxy / std::sqrt(sxx * syy), 0.5);  // 0.9^30 = 0.04
  p.drift_rho = 1.0;
  WorkloadSimulator frozen(p);
  const std::vector<double> f0(frozen.log_popularity(0).begin(), frozen.log_popularity(0).end());
  (void)frozen.next_batch(10);
  EXPECT_TRUE(std::equal(f0.begin(), f0.end(), frozen.log_popularity(0).begin()));
}

TEST(WorkloadSimulator, ParametersAreValidated) {
  auto p = deepseek_like(0);
  p.top_k = 300;
  EXPECT_THROW(WorkloadSimulator{p}, Error);
  p = deepseek_like(0);
  p.num_groups = 7;
  EXPECT_THROW(WorkloadSimulator{p}, Error);
  p = deepseek_like(0);
  p.topk_groups = 0;
  p.drift_rho = 1.5;
  EXPECT_THROW(WorkloadSimulator{p}, Error);
  p = deepseek_like(0);
  p.topic_persistence = -0.1;
  EXPECT_THROW(WorkloadSimulator{p}, Error);
}

}  // namespace
}  // namespace eplb
