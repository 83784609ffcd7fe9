// The worked examples published for DeepSeek's EPLB, as exact-match tests: the README example
// (hierarchical policy), the same weights on the global policy, and the FlashLB example from
// vllm-ascend PR #3042 (see ../shared/research/eplb-anchors.md §1.3).
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "metrics.hpp"
#include "planner.hpp"

namespace eplb {
namespace {

const std::vector<double> kReadmeWeights = {
    90, 132, 40,  61, 104, 165, 39,  4,   73,  56, 183, 86,   // layer 0
    20, 107, 104, 64, 19,  197, 187, 157, 172, 86, 16,  27};  // layer 1

Topology readme_topology(std::uint32_t groups) {
  Topology t;
  t.num_layers = 2;
  t.num_logical = 12;
  t.num_physical = 16;
  t.num_groups = groups;
  t.num_nodes = 2;
  t.num_gpus = 8;
  return t;
}

std::vector<std::int32_t> vec(std::span<const std::int32_t> s) { return {s.begin(), s.end()}; }

Placement plan_deepseek(const Topology& topology, const std::vector<double>& loads) {
  Planner planner(topology, static_cast<std::uint32_t>(Algorithm::deepseek));
  return planner.plan(loads);
}

TEST(DeepseekPublished, ReadmeExampleHierarchical) {
  const Placement p = plan_deepseek(readme_topology(4), kReadmeWeights);
  // Printed in deepseek-ai/EPLB's README.
  EXPECT_EQ(vec(p.phy2log()),
            (std::vector<std::int32_t>{5, 6,  5, 7, 8, 4,  3, 4, 10, 9, 10, 2, 0, 1, 11, 1,  //
                                       7, 10, 6, 8, 6, 11, 8, 9, 2,  4, 5,  1, 5, 0, 3,  1}));
  // Produced by the reference (and asserted by vLLM's test of the same example).
  EXPECT_EQ(vec(p.replica_counts()),
            (std::vector<std::int32_t>{1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1,  //
                                       1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1}));
  ASSERT_EQ(p.log2phy_width(), 2U);
  EXPECT_EQ(vec(p.log2phy()),
            (std::vector<std::int32_t>{12, -1, 15, 13, 11, -1, 6,  -1, 7, 5,  0,  2,   //
                                       1,  -1, 3,  -1, 4,  -1, 9,  -1, 8, 10, 14, -1,  //
                                       13, -1, 15, 11, 8,  -1, 14, -1, 9, -1, 10, 12,  //
                                       2,  4,  0,  -1, 6,  3,  7,  -1, 1, -1, 5,  -1}));
  EXPECT_TRUE(p.provenance().hierarchical);

  std::vector<double> gpu(8);
  layer_gpu_loads(p, 0, std::span(kReadmeWeights).subspan(0, 12), gpu);
  EXPECT_EQ(gpu, (std::vector<double>{121.5, 86.5, 125.0, 113.0, 147.5, 131.5, 156.0, 152.0}));
  layer_gpu_loads(p, 1, std::span(kReadmeWeights).subspan(12, 12), gpu);
  EXPECT_EQ(gpu, (std::vector<double>{173.0, 179.5, 120.5, 172.0, 123.0, 152.0, 118.5, 117.5}));
}

TEST(DeepseekPublished, ReadmeWeightsOnTheGlobalPolicy) {
  // 3 groups do not divide over 2 nodes, so the reference uses its global policy.
  const Placement p = plan_deepseek(readme_topology(3), kReadmeWeights);
  EXPECT_EQ(vec(p.phy2log()),
            (std::vector<std::int32_t>{10, 6,  10, 7, 0, 2,  11, 4, 5, 9, 5, 4, 8, 3, 1, 1,  //
                                       1,  10, 2,  4, 5, 11, 5,  0, 6, 7, 6, 3, 8, 8, 9, 7}));
  EXPECT_EQ(vec(p.replica_counts()),
            (std::vector<std::int32_t>{1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1,  //
                                       1, 1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1}));
  EXPECT_FALSE(p.provenance().hierarchical);
  // The reference's duplicate-on-one-GPU defect, reproduced faithfully: expert 1 twice on GPU 7
  // in layer 0, expert 8 twice on GPU 6 in layer 1.
  EXPECT_EQ(compute_metrics(p, kReadmeWeights).duplicate_pairs, 2U);
}

TEST(DeepseekPublished, FlashLbExample) {
  Topology t;
  t.num_layers = 1;
  t.num_logical = 8;
  t.num_physical = 16;
  t.num_gpus = 8;
  const std::vector<double> loads = {600, 560, 120, 120, 20, 10, 10, 10};
  const Placement p = plan_deepseek(t, loads);
  EXPECT_EQ(vec(p.phy2log()),
            (std::vector<std::int32_t>{0, 1, 2, 1, 3, 1, 0, 4, 0, 5, 0, 6, 0, 7, 1, 1}));
  EXPECT_EQ(vec(p.replica_counts()), (std::vector<std::int32_t>{5, 5, 1, 1, 1, 1, 1, 1}));
  const LayerMetrics m = compute_layer_metrics(p, 0, loads);
  EXPECT_DOUBLE_EQ(m.max_gpu_load, 232.0);  // the number the FlashLB PR quotes
  EXPECT_DOUBLE_EQ(m.mean_gpu_load, 181.25);
  EXPECT_LE(m.lower_bound, 196.67);  // the exact optimum (brute force in the research)
}

}  // namespace
}  // namespace eplb
