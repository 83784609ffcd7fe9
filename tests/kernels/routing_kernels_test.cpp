// Routing kernels (issue #7 items 1-3): device tables, load recorder, logical->physical mapping
// fused with recording, fold, co-activation counter. The CPU references are checked against
// brute-force expectations written here and against the core's traffic metric and tracker; the
// GPU kernels against the CPU references, bit for bit (skipped without a GPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "eplb/eplb.h"
#include "support/gpu_test_support.hpp"

namespace {

#define ASSERT_EPLB_OK(call) ASSERT_EQ((call), EPLB_OK) << eplb_last_error_message()

struct PlacementDeleter {
  void operator()(eplb_placement* p) const { eplb_placement_destroy(p); }
};
struct TablesDeleter {
  void operator()(eplb_device_tables* t) const { eplb_device_tables_destroy(t); }
};
using PlacementPtr = std::unique_ptr<eplb_placement, PlacementDeleter>;
using TablesPtr = std::unique_ptr<eplb_device_tables, TablesDeleter>;

struct Shape {
  uint32_t layers, experts, slots, nodes, gpus;
};

// A random placement: every expert once per layer, the extra slots random experts, shuffled.
std::vector<int32_t> random_phy2log(const Shape& s, std::mt19937& rng) {
  std::vector<int32_t> map;
  for (uint32_t l = 0; l < s.layers; ++l) {
    std::vector<int32_t> row(s.slots);
    for (uint32_t p = 0; p < s.slots; ++p) {
      row[p] = p < s.experts ? static_cast<int32_t>(p)
                             : static_cast<int32_t>(static_cast<uint32_t>(rng()) %
                                                    std::min<uint32_t>(s.experts, 5));
    }
    std::shuffle(row.begin(), row.end(), rng);
    map.insert(map.end(), row.begin(), row.end());
  }
  return map;
}

PlacementPtr make_placement(const Shape& s, const std::vector<int32_t>& map) {
  eplb_placement* p = nullptr;
  EXPECT_EQ(eplb_placement_create_from_phy2log(s.layers, s.experts, s.slots, s.nodes, s.gpus,
                                               map.data(), map.size(), &p),
            EPLB_OK)
      << eplb_last_error_message();
  return PlacementPtr(p);
}

TablesPtr host_tables(const eplb_placement* p, uint32_t gpu, uint32_t max_replicas = 0) {
  eplb_device_tables* t = nullptr;
  EXPECT_EQ(
      eplb_device_tables_create(p, gpu, max_replicas, EPLB_DEVICE_TABLES_HOST_ONLY, nullptr, &t),
      EPLB_OK)
      << eplb_last_error_message();
  return TablesPtr(t);
}

// The placement's arrays, read back through the placement API (the oracle's view).
struct Arrays {
  Shape s{};
  uint32_t width = 0;
  std::vector<int32_t> phy2log, counts, log2phy;
  explicit Arrays(const eplb_placement* p) {
    eplb_placement_info info{};
    info.struct_size = sizeof(info);
    EXPECT_EQ(eplb_placement_get_info(p, &info), EPLB_OK);
    s = {info.num_layers, info.num_logical_experts, info.num_physical_experts, info.num_nodes,
         info.num_gpus};
    width = info.log2phy_width;
    phy2log.resize(size_t{s.layers} * s.slots);
    counts.resize(size_t{s.layers} * s.experts);
    log2phy.resize(counts.size() * width);
    EXPECT_EQ(eplb_placement_get_phy2log(p, phy2log.data(), phy2log.size()), EPLB_OK);
    EXPECT_EQ(eplb_placement_get_replica_counts(p, counts.data(), counts.size()), EPLB_OK);
    EXPECT_EQ(eplb_placement_get_log2phy(p, log2phy.data(), log2phy.size()), EPLB_OK);
  }
  [[nodiscard]] std::vector<int32_t> replicas(uint32_t l, int32_t e) const {
    const size_t row = size_t{l} * s.experts + static_cast<size_t>(e);
    return {log2phy.begin() + static_cast<std::ptrdiff_t>(row * width),
            log2phy.begin() + static_cast<std::ptrdiff_t>(row * width) + counts[row]};
  }
  [[nodiscard]] uint32_t gpu_of(int32_t slot) const {
    return static_cast<uint32_t>(slot) / (s.slots / s.gpus);
  }
  [[nodiscard]] uint32_t node_of(int32_t slot) const { return gpu_of(slot) / (s.gpus / s.nodes); }
};

// Random top-k rows: distinct ids mostly, with repeats, masked (-1) and out-of-range ids mixed
// in; `skew` > 0 draws ids from a Zipf-like law.
std::vector<int32_t> random_topk(size_t tokens, uint32_t k, uint32_t experts, std::mt19937& rng,
                                 double skew = 0.0, bool dirty = true) {
  std::vector<double> weights(experts);
  for (uint32_t e = 0; e < experts; ++e) weights[e] = skew > 0 ? 1.0 / std::pow(e + 1.0, skew) : 1;
  std::discrete_distribution<int32_t> pick(weights.begin(), weights.end());
  std::vector<int32_t> ids(tokens * k);
  for (size_t t = 0; t < tokens; ++t) {
    for (uint32_t j = 0; j < k; ++j) {
      int32_t v = pick(rng);
      if (dirty) {
        const uint32_t r = static_cast<uint32_t>(rng()) % 100;
        if (r < 4)
          v = -1;
        else if (r < 6)
          v = static_cast<int32_t>(experts + static_cast<uint32_t>(rng()) % 3);
        else if (r < 7)
          v = -2 - static_cast<int32_t>(static_cast<uint32_t>(rng()) % 5);
        else if (r < 10 && j > 0)
          v = ids[t * k + j - 1];
      }
      ids[t * k + j] = v;
    }
  }
  return ids;
}

int32_t valid_or_minus1(int64_t v, uint32_t limit) {
  return v >= 0 && v < static_cast<int64_t>(limit) ? static_cast<int32_t>(v) : -1;
}

// --- independent oracles ------------------------------------------------------------------------

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

int32_t expected_static(const Arrays& a, uint32_t l, int32_t e, uint32_t g) {
  const auto reps = a.replicas(l, e);
  for (const int32_t s : reps) {
    if (a.gpu_of(s) == g) return s;
  }
  std::vector<int32_t> node;
  for (const int32_t s : reps) {
    if (a.node_of(s) == g / (a.s.gpus / a.s.nodes)) node.push_back(s);
  }
  if (!node.empty()) return node[g % node.size()];
  return reps[g % reps.size()];
}

uint32_t nodes_touched_metric(const eplb_placement* p, uint32_t layer,
                              const std::vector<int32_t>& row) {
  std::vector<int32_t> clean(row.size());
  std::transform(row.begin(), row.end(), clean.begin(), [](int32_t v) { return v; });
  double mean = -1;
  EXPECT_EQ(eplb_metrics_nodes_touched(p, layer, clean.data(), 1,
                                       static_cast<uint32_t>(clean.size()), &mean),
            EPLB_OK)
      << eplb_last_error_message();
  return static_cast<uint32_t>(mean);
}

struct MapResult {
  std::vector<int32_t> out;
  std::vector<int64_t> counts;
};

MapResult map_cpu(const eplb_device_tables* t, const Arrays& a, uint32_t layer, uint32_t mode,
                  uint64_t seed, const std::vector<int32_t>& quotas,
                  const std::vector<int32_t>& ids, uint32_t k, int32_t flag = 1) {
  MapResult r;
  r.out.assign(ids.size(), 7777);
  r.counts.assign(size_t{a.s.layers} * a.s.slots, 0);
  EXPECT_EQ(eplb_kernel_map_record_cpu(
                t, layer, mode, seed, quotas.empty() ? nullptr : quotas.data(), ids.data(),
                EPLB_IDS_INT32, ids.size() / k, k, &flag, r.counts.data(), r.out.data(), nullptr),
            EPLB_OK)
      << eplb_last_error_message();
  return r;
}

// Quotas that split each expert's count in `ids` randomly over its replicas.
std::vector<int32_t> random_quotas(const Arrays& a, uint32_t layer, const std::vector<int32_t>& ids,
                                   std::mt19937& rng) {
  std::vector<int32_t> count(a.s.experts, 0);
  for (const int32_t v : ids) {
    if (v >= 0 && v < static_cast<int32_t>(a.s.experts)) ++count[static_cast<size_t>(v)];
  }
  std::vector<int32_t> quotas(a.s.slots, 0);
  for (uint32_t e = 0; e < a.s.experts; ++e) {
    const auto reps = a.replicas(layer, static_cast<int32_t>(e));
    int32_t left = count[e];
    for (size_t r = 0; r + 1 < reps.size(); ++r) {
      const int32_t take =
          left == 0 ? 0 : static_cast<int32_t>(static_cast<uint32_t>(rng()) % (left + 1));
      quotas[static_cast<size_t>(reps[r])] = take;
      left -= take;
    }
    quotas[static_cast<size_t>(reps.back())] = left;
  }
  return quotas;
}

const Shape kSmall{2, 8, 16, 2, 4};   // 4 slots per GPU, 2 GPUs per node
const Shape kMulti{3, 16, 40, 4, 8};  // 5 slots per GPU, 2 GPUs per node, 4 nodes

// --- device tables ------------------------------------------------------------------------------

TEST(DeviceTables, StaticMapPrefersOwnGpuThenNodeThenSpreads) {
  std::mt19937 rng(1);
  for (const Shape& s : {kSmall, kMulti}) {
    for (int trial = 0; trial < 5; ++trial) {
      auto p = make_placement(s, random_phy2log(s, rng));
      const Arrays a(p.get());
      for (uint32_t g = 0; g < s.gpus; ++g) {
        auto t = host_tables(p.get(), g);
        std::vector<int32_t> map(size_t{s.layers} * s.experts);
        ASSERT_EPLB_OK(eplb_device_tables_get_static_map(t.get(), map.data(), map.size()));
        for (uint32_t l = 0; l < s.layers; ++l) {
          for (uint32_t e = 0; e < s.experts; ++e) {
            const int32_t slot = map[size_t{l} * s.experts + e];
            ASSERT_EQ(slot, expected_static(a, l, static_cast<int32_t>(e), g));
            ASSERT_EQ(a.phy2log[size_t{l} * s.slots + static_cast<size_t>(slot)],
                      static_cast<int32_t>(e));
            const auto reps = a.replicas(l, static_cast<int32_t>(e));
            const bool on_gpu =
                std::any_of(reps.begin(), reps.end(), [&](int32_t r) { return a.gpu_of(r) == g; });
            const uint32_t my_node = g / (s.gpus / s.nodes);
            const bool on_node = std::any_of(reps.begin(), reps.end(),
                                             [&](int32_t r) { return a.node_of(r) == my_node; });
            if (on_gpu) {
              EXPECT_EQ(a.gpu_of(slot), g);
            }
            if (on_node) {
              EXPECT_EQ(a.node_of(slot), my_node);
            }
          }
        }
      }
    }
  }
}

TEST(DeviceTables, InfoUpdateAndErrors) {
  std::mt19937 rng(2);
  auto p = make_placement(kMulti, random_phy2log(kMulti, rng));
  const Arrays a(p.get());
  auto t = host_tables(p.get(), 3, a.width + 2);
  eplb_device_tables_info info{};
  info.struct_size = sizeof(info);
  ASSERT_EPLB_OK(eplb_device_tables_get_info(t.get(), &info));
  EXPECT_EQ(info.num_layers, kMulti.layers);
  EXPECT_EQ(info.num_logical_experts, kMulti.experts);
  EXPECT_EQ(info.num_physical_experts, kMulti.slots);
  EXPECT_EQ(info.max_replicas, a.width + 2);
  EXPECT_EQ(info.slots_per_gpu, 5u);
  EXPECT_EQ(info.gpus_per_node, 2u);
  EXPECT_EQ(info.gpu, 3u);
  EXPECT_EQ(info.device, -1);
  EXPECT_EQ(info.device_bytes, 0u);

  // Update to another placement of the same shape: the static map follows it.
  auto q = make_placement(kMulti, random_phy2log(kMulti, rng));
  const Arrays b(q.get());
  if (b.width <= a.width + 2) {
    ASSERT_EPLB_OK(eplb_device_tables_update(t.get(), q.get(), nullptr));
    std::vector<int32_t> map(size_t{kMulti.layers} * kMulti.experts);
    ASSERT_EPLB_OK(eplb_device_tables_get_static_map(t.get(), map.data(), map.size()));
    for (uint32_t e = 0; e < kMulti.experts; ++e) {
      EXPECT_EQ(map[e], expected_static(b, 0, static_cast<int32_t>(e), 3));
    }
  }
  // Another shape, a width over the capacity, a bad rank or flag: refused.
  auto other = make_placement(kSmall, random_phy2log(kSmall, rng));
  EXPECT_EQ(eplb_device_tables_update(t.get(), other.get(), nullptr), EPLB_ERR_INVALID_ARGUMENT);
  eplb_device_tables* out = nullptr;
  EXPECT_EQ(eplb_device_tables_create(p.get(), kMulti.gpus, 0, EPLB_DEVICE_TABLES_HOST_ONLY,
                                      nullptr, &out),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(eplb_device_tables_create(p.get(), 0, 0, 6, nullptr, &out), EPLB_ERR_INVALID_ARGUMENT);
  if (a.width > 1) {
    EXPECT_EQ(eplb_device_tables_create(p.get(), 0, a.width - 1, EPLB_DEVICE_TABLES_HOST_ONLY,
                                        nullptr, &out),
              EPLB_ERR_INVALID_ARGUMENT);
  }
  EXPECT_EQ(out, nullptr);
  // The GPU kernels refuse host-only tables on every machine.
  std::vector<int32_t> ids(8, 0), phys(8);
  EXPECT_EQ(eplb_kernel_map_record(t.get(), 0, EPLB_MAP_STATIC, 0, nullptr, ids.data(),
                                   EPLB_IDS_INT32, 1, 8, nullptr, nullptr, phys.data(), nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("HOST_ONLY"), std::string::npos);
}

// --- recorder -----------------------------------------------------------------------------------

TEST(RecordLoad, CountsValidIdsOfBothWidthsAndHonoursTheFlag) {
  std::mt19937 rng(3);
  const uint32_t E = 12, L = 3, k = 4;
  const auto ids = random_topk(300, k, E, rng);
  std::vector<int64_t> ids64(ids.begin(), ids.end());
  ids64[5] = int64_t{1} << 40;  // out of range only as int64
  ids64[6] = -(int64_t{1} << 40);
  std::vector<int64_t> expected(size_t{L} * E, 0);
  for (const int32_t v : ids) {
    if (v >= 0 && v < static_cast<int32_t>(E)) ++expected[E + static_cast<size_t>(v)];
  }
  std::vector<int64_t> counts(expected.size(), 0);
  int32_t flag = 1;
  ASSERT_EPLB_OK(eplb_kernel_record_load_cpu(ids.data(), EPLB_IDS_INT32, 300, k, E, L, 1, &flag,
                                             counts.data(), nullptr));
  EXPECT_EQ(counts, expected);
  // int64 ids: the two overwritten entries no longer count.
  std::vector<int64_t> expected64(expected.size(), 0);
  for (const int64_t v : ids64) {
    if (v >= 0 && v < E) ++expected64[E + static_cast<size_t>(v)];
  }
  std::vector<int64_t> counts64(expected.size(), 0);
  ASSERT_EPLB_OK(eplb_kernel_record_load_cpu(ids64.data(), EPLB_IDS_INT64, 300, k, E, L, 1, nullptr,
                                             counts64.data(), nullptr));
  EXPECT_EQ(counts64, expected64);
  // Flag 0: nothing; counts accumulate across calls.
  flag = 0;
  ASSERT_EPLB_OK(eplb_kernel_record_load_cpu(ids.data(), EPLB_IDS_INT32, 300, k, E, L, 1, &flag,
                                             counts.data(), nullptr));
  EXPECT_EQ(counts, expected);
  flag = 5;
  ASSERT_EPLB_OK(eplb_kernel_record_load_cpu(ids.data(), EPLB_IDS_INT32, 300, k, E, L, 1, &flag,
                                             counts.data(), nullptr));
  for (size_t i = 0; i < counts.size(); ++i) EXPECT_EQ(counts[i], 2 * expected[i]);
  EXPECT_EQ(eplb_kernel_record_load_cpu(ids.data(), EPLB_IDS_INT32, 300, k, E, L, 3, &flag,
                                        counts.data(), nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(
      eplb_kernel_record_load_cpu(ids.data(), 2, 300, k, E, L, 0, &flag, counts.data(), nullptr),
      EPLB_ERR_INVALID_ARGUMENT);
}

// --- mapping ------------------------------------------------------------------------------------

TEST(MapRecord, StaticRoundRobinHashMatchTheirDefinitions) {
  std::mt19937 rng(4);
  for (const Shape& s : {kSmall, kMulti}) {
    auto p = make_placement(s, random_phy2log(s, rng));
    const Arrays a(p.get());
    const uint32_t k = 4;
    const auto ids = random_topk(257, k, s.experts, rng);
    for (uint32_t g : {0u, s.gpus - 1}) {
      auto t = host_tables(p.get(), g);
      for (uint32_t layer = 0; layer < s.layers; ++layer) {
        const uint64_t seed = 0x1234567 + layer;
        const auto st = map_cpu(t.get(), a, layer, EPLB_MAP_STATIC, 0, {}, ids, k);
        const auto rr = map_cpu(t.get(), a, layer, EPLB_MAP_ROUND_ROBIN, 0, {}, ids, k);
        const auto hs = map_cpu(t.get(), a, layer, EPLB_MAP_HASH, seed, {}, ids, k);
        const auto hs2 = map_cpu(t.get(), a, layer, EPLB_MAP_HASH, seed, {}, ids, k);
        EXPECT_EQ(hs.out, hs2.out);  // deterministic
        for (size_t i = 0; i < ids.size(); ++i) {
          const int32_t e = valid_or_minus1(ids[i], s.experts);
          if (e < 0) {
            EXPECT_EQ(st.out[i], -1);
            EXPECT_EQ(rr.out[i], -1);
            EXPECT_EQ(hs.out[i], -1);
            continue;
          }
          const auto reps = a.replicas(layer, e);
          EXPECT_EQ(st.out[i], expected_static(a, layer, e, g));
          EXPECT_EQ(rr.out[i], reps[i % reps.size()]);
          const uint64_t h =
              splitmix(splitmix(splitmix(seed ^ layer) ^ i) ^ static_cast<uint64_t>(e));
          EXPECT_EQ(hs.out[i], reps[((h >> 32) * reps.size()) >> 32]);
        }
        // Recorded counts are the histogram of the output.
        for (const auto* r : {&st, &rr, &hs}) {
          std::vector<int64_t> hist(size_t{s.layers} * s.slots, 0);
          for (const int32_t slot : r->out) {
            if (slot >= 0) ++hist[size_t{layer} * s.slots + static_cast<size_t>(slot)];
          }
          EXPECT_EQ(r->counts, hist);
        }
      }
    }
  }
}

TEST(MapRecord, HashSpreadsOverReplicasAndDependsOnSeed) {
  const Shape s{1, 2, 8, 1, 4};
  auto p = make_placement(s, {0, 1, 0, 0, 0, 0, 0, 0});  // expert 0 has 7 replicas
  const Arrays a(p.get());
  auto t = host_tables(p.get(), 0);
  const std::vector<int32_t> ids(7000, 0);
  const auto one = map_cpu(t.get(), a, 0, EPLB_MAP_HASH, 1, {}, ids, 1);
  const auto two = map_cpu(t.get(), a, 0, EPLB_MAP_HASH, 2, {}, ids, 1);
  EXPECT_NE(one.out, two.out);
  for (const int32_t slot : {0, 2, 3, 4, 5, 6, 7}) {
    EXPECT_NEAR(static_cast<double>(one.counts[static_cast<size_t>(slot)]), 1000.0, 150.0);
  }
}

TEST(MapRecord, QuotaGivesEachReplicaExactlyItsShareInTokenOrder) {
  std::mt19937 rng(5);
  for (const Shape& s : {kSmall, kMulti}) {
    for (int trial = 0; trial < 4; ++trial) {
      auto p = make_placement(s, random_phy2log(s, rng));
      const Arrays a(p.get());
      auto t = host_tables(p.get(), 1);
      const uint32_t k = 3;
      const auto ids = random_topk(500, k, s.experts, rng, trial % 2 == 0 ? 1.2 : 0.0);
      const uint32_t layer = static_cast<uint32_t>(trial) % s.layers;
      const auto quotas = random_quotas(a, layer, ids, rng);
      const auto r = map_cpu(t.get(), a, layer, EPLB_MAP_QUOTA, 0, quotas, ids, k);
      for (uint32_t slot = 0; slot < s.slots; ++slot) {
        ASSERT_EQ(r.counts[size_t{layer} * s.slots + slot], quotas[slot]) << "slot " << slot;
      }
      // Token order: the n-th occurrence of e goes to the replica whose quota range holds n.
      std::vector<int32_t> seen(s.experts, 0);
      for (size_t i = 0; i < ids.size(); ++i) {
        const int32_t e = valid_or_minus1(ids[i], s.experts);
        if (e < 0) {
          ASSERT_EQ(r.out[i], -1);
          continue;
        }
        const int32_t n = seen[static_cast<size_t>(e)]++;
        int32_t end = 0;
        int32_t want = -1;
        for (const int32_t rep : a.replicas(layer, e)) {
          end += quotas[static_cast<size_t>(rep)];
          if (n < end) {
            want = rep;
            break;
          }
        }
        ASSERT_EQ(r.out[i], want);
      }
    }
  }
}

TEST(MapRecord, QuotaOverflowGoesRoundRobin) {
  const Shape s{1, 2, 4, 1, 2};
  auto p = make_placement(s, {0, 1, 0, 0});  // expert 0 on slots 0, 2, 3
  const Arrays a(p.get());
  auto t = host_tables(p.get(), 0);
  const std::vector<int32_t> ids = {0, 0, 0, 0, 0, 1};
  const std::vector<int32_t> quotas = {0, 0, 2,
                                       -4};  // only 2 of expert 0's 5 tokens; 1 undercounted
  const auto r = map_cpu(t.get(), a, 0, EPLB_MAP_QUOTA, 0, quotas, ids, 1);
  // Ranks 2, 3, 4 go to replicas 2 % 3, 3 % 3, 4 % 3 of (0, 2, 3): slots 3, 0, 2.
  EXPECT_EQ(r.out, (std::vector<int32_t>{2, 2, 3, 0, 2, 1}));
}

TEST(MapRecord, NodeAwareTouchesExactlyTheMetricsNodes) {
  std::mt19937 rng(6);
  for (const Shape& s : {kMulti, Shape{2, 16, 32, 4, 8}, Shape{1, 8, 24, 3, 6}}) {
    for (int trial = 0; trial < 4; ++trial) {
      auto p = make_placement(s, random_phy2log(s, rng));
      const Arrays a(p.get());
      const uint32_t k = 4;
      const auto ids = random_topk(400, k, s.experts, rng);
      for (uint32_t g = 0; g < s.gpus; g += 3) {
        auto t = host_tables(p.get(), g);
        const uint32_t layer = static_cast<uint32_t>(trial) % s.layers;
        const auto r = map_cpu(t.get(), a, layer, EPLB_MAP_NODE_AWARE, 0, {}, ids, k);
        for (size_t tok = 0; tok < ids.size() / k; ++tok) {
          std::vector<int32_t> row(k);
          std::set<uint32_t> nodes;
          for (uint32_t j = 0; j < k; ++j) {
            const int32_t e = valid_or_minus1(ids[tok * k + j], s.experts);
            row[j] = e;
            const int32_t slot = r.out[tok * k + j];
            if (e < 0) {
              ASSERT_EQ(slot, -1);
              continue;
            }
            ASSERT_EQ(a.phy2log[size_t{layer} * s.slots + static_cast<size_t>(slot)], e);
            nodes.insert(a.node_of(slot));
            // The rank's own GPU serves the expert when it is on a chosen own node.
            const auto reps = a.replicas(layer, e);
            const bool mine =
                std::any_of(reps.begin(), reps.end(), [&](int32_t x) { return a.gpu_of(x) == g; });
            if (mine && a.node_of(slot) == g / (s.gpus / s.nodes)) {
              EXPECT_EQ(a.gpu_of(slot), g);
            }
          }
          ASSERT_EQ(nodes.size(), nodes_touched_metric(p.get(), layer, row)) << "token " << tok;
        }
      }
    }
  }
}

TEST(MapRecord, FlagCountsNullAndEmptyBatches) {
  std::mt19937 rng(7);
  auto p = make_placement(kSmall, random_phy2log(kSmall, rng));
  const Arrays a(p.get());
  auto t = host_tables(p.get(), 0);
  const auto ids = random_topk(50, 2, kSmall.experts, rng);
  const auto on = map_cpu(t.get(), a, 0, EPLB_MAP_ROUND_ROBIN, 0, {}, ids, 2, 1);
  const auto off = map_cpu(t.get(), a, 0, EPLB_MAP_ROUND_ROBIN, 0, {}, ids, 2, 0);
  EXPECT_EQ(on.out, off.out);
  EXPECT_TRUE(std::all_of(off.counts.begin(), off.counts.end(), [](int64_t c) { return c == 0; }));
  std::vector<int32_t> out(ids.size());
  ASSERT_EPLB_OK(eplb_kernel_map_record_cpu(t.get(), 0, EPLB_MAP_ROUND_ROBIN, 0, nullptr,
                                            ids.data(), EPLB_IDS_INT32, 50, 2, nullptr, nullptr,
                                            out.data(), nullptr));
  EXPECT_EQ(out, on.out);
  ASSERT_EPLB_OK(eplb_kernel_map_record_cpu(t.get(), 0, EPLB_MAP_STATIC, 0, nullptr, nullptr,
                                            EPLB_IDS_INT32, 0, 2, nullptr, nullptr, nullptr,
                                            nullptr));
  // int64 ids map like int32 ids.
  std::vector<int64_t> ids64(ids.begin(), ids.end());
  std::vector<int32_t> out64(ids.size());
  ASSERT_EPLB_OK(eplb_kernel_map_record_cpu(t.get(), 0, EPLB_MAP_ROUND_ROBIN, 0, nullptr,
                                            ids64.data(), EPLB_IDS_INT64, 50, 2, nullptr, nullptr,
                                            out64.data(), nullptr));
  EXPECT_EQ(out64, on.out);
  EXPECT_EQ(eplb_kernel_map_record_cpu(t.get(), 0, 5, 0, nullptr, ids.data(), EPLB_IDS_INT32, 50, 2,
                                       nullptr, nullptr, out.data(), nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(
      eplb_kernel_map_record_cpu(t.get(), 0, EPLB_MAP_QUOTA, 0, nullptr, ids.data(), EPLB_IDS_INT32,
                                 50, 2, nullptr, nullptr, out.data(), nullptr),
      EPLB_ERR_INVALID_ARGUMENT);
}

TEST(FoldCounts, SumsEachExpertsReplicas) {
  std::mt19937 rng(8);
  auto p = make_placement(kMulti, random_phy2log(kMulti, rng));
  const Arrays a(p.get());
  auto t = host_tables(p.get(), 0);
  std::vector<int64_t> physical(size_t{kMulti.layers} * kMulti.slots);
  for (auto& c : physical)
    c = static_cast<int64_t>(static_cast<uint32_t>(rng()) % 1000) + (int64_t{1} << 33);
  std::vector<int64_t> logical(size_t{kMulti.layers} * kMulti.experts, -1);
  ASSERT_EPLB_OK(eplb_kernel_fold_counts_cpu(t.get(), physical.data(), logical.data(), nullptr));
  std::vector<int64_t> expected(logical.size(), 0);
  for (uint32_t l = 0; l < kMulti.layers; ++l) {
    for (uint32_t slot = 0; slot < kMulti.slots; ++slot) {
      expected[size_t{l} * kMulti.experts +
               static_cast<size_t>(a.phy2log[size_t{l} * kMulti.slots + slot])] +=
          physical[size_t{l} * kMulti.slots + slot];
    }
  }
  EXPECT_EQ(logical, expected);
}

// --- co-activation ------------------------------------------------------------------------------

TEST(Coactivation, PairsMatchBruteForceAndTheTrackerLayout) {
  std::mt19937 rng(9);
  const uint32_t E = 10, k = 5, L = 2, layer = 1;
  const size_t tokens = 400;
  const auto ids = random_topk(tokens, k, E, rng, 1.0);
  const size_t pairs = E * (E - 1) / 2;
  std::vector<int64_t> counts(L * pairs, 0);
  ASSERT_EPLB_OK(eplb_kernel_coactivation_cpu(ids.data(), EPLB_IDS_INT32, tokens, k, E, L, layer,
                                              nullptr, counts.data(), 0, 0, 0, nullptr, nullptr));
  std::map<std::pair<int32_t, int32_t>, int64_t> brute;
  for (size_t t = 0; t < tokens; ++t) {
    std::set<int32_t> distinct;
    for (uint32_t j = 0; j < k; ++j) {
      const int32_t e = valid_or_minus1(ids[t * k + j], E);
      if (e >= 0) distinct.insert(e);
    }
    for (auto x = distinct.begin(); x != distinct.end(); ++x) {
      for (auto y = std::next(x); y != distinct.end(); ++y) ++brute[{*x, *y}];
    }
  }
  size_t index = 0;
  for (int32_t x = 0; x < static_cast<int32_t>(E); ++x) {
    for (int32_t y = x + 1; y < static_cast<int32_t>(E); ++y, ++index) {
      EXPECT_EQ(counts[pairs + index], (brute[{x, y}])) << x << "," << y;
      EXPECT_EQ(counts[index], 0);
    }
  }
  // The tracker, fed the same rows (invalid ids as -1), has the same triangle.
  eplb_tracker_options o;
  eplb_tracker_options_init(&o);
  o.num_layers = L;
  o.num_logical_experts = E;
  o.top_k = k;
  eplb_tracker* tracker = nullptr;
  ASSERT_EPLB_OK(eplb_tracker_create(&o, &tracker));
  std::vector<int32_t> clean(ids.size());
  std::transform(ids.begin(), ids.end(), clean.begin(),
                 [&](int32_t v) { return valid_or_minus1(v, E); });
  ASSERT_EPLB_OK(eplb_tracker_record(tracker, layer, clean.data(), tokens, k));
  std::vector<double> tracked(pairs);
  ASSERT_EPLB_OK(eplb_tracker_get_coactivation(tracker, layer, tracked.data(), tracked.size()));
  eplb_tracker_destroy(tracker);
  for (size_t i = 0; i < pairs; ++i) EXPECT_EQ(static_cast<double>(counts[pairs + i]), tracked[i]);
}

TEST(Coactivation, SamplesFollowTheStrideRuleAndTheFlag) {
  std::mt19937 rng(10);
  const uint32_t E = 6, k = 3;
  const size_t tokens = 20;
  const auto ids = random_topk(tokens, k, E, rng);
  std::vector<int32_t> samples(5 * k, 99);
  ASSERT_EPLB_OK(eplb_kernel_coactivation_cpu(ids.data(), EPLB_IDS_INT32, tokens, k, E, 1, 0,
                                              nullptr, nullptr, 6, 3, 5, samples.data(), nullptr));
  // Tokens 3, 9, 15: three rows, then two rows of -1.
  for (size_t r = 0; r < 5; ++r) {
    for (uint32_t j = 0; j < k; ++j) {
      const int32_t want = r < 3 ? valid_or_minus1(ids[(3 + r * 6) * k + j], E) : -1;
      EXPECT_EQ(samples[r * k + j], want);
    }
  }
  int32_t flag = 0;
  std::vector<int32_t> untouched(5 * k, 99);
  std::vector<int64_t> counts(E * (E - 1) / 2, 0);
  ASSERT_EPLB_OK(eplb_kernel_coactivation_cpu(ids.data(), EPLB_IDS_INT32, tokens, k, E, 1, 0, &flag,
                                              counts.data(), 6, 3, 5, untouched.data(), nullptr));
  EXPECT_TRUE(std::all_of(untouched.begin(), untouched.end(), [](int32_t v) { return v == 99; }));
  EXPECT_TRUE(std::all_of(counts.begin(), counts.end(), [](int64_t v) { return v == 0; }));
  EXPECT_EQ(eplb_kernel_coactivation_cpu(ids.data(), EPLB_IDS_INT32, tokens, 65, E, 1, 0, nullptr,
                                         counts.data(), 0, 0, 0, nullptr, nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(eplb_kernel_coactivation_cpu(ids.data(), EPLB_IDS_INT32, tokens, k, E, 1, 0, nullptr,
                                         counts.data(), 0, 0, 5, samples.data(), nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
}

// --- GPU against CPU (skipped without a GPU) ---------------------------------------------------

using eplb::test::have_gpu;

#if EPLB_TEST_WITH_CUDA

using eplb::test::DeviceArray;

TablesPtr gpu_tables(const eplb_placement* p, uint32_t gpu, uint32_t max_replicas = 0) {
  eplb_device_tables* t = nullptr;
  EXPECT_EQ(eplb_device_tables_create(p, gpu, max_replicas, 0, nullptr, &t), EPLB_OK)
      << eplb_last_error_message();
  return TablesPtr(t);
}

TEST(Parity, MapRecordEveryModeBothIdWidths) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(20);
  const Shape s{2, 64, 80, 4, 16};
  auto p = make_placement(s, random_phy2log(s, rng));
  const Arrays a(p.get());
  for (const size_t tokens : {size_t{1}, size_t{128}, size_t{3001}}) {
    for (const double skew : {0.0, 1.3}) {
      const uint32_t k = 8;
      const auto ids = random_topk(tokens, k, s.experts, rng, skew);
      const std::vector<int64_t> ids64(ids.begin(), ids.end());
      DeviceArray<int32_t> d_ids(ids);
      DeviceArray<int64_t> d_ids64(ids64);
      for (uint32_t g : {0u, 7u}) {
        auto gt = gpu_tables(p.get(), g);
        auto ht = host_tables(p.get(), g);
        for (uint32_t mode = 0; mode < 5; ++mode) {
          const auto quotas = random_quotas(a, 1, ids, rng);
          DeviceArray<int32_t> d_quotas(quotas);
          const auto want = map_cpu(ht.get(), a, 1, mode, 99, quotas, ids, k);
          for (const bool wide : {false, true}) {
            DeviceArray<int64_t> d_counts(std::vector<int64_t>(size_t{s.layers} * s.slots, 0));
            DeviceArray<int32_t> d_out(std::vector<int32_t>(ids.size(), 7777));
            DeviceArray<int32_t> d_flag(std::vector<int32_t>{1});
            ASSERT_EPLB_OK(eplb_kernel_map_record(
                gt.get(), 1, mode, 99, d_quotas.pointer,
                wide ? static_cast<const void*>(d_ids64.pointer) : d_ids.pointer,
                wide ? EPLB_IDS_INT64 : EPLB_IDS_INT32, tokens, k, d_flag.pointer, d_counts.pointer,
                d_out.pointer, nullptr));
            CUDA_OK(cudaDeviceSynchronize());
            EXPECT_EQ(d_out.to_host(), want.out) << "mode " << mode << " tokens " << tokens;
            EXPECT_EQ(d_counts.to_host(), want.counts) << "mode " << mode << " tokens " << tokens;
          }
        }
      }
    }
  }
}

TEST(Parity, RecorderFoldAndCoactivation) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(21);
  const Shape s{2, 256, 288, 4, 32};
  auto p = make_placement(s, random_phy2log(s, rng));
  auto gt = gpu_tables(p.get(), 5);
  for (const double skew : {0.0, 1.2}) {
    const size_t tokens = 4099;
    const uint32_t k = 8;
    const auto ids = random_topk(tokens, k, s.experts, rng, skew);
    DeviceArray<int32_t> d_ids(ids);
    // Recorder.
    std::vector<int64_t> counts(size_t{s.layers} * s.experts, 3);
    DeviceArray<int64_t> d_counts(counts);
    ASSERT_EPLB_OK(eplb_kernel_record_load(d_ids.pointer, EPLB_IDS_INT32, tokens, k, s.experts,
                                           s.layers, 1, nullptr, d_counts.pointer, nullptr));
    ASSERT_EPLB_OK(eplb_kernel_record_load_cpu(ids.data(), EPLB_IDS_INT32, tokens, k, s.experts,
                                               s.layers, 1, nullptr, counts.data(), nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    EXPECT_EQ(d_counts.to_host(), counts);
    // Fold.
    std::vector<int64_t> physical(size_t{s.layers} * s.slots);
    for (auto& c : physical) c = static_cast<uint32_t>(rng()) % 5000;
    DeviceArray<int64_t> d_physical(physical);
    DeviceArray<int64_t> d_logical(std::vector<int64_t>(size_t{s.layers} * s.experts, -1));
    std::vector<int64_t> logical(size_t{s.layers} * s.experts, -1);
    ASSERT_EPLB_OK(
        eplb_kernel_fold_counts(gt.get(), d_physical.pointer, d_logical.pointer, nullptr));
    ASSERT_EPLB_OK(eplb_kernel_fold_counts_cpu(gt.get(), physical.data(), logical.data(), nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    EXPECT_EQ(d_logical.to_host(), logical);
    // Co-activation with samples.
    const size_t pairs = size_t{s.experts} * (s.experts - 1) / 2;
    std::vector<int64_t> pc(pairs * s.layers, 1);
    std::vector<int32_t> samples(100 * k, 5);
    DeviceArray<int64_t> d_pc(pc);
    DeviceArray<int32_t> d_samples(samples);
    ASSERT_EPLB_OK(eplb_kernel_coactivation(d_ids.pointer, EPLB_IDS_INT32, tokens, k, s.experts,
                                            s.layers, 0, nullptr, d_pc.pointer, 41, 7, 100,
                                            d_samples.pointer, nullptr));
    ASSERT_EPLB_OK(eplb_kernel_coactivation_cpu(ids.data(), EPLB_IDS_INT32, tokens, k, s.experts,
                                                s.layers, 0, nullptr, pc.data(), 41, 7, 100,
                                                samples.data(), nullptr));
    CUDA_OK(cudaDeviceSynchronize());
    EXPECT_EQ(d_pc.to_host(), pc);
    EXPECT_EQ(d_samples.to_host(), samples);
  }
}

TEST(Parity, GraphCaptureFlagToggleAndTableUpdate) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(22);
  const Shape s{1, 32, 48, 2, 8};
  auto p = make_placement(s, random_phy2log(s, rng));
  auto q = make_placement(s, random_phy2log(s, rng));
  const Arrays ap(p.get()), aq(q.get());
  const uint32_t width = std::max(ap.width, aq.width);
  auto gt = gpu_tables(p.get(), 2, width);
  auto hp = host_tables(p.get(), 2, width);
  auto hq = host_tables(q.get(), 2, width);
  const uint32_t k = 4;
  const size_t tokens = 700;
  const auto ids = random_topk(tokens, k, s.experts, rng);
  DeviceArray<int32_t> d_ids(ids);
  DeviceArray<int32_t> d_flag(std::vector<int32_t>{1});
  DeviceArray<int64_t> d_counts(std::vector<int64_t>(s.slots, 0));
  DeviceArray<int32_t> d_out(std::vector<int32_t>(ids.size(), 0));
  const size_t pairs = size_t{s.experts} * (s.experts - 1) / 2;
  DeviceArray<int64_t> d_pairs(std::vector<int64_t>(pairs, 0));
  cudaStream_t stream = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraph_t graph = nullptr;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  const eplb_status mapped = eplb_kernel_map_record(
      gt.get(), 0, EPLB_MAP_NODE_AWARE, 0, nullptr, d_ids.pointer, EPLB_IDS_INT32, tokens, k,
      d_flag.pointer, d_counts.pointer, d_out.pointer, stream);
  const eplb_status paired =
      eplb_kernel_coactivation(d_ids.pointer, EPLB_IDS_INT32, tokens, k, s.experts, 1, 0,
                               d_flag.pointer, d_pairs.pointer, 0, 0, 0, nullptr, stream);
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  ASSERT_EQ(mapped, EPLB_OK);
  ASSERT_EQ(paired, EPLB_OK);
  cudaGraphExec_t exec = nullptr;
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  // Replays: enabled, disabled, enabled, then enabled after updating the tables to q.
  std::vector<int64_t> counts(s.slots, 0), pc(pairs, 0);
  std::vector<int32_t> out(ids.size());
  const std::vector<int32_t> flags = {1, 0, 1};
  for (const int32_t flag : flags) {
    d_flag.from_host({flag});
    CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    ASSERT_EPLB_OK(eplb_kernel_map_record_cpu(hp.get(), 0, EPLB_MAP_NODE_AWARE, 0, nullptr,
                                              ids.data(), EPLB_IDS_INT32, tokens, k, &flag,
                                              counts.data(), out.data(), nullptr));
    ASSERT_EPLB_OK(eplb_kernel_coactivation_cpu(ids.data(), EPLB_IDS_INT32, tokens, k, s.experts, 1,
                                                0, &flag, pc.data(), 0, 0, 0, nullptr, nullptr));
    EXPECT_EQ(d_out.to_host(), out);
    EXPECT_EQ(d_counts.to_host(), counts);
    EXPECT_EQ(d_pairs.to_host(), pc);
  }
  ASSERT_EPLB_OK(eplb_device_tables_update(gt.get(), q.get(), stream));
  CUDA_OK(cudaGraphLaunch(exec, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  const int32_t on = 1;
  ASSERT_EPLB_OK(eplb_kernel_map_record_cpu(hq.get(), 0, EPLB_MAP_NODE_AWARE, 0, nullptr,
                                            ids.data(), EPLB_IDS_INT32, tokens, k, &on,
                                            counts.data(), out.data(), nullptr));
  EXPECT_EQ(d_out.to_host(), out);
  EXPECT_EQ(d_counts.to_host(), counts);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

TEST(Parity, HostPointersAreRefused) {
  SKIP_WITHOUT_GPU();
  std::vector<int32_t> ids(8, 0);
  std::vector<int64_t> counts(8, 0);
  EXPECT_EQ(eplb_kernel_record_load(ids.data(), EPLB_IDS_INT32, 1, 8, 8, 1, 0, nullptr,
                                    counts.data(), nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("topk_ids"), std::string::npos);
}

#else

TEST(Parity, MapRecordEveryModeBothIdWidths) {
  GTEST_SKIP() << "no CUDA device: the tests were built without CUDA";
}
TEST(Parity, RecorderFoldAndCoactivation) {
  GTEST_SKIP() << "no CUDA device: the tests were built without CUDA";
}
TEST(Parity, GraphCaptureFlagToggleAndTableUpdate) {
  GTEST_SKIP() << "no CUDA device: the tests were built without CUDA";
}

#endif

TEST(Parity, WithoutAGpuTheKernelsSayNoDevice) {
  if (have_gpu()) GTEST_SKIP() << "a GPU is present";
  std::vector<int32_t> ids(8, 0);
  std::vector<int64_t> counts(8, 0);
  EXPECT_EQ(eplb_kernel_record_load(ids.data(), EPLB_IDS_INT32, 1, 8, 8, 1, 0, nullptr,
                                    counts.data(), nullptr),
            EPLB_ERR_NO_DEVICE);
  EXPECT_EQ(eplb_kernel_coactivation(ids.data(), EPLB_IDS_INT32, 1, 8, 8, 1, 0, nullptr,
                                     counts.data(), 0, 0, 0, nullptr, nullptr),
            EPLB_ERR_NO_DEVICE);
  std::mt19937 rng(30);
  auto p = make_placement(kSmall, random_phy2log(kSmall, rng));
  eplb_device_tables* t = nullptr;
  EXPECT_EQ(eplb_device_tables_create(p.get(), 0, 0, 0, nullptr, &t), EPLB_ERR_NO_DEVICE);
  EXPECT_EQ(t, nullptr);
}

}  // namespace
