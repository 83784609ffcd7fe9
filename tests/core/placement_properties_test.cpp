// Properties every placement from every algorithm must have, on random topologies and loads
// (tie-free, tie-heavy and with all-zero layers): shapes, replica counts summing to R, every
// expert placed, phy2log / counts / log2phy mutually consistent, hierarchical locality, the
// trivial placement for all-zero layers, and determinism.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

#include "algorithms.hpp"
#include "planner.hpp"
#include "support/random_cases.hpp"

namespace eplb {
namespace {

void expect_consistent(const Placement& p) {
  const Topology& t = p.topology();
  ASSERT_EQ(p.phy2log().size(), t.slot_count());
  ASSERT_EQ(p.replica_counts().size(), t.load_count());
  const std::uint32_t width = p.log2phy_width();
  ASSERT_EQ(p.log2phy().size(), t.load_count() * width);
  for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
    const auto map = p.phy2log_layer(layer);
    const auto counts = p.replica_counts_layer(layer);
    std::int64_t total = 0;
    std::vector<int> seen(t.num_logical, 0);
    for (std::int32_t e : map) {
      ASSERT_GE(e, 0);
      ASSERT_LT(static_cast<std::uint32_t>(e), t.num_logical);
      ++seen[static_cast<std::size_t>(e)];
    }
    std::set<std::int32_t> slots;
    for (std::uint32_t e = 0; e < t.num_logical; ++e) {
      ASSERT_GE(counts[e], 1) << "expert " << e << " unplaced in layer " << layer;
      ASSERT_EQ(counts[e], seen[e]);
      total += counts[e];
      for (std::uint32_t r = 0; r < width; ++r) {
        const std::int32_t slot = p.log2phy()[(layer * t.num_logical + e) * width + r];
        if (static_cast<std::int32_t>(r) < counts[e]) {
          ASSERT_EQ(map[static_cast<std::size_t>(slot)], static_cast<std::int32_t>(e));
          ASSERT_TRUE(slots.insert(slot).second) << "slot listed twice";
        } else {
          ASSERT_EQ(slot, -1);
        }
      }
    }
    ASSERT_EQ(total, t.num_physical);
    ASSERT_EQ(slots.size(), t.num_physical);
  }
}

// DeepSeek's hierarchical policy: whole groups per node, every replica on its group's node.
void expect_hierarchical_locality(const Placement& p) {
  const Topology& t = p.topology();
  const std::uint32_t group_size = t.num_logical / t.num_groups;
  const std::uint32_t slots_per_node = t.num_physical / t.num_nodes;
  for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
    const auto map = p.phy2log_layer(layer);
    std::vector<int> node_of_group(t.num_groups, -1);
    std::vector<int> groups_on_node(t.num_nodes, 0);
    for (std::uint32_t slot = 0; slot < t.num_physical; ++slot) {
      const auto group = static_cast<std::uint32_t>(map[slot]) / group_size;
      const int node = static_cast<int>(slot / slots_per_node);
      if (node_of_group[group] < 0) {
        node_of_group[group] = node;
        ++groups_on_node[static_cast<std::size_t>(node)];
      }
      ASSERT_EQ(node_of_group[group], node)
          << "group " << group << " spans two nodes in layer " << layer;
    }
    for (int count : groups_on_node) ASSERT_EQ(count, static_cast<int>(t.num_groups / t.num_nodes));
  }
}

void expect_trivial_layer(const Placement& p, std::uint32_t layer) {
  const auto map = p.phy2log_layer(layer);
  for (std::uint32_t slot = 0; slot < map.size(); ++slot) {
    ASSERT_EQ(map[slot], static_cast<std::int32_t>(slot % p.topology().num_logical));
  }
}

class EveryAlgorithm : public ::testing::TestWithParam<Algorithm> {};

TEST_P(EveryAlgorithm, RandomPlacementsAreConsistent) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 400; ++trial) {
    const bool hierarchical = trial % 2 == 0;
    const Topology t = test::random_topology(rng, hierarchical);
    const auto loads =
        trial % 3 == 0 ? test::random_small_loads(rng, t, 3) : test::random_tie_free_loads(rng, t);
    Planner planner(t, static_cast<std::uint32_t>(GetParam()));
    const Placement p = planner.plan(loads);
    SCOPED_TRACE(::testing::Message() << "trial " << trial);
    expect_consistent(p);
    if (GetParam() == Algorithm::deepseek && hierarchical) {
      bool all_layers_loaded = true;
      for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
        double sum = 0;
        for (std::uint32_t e = 0; e < t.num_logical; ++e) sum += loads[layer * t.num_logical + e];
        all_layers_loaded = all_layers_loaded && sum > 0;
      }
      if (all_layers_loaded) expect_hierarchical_locality(p);
    }
    // Same input, same output.
    const Placement again = planner.plan(loads);
    ASSERT_TRUE(std::equal(p.phy2log().begin(), p.phy2log().end(), again.phy2log().begin()));
    ASSERT_TRUE(std::equal(p.log2phy().begin(), p.log2phy().end(), again.log2phy().begin()));
  }
}

TEST_P(EveryAlgorithm, AllZeroLayersGetTheTrivialPlacement) {
  Topology t;
  t.num_layers = 4;
  t.num_logical = 16;
  t.num_physical = 24;
  t.num_groups = 4;
  t.num_nodes = 2;
  t.num_gpus = 8;
  std::mt19937_64 rng(11);
  auto loads = test::random_tie_free_loads(rng, t);
  for (std::uint32_t layer : {0U, 2U}) {
    std::fill(loads.begin() + layer * 16, loads.begin() + (layer + 1) * 16, 0.0);
  }
  Planner planner(t, static_cast<std::uint32_t>(GetParam()));
  const Placement p = planner.plan(loads);
  expect_consistent(p);
  expect_trivial_layer(p, 0);
  expect_trivial_layer(p, 2);
}

INSTANTIATE_TEST_SUITE_P(Algorithms, EveryAlgorithm,
                         ::testing::Values(Algorithm::deepseek, Algorithm::trivial),
                         [](const auto& param_info) {
                           return std::string(
                               find_algorithm(static_cast<std::uint32_t>(param_info.param))->name);
                         });

TEST(AlgorithmRegistry, IdsAreContiguousAndNamesUnique) {
  const auto registry = algorithm_registry();
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < registry.size(); ++i) {
    EXPECT_EQ(static_cast<std::uint32_t>(registry[i].id), i + 1);
    EXPECT_TRUE(names.insert(registry[i].name).second);
    EXPECT_EQ(find_algorithm(registry[i].name), &registry[i]);
    EXPECT_FALSE(registry[i].description.empty());
  }
  EXPECT_EQ(find_algorithm("default")->id, Algorithm::default_choice);
  EXPECT_EQ(find_algorithm("no-such-thing"), nullptr);
  EXPECT_NE(resolve_algorithm(Algorithm::default_choice), Algorithm::default_choice);
}

}  // namespace
}  // namespace eplb
