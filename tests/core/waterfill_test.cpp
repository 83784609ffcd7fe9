// Shared-expert waterfill (issue #9) against a naive re-implementation of its stated rule, the
// water level as an exact optimum when every GPU is a candidate, and its properties.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "error.hpp"
#include "shared_waterfill.hpp"

namespace {

using eplb::Topology;
using eplb::WaterfillInput;
using eplb::WaterfillWorkspace;

Topology topology(std::uint32_t gpus, std::uint32_t per_gpu) {
  Topology t;
  t.num_layers = 1;
  t.num_logical = gpus * per_gpu;
  t.num_physical = gpus * per_gpu;
  t.num_gpus = gpus;
  return t;
}

std::vector<std::int32_t> random_topk(std::mt19937& rng, const Topology& t, std::size_t tokens,
                                      std::size_t k) {
  std::vector<std::int32_t> topk(tokens * k);
  for (std::size_t i = 0; i < tokens; ++i) {
    const bool padding = static_cast<std::uint32_t>(rng()) % 10 == 0;
    for (std::size_t j = 0; j < k; ++j) {
      topk[i * k + j] =
          padding || static_cast<std::uint32_t>(rng()) % 8 == 0
              ? -1
              : static_cast<std::int32_t>(static_cast<std::uint32_t>(rng()) % t.num_physical);
    }
  }
  return topk;
}

// The documented rule, written plainly with sets and a stable sort.
std::vector<std::int32_t> naive(const Topology& t, const std::vector<std::int32_t>& topk,
                                std::size_t k, const std::vector<std::int32_t>& source,
                                const std::vector<double>& w, std::vector<double>& loads) {
  const std::size_t n = topk.size() / k;
  std::vector<std::set<std::uint32_t>> cand(n);
  std::vector<bool> padding(n, true);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < k; ++j) {
      if (topk[i * k + j] >= 0) {
        padding[i] = false;
        cand[i].insert(t.gpu_of_slot(static_cast<std::uint32_t>(topk[i * k + j])));
      }
    }
    if (!source.empty()) cand[i].insert(static_cast<std::uint32_t>(source[i]));
  }
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const std::size_t ca = padding[a] ? 0 : cand[a].size();
    const std::size_t cb = padding[b] ? 0 : cand[b].size();
    return ca < cb;
  });
  std::vector<std::int32_t> shared(n, -1);
  for (const std::size_t i : order) {
    if (padding[i]) continue;
    const std::int64_t src = source.empty() ? -1 : source[i];
    std::int64_t best = -1;
    for (const std::uint32_t g : cand[i]) {  // ascending GPU id
      const double load = (w.empty() ? 1.0 : w[g]) * (loads[g] + 1);
      if (best < 0) {
        best = g;
        continue;
      }
      const double best_load = (w.empty() ? 1.0 : w[static_cast<std::size_t>(best)]) *
                               (loads[static_cast<std::size_t>(best)] + 1);
      if (load < best_load || (load == best_load && g == src)) best = g;
    }
    loads[static_cast<std::size_t>(best)] += 1;
    shared[i] = static_cast<std::int32_t>(best);
  }
  return shared;
}

TEST(Waterfill, MatchesTheNaiveRule) {
  std::mt19937 rng(19);
  WaterfillWorkspace ws;
  for (int trial = 0; trial < 200; ++trial) {
    const Topology t = topology(2 + static_cast<std::uint32_t>(rng()) % 7,
                                1 + static_cast<std::uint32_t>(rng()) % 4);
    const std::size_t k = 1 + static_cast<std::uint32_t>(rng()) % 4;
    const std::size_t n = static_cast<std::uint32_t>(rng()) % 300;
    const auto topk = random_topk(rng, t, n, k);
    std::vector<std::int32_t> source;
    std::vector<double> w;
    if (trial % 2 == 0) {
      for (std::size_t i = 0; i < n; ++i)
        source.push_back(static_cast<std::int32_t>(static_cast<std::uint32_t>(rng()) % t.num_gpus));
    }
    if (trial % 3 == 0) {
      for (std::uint32_t g = 0; g < t.num_gpus; ++g)
        w.push_back(1.0 + (static_cast<std::uint32_t>(rng()) % 3) * 0.5);
    }
    std::vector<double> loads(t.num_gpus);
    for (auto& l : loads) l = static_cast<double>(static_cast<std::uint32_t>(rng()) % 50);
    std::vector<double> expected_loads = loads;
    const auto expected = naive(t, topk, k, source, w, expected_loads);

    std::vector<std::int32_t> out(n * (k + 1), 123);
    ws.assign(t, WaterfillInput{topk, k, source, w, false}, loads, out);
    EXPECT_EQ(loads, expected_loads) << "trial " << trial;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < k; ++j) ASSERT_EQ(out[i * (k + 1) + j], topk[i * k + j]);
      const std::int32_t last = out[i * (k + 1) + k];
      ASSERT_EQ(last,
                expected[i] < 0 ? -1 : static_cast<std::int32_t>(t.num_physical) + expected[i])
          << "trial " << trial << " token " << i;
    }
  }
}

TEST(Waterfill, AnyGpuReachesTheWaterLevel) {
  // Every GPU a candidate, unit weights: the max load is the exact optimum
  // max(max initial load, the smallest T with sum(max(0, T - load)) >= tokens).
  std::mt19937 rng(5);
  WaterfillWorkspace ws;
  for (int trial = 0; trial < 100; ++trial) {
    const Topology t = topology(2 + static_cast<std::uint32_t>(rng()) % 15, 2);
    const std::size_t n = 1 + static_cast<std::uint32_t>(rng()) % 500;
    std::vector<std::int32_t> topk(n);
    for (auto& s : topk)
      s = static_cast<std::int32_t>(static_cast<std::uint32_t>(rng()) % t.num_physical);
    std::vector<double> loads(t.num_gpus);
    for (auto& l : loads) l = static_cast<double>(static_cast<std::uint32_t>(rng()) % 100);
    double opt = *std::max_element(loads.begin(), loads.end());
    while (true) {
      double room = 0.0;
      for (const double l : loads) room += std::max(0.0, opt - l);
      if (room >= static_cast<double>(n)) break;
      opt += 1.0;
    }
    std::vector<std::int32_t> out(n * 2);
    ws.assign(t, WaterfillInput{topk, 1, {}, {}, true}, loads, out);
    EXPECT_EQ(*std::max_element(loads.begin(), loads.end()), opt) << "trial " << trial;
  }
}

TEST(Waterfill, KeepsSharedWorkOnVisitedGpusAndCountsIt) {
  std::mt19937 rng(8);
  const Topology t = topology(8, 4);
  const std::size_t k = 4;
  const std::size_t n = 1000;
  const auto topk = random_topk(rng, t, n, k);
  std::vector<double> loads(8, 0.0);
  std::vector<std::int32_t> out(n * (k + 1));
  WaterfillWorkspace ws;
  ws.assign(t, WaterfillInput{topk, k, {}, {}, false}, loads, out);
  double assigned = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t shared = out[i * (k + 1) + k];
    bool any = false;
    bool visited = false;
    for (std::size_t j = 0; j < k; ++j) {
      const std::int32_t s = topk[i * k + j];
      if (s < 0) continue;
      any = true;
      visited |= shared == static_cast<std::int32_t>(t.num_physical +
                                                     t.gpu_of_slot(static_cast<std::uint32_t>(s)));
    }
    EXPECT_EQ(shared < 0, !any);
    if (any) {
      EXPECT_TRUE(visited) << "token " << i;
      ++assigned;
    }
  }
  double total = 0;
  for (const double l : loads) total += l;
  EXPECT_EQ(total, assigned);
  // Deterministic: the same input gives the same output.
  std::vector<double> loads2(8, 0.0);
  std::vector<std::int32_t> out2(n * (k + 1));
  ws.assign(t, WaterfillInput{topk, k, {}, {}, false}, loads2, out2);
  EXPECT_EQ(out, out2);
}

TEST(Waterfill, RejectsBadInputNamingTheValue) {
  const Topology t = topology(2, 2);
  WaterfillWorkspace ws;
  std::vector<double> loads(2, 0.0);
  std::vector<std::int32_t> out(6);
  auto message = [&](const std::vector<std::int32_t>& topk, std::size_t k,
                     const std::vector<std::int32_t>& source, std::vector<double> l) {
    try {
      ws.assign(t, WaterfillInput{topk, k, source, {}, false}, l, out);
    } catch (const eplb::Error& e) {
      EXPECT_EQ(e.code(), eplb::Errc::invalid_argument);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({0, 1, 2, 9}, 2, {}, loads).find("topk_slots[3] = 9"), std::string::npos);
  EXPECT_NE(message({0, 1, 2, 3}, 0, {}, loads).find("top_k (0)"), std::string::npos);
  EXPECT_NE(message({0, 1, 2, 3}, 2, {0, 5}, loads).find("source_gpu[1] = 5"), std::string::npos);
  EXPECT_NE(message({0, 1, 2, 3}, 2, {}, {0.0, -1.0}).find("gpu_loads[1] = -1"), std::string::npos);
  EXPECT_NE(message({0, 1, 2}, 2, {}, loads).find("not a multiple"), std::string::npos);
}

}  // namespace
