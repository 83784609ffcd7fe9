// The tracker section and eplb_metrics_nodes_touched through the C ABI only ("eplb/eplb.h",
// libeplb.so): counts against a brute force written here, every error status with its message,
// and the documented threading model (one tracker per thread, merged afterwards).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "eplb/eplb.h"

namespace {

struct TrackerDeleter {
  void operator()(eplb_tracker* t) const { eplb_tracker_destroy(t); }
};
struct PlacementDeleter {
  void operator()(eplb_placement* p) const { eplb_placement_destroy(p); }
};
using TrackerPtr = std::unique_ptr<eplb_tracker, TrackerDeleter>;
using PlacementPtr = std::unique_ptr<eplb_placement, PlacementDeleter>;

eplb_tracker_options make_options(uint32_t layers, uint32_t experts, uint32_t k) {
  eplb_tracker_options o;
  eplb_tracker_options_init(&o);
  o.num_layers = layers;
  o.num_logical_experts = experts;
  o.top_k = k;
  return o;
}

TrackerPtr make_tracker(const eplb_tracker_options& o) {
  eplb_tracker* raw = nullptr;
  EXPECT_EQ(eplb_tracker_create(&o, &raw), EPLB_OK) << eplb_last_error_message();
  return TrackerPtr(raw);
}

// Expects `status` and a last-error message containing `needle`.
void expect_error(eplb_status status, eplb_status want, const std::string& needle) {
  EXPECT_EQ(status, want) << eplb_last_error_message();
  const std::string message = eplb_last_error_message();
  EXPECT_NE(message.find(needle), std::string::npos) << "message: " << message;
}

std::vector<int32_t> random_ids(std::mt19937_64& rng, size_t tokens, uint32_t k, uint32_t e) {
  std::vector<int32_t> ids(tokens * k);
  for (auto& v : ids) v = static_cast<int32_t>(rng() % (e + 1)) - 1;
  return ids;
}

// Loads per occurrence and dense pairs of distinct ids, [E][E] (a < b used).
void brute_force(const std::vector<int32_t>& ids, uint32_t k, uint32_t e, std::vector<double>& load,
                 std::vector<double>& pairs) {
  for (size_t t = 0; t < ids.size() / k; ++t) {
    std::set<int32_t> distinct;
    for (uint32_t s = 0; s < k; ++s) {
      const int32_t v = ids[t * k + s];
      if (v < 0) continue;
      load[static_cast<size_t>(v)] += 1;
      distinct.insert(v);
    }
    for (auto i = distinct.begin(); i != distinct.end(); ++i) {
      for (auto j = std::next(i); j != distinct.end(); ++j) {
        pairs[static_cast<size_t>(*i) * e + static_cast<size_t>(*j)] += 1;
      }
    }
  }
}

std::vector<double> triangle(const eplb_tracker* t, uint32_t layer, uint32_t e) {
  std::vector<double> tri(static_cast<size_t>(e) * (e - 1) / 2);
  EXPECT_EQ(eplb_tracker_get_coactivation(t, layer, tri.data(), tri.size()), EPLB_OK)
      << eplb_last_error_message();
  return tri;
}

TEST(TrackerCapi, OptionsInitSetsDefaults) {
  eplb_tracker_options o;
  std::memset(&o, 0xff, sizeof(o));
  eplb_tracker_options_init(&o);
  EXPECT_EQ(o.struct_size, sizeof(o));
  EXPECT_EQ(o.window, static_cast<uint32_t>(EPLB_WINDOW_CUMULATIVE));
  EXPECT_EQ(o.window_batches, 64U);
  EXPECT_EQ(o.decay, 0.99);
  EXPECT_EQ(o.reservoir_capacity, 4096U);
  EXPECT_EQ(o.seed, 0U);
  EXPECT_EQ(o.num_layers, 0U);
  eplb_tracker_options_init(nullptr);
  eplb_tracker_destroy(nullptr);
}

TEST(TrackerCapi, CountsEqualBruteForce) {
  constexpr uint32_t kE = 10, kK = 3;
  auto t = make_tracker(make_options(2, kE, kK));
  std::mt19937_64 rng(1);
  std::vector<double> load(2 * kE, 0.0), pairs(2 * kE * kE, 0.0);
  for (int n = 0; n < 8; ++n) {
    const uint32_t layer = n % 2;
    const auto ids = random_ids(rng, 1 + rng() % 40, kK, kE);
    ASSERT_EQ(eplb_tracker_record(t.get(), layer, ids.data(), ids.size() / kK, kK), EPLB_OK);
    std::vector<double> l(kE, 0.0), p(kE * kE, 0.0);
    brute_force(ids, kK, kE, l, p);
    for (uint32_t i = 0; i < kE; ++i) load[layer * kE + i] += l[i];
    for (uint32_t i = 0; i < kE * kE; ++i) pairs[layer * kE * kE + i] += p[i];
  }
  std::vector<double> got(2 * kE);
  ASSERT_EQ(eplb_tracker_get_loads(t.get(), got.data(), got.size()), EPLB_OK);
  EXPECT_EQ(got, load);
  for (uint32_t layer = 0; layer < 2; ++layer) {
    const auto tri = triangle(t.get(), layer, kE);
    size_t i = 0;
    for (uint32_t a = 0; a < kE; ++a) {
      for (uint32_t b = a + 1; b < kE; ++b, ++i) {
        EXPECT_EQ(tri[i], pairs[layer * kE * kE + a * kE + b]);
      }
    }
  }
  // Empty batch: allowed with NULL ids.
  EXPECT_EQ(eplb_tracker_record(t.get(), 0, nullptr, 0, kK), EPLB_OK);
  // Reset forgets everything.
  ASSERT_EQ(eplb_tracker_reset(t.get()), EPLB_OK);
  ASSERT_EQ(eplb_tracker_get_loads(t.get(), got.data(), got.size()), EPLB_OK);
  EXPECT_EQ(got, std::vector<double>(2 * kE, 0.0));
  size_t rows = 99;
  ASSERT_EQ(eplb_tracker_get_samples(t.get(), 0, nullptr, 0, &rows), EPLB_OK);
  EXPECT_EQ(rows, 0U);
}

TEST(TrackerCapi, SamplesWithSizeQuery) {
  auto o = make_options(1, 5, 2);
  o.reservoir_capacity = 3;
  auto t = make_tracker(o);
  const std::vector<int32_t> ids = {0, 1, -1, -1, 2, 2, 3, 4, 4, -1};
  ASSERT_EQ(eplb_tracker_record(t.get(), 0, ids.data(), 5, 2), EPLB_OK);
  size_t rows = 0;
  ASSERT_EQ(eplb_tracker_get_samples(t.get(), 0, nullptr, 0, &rows), EPLB_OK);
  EXPECT_EQ(rows, 3U);
  std::vector<int32_t> small(5);
  rows = 77;
  expect_error(eplb_tracker_get_samples(t.get(), 0, small.data(), small.size(), &rows),
               EPLB_ERR_BUFFER_TOO_SMALL, "samples need 6 elements");
  EXPECT_EQ(rows, 77U);  // outputs untouched on failure
  std::vector<int32_t> out(6);
  ASSERT_EQ(eplb_tracker_get_samples(t.get(), 0, out.data(), out.size(), &rows), EPLB_OK);
  EXPECT_EQ(rows, 3U);
  for (size_t r = 0; r < 3; ++r) {  // each sampled row is one of the recorded non-masked rows
    bool found = false;
    for (size_t s = 0; s < 5; ++s) {
      found = found || (out[2 * r] == ids[2 * s] && out[2 * r + 1] == ids[2 * s + 1] &&
                        !(ids[2 * s] == -1 && ids[2 * s + 1] == -1));
    }
    EXPECT_TRUE(found) << "row " << r;
  }
}

TEST(TrackerCapi, PhysicalIdsAndNodesTouched) {
  // 2 nodes x 1 GPU x 3 slots; layer 0: node 0 {0,1,2}, node 1 {3,0,1}.
  const std::vector<int32_t> phy2log = {0, 1, 2, 3, 0, 1};
  eplb_placement* raw = nullptr;
  ASSERT_EQ(eplb_placement_create_from_phy2log(1, 4, 6, 2, 2, phy2log.data(), phy2log.size(), &raw),
            EPLB_OK);
  PlacementPtr placement(raw);
  auto t = make_tracker(make_options(1, 4, 2));
  const std::vector<int32_t> physical = {4, 3, 5, -1, 2, 0};  // logical {0,3}, {1,-1}, {2,0}
  ASSERT_EQ(eplb_tracker_record_physical(t.get(), placement.get(), 0, physical.data(), 3, 2),
            EPLB_OK)
      << eplb_last_error_message();
  std::vector<double> load(4);
  ASSERT_EQ(eplb_tracker_get_loads(t.get(), load.data(), load.size()), EPLB_OK);
  EXPECT_EQ(load, (std::vector<double>{2, 1, 1, 1}));
  const auto tri = triangle(t.get(), 0, 4);  // (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
  EXPECT_EQ(tri, (std::vector<double>{0, 1, 1, 0, 0, 0}));
  // Nodes touched: {0,3}: 3 fixes node 1, 0 reuses it -> 1; {1}: 1; {2,0}: 2 fixes node 0 -> 1;
  // {2,3}: 2.
  const std::vector<int32_t> rows = {0, 3, 1, -1, 2, 0, 2, 3, -1, -1};
  double mean = -1;
  ASSERT_EQ(eplb_metrics_nodes_touched(placement.get(), 0, rows.data(), 5, 2, &mean), EPLB_OK);
  EXPECT_DOUBLE_EQ(mean, 5.0 / 4.0);
  ASSERT_EQ(eplb_metrics_nodes_touched(placement.get(), 0, nullptr, 0, 2, &mean), EPLB_OK);
  EXPECT_EQ(mean, 0.0);
  // Errors of the metric.
  expect_error(eplb_metrics_nodes_touched(nullptr, 0, rows.data(), 5, 2, &mean),
               EPLB_ERR_INVALID_ARGUMENT, "placement is NULL");
  expect_error(eplb_metrics_nodes_touched(placement.get(), 0, rows.data(), 5, 2, nullptr),
               EPLB_ERR_INVALID_ARGUMENT, "out_mean is NULL");
  expect_error(eplb_metrics_nodes_touched(placement.get(), 0, nullptr, 5, 2, &mean),
               EPLB_ERR_INVALID_ARGUMENT, "rows is NULL");
  expect_error(eplb_metrics_nodes_touched(placement.get(), 0, rows.data(), 5, 0, &mean),
               EPLB_ERR_INVALID_ARGUMENT, "top_k (0)");
  expect_error(eplb_metrics_nodes_touched(placement.get(), 1, rows.data(), 5, 2, &mean),
               EPLB_ERR_INVALID_ARGUMENT, "layer (1)");
  const std::vector<int32_t> bad = {0, 4};
  expect_error(eplb_metrics_nodes_touched(placement.get(), 0, bad.data(), 1, 2, &mean),
               EPLB_ERR_INVALID_ARGUMENT, "expert id 4 at row 0, slot 1");
  // Errors of physical recording.
  const std::vector<int32_t> bad_slot = {0, 6};
  expect_error(eplb_tracker_record_physical(t.get(), placement.get(), 0, bad_slot.data(), 1, 2),
               EPLB_ERR_INVALID_ARGUMENT, "physical id 6 at layer 0, token 0, slot 1");
  expect_error(eplb_tracker_record_physical(t.get(), nullptr, 0, bad_slot.data(), 1, 2),
               EPLB_ERR_INVALID_ARGUMENT, "placement is NULL");
  auto other = make_tracker(make_options(2, 4, 2));
  expect_error(eplb_tracker_record_physical(other.get(), placement.get(), 0, physical.data(), 3, 2),
               EPLB_ERR_INVALID_ARGUMENT, "placement has 1 layers");
}

TEST(TrackerCapi, EveryErrorHasItsStatusAndMessage) {
  eplb_tracker* raw = nullptr;
  auto o = make_options(2, 4, 2);
  expect_error(eplb_tracker_create(nullptr, &raw), EPLB_ERR_INVALID_ARGUMENT, "options is NULL");
  expect_error(eplb_tracker_create(&o, nullptr), EPLB_ERR_INVALID_ARGUMENT, "out_tracker is NULL");
  auto bad = o;
  bad.struct_size = 4;
  expect_error(eplb_tracker_create(&bad, &raw), EPLB_ERR_INVALID_ARGUMENT, "struct_size");
  bad = o;
  bad.num_layers = 0;
  expect_error(eplb_tracker_create(&bad, &raw), EPLB_ERR_INVALID_ARGUMENT, "num_layers (0)");
  bad = o;
  bad.num_logical_experts = 0;
  expect_error(eplb_tracker_create(&bad, &raw), EPLB_ERR_INVALID_ARGUMENT,
               "num_logical_experts (0)");
  bad = o;
  bad.top_k = 1025;
  expect_error(eplb_tracker_create(&bad, &raw), EPLB_ERR_INVALID_ARGUMENT, "top_k (1025)");
  bad = o;
  bad.window = 3;
  expect_error(eplb_tracker_create(&bad, &raw), EPLB_ERR_INVALID_ARGUMENT, "window (3)");
  bad = o;
  bad.window = EPLB_WINDOW_SLIDING;
  bad.window_batches = 0;
  expect_error(eplb_tracker_create(&bad, &raw), EPLB_ERR_INVALID_ARGUMENT, "window_batches (0)");
  bad = o;
  bad.window = EPLB_WINDOW_DECAY;
  bad.decay = 0.0;
  expect_error(eplb_tracker_create(&bad, &raw), EPLB_ERR_INVALID_ARGUMENT, "decay (0)");
  bad = o;
  bad.reserved0 = 1;
  expect_error(eplb_tracker_create(&bad, &raw), EPLB_ERR_INVALID_ARGUMENT, "reserved0 (1)");
  EXPECT_EQ(raw, nullptr);
  // Huge sliding window: the size overflows.
  bad = make_options(UINT32_MAX, 65536, 2);
  bad.window = EPLB_WINDOW_SLIDING;
  bad.window_batches = UINT32_MAX;
  expect_error(eplb_tracker_create(&bad, &raw), EPLB_ERR_OUT_OF_MEMORY, "");

  auto t = make_tracker(o);
  const std::vector<int32_t> ids = {0, 1, 2, 4};
  expect_error(eplb_tracker_record(nullptr, 0, ids.data(), 2, 2), EPLB_ERR_INVALID_ARGUMENT,
               "tracker is NULL");
  expect_error(eplb_tracker_record(t.get(), 0, nullptr, 2, 2), EPLB_ERR_INVALID_ARGUMENT,
               "topk_ids is NULL");
  expect_error(eplb_tracker_record(t.get(), 2, ids.data(), 2, 2), EPLB_ERR_INVALID_ARGUMENT,
               "layer (2)");
  expect_error(eplb_tracker_record(t.get(), 0, ids.data(), 1, 4), EPLB_ERR_INVALID_ARGUMENT,
               "top_k (4) differs");
  expect_error(eplb_tracker_record(t.get(), 0, ids.data(), 2, 0), EPLB_ERR_INVALID_ARGUMENT,
               "top_k (0)");
  expect_error(eplb_tracker_record(t.get(), 1, ids.data(), 2, 2), EPLB_ERR_INVALID_ARGUMENT,
               "expert id 4 at layer 1, token 1, slot 1");
  std::vector<double> load(8, -1.0);
  ASSERT_EQ(eplb_tracker_get_loads(t.get(), load.data(), load.size()), EPLB_OK);
  EXPECT_EQ(load, std::vector<double>(8, 0.0)) << "a failed record changes nothing";
  EXPECT_STREQ(eplb_last_error_message(), "");

  expect_error(eplb_tracker_get_loads(nullptr, load.data(), 8), EPLB_ERR_INVALID_ARGUMENT,
               "tracker is NULL");
  expect_error(eplb_tracker_get_loads(t.get(), nullptr, 8), EPLB_ERR_INVALID_ARGUMENT,
               "out is NULL");
  expect_error(eplb_tracker_get_loads(t.get(), load.data(), 7), EPLB_ERR_BUFFER_TOO_SMALL,
               "loads need 8 elements");
  std::vector<double> tri(6);
  expect_error(eplb_tracker_get_coactivation(nullptr, 0, tri.data(), 6), EPLB_ERR_INVALID_ARGUMENT,
               "tracker is NULL");
  expect_error(eplb_tracker_get_coactivation(t.get(), 0, nullptr, 6), EPLB_ERR_INVALID_ARGUMENT,
               "out is NULL");
  expect_error(eplb_tracker_get_coactivation(t.get(), 2, tri.data(), 6), EPLB_ERR_INVALID_ARGUMENT,
               "layer (2)");
  expect_error(eplb_tracker_get_coactivation(t.get(), 0, tri.data(), 5), EPLB_ERR_BUFFER_TOO_SMALL,
               "co-activation needs 6 elements");
  size_t rows = 0;
  int32_t one = 0;
  expect_error(eplb_tracker_get_samples(nullptr, 0, nullptr, 0, &rows), EPLB_ERR_INVALID_ARGUMENT,
               "tracker is NULL");
  expect_error(eplb_tracker_get_samples(t.get(), 0, nullptr, 0, nullptr), EPLB_ERR_INVALID_ARGUMENT,
               "out_rows is NULL");
  expect_error(eplb_tracker_get_samples(t.get(), 0, nullptr, 4, &rows), EPLB_ERR_INVALID_ARGUMENT,
               "out is NULL");
  expect_error(eplb_tracker_get_samples(t.get(), 5, &one, 1, &rows), EPLB_ERR_INVALID_ARGUMENT,
               "layer (5)");
  expect_error(eplb_tracker_reset(nullptr), EPLB_ERR_INVALID_ARGUMENT, "tracker is NULL");
  expect_error(eplb_tracker_merge(nullptr, t.get()), EPLB_ERR_INVALID_ARGUMENT, "dst is NULL");
  expect_error(eplb_tracker_merge(t.get(), nullptr), EPLB_ERR_INVALID_ARGUMENT, "src is NULL");
  auto different = make_tracker(make_options(2, 5, 2));
  expect_error(eplb_tracker_merge(t.get(), different.get()), EPLB_ERR_INVALID_ARGUMENT,
               "trackers differ");
}

// A reservoir_capacity far beyond the machine (2^32 - 1 rows of 1024 ids: 16 TiB) costs only
// the rows it keeps: a reservoir that reserved its whole capacity would fail this record with
// EPLB_ERR_OUT_OF_MEMORY (and abort under a sanitizer's allocator).
TEST(TrackerCapi, HugeReservoirCapacityAllocatesOnlyTheRowsItKeeps) {
  constexpr uint32_t kE = 1024, kK = 1024;
  auto o = make_options(2, kE, kK);
  o.reservoir_capacity = UINT32_MAX;
  auto t = make_tracker(o);
  ASSERT_NE(t, nullptr);
  std::vector<int32_t> ids(std::size_t{3} * kK);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i % kE);
  for (uint32_t batch = 0; batch < 5; ++batch) {
    ASSERT_EQ(eplb_tracker_record(t.get(), 1, ids.data(), 3, kK), EPLB_OK)
        << eplb_last_error_message();
  }
  std::size_t rows = 0;
  ASSERT_EQ(eplb_tracker_get_samples(t.get(), 1, nullptr, 0, &rows), EPLB_OK);
  EXPECT_EQ(rows, 15U);  // below capacity every row is kept
  std::vector<int32_t> sample(rows * kK);
  ASSERT_EQ(eplb_tracker_get_samples(t.get(), 1, sample.data(), sample.size(), &rows), EPLB_OK);
  for (std::size_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(std::equal(sample.begin() + static_cast<std::ptrdiff_t>(r * kK),
                           sample.begin() + static_cast<std::ptrdiff_t>((r + 1) * kK),
                           ids.begin() + static_cast<std::ptrdiff_t>((r % 3) * kK)))
        << "row " << r;
  }
  ASSERT_EQ(eplb_tracker_get_samples(t.get(), 0, nullptr, 0, &rows), EPLB_OK);
  EXPECT_EQ(rows, 0U);
}

TEST(TrackerCapi, SlidingAndDecayWindows) {
  auto o = make_options(1, 3, 2);
  o.window = EPLB_WINDOW_SLIDING;
  o.window_batches = 2;
  auto sliding = make_tracker(o);
  o.window = EPLB_WINDOW_DECAY;
  o.decay = 0.5;
  auto decayed = make_tracker(o);
  const std::vector<std::vector<int32_t>> batches = {{0, 1}, {1, 2}, {0, 2}};
  for (const auto& b : batches) {
    ASSERT_EQ(eplb_tracker_record(sliding.get(), 0, b.data(), 1, 2), EPLB_OK);
    ASSERT_EQ(eplb_tracker_record(decayed.get(), 0, b.data(), 1, 2), EPLB_OK);
  }
  std::vector<double> load(3);
  ASSERT_EQ(eplb_tracker_get_loads(sliding.get(), load.data(), 3), EPLB_OK);
  EXPECT_EQ(load, (std::vector<double>{1, 1, 2}));  // the last two batches
  EXPECT_EQ(triangle(sliding.get(), 0, 3), (std::vector<double>{0, 1, 1}));
  ASSERT_EQ(eplb_tracker_get_loads(decayed.get(), load.data(), 3), EPLB_OK);
  EXPECT_EQ(load, (std::vector<double>{1.25, 0.75, 1.5}));  // 0.25*{0,1} + 0.5*{1,2} + {0,2}
  EXPECT_EQ(triangle(decayed.get(), 0, 3), (std::vector<double>{0.25, 1, 0.5}));
}

// Everything a tracker exposes, layer by layer: loads, the co-activation triangle, the reservoir.
struct TrackerView {
  std::vector<double> loads;
  std::vector<std::vector<double>> pairs;
  std::vector<std::vector<int32_t>> samples;
  bool operator==(const TrackerView&) const = default;
};

TrackerView view_of(const eplb_tracker* t, uint32_t layers, uint32_t e, uint32_t k) {
  TrackerView v;
  v.loads.resize(static_cast<size_t>(layers) * e);
  EXPECT_EQ(eplb_tracker_get_loads(t, v.loads.data(), v.loads.size()), EPLB_OK);
  for (uint32_t l = 0; l < layers; ++l) {
    v.pairs.push_back(triangle(t, l, e));
    size_t rows = 0;
    EXPECT_EQ(eplb_tracker_get_samples(t, l, nullptr, 0, &rows), EPLB_OK);
    std::vector<int32_t> sample(rows * k);
    EXPECT_EQ(eplb_tracker_get_samples(t, l, sample.data(), sample.size(), &rows), EPLB_OK);
    v.samples.push_back(std::move(sample));
  }
  return v;
}

// A clone has the whole state: equal now, equal after the same further batches (counts, window
// and the reservoir's RNG), independent of the original (which is destroyed first).
TEST(TrackerCapi, CloneHasTheWholeStateAndIsIndependent) {
  constexpr uint32_t kLayers = 2, kE = 9, kK = 3;
  for (const uint32_t window : {EPLB_WINDOW_CUMULATIVE, EPLB_WINDOW_SLIDING, EPLB_WINDOW_DECAY}) {
    SCOPED_TRACE(window);
    std::mt19937_64 rng(window + 17);
    auto o = make_options(kLayers, kE, kK);
    o.window = window;
    o.window_batches = 3;
    o.decay = 0.7;
    o.reservoir_capacity = 20;
    auto original = make_tracker(o);
    auto twin = make_tracker(o);  // records everything the original and then the clone record
    const auto record_both = [&](eplb_tracker* a, eplb_tracker* b, size_t tokens) {
      const uint32_t layer = static_cast<uint32_t>(rng() % kLayers);
      const auto ids = random_ids(rng, tokens, kK, kE);
      ASSERT_EQ(eplb_tracker_record(a, layer, ids.data(), tokens, kK), EPLB_OK);
      ASSERT_EQ(eplb_tracker_record(b, layer, ids.data(), tokens, kK), EPLB_OK);
    };
    for (int n = 0; n < 8; ++n) record_both(original.get(), twin.get(), 1 + rng() % 30);

    eplb_tracker* raw = nullptr;
    ASSERT_EQ(eplb_tracker_clone(original.get(), &raw), EPLB_OK) << eplb_last_error_message();
    auto clone = TrackerPtr(raw);
    EXPECT_EQ(view_of(clone.get(), kLayers, kE, kK), view_of(original.get(), kLayers, kE, kK));
    eplb_tracker_options got;
    got.struct_size = sizeof(got);
    ASSERT_EQ(eplb_tracker_get_options(clone.get(), &got), EPLB_OK);
    EXPECT_EQ(got.window, window);
    EXPECT_EQ(got.reservoir_capacity, 20U);

    // The clone goes on without its original.
    const TrackerView original_before = view_of(original.get(), kLayers, kE, kK);
    for (int n = 0; n < 8; ++n) record_both(clone.get(), twin.get(), 1 + rng() % 30);
    EXPECT_EQ(view_of(original.get(), kLayers, kE, kK), original_before);
    original.reset();
    EXPECT_EQ(view_of(clone.get(), kLayers, kE, kK), view_of(twin.get(), kLayers, kE, kK));
  }
  eplb_tracker* out = nullptr;
  expect_error(eplb_tracker_clone(nullptr, &out), EPLB_ERR_INVALID_ARGUMENT, "tracker is NULL");
  EXPECT_EQ(out, nullptr);
}

// The documented threading model: one tracker per thread, merged afterwards, equals one tracker
// recording everything.
TEST(TrackerCapi, PerThreadTrackersMergedEqualOneTracker) {
  constexpr uint32_t kLayers = 4, kE = 32, kK = 4, kThreads = 4, kSteps = 50;
  std::mt19937_64 rng(9);
  // batches[step][layer][thread]: each step, every thread records its share of each layer.
  std::vector<std::vector<int32_t>> batches;
  for (uint32_t i = 0; i < kSteps * kLayers * kThreads; ++i) {
    batches.push_back(random_ids(rng, 64, kK, kE));
  }
  auto index = [](uint32_t step, uint32_t layer, uint32_t thread) {
    return (step * kLayers + layer) * kThreads + thread;
  };
  for (const uint32_t window : {0U, 1U, 2U}) {
    auto o = make_options(kLayers, kE, kK);
    o.window = window;
    o.window_batches = 8;
    o.decay = 0.9;
    std::vector<TrackerPtr> per_thread;
    for (uint32_t i = 0; i < kThreads; ++i) per_thread.push_back(make_tracker(o));
    std::vector<std::thread> threads;
    std::vector<eplb_status> failures(kThreads, EPLB_OK);
    for (uint32_t th = 0; th < kThreads; ++th) {
      threads.emplace_back([&, th] {
        for (uint32_t step = 0; step < kSteps; ++step) {
          for (uint32_t layer = 0; layer < kLayers; ++layer) {
            const auto& b = batches[index(step, layer, th)];
            const eplb_status s =
                eplb_tracker_record(per_thread[th].get(), layer, b.data(), b.size() / kK, kK);
            if (s != EPLB_OK) failures[th] = s;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    for (auto f : failures) ASSERT_EQ(f, EPLB_OK);
    // Reference: one tracker, each step's shares concatenated into one batch per layer.
    auto single = make_tracker(o);
    for (uint32_t step = 0; step < kSteps; ++step) {
      for (uint32_t layer = 0; layer < kLayers; ++layer) {
        std::vector<int32_t> all;
        for (uint32_t th = 0; th < kThreads; ++th) {
          const auto& b = batches[index(step, layer, th)];
          all.insert(all.end(), b.begin(), b.end());
        }
        ASSERT_EQ(eplb_tracker_record(single.get(), layer, all.data(), all.size() / kK, kK),
                  EPLB_OK);
      }
    }
    for (uint32_t th = 1; th < kThreads; ++th) {
      ASSERT_EQ(eplb_tracker_merge(per_thread[0].get(), per_thread[th].get()), EPLB_OK);
    }
    std::vector<double> a(kLayers * kE), b(kLayers * kE);
    ASSERT_EQ(eplb_tracker_get_loads(single.get(), a.data(), a.size()), EPLB_OK);
    ASSERT_EQ(eplb_tracker_get_loads(per_thread[0].get(), b.data(), b.size()), EPLB_OK);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-9 * (1 + a[i]));
    for (uint32_t layer = 0; layer < kLayers; ++layer) {
      const auto pa = triangle(single.get(), layer, kE);
      const auto pb = triangle(per_thread[0].get(), layer, kE);
      for (size_t i = 0; i < pa.size(); ++i) EXPECT_NEAR(pa[i], pb[i], 1e-9 * (1 + pa[i]));
    }
  }
}

}  // namespace
