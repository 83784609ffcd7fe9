// The relaxed policy's bounds and node-level layout: the node bound against a brute force over
// every split of the budget, the GPU bound against every plan the planners make under the
// relaxed rules, and the layout's invariants (budget, home replicas, slots, target).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

#include "metrics.hpp"
#include "planner.hpp"
#include "relaxed_bound.hpp"
#include "relaxed_nodes.hpp"
#include "support/random_cases.hpp"

namespace eplb {
namespace {

// Brute force of the node-level relaxation: every vector of remote replica counts r_e with
// sum <= budget; node n's load is its home load minus sum over its experts of w r / (r + 1).
double brute_force_node_bound(const std::vector<double>& w, const std::vector<std::uint32_t>& home,
                              std::uint32_t nodes, std::uint32_t budget) {
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  std::vector<std::uint32_t> r(w.size(), 0);
  double best = INFINITY;
  std::function<void(std::size_t, std::uint32_t)> visit = [&](std::size_t e, std::uint32_t left) {
    if (e == w.size()) {
      std::vector<double> node(nodes, 0.0);
      for (std::size_t x = 0; x < w.size(); ++x) node[home[x]] += w[x] / (r[x] + 1.0);
      best = std::min(best, *std::max_element(node.begin(), node.end()));
      return;
    }
    for (std::uint32_t k = 0; k <= left; ++k) {
      r[e] = k;
      visit(e + 1, left - k);
    }
    r[e] = 0;
  };
  visit(0, budget);
  return std::max(best, total / nodes);
}

TEST(RelaxedBound, NodeBoundMatchesBruteForce) {
  std::mt19937_64 rng(71);
  std::lognormal_distribution<double> popularity(0.0, 1.0);
  for (int trial = 0; trial < 60; ++trial) {
    const std::uint32_t nodes = 2 + static_cast<std::uint32_t>(trial % 2);
    const std::uint32_t per_node = 2 + static_cast<std::uint32_t>(trial % 3);
    std::vector<double> w(nodes * per_node);
    std::vector<std::uint32_t> home(w.size());
    for (std::size_t e = 0; e < w.size(); ++e) {
      w[e] = std::round(1000 * popularity(rng)) + 1;
      home[e] = static_cast<std::uint32_t>(e / per_node);
    }
    if (trial % 4 == 0) {
      for (std::uint32_t i = 0; i < per_node; ++i) w[i] *= 5;  // a hot node
    }
    for (std::uint32_t budget = 0; budget <= 4; ++budget) {
      const double expected = brute_force_node_bound(w, home, nodes, budget);
      EXPECT_NEAR(relaxed_node_bound(w, home, nodes, budget), expected, 1e-9 * expected)
          << "trial " << trial << " budget " << budget;
    }
  }
}

TEST(RelaxedBound, NoRelaxedPlanBeatsTheGpuBound) {
  std::mt19937_64 rng(73);
  for (int trial = 0; trial < 12; ++trial) {
    Topology t;
    t.num_layers = 3;
    t.num_logical = 64;
    t.num_groups = 8;
    t.num_nodes = trial % 2 == 0 ? 8 : 4;
    t.num_gpus = 2 * t.num_nodes;
    t.num_physical = 80;
    auto loads = test::random_tie_free_loads(rng, t);
    for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
      for (std::uint32_t e = 0; e < 8; ++e) loads[layer * 64 + e] *= 1 + trial % 5;
    }
    for (std::uint32_t budget : {0U, 4U, 12U}) {
      const auto algorithm =
          budget == 0 ? Algorithm::balanced_hierarchical : Algorithm::balanced_relaxed;
      Planner planner(t, PlannerSettings{static_cast<std::uint32_t>(algorithm), budget, 1});
      const Placement p = planner.plan(loads);
      for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
        const auto row = std::span<const double>(loads).subspan(layer * 64, 64);
        const double bound = relaxed_gpu_bound(row, t, budget);
        const LayerMetrics m = compute_layer_metrics(p, layer, row);
        EXPECT_LE(bound, m.max_gpu_load * (1 + 1e-9))
            << "trial " << trial << " budget " << budget << " layer " << layer;
        EXPECT_GE(bound, m.lower_bound * (1 - 1e-12));
        // The bound never grows with the budget.
        EXPECT_LE(relaxed_gpu_bound(row, t, budget + 4), bound * (1 + 1e-12));
      }
    }
    Planner deepseek(t, PlannerSettings{static_cast<std::uint32_t>(Algorithm::deepseek), 0, 1});
    const Placement p = deepseek.plan(loads);
    for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
      const auto row = std::span<const double>(loads).subspan(layer * 64, 64);
      EXPECT_LE(relaxed_gpu_bound(row, t, 0),
                compute_layer_metrics(p, layer, row).max_gpu_load * (1 + 1e-9));
    }
  }
}

TEST(RelaxedNodes, LayoutKeepsItsBudgetHomeReplicasSlotsAndTarget) {
  std::mt19937_64 rng(79);
  std::lognormal_distribution<double> popularity(0.0, 1.0);
  const std::uint32_t nodes = 8;
  const std::uint32_t per_node = 32;
  const std::uint32_t slots_per_node = 40;
  const std::uint32_t gpus_per_node = 8;
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<double> w(nodes * per_node);
    std::vector<std::uint32_t> home(w.size());
    for (std::size_t e = 0; e < w.size(); ++e) {
      w[e] = popularity(rng) * (e < per_node ? 3 : 1);
      home[e] = static_cast<std::uint32_t>(e / per_node);
    }
    const std::uint32_t budget = 8 * (1 + static_cast<std::uint32_t>(trial % 4));
    const double bound = relaxed_node_bound(w, home, nodes, budget);
    double hi = 0;
    std::vector<double> home_load(nodes, 0.0);
    for (std::size_t e = 0; e < w.size(); ++e) home_load[home[e]] += w[e];
    hi = *std::max_element(home_load.begin(), home_load.end());
    RelaxedNodeLayout layout;
    for (double target : {hi, 0.5 * (bound + hi), bound * 1.05, bound, bound * 0.99}) {
      if (!relaxed_node_layout(w, home, nodes, slots_per_node, gpus_per_node, budget, target,
                               layout)) {
        EXPECT_LT(target, hi) << "the home layout itself meets the home peak";
        continue;
      }
      EXPECT_LE(layout.cross, budget);
      EXPECT_GE(layout.peak, bound * (1 - 1e-12)) << "below the bound";
      EXPECT_LE(layout.peak, target * (1 + 1e-9));
      std::uint32_t cross = 0;
      std::vector<double> node_load(nodes, 0.0);
      std::vector<std::uint32_t> used(nodes, 0);
      for (std::size_t e = 0; e < w.size(); ++e) {
        std::int32_t sum = 0;
        EXPECT_GE(layout.copies[e * nodes + home[e]], 1) << "expert " << e;
        for (std::uint32_t n = 0; n < nodes; ++n) {
          const std::int32_t k = layout.copies[e * nodes + n];
          EXPECT_LE(k, static_cast<std::int32_t>(gpus_per_node));
          sum += k;
          used[n] += static_cast<std::uint32_t>(k);
          if (n != home[e]) cross += static_cast<std::uint32_t>(k);
          node_load[n] += k * w[e] / layout.counts[e];
        }
        EXPECT_EQ(sum, layout.counts[e]);
      }
      EXPECT_EQ(cross, layout.cross);
      for (std::uint32_t n = 0; n < nodes; ++n) EXPECT_EQ(used[n], slots_per_node);
      EXPECT_NEAR(*std::max_element(node_load.begin(), node_load.end()), layout.peak,
                  1e-9 * layout.peak);
    }
  }
}

}  // namespace
}  // namespace eplb
