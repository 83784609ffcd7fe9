// eplb_split_solve through the C ABI: exact optimum against a brute force, quotas integral and
// summing exactly, the workspace optional, and bad input answered with a status and a message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "eplb/eplb.h"

namespace {

struct PlacementPtr {
  eplb_placement* p = nullptr;
  ~PlacementPtr() { eplb_placement_destroy(p); }
};

// 2 layers, 5 experts, 3 GPUs x 3 slots: 9 slots for 5 experts, so some experts have several
// replicas in each layer (some on one GPU twice).
const std::vector<std::int32_t> kPhy2log{0, 1, 2, 0, 3, 4, 1, 0, 2,   // layer 0
                                         4, 3, 2, 1, 0, 4, 3, 2, 1};  // layer 1

double brute_force(std::uint32_t layer, const std::vector<std::int32_t>& counts,
                   const std::vector<double>& w) {
  const std::int32_t* row = kPhy2log.data() + layer * 9;
  std::vector<std::int32_t> left(counts);
  std::vector<double> load(3, 0.0);
  double best = std::numeric_limits<double>::infinity();
  std::function<void(int)> visit = [&](int s) {
    if (s == 9) {
      if (std::all_of(left.begin(), left.end(), [](std::int32_t v) { return v == 0; })) {
        double worst = 0.0;
        for (int g = 0; g < 3; ++g)
          worst =
              std::max(worst, w[static_cast<std::size_t>(g)] * load[static_cast<std::size_t>(g)]);
        best = std::min(best, worst);
      }
      return;
    }
    const auto e = static_cast<std::size_t>(row[s]);
    const auto g = static_cast<std::size_t>(s / 3);
    for (std::int32_t q = 0; q <= left[e]; ++q) {
      left[e] -= q;
      load[g] += q;
      visit(s + 1);
      left[e] += q;
      load[g] -= q;
    }
  };
  visit(0);
  return best;
}

TEST(SplitCapi, ExactOptimumAndExactQuotas) {
  PlacementPtr p;
  ASSERT_EQ(
      eplb_placement_create_from_phy2log(2, 5, 9, 1, 3, kPhy2log.data(), kPhy2log.size(), &p.p),
      EPLB_OK);
  eplb_split_workspace* ws = nullptr;
  ASSERT_EQ(eplb_split_workspace_create(&ws), EPLB_OK);
  std::mt19937 rng(4);
  for (int trial = 0; trial < 60; ++trial) {
    const auto layer = static_cast<std::uint32_t>(trial % 2);
    std::vector<std::int32_t> counts(5);
    for (auto& c : counts) c = static_cast<std::int32_t>(static_cast<std::uint32_t>(rng()) % 5);
    std::vector<double> w{1.0, 1.0, 1.0};
    if (trial % 3 == 0) w = {1.0, 2.0, 1.5};
    std::vector<std::int32_t> quotas(9, -1);
    double max_load = -1;
    ASSERT_EQ(eplb_split_solve(trial % 4 == 0 ? nullptr : ws, p.p, layer, counts.data(), 5,
                               w.data(), nullptr, 3, quotas.data(), 9, &max_load),
              EPLB_OK)
        << eplb_last_error_message();
    std::vector<std::int32_t> sum(5, 0);
    for (int s = 0; s < 9; ++s) {
      ASSERT_GE(quotas[static_cast<std::size_t>(s)], 0);
      sum[static_cast<std::size_t>(kPhy2log[layer * 9 + static_cast<std::uint32_t>(s)])] +=
          quotas[static_cast<std::size_t>(s)];
    }
    EXPECT_EQ(sum, counts);
    EXPECT_NEAR(max_load, brute_force(layer, counts, w), 1e-9) << "trial " << trial;
  }
  eplb_split_workspace_destroy(ws);
  eplb_split_workspace_destroy(nullptr);
}

TEST(SplitCapi, BadInputReturnsStatusAndNamesTheValue) {
  PlacementPtr p;
  ASSERT_EQ(
      eplb_placement_create_from_phy2log(2, 5, 9, 1, 3, kPhy2log.data(), kPhy2log.size(), &p.p),
      EPLB_OK);
  std::vector<std::int32_t> counts{1, 2, 3, 4, 5};
  std::vector<std::int32_t> quotas(9, 77);
  const std::vector<double> w{1.0, -1.0, 1.0};
  auto expect = [&](eplb_status st, const char* needle) {
    EXPECT_EQ(st, EPLB_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(eplb_last_error_message()).find(needle), std::string::npos)
        << eplb_last_error_message();
    EXPECT_EQ(quotas, std::vector<std::int32_t>(9, 77));  // untouched on failure
  };
  expect(eplb_split_solve(nullptr, nullptr, 0, counts.data(), 5, nullptr, nullptr, 0, quotas.data(),
                          9, nullptr),
         "placement is NULL");
  expect(
      eplb_split_solve(nullptr, p.p, 0, nullptr, 5, nullptr, nullptr, 0, quotas.data(), 9, nullptr),
      "counts is NULL");
  expect(eplb_split_solve(nullptr, p.p, 2, counts.data(), 5, nullptr, nullptr, 0, quotas.data(), 9,
                          nullptr),
         "layer (2)");
  expect(eplb_split_solve(nullptr, p.p, 0, counts.data(), 4, nullptr, nullptr, 0, quotas.data(), 9,
                          nullptr),
         "counts has 4");
  expect(eplb_split_solve(nullptr, p.p, 0, counts.data(), 5, nullptr, nullptr, 0, quotas.data(), 8,
                          nullptr),
         "out_quotas_len (8)");
  expect(eplb_split_solve(nullptr, p.p, 0, counts.data(), 5, w.data(), nullptr, 2, quotas.data(), 9,
                          nullptr),
         "gpu_len (2)");
  expect(eplb_split_solve(nullptr, p.p, 0, counts.data(), 5, w.data(), nullptr, 3, quotas.data(), 9,
                          nullptr),
         "gpu_weights[1] = -1");
  counts[3] = -2;
  expect(eplb_split_solve(nullptr, p.p, 0, counts.data(), 5, nullptr, nullptr, 0, quotas.data(), 9,
                          nullptr),
         "counts[3] = -2");
  EXPECT_EQ(eplb_split_workspace_create(nullptr), EPLB_ERR_INVALID_ARGUMENT);
}

}  // namespace

namespace {

// eplb_split_solve_by_node: the plain optimum kept (slack 0), quotas summing per (expert, node),
// and the reported cross-node tokens recomputed from the quotas; fewer than a node-blind split.
TEST(SplitCapi, ByNodeKeepsTheOptimumAndCountsCrossNodeTokens) {
  // 3 GPUs in 3 nodes (one GPU each) of layer 0 of kPhy2log.
  PlacementPtr p;
  ASSERT_EQ(
      eplb_placement_create_from_phy2log(2, 5, 9, 3, 3, kPhy2log.data(), kPhy2log.size(), &p.p),
      EPLB_OK);
  std::mt19937 rng(5);
  eplb_split_workspace* ws = nullptr;
  ASSERT_EQ(eplb_split_workspace_create(&ws), EPLB_OK);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<std::int32_t> by_node(5 * 3), counts(5, 0);
    for (std::size_t i = 0; i < by_node.size(); ++i) {
      by_node[i] = static_cast<std::int32_t>(rng() % 40);
      counts[i / 3] += by_node[i];
    }
    std::vector<std::int32_t> quotas(9 * 3, -1), plain(9);
    double max_load = -1.0, optimum = -1.0;
    std::int64_t cross = -1;
    ASSERT_EQ(eplb_split_solve(ws, p.p, 0, counts.data(), 5, nullptr, nullptr, 0, plain.data(), 9,
                               &optimum),
              EPLB_OK);
    ASSERT_EQ(eplb_split_solve_by_node(ws, p.p, 0, by_node.data(), by_node.size(), nullptr, nullptr,
                                       0, 0.0, quotas.data(), quotas.size(), &max_load, &cross),
              EPLB_OK)
        << eplb_last_error_message();
    EXPECT_DOUBLE_EQ(max_load, optimum);
    std::vector<std::int32_t> sums(by_node.size(), 0);
    std::int64_t recount = 0, blind = 0;
    for (std::size_t s = 0; s < 9; ++s) {
      const auto e = static_cast<std::size_t>(kPhy2log[s]);
      const std::size_t node = s / 3;
      for (std::size_t n = 0; n < 3; ++n) {
        ASSERT_GE(quotas[s * 3 + n], 0);
        sums[e * 3 + n] += quotas[s * 3 + n];
        if (n != node) recount += quotas[s * 3 + n];
      }
      // Node-blind: slot s takes its plain quota in proportion to where the tokens come from.
      if (counts[e] > 0) {
        for (std::size_t n = 0; n < 3; ++n) {
          if (n != node) {
            blind += static_cast<std::int64_t>(plain[s]) * by_node[e * 3 + n] / counts[e];
          }
        }
      }
    }
    EXPECT_EQ(sums, by_node);
    EXPECT_EQ(cross, recount);
    EXPECT_LE(cross, blind + 9);  // the blind estimate rounds down once per slot
  }
  eplb_split_workspace_destroy(ws);
}

}  // namespace

namespace {

// eplb_split_rank_quotas end to end: every rank maps only its own tokens with the mapping
// kernel's quota mode (its CPU reference) and its share; together the slots take exactly the
// batch-wide split.
TEST(SplitCapi, RankSharesRealiseTheBatchSplitThroughQuotaMode) {
  PlacementPtr p;
  ASSERT_EQ(
      eplb_placement_create_from_phy2log(2, 5, 9, 1, 3, kPhy2log.data(), kPhy2log.size(), &p.p),
      EPLB_OK);
  std::mt19937 rng(12);
  constexpr std::uint32_t kRanks = 3, kTopK = 2;
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::vector<std::int32_t>> ids(kRanks);
    std::vector<std::int32_t> rank_counts(kRanks * 5, 0), totals(5, 0);
    for (std::uint32_t g = 0; g < kRanks; ++g) {
      const std::size_t tokens = rng() % 40;
      for (std::size_t t = 0; t < tokens; ++t) {
        const auto a = static_cast<std::int32_t>(rng() % 5);
        const auto b =
            static_cast<std::int32_t>((a + 1 + static_cast<std::int32_t>(rng() % 4)) % 5);
        for (const std::int32_t e : {a, b}) {
          ids[g].push_back(e);
          ++rank_counts[g * 5 + static_cast<std::size_t>(e)];
          ++totals[static_cast<std::size_t>(e)];
        }
      }
    }
    std::vector<std::int32_t> quotas(9);
    ASSERT_EQ(eplb_split_solve(nullptr, p.p, 0, totals.data(), 5, nullptr, nullptr, 0,
                               quotas.data(), 9, nullptr),
              EPLB_OK);
    std::vector<std::int64_t> counts(2 * 9, 0);
    for (std::uint32_t g = 0; g < kRanks; ++g) {
      std::vector<std::int32_t> mine(9, -1);
      ASSERT_EQ(eplb_split_rank_quotas(p.p, 0, quotas.data(), 9, rank_counts.data(),
                                       rank_counts.size(), kRanks, g, mine.data(), 9),
                EPLB_OK)
          << eplb_last_error_message();
      eplb_device_tables* tables = nullptr;
      ASSERT_EQ(
          eplb_device_tables_create(p.p, g, 0, EPLB_DEVICE_TABLES_HOST_ONLY, nullptr, &tables),
          EPLB_OK);
      std::vector<std::int32_t> physical(ids[g].size());
      EXPECT_EQ(eplb_kernel_map_record_cpu(tables, 0, EPLB_MAP_QUOTA, 0, mine.data(), ids[g].data(),
                                           EPLB_IDS_INT32, ids[g].size() / kTopK, kTopK, nullptr,
                                           counts.data(), physical.data(), nullptr),
                EPLB_OK)
          << eplb_last_error_message();
      eplb_device_tables_destroy(tables);
    }
    for (std::size_t s = 0; s < 9; ++s) EXPECT_EQ(counts[s], quotas[s]) << "slot " << s;
  }
}

}  // namespace
