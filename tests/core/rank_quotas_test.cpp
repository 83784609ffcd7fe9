// rank_quotas against a direct simulation: the batch's entries of each expert taken in rank order
// and dealt to the expert's replicas by the batch-wide quotas; each rank's share of each slot must
// be what the function returns, and the shares must add up to the batch-wide quotas.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "error.hpp"
#include "placement.hpp"
#include "rank_quotas.hpp"
#include "replica_split.hpp"
#include "support/error_message.hpp"
#include "support/split_placements.hpp"

namespace {

using eplb::Placement;

TEST(RankQuotas, SharesMatchTheRankOrderDealAndSumToTheBatchQuotas) {
  std::mt19937 rng(77);
  for (int trial = 0; trial < 200; ++trial) {
    const std::uint32_t experts = 2 + static_cast<std::uint32_t>(rng() % 6);
    const std::uint32_t nodes = 1 + static_cast<std::uint32_t>(rng() % 2);
    const std::uint32_t per_node = 1 + static_cast<std::uint32_t>(rng() % 3);
    const std::uint32_t gpus = nodes * per_node;
    const std::uint32_t per_gpu =
        (experts + gpus - 1) / gpus + static_cast<std::uint32_t>(rng() % 2);
    const Placement p = eplb::test::random_split_placement(rng, experts, nodes, per_node, per_gpu);
    const eplb::Topology& t = p.topology();
    const std::size_t ranks = 1 + rng() % 5;
    std::vector<std::int32_t> rank_counts(ranks * experts), totals(experts, 0);
    for (std::size_t i = 0; i < rank_counts.size(); ++i) {
      rank_counts[i] = static_cast<std::int32_t>(rng() % 7);
      totals[i % experts] += rank_counts[i];
    }
    std::vector<std::int32_t> quotas(t.num_physical);
    eplb::SplitWorkspace ws;
    ws.solve(p, 0, totals, {}, quotas);

    // The oracle: deal each expert's entries, in rank order, to replicas in log2phy order.
    const auto replicas = p.replica_counts_layer(0);
    const std::size_t width = p.log2phy_width();
    std::vector<std::vector<std::int32_t>> expected(ranks,
                                                    std::vector<std::int32_t>(t.num_physical, 0));
    for (std::size_t e = 0; e < experts; ++e) {
      std::size_t r = 0;
      std::int32_t left = 0;
      auto slot_of = [&](std::size_t k) {
        return static_cast<std::size_t>(p.log2phy()[e * width + k]);
      };
      left = quotas[slot_of(0)];
      for (std::size_t g = 0; g < ranks; ++g) {
        for (std::int32_t i = 0; i < rank_counts[g * experts + e]; ++i) {
          while (left == 0) left = quotas[slot_of(++r)];
          ++expected[g][slot_of(r)];
          --left;
        }
      }
      ASSERT_LT(r, static_cast<std::size_t>(replicas[e]));
    }
    std::vector<std::int32_t> sum(t.num_physical, 0);
    for (std::size_t g = 0; g < ranks; ++g) {
      std::vector<std::int32_t> out(t.num_physical, -1);
      eplb::rank_quotas(p, 0, quotas, rank_counts, ranks, g, out);
      EXPECT_EQ(out, expected[g]) << "trial " << trial << " rank " << g;
      for (std::size_t s = 0; s < out.size(); ++s) sum[s] += out[s];
    }
    EXPECT_EQ(sum, quotas);
  }
}

TEST(RankQuotas, BadInputIsNamed) {
  std::mt19937 rng(3);
  const Placement p = eplb::test::random_split_placement(rng, 3, 1, 2, 2);
  const std::vector<std::int32_t> counts = {1, 2, 3, 4, 5, 6};  // 2 ranks x 3 experts
  std::vector<std::int32_t> quotas(4, 0), out(4);
  EXPECT_NE(eplb::test::error_message([&] {
              eplb::rank_quotas(p, 0, quotas, counts, 2, 2, out);
            }).find("rank (2)"),
            std::string::npos);
  EXPECT_NE(eplb::test::error_message([&] {
              eplb::rank_quotas(p, 0, quotas, counts, 3, 0, out);
            }).find("rank_counts has 6"),
            std::string::npos);
  EXPECT_NE(eplb::test::error_message([&] {
              eplb::rank_quotas(p, 0, quotas, counts, 2, 0, out);
            }).find("sum to 0"),
            std::string::npos);
  EXPECT_NE(eplb::test::error_message([&] {
              eplb::rank_quotas(p, 1, quotas, counts, 2, 0, out);
            }).find("layer (1)"),
            std::string::npos);
}

}  // namespace
