// Replica-split solver (issue #9) against two independent exact oracles: a brute force over every
// integral split on tiny instances, and Hall's theorem (a closed form of the optimum with unit
// weights) on medium ones; plus the quota properties.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "error.hpp"
#include "placement.hpp"
#include "replica_split.hpp"
#include "support/error_message.hpp"
#include "support/split_placements.hpp"

namespace {

using eplb::Placement;
using eplb::SplitGpuTerms;
using eplb::SplitWorkspace;
using eplb::Topology;

// A one-layer placement on one node of `gpus` GPUs with `per_gpu` slots each.
Placement random_placement(std::mt19937& rng, std::uint32_t experts, std::uint32_t gpus,
                           std::uint32_t per_gpu) {
  return eplb::test::random_split_placement(rng, experts, 1, gpus, per_gpu);
}

double max_load(const Topology& t, const std::vector<std::int32_t>& quotas,
                const std::vector<double>& w, const std::vector<double>& extra) {
  std::vector<double> load(t.num_gpus, 0.0);
  for (std::uint32_t g = 0; g < t.num_gpus; ++g) load[g] = extra.empty() ? 0.0 : extra[g];
  for (std::uint32_t s = 0; s < t.num_physical; ++s) load[t.gpu_of_slot(s)] += quotas[s];
  double worst = 0.0;
  for (std::uint32_t g = 0; g < t.num_gpus; ++g) {
    worst = std::max(worst, (w.empty() ? 1.0 : w[g]) * load[g]);
  }
  return worst;
}

// Every integral split of every expert's tokens over its slots; the smallest max load.
double brute_force(const Placement& p, const std::vector<std::int32_t>& counts,
                   const std::vector<double>& w, const std::vector<double>& extra) {
  const Topology& t = p.topology();
  const auto row = p.phy2log_layer(0);
  std::vector<std::int32_t> quotas(t.num_physical, 0);
  std::vector<std::int32_t> left(counts);
  double best = std::numeric_limits<double>::infinity();
  std::function<void(std::uint32_t)> visit = [&](std::uint32_t s) {
    if (s == t.num_physical) {
      for (std::size_t e = 0; e < left.size(); ++e) {
        if (left[e] != 0) return;
      }
      best = std::min(best, max_load(t, quotas, w, extra));
      return;
    }
    const auto e = static_cast<std::size_t>(row[s]);
    for (std::int32_t q = 0; q <= left[e]; ++q) {
      quotas[s] = q;
      left[e] -= q;
      visit(s + 1);
      left[e] += q;
    }
    quotas[s] = 0;
  };
  visit(0);
  return best;
}

// Hall's theorem for unit weights and integral extra loads: T is feasible iff for every GPU set
// S, the tokens of experts whose replicas all lie in S fit: demand(S) + base(S) <= |S| * T.
double hall_optimum(const Placement& p, const std::vector<std::int32_t>& counts,
                    const std::vector<double>& extra) {
  const Topology& t = p.topology();
  const auto row = p.phy2log_layer(0);
  std::vector<std::uint32_t> mask(t.num_logical, 0);
  for (std::uint32_t s = 0; s < t.num_physical; ++s) {
    mask[static_cast<std::size_t>(row[s])] |= 1U << t.gpu_of_slot(s);
  }
  double best = 0.0;
  for (std::uint32_t set = 1; set < (1U << t.num_gpus); ++set) {
    double demand = 0.0;
    for (std::uint32_t g = 0; g < t.num_gpus; ++g) {
      if ((set >> g) & 1U) demand += extra.empty() ? 0.0 : extra[g];
    }
    for (std::uint32_t e = 0; e < t.num_logical; ++e) {
      if ((mask[e] & ~set) == 0) demand += counts[e];
    }
    const auto size = static_cast<double>(__builtin_popcount(set));
    best = std::max(best, std::ceil(demand / size));
  }
  return best;
}

// The properties every answer has: integral, >= 0, each expert's quotas summing to its count,
// and the reported max load equal to the quotas' max load.
void expect_valid(const Placement& p, const std::vector<std::int32_t>& counts,
                  const std::vector<std::int32_t>& quotas, const std::vector<double>& w,
                  const std::vector<double>& extra, const eplb::SplitResult& r) {
  const Topology& t = p.topology();
  const auto row = p.phy2log_layer(0);
  std::vector<std::int64_t> sum(t.num_logical, 0);
  for (std::uint32_t s = 0; s < t.num_physical; ++s) {
    ASSERT_GE(quotas[s], 0) << "slot " << s;
    sum[static_cast<std::size_t>(row[s])] += quotas[s];
  }
  for (std::uint32_t e = 0; e < t.num_logical; ++e) EXPECT_EQ(sum[e], counts[e]) << "expert " << e;
  EXPECT_DOUBLE_EQ(r.max_load, max_load(t, quotas, w, extra));
  EXPECT_GE(r.heuristic_load, r.max_load * (1 - 1e-12));
}

TEST(SplitSolver, MatchesBruteForceOnTinyInstances) {
  std::mt19937 rng(9);
  SplitWorkspace ws;
  for (int trial = 0; trial < 400; ++trial) {
    const std::uint32_t gpus = 2 + static_cast<std::uint32_t>(rng()) % 2;
    const std::uint32_t experts = 2 + static_cast<std::uint32_t>(rng()) % 3;
    const std::uint32_t per_gpu =
        (experts + gpus - 1) / gpus + static_cast<std::uint32_t>(rng()) % 2;
    if (gpus * per_gpu > 7) continue;
    const Placement p = random_placement(rng, experts, gpus, per_gpu);
    std::vector<std::int32_t> counts(experts);
    for (auto& c : counts) c = static_cast<std::int32_t>(static_cast<std::uint32_t>(rng()) % 6);
    std::vector<double> w;
    std::vector<double> extra;
    if (trial % 2 == 1) {
      for (std::uint32_t g = 0; g < gpus; ++g) {
        w.push_back(std::vector<double>{1.0, 1.5, 2.0, 0.7}[static_cast<std::uint32_t>(rng()) % 4]);
        extra.push_back(static_cast<double>(static_cast<std::uint32_t>(rng()) % 3));
      }
    }
    std::vector<std::int32_t> quotas(p.topology().num_physical, -7);
    const auto r = ws.solve(p, 0, counts, SplitGpuTerms{w, extra}, quotas);
    expect_valid(p, counts, quotas, w, extra, r);
    EXPECT_NEAR(r.max_load, brute_force(p, counts, w, extra), 1e-9) << "trial " << trial;
  }
}

TEST(SplitSolver, MatchesHallOptimumOnMediumInstances) {
  std::mt19937 rng(2026);
  SplitWorkspace ws;
  for (int trial = 0; trial < 150; ++trial) {
    const std::uint32_t gpus =
        4 + static_cast<std::uint32_t>(rng()) % 5;  // 4..8 GPUs: 2^8 subsets for the oracle
    const std::uint32_t experts = 8 + static_cast<std::uint32_t>(rng()) % 25;
    const std::uint32_t per_gpu =
        (experts + gpus - 1) / gpus + 1 + static_cast<std::uint32_t>(rng()) % 3;
    const Placement p = random_placement(rng, experts, gpus, per_gpu);
    std::vector<std::int32_t> counts(experts);
    std::lognormal_distribution<double> skew(4.0, 1.5);
    for (auto& c : counts) c = static_cast<std::int32_t>(std::min(skew(rng), 50000.0));
    std::vector<double> extra;
    if (trial % 3 == 0) {
      for (std::uint32_t g = 0; g < gpus; ++g)
        extra.push_back(static_cast<double>(static_cast<std::uint32_t>(rng()) % 500));
    }
    std::vector<std::int32_t> quotas(p.topology().num_physical);
    const auto r = ws.solve(p, 0, counts, SplitGpuTerms{{}, extra}, quotas);
    expect_valid(p, counts, quotas, {}, extra, r);
    EXPECT_EQ(r.max_load, hall_optimum(p, counts, extra)) << "trial " << trial;
  }
}

// Batches whose layer total passes 2^31 tokens: the capacity rule once allowed a relative
// rounding slack of 1e-9, a whole token at 1e9, and missed the optimum by one or two tokens.
TEST(SplitSolver, ExactForCountsNearInt32Max) {
  Topology t;
  t.num_layers = 1;
  t.num_logical = 4;
  t.num_nodes = 1;
  t.num_gpus = 3;
  t.num_physical = 6;
  const Placement reported = Placement::from_phy2log(t, {0, 1, 0, 2, 1, 3});
  SplitWorkspace ws;
  std::vector<std::int32_t> quotas(6);
  for (const auto& counts : std::vector<std::vector<std::int32_t>>{
           {528212163, 796964132, 833703267, 854169749},
           std::vector<std::int32_t>(4, std::numeric_limits<std::int32_t>::max())}) {
    const auto r = ws.solve(reported, 0, counts, {}, quotas);
    expect_valid(reported, counts, quotas, {}, {}, r);
    EXPECT_EQ(r.max_load, hall_optimum(reported, counts, {}));
  }

  std::mt19937 rng(31);
  for (int trial = 0; trial < 200; ++trial) {
    const std::uint32_t gpus = 3 + static_cast<std::uint32_t>(rng()) % 4;
    const std::uint32_t experts = 4 + static_cast<std::uint32_t>(rng()) % 9;
    const std::uint32_t per_gpu = (experts + gpus - 1) / gpus + 1;
    const Placement p = random_placement(rng, experts, gpus, per_gpu);
    std::vector<std::int32_t> counts(experts);
    std::uniform_int_distribution<std::int32_t> big(0, std::numeric_limits<std::int32_t>::max());
    for (auto& c : counts) c = big(rng);
    std::vector<double> extra;
    if (trial % 2 == 0) {
      for (std::uint32_t g = 0; g < gpus; ++g) extra.push_back(static_cast<double>(big(rng)));
    }
    std::vector<std::int32_t> out(p.topology().num_physical);
    const auto r = ws.solve(p, 0, counts, SplitGpuTerms{{}, extra}, out);
    expect_valid(p, counts, out, {}, extra, r);
    EXPECT_EQ(r.max_load, hall_optimum(p, counts, extra)) << "trial " << trial;
  }
}

// gpu_token_room against its definition, evaluated one n at a time around the answer, at every
// magnitude from a few tokens to 2^50, for both the strict and the non-strict rule.
TEST(SplitSolver, GpuTokenRoomIsTheLargestFittingCount) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int trial = 0; trial < 20000; ++trial) {
    const double scale = std::ldexp(1.0, static_cast<int>(rng() % 51));
    const double weight = trial % 3 == 0 ? 1.0 : 0.25 + 4.0 * unit(rng);
    const double extra = trial % 2 == 0 ? 0.0 : scale * unit(rng);
    const auto fixed = static_cast<std::int64_t>(std::floor(scale * unit(rng)));
    const bool strict = trial % 4 < 2;
    const auto cap = static_cast<std::int64_t>(2 * scale) + 1;
    // Bounds that are reachable loads (the solver's case) and arbitrary ones.
    const auto n_target = static_cast<std::int64_t>(std::floor(scale * unit(rng)));
    const double bound = trial % 5 < 3
                             ? eplb::split_gpu_load(weight, extra, fixed + n_target)
                             : weight * (extra + static_cast<double>(fixed) + scale * unit(rng));
    const auto fits = [&](std::int64_t n) {
      const double load = eplb::split_gpu_load(weight, extra, fixed + n);
      return strict ? load < bound : load <= bound;
    };
    const std::int64_t room = eplb::gpu_token_room(weight, extra, fixed, bound, strict, cap);
    if (room < 0) {
      EXPECT_FALSE(fits(0)) << "trial " << trial;
      continue;
    }
    ASSERT_LE(room, cap);
    EXPECT_TRUE(fits(room)) << "trial " << trial;
    if (room < cap) {
      EXPECT_FALSE(fits(room + 1)) << "trial " << trial << ": " << room;
    }
    if (!strict && trial % 5 < 3) {
      EXPECT_GE(room, std::min(cap, n_target)) << "a reachable load was excluded";
    }
  }
}

// Fractional extra loads: the reported max load is exactly the load of the reported quotas (as
// split_gpu_loads computes it), whichever path found it (the warm start or a flow check).
TEST(SplitSolver, ReportsTheQuotasLoadExactlyWithFractionalExtras) {
  std::mt19937 rng(404);
  std::uniform_real_distribution<double> frac(0.0, 50.0);
  SplitWorkspace ws;
  for (int trial = 0; trial < 2000; ++trial) {
    const std::uint32_t gpus = 2 + static_cast<std::uint32_t>(rng()) % 3;
    const std::uint32_t experts = 2 + static_cast<std::uint32_t>(rng()) % 4;
    const std::uint32_t per_gpu = (experts + gpus - 1) / gpus + 1;
    const Placement p = random_placement(rng, experts, gpus, per_gpu);
    std::vector<std::int32_t> counts(experts);
    for (auto& c : counts) c = static_cast<std::int32_t>(rng() % 60);
    std::vector<double> extra(gpus);
    for (auto& x : extra) x = frac(rng);
    std::vector<double> w;
    if (trial % 2 == 1) {
      for (std::uint32_t g = 0; g < gpus; ++g)
        w.push_back(0.5 + 0.25 * static_cast<double>(rng() % 5));
    }
    std::vector<std::int32_t> quotas(p.topology().num_physical);
    const auto r = ws.solve(p, 0, counts, SplitGpuTerms{w, extra}, quotas);
    std::vector<double> loads(gpus);
    eplb::split_gpu_loads(p.topology(), quotas, SplitGpuTerms{w, extra}, loads);
    EXPECT_EQ(r.max_load, *std::max_element(loads.begin(), loads.end())) << "trial " << trial;
  }
}

// Extra loads far above the counts (a token below their precision): the solve still ends in a
// few dozen flow checks with valid quotas, where the bisection used to spin through all 200
// checks on (lo, hi) with no double between them and the warm start handed out billions of
// tokens one at a time (seconds per call).
TEST(SplitSolver, ExtraLoadsBeyondTokenPrecisionStayCheap) {
  Topology t;
  t.num_layers = 1;
  t.num_logical = 8;
  t.num_nodes = 1;
  t.num_gpus = 12;
  t.num_physical = 24;
  const Placement p = Placement::from_phy2log(
      t, {6, 4, 5, 2, 3, 2, 4, 0, 5, 1, 6, 7, 1, 1, 2, 2, 3, 7, 2, 6, 3, 2, 7, 4});
  const std::vector<std::int32_t> counts(8, std::numeric_limits<std::int32_t>::max());
  SplitWorkspace ws;
  std::vector<std::int32_t> quotas(24);
  for (const double big : {1e25, 1e100, 1e300}) {
    const std::vector<double> extra{big, 0, 89, big, 38, big, 49, 0, 23, big, 0, 39};
    const auto r = ws.solve(p, 0, counts, SplitGpuTerms{{}, extra}, quotas);
    std::vector<std::int64_t> sum(8, 0);
    for (std::uint32_t s = 0; s < 24; ++s) {
      ASSERT_GE(quotas[s], 0);
      sum[static_cast<std::size_t>(p.phy2log_layer(0)[s])] += quotas[s];
    }
    for (std::size_t e = 0; e < 8; ++e) EXPECT_EQ(sum[e], counts[e]) << "expert " << e;
    std::vector<double> loads(12);
    eplb::split_gpu_loads(t, quotas, SplitGpuTerms{{}, extra}, loads);
    EXPECT_EQ(r.max_load, *std::max_element(loads.begin(), loads.end())) << big;
    EXPECT_GE(r.max_load, big);
    EXPECT_LE(r.max_load, r.heuristic_load) << big;
    EXPECT_LE(r.flow_checks, 80U) << big;
  }
}

TEST(SplitSolver, SkipsWhenNoExpertIsReplicated) {
  std::mt19937 rng(1);
  const Placement p = random_placement(rng, 8, 4, 2);
  const std::vector<std::int32_t> counts{5, 0, 7, 1, 9, 3, 2, 4};
  std::vector<std::int32_t> quotas(8);
  SplitWorkspace ws;
  const auto r = ws.solve(p, 0, counts, {}, quotas);
  EXPECT_EQ(r.flow_checks, 0U);
  expect_valid(p, counts, quotas, {}, {}, r);
  for (std::uint32_t s = 0; s < 8; ++s) {
    EXPECT_EQ(quotas[s], counts[static_cast<std::size_t>(p.phy2log_layer(0)[s])]);
  }
}

TEST(SplitSolver, AllTokensOfOneHotExpertSpreadEvenly) {
  // One expert with a replica on each of 4 GPUs and all the tokens: quotas 25 each.
  Topology t;
  t.num_layers = 1;
  t.num_logical = 4;
  t.num_physical = 8;
  t.num_gpus = 4;
  const Placement p = Placement::from_phy2log(t, {0, 1, 0, 2, 0, 3, 0, 0});
  std::vector<std::int32_t> quotas(8);
  SplitWorkspace ws;
  const auto r = ws.solve(p, 0, std::vector<std::int32_t>{100, 0, 0, 0}, {}, quotas);
  EXPECT_EQ(r.max_load, 25.0);
  // A GPU twice as slow: T = 29 is the optimum (14 tokens on GPU 0 weigh 28, 29 on each other
  // GPU: 14 + 3 * 29 >= 100), T = 28 is not (14 + 3 * 28 < 100).
  const std::vector<double> w{2.0, 1.0, 1.0, 1.0};
  const auto r2 = ws.solve(p, 0, std::vector<std::int32_t>{100, 0, 0, 0}, {w, {}}, quotas);
  EXPECT_EQ(r2.max_load, 29.0);
  EXPECT_LE(quotas[0], 14);
}

TEST(SplitSolver, RejectsBadInputNamingTheValue) {
  std::mt19937 rng(3);
  const Placement p = random_placement(rng, 4, 2, 3);
  SplitWorkspace ws;
  std::vector<std::int32_t> quotas(6);
  const std::vector<std::int32_t> counts{1, 2, 3, 4};
  EXPECT_NE(
      eplb::test::error_message([&] { ws.solve(p, 1, counts, {}, quotas); }).find("layer (1)"),
      std::string::npos);
  EXPECT_NE(eplb::test::error_message([&] {
              ws.solve(p, 0, std::vector<std::int32_t>{1, -5, 0, 0}, {}, quotas);
            }).find("counts[1] = -5"),
            std::string::npos);
  EXPECT_NE(eplb::test::error_message([&] {
              ws.solve(p, 0, std::vector<std::int32_t>{1, 2}, {}, quotas);
            }).find("counts has 2"),
            std::string::npos);
  const std::vector<double> bad_w{1.0, 0.0};
  EXPECT_NE(eplb::test::error_message([&] {
              ws.solve(p, 0, counts, {bad_w, {}}, quotas);
            }).find("gpu_weights[1]"),
            std::string::npos);
  const std::vector<double> bad_x{1.0, std::nan("")};
  EXPECT_NE(eplb::test::error_message([&] {
              ws.solve(p, 0, counts, {{}, bad_x}, quotas);
            }).find("gpu_extra_load[1]"),
            std::string::npos);
  std::vector<std::int32_t> short_quotas(5);
  EXPECT_NE(eplb::test::error_message([&] {
              ws.solve(p, 0, counts, {}, short_quotas);
            }).find("quotas has 5"),
            std::string::npos);
}

}  // namespace
