// Dispatch kernels (issue #7 items 4 and 5) through the C API: the CPU references against
// brute-force expectations computed here independently, property tests on random routing, and
// GPU-vs-CPU parity (bit-exact, also under CUDA graph capture), which skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "eplb/eplb.h"
#include "support/gpu_test_support.hpp"

namespace {

// --- inputs -------------------------------------------------------------------------------------

struct Routing {
  size_t tokens = 0;
  size_t top_k = 0;
  std::vector<int32_t> ids;  // [tokens][top_k]
};

// Distinct experts per token drawn from [0, experts) (or with repeats), with some masked (-1)
// slots, fully masked tokens, shared-expert slots (experts + rank) and invalid ids (beyond those,
// < -1) mixed in.
Routing random_routing(std::mt19937& rng, size_t tokens, size_t top_k, uint32_t experts,
                       bool skewed = false) {
  Routing r{tokens, top_k, std::vector<int32_t>(tokens * top_k)};
  std::uniform_int_distribution<int32_t> uniform(0, static_cast<int32_t>(experts) - 1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (size_t t = 0; t < tokens; ++t) {
    const bool padding_token = unit(rng) < 0.02;
    for (size_t k = 0; k < top_k; ++k) {
      int32_t id = uniform(rng);
      if (skewed) id = static_cast<int32_t>(std::pow(unit(rng), 3.0) * experts);
      const double roll = unit(rng);
      if (padding_token || roll < 0.03)
        id = -1;
      else if (roll < 0.04)
        id = static_cast<int32_t>(experts) + 3;  // a shared-expert slot (rank 3) or invalid
      else if (roll < 0.05)  // the shared expert's slot of a rank up to 1024, or beyond them all
        id = static_cast<int32_t>(experts) + static_cast<int32_t>(rng() % 1025);
      else if (roll < 0.055)
        id = -7;
      r.ids[t * top_k + k] = id;
    }
  }
  return r;
}

bool valid_id(int32_t id, uint32_t experts) {
  return id >= 0 && id < static_cast<int32_t>(experts);
}

// --- layout: brute force ------------------------------------------------------------------------

struct Layout {
  std::vector<int32_t> per_expert, per_rank, per_node;
  std::vector<uint8_t> in_rank;
  std::vector<int32_t> offsets;
};

Layout brute_force_layout(const Routing& r, uint32_t experts, uint32_t ranks, uint32_t nodes) {
  const uint32_t per_rank_experts = experts / ranks;
  const uint32_t per_node_ranks = ranks / nodes;
  Layout l;
  l.per_expert.assign(experts, 0);
  l.per_rank.assign(ranks, 0);
  l.per_node.assign(nodes, 0);
  l.in_rank.assign(r.tokens * ranks, 0);
  l.offsets.assign(r.tokens * ranks, -1);
  for (uint32_t e = 0; e < experts; ++e) {
    for (int32_t id : r.ids) l.per_expert[e] += id == static_cast<int32_t>(e) ? 1 : 0;
  }
  // Whether token t has an entry on a rank in [first_rank, last_rank): a physical slot in the
  // ranks' range, or the shared expert's slot experts + rank (eplb_shared_expert_waterfill's).
  const auto touches = [&](size_t t, uint32_t first_rank, uint32_t last_rank) {
    for (size_t k = 0; k < r.top_k; ++k) {
      const int64_t id = r.ids[t * r.top_k + k];
      const bool physical = id >= int64_t{first_rank} * per_rank_experts &&
                            id < int64_t{last_rank} * per_rank_experts;
      const bool shared = id >= int64_t{experts} + first_rank && id < int64_t{experts} + last_rank;
      if (physical || shared) return true;
    }
    return false;
  };
  for (size_t t = 0; t < r.tokens; ++t) {
    for (uint32_t rank = 0; rank < ranks; ++rank) {
      const bool in = touches(t, rank, rank + 1);
      l.in_rank[t * ranks + rank] = in ? 1 : 0;
      l.per_rank[rank] += in ? 1 : 0;
    }
    for (uint32_t node = 0; node < nodes; ++node) {
      l.per_node[node] += touches(t, node * per_node_ranks, (node + 1) * per_node_ranks) ? 1 : 0;
    }
  }
  // The packed send buffer, built row by row: rank-major, tokens in order.
  int32_t row = 0;
  for (uint32_t rank = 0; rank < ranks; ++rank) {
    for (size_t t = 0; t < r.tokens; ++t) {
      if (l.in_rank[t * ranks + rank] != 0) l.offsets[t * ranks + rank] = row++;
    }
  }
  return l;
}

Layout cpu_layout(const Routing& r, uint32_t experts, uint32_t ranks, uint32_t nodes,
                  bool offsets = true) {
  size_t bytes = 0;
  EXPECT_EQ(
      eplb_kernel_dispatch_layout_workspace_size(r.tokens, r.top_k, experts, ranks, nodes, &bytes),
      EPLB_OK)
      << eplb_last_error_message();
  std::vector<unsigned char> workspace(bytes);
  Layout l;
  l.per_expert.assign(experts, -5);
  l.per_rank.assign(ranks, -5);
  l.per_node.assign(nodes, -5);
  l.in_rank.assign(r.tokens * ranks, 7);
  l.offsets.assign(r.tokens * ranks, -5);
  EXPECT_EQ(eplb_kernel_dispatch_layout_cpu(
                r.ids.data(), r.tokens, r.top_k, experts, ranks, nodes, l.per_expert.data(),
                l.per_rank.data(), l.per_node.data(), l.in_rank.data(),
                offsets ? l.offsets.data() : nullptr, workspace.data(), bytes, nullptr),
            EPLB_OK)
      << eplb_last_error_message();
  return l;
}

void expect_same_layout(const Layout& got, const Layout& want, bool offsets = true) {
  EXPECT_EQ(got.per_expert, want.per_expert);
  EXPECT_EQ(got.per_rank, want.per_rank);
  EXPECT_EQ(got.per_node, want.per_node);
  EXPECT_EQ(got.in_rank, want.in_rank);
  if (offsets) {
    EXPECT_EQ(got.offsets, want.offsets);
  }
}

TEST(Layout, HandExample) {
  // 8 experts on 4 ranks (2 each) in 2 nodes (2 ranks each); 3 tokens, top-2.
  const Routing r{3, 2, {0, 1, 2, 7, -1, 6}};
  const Layout l = cpu_layout(r, 8, 4, 2);
  EXPECT_EQ(l.per_expert, (std::vector<int32_t>{1, 1, 1, 0, 0, 0, 1, 1}));
  EXPECT_EQ(l.per_rank, (std::vector<int32_t>{1, 1, 0, 2}));  // token 0 counts once on rank 0
  EXPECT_EQ(l.per_node, (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(l.in_rank, (std::vector<uint8_t>{1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1}));
  // Rank 0 rows [0, 1), rank 1 [1, 2), rank 3 [2, 4): token 1 then token 2.
  EXPECT_EQ(l.offsets, (std::vector<int32_t>{0, -1, -1, -1, -1, 1, -1, 2, -1, -1, -1, 3}));
}

// eplb_shared_expert_waterfill's rows (top-k + 1): slot 8 + r is the shared expert on rank r. It
// sends the token to that rank like any slot there, and is no physical expert's entry.
TEST(Layout, SharedExpertSlotsGoToTheirRank) {
  // 8 experts on 4 ranks in 2 nodes; 3 tokens, top-2 + the shared slot.
  const Routing r{3, 3, {0, 1, 8 + 2, 2, 7, 8 + 3, -1, 6, 8 + 0}};
  const Layout l = cpu_layout(r, 8, 4, 2);
  EXPECT_EQ(l.per_expert, (std::vector<int32_t>{1, 1, 1, 0, 0, 0, 1, 1}));
  // Token 0: ranks 0 and 2 (shared); token 1: ranks 1 and 3 (its shared slot is on rank 3
  // already); token 2: ranks 3 and 0 (shared).
  EXPECT_EQ(l.in_rank, (std::vector<uint8_t>{1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1}));
  EXPECT_EQ(l.per_rank, (std::vector<int32_t>{2, 1, 1, 2}));
  EXPECT_EQ(l.per_node, (std::vector<int32_t>{3, 3}));
  expect_same_layout(l, brute_force_layout(r, 8, 4, 2));
  // 8 + 4 is no rank's shared slot: left out like any invalid id.
  const Layout beyond = cpu_layout(Routing{1, 2, {1, 8 + 4}}, 8, 4, 2);
  EXPECT_EQ(beyond.in_rank, (std::vector<uint8_t>{1, 0, 0, 0}));
}

// End to end: eplb_shared_expert_waterfill's rows, passed to the layout as they are, send each
// token to the GPU the waterfill chose for its shared expert (and to its routed slots' GPUs).
TEST(Layout, SendsEachTokenToItsWaterfillGpu) {
  constexpr uint32_t kExperts = 16, kGpus = 8, kNodes = 2, kTopK = 3;
  std::vector<int32_t> phy2log(kExperts);
  for (uint32_t s = 0; s < kExperts; ++s) phy2log[s] = static_cast<int32_t>(s);
  eplb_placement* placement = nullptr;
  ASSERT_EQ(eplb_placement_create_from_phy2log(1, kExperts, kExperts, kNodes, kGpus, phy2log.data(),
                                               phy2log.size(), &placement),
            EPLB_OK)
      << eplb_last_error_message();
  std::mt19937 rng(12);
  const Routing routed = random_routing(rng, 200, kTopK, kExperts);
  std::vector<int32_t> slots = routed.ids;  // the waterfill accepts -1 and [0, experts) only
  for (auto& id : slots) id = id >= 0 && id < static_cast<int32_t>(kExperts) ? id : -1;
  Routing with_shared{routed.tokens, kTopK + 1, std::vector<int32_t>(routed.tokens * (kTopK + 1))};
  ASSERT_EQ(eplb_shared_expert_waterfill(placement, slots.data(), routed.tokens, kTopK, nullptr,
                                         nullptr, nullptr, 0, EPLB_WATERFILL_ANY_GPU,
                                         with_shared.ids.data(), with_shared.ids.size()),
            EPLB_OK)
      << eplb_last_error_message();
  eplb_placement_destroy(placement);
  const Layout l = cpu_layout(with_shared, kExperts, kGpus, kNodes);
  expect_same_layout(l, brute_force_layout(with_shared, kExperts, kGpus, kNodes));
  size_t shared_tokens = 0;
  for (size_t t = 0; t < routed.tokens; ++t) {
    const int32_t shared = with_shared.ids[t * (kTopK + 1) + kTopK];
    if (shared < 0) continue;  // a token without any routed slot
    ++shared_tokens;
    const auto gpu = static_cast<size_t>(shared) - kExperts;
    EXPECT_EQ(l.in_rank[t * kGpus + gpu], 1) << "token " << t << " shared on GPU " << gpu;
  }
  EXPECT_GT(shared_tokens, routed.tokens / 2);
}

struct Topology {
  size_t tokens, top_k;
  uint32_t experts, ranks, nodes;
};

const std::vector<Topology>& layout_cases() {
  static const std::vector<Topology> cases = {
      {1, 1, 1, 1, 1},      {7, 3, 12, 4, 2},         {129, 8, 256, 32, 4},
      {300, 8, 288, 32, 4}, {200, 6, 64, 64, 8},      {97, 4, 80, 40, 5},
      {33, 9, 2048, 64, 1}, {500, 2, 1024, 1024, 16}, {1000, 8, 256, 8, 1}};
  return cases;
}

TEST(Layout, MatchesBruteForceOnRandomRouting) {
  std::mt19937 rng(7);
  for (const Topology& c : layout_cases()) {
    SCOPED_TRACE(testing::Message() << c.tokens << "x" << c.top_k << " E=" << c.experts
                                    << " R=" << c.ranks << " N=" << c.nodes);
    const Routing r = random_routing(rng, c.tokens, c.top_k, c.experts);
    expect_same_layout(cpu_layout(r, c.experts, c.ranks, c.nodes),
                       brute_force_layout(r, c.experts, c.ranks, c.nodes));
  }
}

TEST(Layout, OffsetsTileThePackedSendBufferInTokenOrder) {
  std::mt19937 rng(11);
  const Routing r = random_routing(rng, 777, 8, 256, true);
  const uint32_t ranks = 32;
  const Layout l = cpu_layout(r, 256, ranks, 4);
  int64_t rows = 0;
  for (int32_t count : l.per_rank) rows += count;
  std::vector<int> seen(static_cast<size_t>(rows), 0);
  int32_t start = 0;
  for (uint32_t rank = 0; rank < ranks; ++rank) {
    int32_t previous = start - 1;
    for (size_t t = 0; t < r.tokens; ++t) {
      const int32_t offset = l.offsets[t * ranks + rank];
      ASSERT_EQ(offset >= 0, l.in_rank[t * ranks + rank] == 1);
      if (offset < 0) continue;
      EXPECT_EQ(offset, previous + 1) << "rank " << rank << " token " << t;
      previous = offset;
      ++seen[static_cast<size_t>(offset)];
    }
    start += l.per_rank[rank];
    EXPECT_EQ(previous, start - 1);
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
  // Without offsets the rest is unchanged.
  expect_same_layout(cpu_layout(r, 256, ranks, 4, false), l, false);
}

TEST(Layout, ZeroTokensGiveZeroCounts) {
  const Routing r{0, 8, {}};
  size_t bytes = 1;
  ASSERT_EQ(eplb_kernel_dispatch_layout_workspace_size(0, 8, 16, 4, 2, &bytes), EPLB_OK);
  EXPECT_EQ(bytes, 0u);
  const Layout l = cpu_layout(r, 16, 4, 2);
  EXPECT_EQ(l.per_expert, std::vector<int32_t>(16, 0));
  EXPECT_EQ(l.per_rank, std::vector<int32_t>(4, 0));
  EXPECT_EQ(l.per_node, std::vector<int32_t>(2, 0));
}

TEST(Layout, RejectsBadTopologyAndShortWorkspace) {
  int32_t ids[2] = {0, 1};
  int32_t e[8], rk[4], n[2], off[8];
  uint8_t in[8];
  unsigned char ws[4096];
  size_t bytes = 0;
  EXPECT_EQ(eplb_kernel_dispatch_layout_workspace_size(2, 1, 8, 3, 1, &bytes),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("num_ranks (3)"), std::string::npos);
  EXPECT_EQ(eplb_kernel_dispatch_layout_workspace_size(2, 1, 8, 4, 3, &bytes),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("num_nodes (3)"), std::string::npos);
  ASSERT_EQ(eplb_kernel_dispatch_layout_workspace_size(2, 1, 8, 4, 2, &bytes), EPLB_OK);
  EXPECT_EQ(eplb_kernel_dispatch_layout_cpu(ids, 2, 1, 8, 4, 2, e, rk, n, in, off, ws, bytes - 1,
                                            nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("workspace_size"), std::string::npos);
  EXPECT_EQ(eplb_kernel_dispatch_layout_cpu(ids, 2, 1, 8, 4, 2, e, rk, n, nullptr, off, ws, bytes,
                                            nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("is_token_in_rank"), std::string::npos);
}

// --- expert sort --------------------------------------------------------------------------------

struct Sorted {
  std::vector<int32_t> ids, blocks, offsets, inverse;
  int32_t total = -1;
};

size_t capacity_of(const Routing& r, uint32_t experts, uint32_t block) {
  size_t capacity = 0;
  EXPECT_EQ(eplb_kernel_expert_sort_capacity(r.tokens, r.top_k, experts, block, &capacity), EPLB_OK)
      << eplb_last_error_message();
  return capacity;
}

Sorted cpu_sort(const Routing& r, uint32_t experts, uint32_t block, size_t capacity) {
  size_t bytes = 0;
  EXPECT_EQ(eplb_kernel_expert_sort_workspace_size(r.tokens, r.top_k, experts, &bytes), EPLB_OK);
  std::vector<unsigned char> workspace(bytes);
  Sorted s;
  s.ids.assign(capacity, -9);
  s.blocks.assign(capacity / block, -9);
  s.offsets.assign(experts + 1, -9);
  s.inverse.assign(r.tokens * r.top_k, -9);
  EXPECT_EQ(
      eplb_kernel_expert_sort_cpu(r.ids.data(), r.tokens, r.top_k, experts, block, capacity,
                                  s.ids.data(), s.blocks.data(), s.offsets.data(), s.inverse.data(),
                                  &s.total, workspace.data(), bytes, nullptr),
      EPLB_OK)
      << eplb_last_error_message();
  return s;
}

// Expected sort by std::stable_sort of the valid pairs, then segments laid out one by one.
Sorted brute_force_sort(const Routing& r, uint32_t experts, uint32_t block, size_t capacity) {
  const auto pairs = static_cast<int32_t>(r.tokens * r.top_k);
  std::vector<int32_t> order;
  for (int32_t i = 0; i < pairs; ++i) {
    if (valid_id(r.ids[static_cast<size_t>(i)], experts)) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return r.ids[static_cast<size_t>(a)] < r.ids[static_cast<size_t>(b)];
  });
  Sorted s;
  s.inverse.assign(static_cast<size_t>(pairs), -1);
  s.offsets.push_back(0);
  size_t next = 0;
  for (uint32_t e = 0; e < experts; ++e) {
    size_t count = 0;
    while (next < order.size() &&
           r.ids[static_cast<size_t>(order[next])] == static_cast<int32_t>(e)) {
      s.inverse[static_cast<size_t>(order[next])] = static_cast<int32_t>(s.ids.size());
      s.ids.push_back(order[next++]);
      ++count;
    }
    while (count % block != 0) {
      s.ids.push_back(pairs);
      ++count;
    }
    for (size_t b = 0; b < count / block; ++b) s.blocks.push_back(static_cast<int32_t>(e));
    s.offsets.push_back(static_cast<int32_t>(s.ids.size()));
  }
  s.total = static_cast<int32_t>(s.ids.size());
  s.ids.resize(capacity, pairs);
  s.blocks.resize(capacity / block, -1);
  return s;
}

void expect_same_sort(const Sorted& got, const Sorted& want) {
  EXPECT_EQ(got.total, want.total);
  EXPECT_EQ(got.offsets, want.offsets);
  EXPECT_EQ(got.ids, want.ids);
  EXPECT_EQ(got.blocks, want.blocks);
  EXPECT_EQ(got.inverse, want.inverse);
}

TEST(Sort, HandExample) {
  // 3 experts, block 2; pairs: (0,0)=2 (0,1)=0 (1,0)=2 (1,1)=-1 (2,0)=2 (2,1)=0.
  const Routing r{3, 2, {2, 0, 2, -1, 2, 0}};
  const size_t capacity = capacity_of(r, 3, 2);
  EXPECT_EQ(capacity, 10u);  // round_up(6 + 3 * 1, 2)
  const Sorted s = cpu_sort(r, 3, 2, capacity);
  EXPECT_EQ(s.total, 6);
  EXPECT_EQ(s.offsets, (std::vector<int32_t>{0, 2, 2, 6}));
  EXPECT_EQ(s.ids, (std::vector<int32_t>{1, 5, 0, 2, 4, 6, 6, 6, 6, 6}));
  EXPECT_EQ(s.blocks, (std::vector<int32_t>{0, 2, 2, -1, -1}));
  EXPECT_EQ(s.inverse, (std::vector<int32_t>{2, 0, 3, -1, 4, 1}));
}

TEST(Sort, CapacityFormula) {
  size_t capacity = 0;
  ASSERT_EQ(eplb_kernel_expert_sort_capacity(8192, 8, 256, 64, &capacity), EPLB_OK);
  EXPECT_EQ(capacity, 65536u + 256u * 63u);
  ASSERT_EQ(eplb_kernel_expert_sort_capacity(1, 2, 256, 64, &capacity), EPLB_OK);
  EXPECT_EQ(capacity, 128u);  // round_up(2 + 2 * 63, 64)
  ASSERT_EQ(eplb_kernel_expert_sort_capacity(0, 8, 256, 64, &capacity), EPLB_OK);
  EXPECT_EQ(capacity, 0u);
  EXPECT_EQ(eplb_kernel_expert_sort_capacity(8, 8, 256, 0, &capacity), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("block_size (0)"), std::string::npos);
}

TEST(Sort, MatchesStableSortOnRandomRouting) {
  std::mt19937 rng(3);
  const struct {
    size_t tokens, top_k;
    uint32_t experts, block;
  } cases[] = {{1, 1, 1, 1},      {5, 2, 3, 1},     {128, 8, 256, 64}, {700, 8, 288, 16},
               {300, 6, 64, 128}, {2049, 4, 33, 7}, {40, 3, 8192, 4},  {1500, 8, 256, 1}};
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message()
                 << c.tokens << "x" << c.top_k << " E=" << c.experts << " block=" << c.block);
    const Routing r = random_routing(rng, c.tokens, c.top_k, c.experts, c.tokens % 2 == 0);
    const size_t capacity = capacity_of(r, c.experts, c.block);
    const Sorted s = cpu_sort(r, c.experts, c.block, capacity);
    expect_same_sort(s, brute_force_sort(r, c.experts, c.block, capacity));
    // Properties: round trip through the inverse map, segments padded and within capacity.
    EXPECT_LE(static_cast<size_t>(s.total), capacity);
    EXPECT_EQ(s.total % static_cast<int32_t>(c.block), 0);
    for (size_t i = 0; i < s.inverse.size(); ++i) {
      if (s.inverse[i] >= 0) {
        EXPECT_EQ(s.ids[static_cast<size_t>(s.inverse[i])], static_cast<int32_t>(i));
      }
    }
    // A larger capacity only adds padding.
    const Sorted wide = cpu_sort(r, c.experts, c.block, capacity + 2 * c.block);
    EXPECT_EQ(wide.total, s.total);
    EXPECT_TRUE(std::equal(s.ids.begin(), s.ids.end(), wide.ids.begin()));
  }
}

TEST(Sort, RejectsSmallCapacity) {
  const Routing r{4, 2, {0, 1, 2, 3, 0, 1, 2, 3}};
  const size_t capacity = capacity_of(r, 4, 4);
  std::vector<int32_t> ids(capacity), blocks(capacity / 4), offsets(5), inverse(8);
  int32_t total = 0;
  size_t bytes = 0;
  ASSERT_EQ(eplb_kernel_expert_sort_workspace_size(4, 2, 4, &bytes), EPLB_OK);
  std::vector<unsigned char> ws(bytes);
  EXPECT_EQ(eplb_kernel_expert_sort_cpu(r.ids.data(), 4, 2, 4, 4, capacity - 4, ids.data(),
                                        blocks.data(), offsets.data(), inverse.data(), &total,
                                        ws.data(), bytes, nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("capacity"), std::string::npos);
}

// The kernels use the workspace as int32 arrays: a workspace that is not 4-byte aligned is
// rejected by the shared validation, so the CPU references refuse it as the GPU functions do.
TEST(Workspace, MisalignedWorkspaceIsRejected) {
  const Routing r{4, 2, {0, 1, 2, 3, 0, 1, 2, 3}};
  const size_t capacity = capacity_of(r, 4, 4);
  std::vector<int32_t> ids(capacity), blocks(capacity / 4), offsets(5), inverse(8);
  int32_t total = 0;
  size_t bytes = 0;
  ASSERT_EQ(eplb_kernel_expert_sort_workspace_size(4, 2, 4, &bytes), EPLB_OK);
  std::vector<int32_t> storage(bytes / 4 + 2);
  unsigned char* misaligned = reinterpret_cast<unsigned char*>(storage.data()) + 1;
  EXPECT_EQ(eplb_kernel_expert_sort_cpu(r.ids.data(), 4, 2, 4, 4, capacity, ids.data(),
                                        blocks.data(), offsets.data(), inverse.data(), &total,
                                        misaligned, bytes, nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("aligned"), std::string::npos);
  EXPECT_NE(std::string(eplb_last_error_message()).find("workspace"), std::string::npos);
  // The aligned workspace is accepted.
  EXPECT_EQ(eplb_kernel_expert_sort_cpu(r.ids.data(), 4, 2, 4, 4, capacity, ids.data(),
                                        blocks.data(), offsets.data(), inverse.data(), &total,
                                        storage.data(), bytes, nullptr),
            EPLB_OK);

  int32_t layout_ids[2] = {0, 1};
  int32_t e[8], rk[4], n[2], off[8];
  uint8_t in[8];
  ASSERT_EQ(eplb_kernel_dispatch_layout_workspace_size(2, 1, 8, 4, 2, &bytes), EPLB_OK);
  std::vector<int32_t> layout_storage(bytes / 4 + 2);
  unsigned char* layout_ws = reinterpret_cast<unsigned char*>(layout_storage.data()) + 2;
  EXPECT_EQ(eplb_kernel_dispatch_layout_cpu(layout_ids, 2, 1, 8, 4, 2, e, rk, n, in, off, layout_ws,
                                            bytes, nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("aligned"), std::string::npos);
  EXPECT_EQ(eplb_kernel_dispatch_layout_cpu(layout_ids, 2, 1, 8, 4, 2, e, rk, n, in, off,
                                            layout_storage.data(), bytes, nullptr),
            EPLB_OK);
}

// --- permute / unpermute ------------------------------------------------------------------------

// Independent conversions for the expectations: the compiler's IEEE half (software, round to
// nearest even) and bfloat16 by picking the nearer of the two neighbours in double.
#if defined(__clang__) && __clang_major__ < 15
typedef __fp16 Half;  // clang before 15 has _Float16 on AArch64 only; __fp16 is the same format
#else
__extension__ typedef _Float16 Half;  // GCC/Clang extension on x86-64 and AArch64
#endif

uint16_t expected_fp16(float x) {
  const auto h = static_cast<Half>(x);
  uint16_t bits = 0;
  std::memcpy(&bits, &h, 2);
  return bits;
}
float fp16_value(uint16_t bits) {
  Half h;
  std::memcpy(&h, &bits, 2);
  return static_cast<float>(h);
}
float bf16_value(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }
uint16_t expected_bf16(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const auto low = static_cast<uint16_t>(u >> 16);
  if ((u & 0xffffu) == 0) return low;
  const auto high = static_cast<uint16_t>(low + 1);  // next magnitude, same sign
  const double d_low = std::fabs(static_cast<double>(x) - bf16_value(low));
  // Past the largest finite value the upper neighbour is 2^128 (which rounds to infinity).
  const double high_value = (high & 0x7fffu) == 0x7f80u
                                ? std::copysign(0x1p128, static_cast<double>(x))
                                : static_cast<double>(bf16_value(high));
  const double d_high = std::fabs(high_value - x);
  if (d_low < d_high) return low;
  if (d_high < d_low) return high;
  return (low & 1u) == 0 ? low : high;
}

struct Rows {
  uint32_t dtype;
  size_t hidden;
  std::vector<uint32_t> storage;  // 16-byte aligned enough for the API's check via new[]
  size_t rows;
  size_t element_bytes() const { return dtype == EPLB_ROW_DTYPE_FLOAT32 ? 4 : 2; }
  Rows(uint32_t type, size_t count, size_t width)
      : dtype(type),
        hidden(width),
        storage((count * width * (type == EPLB_ROW_DTYPE_FLOAT32 ? 4 : 2) + 3) / 4 + 4),
        rows(count) {}
  // A 16-byte-aligned pointer into storage.
  void* data() {
    auto address = reinterpret_cast<uintptr_t>(storage.data());
    return reinterpret_cast<void*>((address + 15) / 16 * 16);
  }
  float get(size_t row, size_t h) {
    const size_t i = row * hidden + h;
    if (dtype == EPLB_ROW_DTYPE_FLOAT32) return static_cast<float*>(data())[i];
    const uint16_t bits = static_cast<uint16_t*>(data())[i];
    return dtype == EPLB_ROW_DTYPE_FLOAT16 ? fp16_value(bits) : bf16_value(bits);
  }
  uint16_t bits16(size_t row, size_t h) { return static_cast<uint16_t*>(data())[row * hidden + h]; }
  void fill_random(std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (size_t i = 0; i < rows * hidden; ++i) {
      const float v = normal(rng);
      if (dtype == EPLB_ROW_DTYPE_FLOAT32)
        static_cast<float*>(data())[i] = v;
      else if (dtype == EPLB_ROW_DTYPE_FLOAT16)
        static_cast<uint16_t*>(data())[i] = expected_fp16(v);
      else
        static_cast<uint16_t*>(data())[i] = expected_bf16(v);
    }
  }
  const unsigned char* row_bytes(size_t row) {
    return static_cast<const unsigned char*>(data()) + row * hidden * element_bytes();
  }
};

constexpr uint32_t kDtypes[] = {EPLB_ROW_DTYPE_FLOAT32, EPLB_ROW_DTYPE_FLOAT16,
                                EPLB_ROW_DTYPE_BFLOAT16};

TEST(Permute, GathersEveryPairsRowAndUnpermuteSumsInOrder) {
  std::mt19937 rng(5);
  for (const uint32_t dtype : kDtypes) {
    for (const size_t hidden : {size_t{8}, size_t{24}, size_t{136}}) {
      SCOPED_TRACE(testing::Message() << "dtype " << dtype << " hidden " << hidden);
      const Routing r = random_routing(rng, 61, 4, 16);
      const size_t capacity = capacity_of(r, 16, 8);
      const Sorted s = cpu_sort(r, 16, 8, capacity);
      Rows input(dtype, r.tokens, hidden);
      input.fill_random(rng);
      Rows permuted(dtype, capacity, hidden);
      std::fill(permuted.storage.begin(), permuted.storage.end(), 0xdeadbeefu);
      ASSERT_EQ(eplb_kernel_permute_cpu(input.data(), dtype, r.tokens, r.top_k, hidden,
                                        s.inverse.data(), capacity, permuted.data(), nullptr),
                EPLB_OK)
          << eplb_last_error_message();
      const size_t row_bytes = hidden * input.element_bytes();
      for (size_t row = 0; row < capacity; ++row) {
        const int32_t pair = s.ids[row];
        if (pair >= static_cast<int32_t>(r.tokens * r.top_k)) continue;  // padding: not written
        const size_t token = static_cast<size_t>(pair) / r.top_k;
        EXPECT_EQ(std::memcmp(permuted.row_bytes(row), input.row_bytes(token), row_bytes), 0)
            << "row " << row;
      }
      std::vector<float> weights(r.tokens * r.top_k);
      std::uniform_real_distribution<float> w(-1.0f, 1.0f);
      for (float& x : weights) x = w(rng);
      Rows output(dtype, r.tokens, hidden);
      ASSERT_EQ(eplb_kernel_unpermute_cpu(permuted.data(), dtype, r.tokens, r.top_k, hidden,
                                          s.inverse.data(), weights.data(), capacity, output.data(),
                                          nullptr),
                EPLB_OK)
          << eplb_last_error_message();
      for (size_t t = 0; t < r.tokens; ++t) {
        for (size_t h = 0; h < hidden; ++h) {
          float sum = -0.0f;
          bool any = false;
          for (size_t k = 0; k < r.top_k; ++k) {
            if (s.inverse[t * r.top_k + k] < 0) continue;
            any = true;
            const float term = weights[t * r.top_k + k] * input.get(t, h);
            sum = sum + term;
          }
          if (!any) sum = 0.0f;
          if (dtype == EPLB_ROW_DTYPE_FLOAT32) {
            ASSERT_EQ(std::bit_cast<uint32_t>(output.get(t, h)), std::bit_cast<uint32_t>(sum));
          } else {
            const uint16_t want =
                dtype == EPLB_ROW_DTYPE_FLOAT16 ? expected_fp16(sum) : expected_bf16(sum);
            ASSERT_EQ(output.bits16(t, h), want) << "token " << t << " h " << h << " sum " << sum;
          }
        }
      }
    }
  }
}

// Permute then unpermute with weight 1 on top-1 routing is the identity for every 16-bit pattern
// that is not a NaN (signed zeros included), and for float32 values.
TEST(Permute, TopOneWithUnitWeightsRoundTripsEveryValue) {
  for (const uint32_t dtype : kDtypes) {
    SCOPED_TRACE(testing::Message() << "dtype " << dtype);
    const size_t hidden = 64;
    const size_t tokens = dtype == EPLB_ROW_DTYPE_FLOAT32 ? 64 : 65536 / hidden;
    Rows input(dtype, tokens, hidden);
    std::mt19937 rng(1);
    for (size_t i = 0; i < tokens * hidden; ++i) {
      if (dtype == EPLB_ROW_DTYPE_FLOAT32) {
        float v = std::bit_cast<float>(static_cast<uint32_t>(rng()));
        if (std::isnan(v)) v = -0.0f;
        static_cast<float*>(input.data())[i] = v;
      } else {
        auto bits = static_cast<uint16_t>(i);
        const float v = dtype == EPLB_ROW_DTYPE_FLOAT16 ? fp16_value(bits) : bf16_value(bits);
        if (std::isnan(v)) bits = 0x8000;
        static_cast<uint16_t*>(input.data())[i] = bits;
      }
    }
    Routing r{tokens, 1, std::vector<int32_t>(tokens)};
    for (size_t t = 0; t < tokens; ++t) r.ids[t] = static_cast<int32_t>((t * 7) % 5);
    const size_t capacity = capacity_of(r, 5, 16);
    const Sorted s = cpu_sort(r, 5, 16, capacity);
    Rows permuted(dtype, capacity, hidden);
    Rows output(dtype, tokens, hidden);
    const std::vector<float> ones(tokens, 1.0f);
    ASSERT_EQ(eplb_kernel_permute_cpu(input.data(), dtype, tokens, 1, hidden, s.inverse.data(),
                                      capacity, permuted.data(), nullptr),
              EPLB_OK);
    ASSERT_EQ(eplb_kernel_unpermute_cpu(permuted.data(), dtype, tokens, 1, hidden, s.inverse.data(),
                                        ones.data(), capacity, output.data(), nullptr),
              EPLB_OK);
    EXPECT_EQ(std::memcmp(output.data(), input.data(), tokens * hidden * input.element_bytes()), 0);
  }
}

TEST(Permute, RoundsToNearestEvenIncludingSubnormalsAndOverflow) {
  // Two slots with weight 1 each: each case's two values are first rounded to the row type, and
  // their float32 sum falls between representable values (ties, subnormals, overflow to inf).
  const float cases[][2] = {{1.0f, 0x1p-11f},     {1.0f, 0x1p-8f},         {1.0f, 3 * 0x1p-11f},
                            {65504.0f, 16.0f},    {65504.0f, 8.0f},        {0x1p-24f, 0x1p-25f},
                            {0x1p-14f, 0x1p-24f}, {-3e-5f, -3e-5f},        {1e38f, 1e38f},
                            {-1.0f, 0x1p-9f},     {0x1.fep127f, 0x1p120f}, {3.0f, -3.0f}};
  const size_t n = std::size(cases);
  for (const uint32_t dtype :
       {uint32_t{EPLB_ROW_DTYPE_FLOAT16}, uint32_t{EPLB_ROW_DTYPE_BFLOAT16}}) {
    Rows permuted(dtype, 2 * n, 8);
    Rows output(dtype, n, 8);
    std::vector<int32_t> inverse(2 * n);
    const std::vector<float> weights(2 * n, 1.0f);
    for (size_t i = 0; i < 2 * n; ++i) {
      inverse[i] = static_cast<int32_t>(i);
      const float v = cases[i / 2][i % 2];
      for (size_t h = 0; h < 8; ++h) {
        static_cast<uint16_t*>(permuted.data())[i * 8 + h] =
            dtype == EPLB_ROW_DTYPE_FLOAT16 ? expected_fp16(v) : expected_bf16(v);
      }
    }
    ASSERT_EQ(eplb_kernel_unpermute_cpu(permuted.data(), dtype, n, 2, 8, inverse.data(),
                                        weights.data(), 2 * n, output.data(), nullptr),
              EPLB_OK);
    for (size_t i = 0; i < n; ++i) {
      const float sum = (-0.0f + permuted.get(2 * i, 0)) + permuted.get(2 * i + 1, 0);
      const uint16_t want =
          dtype == EPLB_ROW_DTYPE_FLOAT16 ? expected_fp16(sum) : expected_bf16(sum);
      EXPECT_EQ(output.bits16(i, 3), want) << "case " << i << " dtype " << dtype;
    }
  }
}

TEST(Permute, RejectsBadRowsArguments) {
  Rows rows(EPLB_ROW_DTYPE_BFLOAT16, 4, 16);
  Rows out(EPLB_ROW_DTYPE_BFLOAT16, 4, 16);
  const int32_t inverse[4] = {0, 1, 2, 3};
  const float weights[4] = {1, 1, 1, 1};
  EXPECT_EQ(eplb_kernel_permute_cpu(rows.data(), EPLB_ROW_DTYPE_BFLOAT16, 4, 1, 12, inverse, 4,
                                    out.data(), nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("hidden (12)"), std::string::npos);
  EXPECT_EQ(
      eplb_kernel_unpermute_cpu(rows.data(), 3, 4, 1, 16, inverse, weights, 4, out.data(), nullptr),
      EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("dtype (3)"), std::string::npos);
  EXPECT_EQ(eplb_kernel_permute_cpu(static_cast<char*>(rows.data()) + 2, EPLB_ROW_DTYPE_BFLOAT16, 2,
                                    1, 16, inverse, 4, out.data(), nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("16-byte aligned"), std::string::npos);
}

// Out-of-range rows in the inverse map are skipped, never written or read.
TEST(Permute, SkipsOutOfRangeRows) {
  Rows input(EPLB_ROW_DTYPE_FLOAT32, 2, 8);
  for (size_t i = 0; i < 16; ++i) static_cast<float*>(input.data())[i] = static_cast<float>(i);
  Rows out(EPLB_ROW_DTYPE_FLOAT32, 2, 8);
  std::fill(out.storage.begin(), out.storage.end(), 0u);
  const int32_t inverse[4] = {1, 2, -1, 0};  // row 2 is past output_rows (2)
  ASSERT_EQ(eplb_kernel_permute_cpu(input.data(), EPLB_ROW_DTYPE_FLOAT32, 2, 2, 8, inverse, 2,
                                    out.data(), nullptr),
            EPLB_OK);
  EXPECT_EQ(out.get(1, 0), 0.0f);
  EXPECT_EQ(out.get(0, 5), 13.0f);
  const float weights[4] = {2, 2, 2, 2};
  Rows summed(EPLB_ROW_DTYPE_FLOAT32, 2, 8);
  ASSERT_EQ(eplb_kernel_unpermute_cpu(out.data(), EPLB_ROW_DTYPE_FLOAT32, 2, 2, 8, inverse, weights,
                                      2, summed.data(), nullptr),
            EPLB_OK);
  EXPECT_EQ(summed.get(0, 5), 2 * out.get(1, 5));
  EXPECT_EQ(std::bit_cast<uint32_t>(summed.get(1, 0)), std::bit_cast<uint32_t>(2 * out.get(0, 0)));
}

// --- GPU vs CPU parity --------------------------------------------------------------------------

#if EPLB_TEST_WITH_CUDA

using eplb::test::DeviceArray;

// Runs `enqueue(stream)` either directly or captured in a CUDA graph replayed twice (the second
// replay starts from the first one's workspace, as in a serving loop).
template <typename Enqueue>
void run_on_gpu(bool graph, Enqueue enqueue) {
  cudaStream_t stream = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  if (!graph) {
    ASSERT_EQ(enqueue(stream), EPLB_OK) << eplb_last_error_message();
  } else {
    cudaGraph_t g = nullptr;
    cudaGraphExec_t exec = nullptr;
    CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    const eplb_status status = enqueue(stream);
    CUDA_OK(cudaStreamEndCapture(stream, &g));
    ASSERT_EQ(status, EPLB_OK) << eplb_last_error_message();
    CUDA_OK(cudaGraphInstantiate(&exec, g, 0));
    CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(g);
  }
  CUDA_OK(cudaStreamSynchronize(stream));
  CUDA_OK(cudaStreamDestroy(stream));
}

TEST(Parity, LayoutIsBitExact) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(21);
  std::vector<Topology> cases = layout_cases();
  cases.push_back({8192, 8, 256, 32, 4});
  cases.push_back({128, 8, 288, 32, 4});
  cases.push_back({0, 8, 256, 32, 4});
  for (const Topology& c : cases) {
    for (const bool graph : {false, true}) {
      SCOPED_TRACE(testing::Message() << c.tokens << "x" << c.top_k << " E=" << c.experts << " R="
                                      << c.ranks << " N=" << c.nodes << " graph=" << graph);
      const Routing r = random_routing(rng, c.tokens, c.top_k, c.experts, graph);
      const Layout want = cpu_layout(r, c.experts, c.ranks, c.nodes);
      size_t bytes = 0;
      ASSERT_EQ(eplb_kernel_dispatch_layout_workspace_size(c.tokens, c.top_k, c.experts, c.ranks,
                                                           c.nodes, &bytes),
                EPLB_OK);
      DeviceArray<int32_t> ids(r.ids);
      DeviceArray<int32_t> per_expert(c.experts), per_rank(c.ranks), per_node(c.nodes);
      DeviceArray<uint8_t> in_rank(c.tokens * c.ranks);
      DeviceArray<int32_t> offsets(c.tokens * c.ranks);
      DeviceArray<unsigned char> workspace(bytes);
      run_on_gpu(graph, [&](cudaStream_t stream) {
        return eplb_kernel_dispatch_layout(ids.pointer, c.tokens, c.top_k, c.experts, c.ranks,
                                           c.nodes, per_expert.pointer, per_rank.pointer,
                                           per_node.pointer, in_rank.pointer, offsets.pointer,
                                           workspace.pointer, bytes, stream);
      });
      Layout got{per_expert.to_host(), per_rank.to_host(), per_node.to_host(), in_rank.to_host(),
                 offsets.to_host()};
      expect_same_layout(got, want);
    }
  }
}

TEST(Parity, SortIsBitExact) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(22);
  const struct {
    size_t tokens, top_k;
    uint32_t experts, block;
  } cases[] = {{1, 1, 1, 1},       {5, 2, 3, 1},        {128, 8, 256, 64},
               {8192, 8, 256, 64}, {8192, 8, 288, 128}, {2049, 4, 33, 7},
               {40, 3, 8192, 4},   {0, 8, 16, 16},      {3000, 8, 256, 1}};
  for (const auto& c : cases) {
    for (const bool graph : {false, true}) {
      SCOPED_TRACE(testing::Message() << c.tokens << "x" << c.top_k << " E=" << c.experts
                                      << " block=" << c.block << " graph=" << graph);
      const Routing r = random_routing(rng, c.tokens, c.top_k, c.experts, graph);
      const size_t capacity = capacity_of(r, c.experts, c.block) + c.block;
      const Sorted want = cpu_sort(r, c.experts, c.block, capacity);
      size_t bytes = 0;
      ASSERT_EQ(eplb_kernel_expert_sort_workspace_size(c.tokens, c.top_k, c.experts, &bytes),
                EPLB_OK);
      DeviceArray<int32_t> ids(r.ids), sorted(capacity), blocks(capacity / c.block),
          offsets(c.experts + 1), inverse(c.tokens * c.top_k), total(1);
      DeviceArray<unsigned char> workspace(bytes);
      run_on_gpu(graph, [&](cudaStream_t stream) {
        return eplb_kernel_expert_sort(ids.pointer, c.tokens, c.top_k, c.experts, c.block, capacity,
                                       sorted.pointer, blocks.pointer, offsets.pointer,
                                       inverse.pointer, total.pointer, workspace.pointer, bytes,
                                       stream);
      });
      Sorted got{sorted.to_host(), blocks.to_host(), offsets.to_host(), inverse.to_host(),
                 total.to_host()[0]};
      expect_same_sort(got, want);
    }
  }
}

TEST(Parity, PermuteAndUnpermuteAreBitExact) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(23);
  for (const uint32_t dtype : kDtypes) {
    for (const size_t tokens : {size_t{1}, size_t{128}, size_t{1000}}) {
      for (const bool graph : {false, true}) {
        const size_t hidden = tokens == 1000 ? 7168 : 200;
        SCOPED_TRACE(testing::Message() << "dtype " << dtype << " tokens " << tokens << " hidden "
                                        << hidden << " graph " << graph);
        const Routing r = random_routing(rng, tokens, 8, 64);
        const size_t capacity = capacity_of(r, 64, 32);
        const Sorted s = cpu_sort(r, 64, 32, capacity);
        Rows input(dtype, tokens, hidden);
        input.fill_random(rng);
        std::vector<float> weights(tokens * 8);
        std::uniform_real_distribution<float> w(-1.0f, 1.0f);
        for (float& x : weights) x = w(rng);
        const size_t element = input.element_bytes();
        Rows want_permuted(dtype, capacity, hidden);
        std::fill(want_permuted.storage.begin(), want_permuted.storage.end(), 0xabababab);
        ASSERT_EQ(eplb_kernel_permute_cpu(input.data(), dtype, tokens, 8, hidden, s.inverse.data(),
                                          capacity, want_permuted.data(), nullptr),
                  EPLB_OK);
        Rows want_output(dtype, tokens, hidden);
        ASSERT_EQ(eplb_kernel_unpermute_cpu(want_permuted.data(), dtype, tokens, 8, hidden,
                                            s.inverse.data(), weights.data(), capacity,
                                            want_output.data(), nullptr),
                  EPLB_OK);
        std::vector<unsigned char> input_bytes(tokens * hidden * element);
        std::memcpy(input_bytes.data(), input.data(), input_bytes.size());
        DeviceArray<unsigned char> d_input(input_bytes), d_permuted(capacity * hidden * element),
            d_output(tokens * hidden * element);
        DeviceArray<int32_t> d_inverse(s.inverse);
        DeviceArray<float> d_weights(weights);
        run_on_gpu(graph, [&](cudaStream_t stream) {
          const eplb_status status =
              eplb_kernel_permute(d_input.pointer, dtype, tokens, 8, hidden, d_inverse.pointer,
                                  capacity, d_permuted.pointer, stream);
          if (status != EPLB_OK) return status;
          return eplb_kernel_unpermute(d_permuted.pointer, dtype, tokens, 8, hidden,
                                       d_inverse.pointer, d_weights.pointer, capacity,
                                       d_output.pointer, stream);
        });
        // Padding rows are not written: both sides were poisoned with 0xab.
        const std::vector<unsigned char> permuted = d_permuted.to_host();
        EXPECT_EQ(std::memcmp(permuted.data(), want_permuted.data(), permuted.size()), 0);
        const std::vector<unsigned char> output = d_output.to_host();
        EXPECT_EQ(std::memcmp(output.data(), want_output.data(), output.size()), 0);
      }
    }
  }
}

TEST(Parity, HostPointersAreRejectedBeforeLaunch) {
  SKIP_WITHOUT_GPU();
  const Routing r{2, 1, {0, 1}};
  int32_t e[2], rk[2], n[1];
  uint8_t in[4];
  // A workspace of the right size, so that every host-checkable argument passes and the first
  // device-memory check (topk_ids) is what refuses the call.
  size_t bytes = 0;
  ASSERT_EQ(eplb_kernel_dispatch_layout_workspace_size(2, 1, 2, 2, 1, &bytes), EPLB_OK)
      << eplb_last_error_message();
  std::vector<int32_t> workspace((bytes + 3) / 4);
  const eplb_status status =
      eplb_kernel_dispatch_layout(r.ids.data(), 2, 1, 2, 2, 1, e, rk, n, in, nullptr,
                                  workspace.data(), workspace.size() * 4, nullptr);
  EXPECT_EQ(status, EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("topk_ids"), std::string::npos)
      << eplb_last_error_message();
}

#else

TEST(Parity, SkippedInABuildWithoutCuda) {
  GTEST_SKIP() << "this test binary was built without the CUDA runtime: parity not checked";
}

#endif

}  // namespace
