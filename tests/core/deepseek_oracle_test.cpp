// An independent oracle for the deepseek mode: a direct, slow transliteration of the reference's
// semantics (linear scans over packs, a stable sort, argmax by scanning) written from the
// specification in ../shared/research/eplb-anchors.md §1.2, compared with the heap-based planner
// on many random topologies. Loads are tie-free (random float32 reals), so any valid tie rule
// gives the same phy2log and replica counts; log2phy is checked for consistency.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "planner.hpp"
#include "support/random_cases.hpp"

namespace eplb {
namespace {

struct Packed {
  std::vector<int> pack;
  std::vector<int> rank;
};

Packed oracle_pack(const std::vector<float>& weights, int num_packs) {
  const int n = static_cast<int>(weights.size());
  const int per_pack = n / num_packs;
  Packed out{std::vector<int>(n), std::vector<int>(n)};
  if (per_pack == 1) {
    std::iota(out.pack.begin(), out.pack.end(), 0);
    return out;
  }
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return weights[a] > weights[b]; });
  std::vector<float> sums(num_packs, 0.0F);
  std::vector<int> items(num_packs, 0);
  for (int item : order) {
    int best = -1;
    for (int p = 0; p < num_packs; ++p) {
      if (items[p] < per_pack && (best < 0 || sums[p] < sums[best])) best = p;
    }
    out.pack[item] = best;
    out.rank[item] = items[best]++;
    sums[best] += weights[item];
  }
  return out;
}

struct Replicated {
  std::vector<int> expert_of_slot;
  std::vector<int> count;
};

Replicated oracle_replicate(const std::vector<float>& weights, int num_slots) {
  const int n = static_cast<int>(weights.size());
  Replicated out{std::vector<int>(num_slots), std::vector<int>(n, 1)};
  std::iota(out.expert_of_slot.begin(), out.expert_of_slot.begin() + n, 0);
  for (int slot = n; slot < num_slots; ++slot) {
    int best = 0;
    for (int e = 1; e < n; ++e) {
      if (weights[e] / static_cast<float>(out.count[e]) >
          weights[best] / static_cast<float>(out.count[best])) {
        best = e;
      }
    }
    out.expert_of_slot[slot] = best;
    ++out.count[best];
  }
  return out;
}

// One layer of rebalance_experts: returns phy2log and the replica counts.
std::pair<std::vector<int>, std::vector<int>> oracle_layer(const Topology& t,
                                                           const std::vector<double>& loads) {
  const bool hierarchical = t.num_groups % t.num_nodes == 0;
  const int groups = hierarchical ? static_cast<int>(t.num_groups) : 1;
  const int nodes = hierarchical ? static_cast<int>(t.num_nodes) : 1;
  const int experts = static_cast<int>(t.num_logical);
  const int group_size = experts / groups;
  const int slots_per_node = static_cast<int>(t.num_physical) / nodes;
  const int gpus_per_node = static_cast<int>(t.num_gpus) / nodes;
  const int slots_per_gpu = static_cast<int>(t.slots_per_gpu());

  std::vector<float> w(loads.begin(), loads.end());
  std::vector<float> group_w(groups);
  for (int g = 0; g < groups; ++g) {
    double sum = 0;
    for (int i = 0; i < group_size; ++i) sum += w[g * group_size + i];
    group_w[g] = static_cast<float>(sum);
  }
  const Packed group_packing = oracle_pack(group_w, nodes);
  // node_experts[n] = the experts of node n, in node-major order.
  std::vector<std::vector<int>> node_experts(nodes, std::vector<int>(experts / nodes));
  for (int e = 0; e < experts; ++e) {
    const int g = e / group_size;
    const int position = group_packing.rank[g] * group_size + e % group_size;
    node_experts[group_packing.pack[g]][position] = e;
  }
  std::vector<int> phy2log(t.num_physical, -1);
  std::vector<int> counts(experts, 0);
  for (int n = 0; n < nodes; ++n) {
    std::vector<float> node_w;
    for (int e : node_experts[n]) node_w.push_back(w[e]);
    const Replicated rep = oracle_replicate(node_w, slots_per_node);
    std::vector<float> replica_load;
    for (int j : rep.expert_of_slot)
      replica_load.push_back(node_w[j] / static_cast<float>(rep.count[j]));
    const Packed gpu_packing = oracle_pack(replica_load, gpus_per_node);
    for (int k = 0; k < slots_per_node; ++k) {
      const int slot =
          n * slots_per_node + gpu_packing.pack[k] * slots_per_gpu + gpu_packing.rank[k];
      phy2log[slot] = node_experts[n][rep.expert_of_slot[k]];
    }
    for (std::size_t j = 0; j < node_w.size(); ++j) counts[node_experts[n][j]] = rep.count[j];
  }
  return {phy2log, counts};
}

void expect_matches_oracle(const Topology& t, const std::vector<double>& loads) {
  Planner planner(t, static_cast<std::uint32_t>(Algorithm::deepseek));
  const Placement placement = planner.plan(loads);
  for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
    const std::vector<double> row(loads.begin() + layer * t.num_logical,
                                  loads.begin() + (layer + 1) * t.num_logical);
    const auto [phy2log, counts] = oracle_layer(t, row);
    const auto got_map = placement.phy2log_layer(layer);
    const auto got_counts = placement.replica_counts_layer(layer);
    ASSERT_EQ(std::vector<int>(got_map.begin(), got_map.end()), phy2log) << "layer " << layer;
    ASSERT_EQ(std::vector<int>(got_counts.begin(), got_counts.end()), counts) << "layer " << layer;
  }
  // log2phy lists exactly the slots of each expert.
  const std::uint32_t width = placement.log2phy_width();
  for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
    const auto map = placement.phy2log_layer(layer);
    for (std::uint32_t e = 0; e < t.num_logical; ++e) {
      const auto count = placement.replica_counts_layer(layer)[e];
      for (std::uint32_t r = 0; r < width; ++r) {
        const std::int32_t slot = placement.log2phy()[(layer * t.num_logical + e) * width + r];
        if (static_cast<std::int32_t>(r) < count) {
          ASSERT_GE(slot, 0);
          ASSERT_EQ(map[static_cast<std::size_t>(slot)], static_cast<std::int32_t>(e));
        } else {
          ASSERT_EQ(slot, -1);
        }
      }
    }
  }
}

TEST(DeepseekOracle, RandomHierarchicalTopologies) {
  std::mt19937_64 rng(101);
  for (int trial = 0; trial < 300; ++trial) {
    const Topology t = test::random_topology(rng, true);
    SCOPED_TRACE(::testing::Message() << "trial " << trial << ": E=" << t.num_logical
                                      << " R=" << t.num_physical << " groups=" << t.num_groups
                                      << " nodes=" << t.num_nodes << " gpus=" << t.num_gpus);
    expect_matches_oracle(t, test::random_tie_free_loads(rng, t));
  }
}

TEST(DeepseekOracle, RandomGlobalTopologies) {
  std::mt19937_64 rng(202);
  for (int trial = 0; trial < 300; ++trial) {
    const Topology t = test::random_topology(rng, false);
    SCOPED_TRACE(::testing::Message() << "trial " << trial << ": E=" << t.num_logical
                                      << " R=" << t.num_physical << " groups=" << t.num_groups
                                      << " nodes=" << t.num_nodes << " gpus=" << t.num_gpus);
    expect_matches_oracle(t, test::random_tie_free_loads(rng, t));
  }
}

TEST(DeepseekOracle, DeepseekV3Shapes) {
  std::mt19937_64 rng(303);
  struct Shape {
    std::uint32_t physical, groups, nodes, gpus;
  };
  for (const Shape s :
       {Shape{288, 8, 4, 32}, Shape{320, 8, 8, 64}, Shape{288, 1, 4, 32}, Shape{320, 1, 8, 64}}) {
    Topology t;
    t.num_layers = 3;
    t.num_logical = 256;
    t.num_physical = s.physical;
    t.num_groups = s.groups;
    t.num_nodes = s.nodes;
    t.num_gpus = s.gpus;
    expect_matches_oracle(t, test::random_tie_free_loads(rng, t));
  }
}

}  // namespace
}  // namespace eplb
