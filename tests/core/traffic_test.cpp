// Nodes touched per token: hand-made cases for each step of the rule, and an independent
// implementation (sets, scanning every node) on random placements and rows.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <vector>

#include "error.hpp"
#include "placement.hpp"
#include "tracker.hpp"
#include "traffic.hpp"

namespace eplb {
namespace {

Topology topology(std::uint32_t e, std::uint32_t r, std::uint32_t nodes, std::uint32_t gpus) {
  Topology t;
  t.num_layers = 1;
  t.num_logical = e;
  t.num_physical = r;
  t.num_nodes = nodes;
  t.num_gpus = gpus;
  return t;
}

// The rule, written from its statement: node sets from the topology's own slot -> GPU -> node
// functions, a fresh vote over all nodes each round.
std::uint32_t reference(const Topology& t, const std::vector<std::int32_t>& phy2log,
                        const std::vector<std::int32_t>& row) {
  std::map<std::int32_t, std::set<std::uint32_t>> nodes_of;
  for (std::uint32_t s = 0; s < t.num_physical; ++s) {
    nodes_of[phy2log[s]].insert(t.node_of_gpu(t.gpu_of_slot(s)));
  }
  std::set<std::int32_t> experts;
  for (std::int32_t v : row) {
    if (v >= 0) experts.insert(v);
  }
  std::set<std::uint32_t> chosen;
  for (std::int32_t e : experts) {
    if (nodes_of[e].size() == 1) chosen.insert(*nodes_of[e].begin());
  }
  std::set<std::int32_t> uncovered = experts;
  while (true) {
    for (auto it = uncovered.begin(); it != uncovered.end();) {
      bool served = false;
      for (std::uint32_t n : nodes_of[*it]) served = served || chosen.count(n) > 0;
      it = served ? uncovered.erase(it) : std::next(it);
    }
    if (uncovered.empty()) break;
    std::uint32_t best = 0, best_votes = 0;
    for (std::uint32_t n = 0; n < t.num_nodes; ++n) {
      std::uint32_t votes = 0;
      for (std::int32_t e : uncovered) votes += nodes_of[e].count(n) > 0 ? 1 : 0;
      if (votes > best_votes) {
        best = n;
        best_votes = votes;
      }
    }
    chosen.insert(best);
  }
  return static_cast<std::uint32_t>(chosen.size());
}

std::uint32_t count(const Placement& p, const std::vector<std::int32_t>& row) {
  NodesTouched rule(p, 0);
  return rule.count(row);
}

TEST(Traffic, SingleNodeExpertsFixTheirNode) {
  // 2 nodes x 4 slots: node 0 holds {0,1,2,3}, node 1 holds {4,5,0,1}.
  const Topology t = topology(6, 8, 2, 2);
  const auto p = Placement::from_phy2log(t, {0, 1, 2, 3, 4, 5, 0, 1});
  EXPECT_EQ(count(p, {4, 0}), 1U);      // 4 fixes node 1; 0 reuses it
  EXPECT_EQ(count(p, {0, 4}), 1U);      // order does not matter
  EXPECT_EQ(count(p, {2, 4}), 2U);      // two single-node experts on different nodes
  EXPECT_EQ(count(p, {0, 5, 3}), 2U);   // 5 -> node 1, 3 -> node 0, 0 reuses either
  EXPECT_EQ(count(p, {0, 1}), 1U);      // both everywhere: one node suffices
  EXPECT_EQ(count(p, {-1, -1}), 0U);    // fully masked
  EXPECT_EQ(count(p, {4, 4, -1}), 1U);  // repeats count once
}

TEST(Traffic, MostUncoveredNodeWinsLowestIndexOnTies) {
  // 3 nodes x 2 slots: node 0 {0,1}, node 1 {0,2}, node 2 {1,2}. Every expert is on two nodes.
  const Topology t = topology(3, 6, 3, 3);
  const auto p = Placement::from_phy2log(t, {0, 1, 0, 2, 1, 2});
  EXPECT_EQ(count(p, {0, 1, 2}), 2U);  // votes 2/2/2: node 0 covers 0, 1; then 2 needs another
  EXPECT_EQ(count(p, {1, 2}), 1U);     // node 2 holds both (votes 1/1/2)
}

TEST(Traffic, ChosenNodesAreReused) {
  // node 0 {0,1}, node 1 {2,0}: 2 fixes node 1, so 0 is served there, not from node 0.
  const Topology t = topology(3, 4, 2, 2);
  const auto p = Placement::from_phy2log(t, {0, 1, 2, 0});
  EXPECT_EQ(count(p, {0, 2}), 1U);
  EXPECT_EQ(count(p, {0, 1, 2}), 2U);
}

TEST(Traffic, MatchesIndependentImplementationOnRandomPlacements) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    const std::uint32_t nodes = 1 + static_cast<std::uint32_t>(rng() % 6);
    const std::uint32_t gpus = nodes * (1 + static_cast<std::uint32_t>(rng() % 2));
    const std::uint32_t per_gpu = 1 + static_cast<std::uint32_t>(rng() % 3);
    const std::uint32_t r = gpus * per_gpu;
    const std::uint32_t e = 1 + static_cast<std::uint32_t>(rng() % r);
    std::vector<std::int32_t> map(r);
    for (std::uint32_t s = 0; s < r; ++s) {
      map[s] = s < e ? static_cast<std::int32_t>(s) : static_cast<std::int32_t>(rng() % e);
    }
    std::shuffle(map.begin(), map.end(), rng);
    const Topology t = topology(e, r, nodes, gpus);
    const auto p = Placement::from_phy2log(t, map);
    const std::uint32_t k = 1 + static_cast<std::uint32_t>(rng() % 6);
    NodesTouched rule(p, 0);
    std::vector<std::int32_t> rows;
    double sum = 0;
    std::size_t counted = 0;
    for (int n = 0; n < 20; ++n) {
      std::vector<std::int32_t> row(k);
      for (auto& v : row) v = static_cast<std::int32_t>(rng() % (e + 1)) - 1;
      const std::uint32_t want = reference(t, map, row);
      ASSERT_EQ(rule.count(row), want) << "trial " << trial;
      rows.insert(rows.end(), row.begin(), row.end());
      if (want > 0) {
        sum += want;
        ++counted;
      }
    }
    const auto summary = nodes_touched(p, 0, rows, 20, k);
    EXPECT_EQ(summary.rows, counted);
    EXPECT_DOUBLE_EQ(summary.mean, counted > 0 ? sum / static_cast<double>(counted) : 0.0);
  }
}

TEST(Traffic, ReportOverTrackerSamples) {
  Topology t = topology(4, 4, 2, 2);
  t.num_layers = 2;
  const auto p = Placement::from_phy2log(t, {0, 1, 2, 3, 0, 2, 1, 3});
  TrackerOptions o;
  o.num_layers = 2;
  o.num_experts = 4;
  o.top_k = 2;
  o.reservoir_capacity = 10;
  Tracker tracker(o);
  tracker.record(0, std::vector<std::int32_t>{0, 1, 0, 2}, 2, 2);  // layer 0: 1 and 2 nodes
  tracker.record(1, std::vector<std::int32_t>{0, 1, 0, 2, 1, 3, -1, -1}, 4, 2);  // 2, 1, 1
  const auto report = nodes_touched(p, tracker);
  EXPECT_DOUBLE_EQ(report.layer_mean[0], 1.5);
  EXPECT_DOUBLE_EQ(report.layer_mean[1], 4.0 / 3.0);
  EXPECT_EQ(report.layer_rows[1], 3U);
  EXPECT_DOUBLE_EQ(report.mean, 7.0 / 5.0);
  EXPECT_EQ(report.lower_bound, 1.0);
}

TEST(Traffic, Errors) {
  const Topology t = topology(3, 4, 2, 2);
  const auto p = Placement::from_phy2log(t, {0, 1, 2, 0});
  const std::vector<std::int32_t> rows = {0, 3};
  try {
    (void)nodes_touched(p, 0, rows, 1, 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expert id 3 at row 0, slot 1"), std::string::npos);
  }
  EXPECT_THROW((void)nodes_touched(p, 1, rows, 1, 2), Error);
  EXPECT_THROW((void)nodes_touched(p, 0, rows, 2, 2), Error);
  EXPECT_THROW((void)nodes_touched(p, 0, rows, 1, 0), Error);
}

}  // namespace
}  // namespace eplb
