// Co-activation statistics in snapshots through the C ABI only: statistics snapshots saved to a
// buffer and a file and loaded back into an equal tracker, placement snapshots carrying a
// tracker, the tracker getters, and every error status with its message.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "eplb/eplb.h"

namespace {

struct TrackerDeleter {
  void operator()(eplb_tracker* t) const { eplb_tracker_destroy(t); }
};
struct SnapshotDeleter {
  void operator()(eplb_snapshot* s) const { eplb_snapshot_destroy(s); }
};
struct PlacementDeleter {
  void operator()(eplb_placement* p) const { eplb_placement_destroy(p); }
};
using TrackerPtr = std::unique_ptr<eplb_tracker, TrackerDeleter>;
using SnapshotPtr = std::unique_ptr<eplb_snapshot, SnapshotDeleter>;
using PlacementPtr = std::unique_ptr<eplb_placement, PlacementDeleter>;

void expect_error(eplb_status status, eplb_status want, const std::string& needle) {
  EXPECT_EQ(status, want) << eplb_last_error_message();
  const std::string message = eplb_last_error_message();
  EXPECT_NE(message.find(needle), std::string::npos) << "message: " << message;
}

TrackerPtr recorded_tracker(uint32_t layers, uint32_t e, uint32_t k, uint32_t window) {
  eplb_tracker_options o;
  eplb_tracker_options_init(&o);
  o.num_layers = layers;
  o.num_logical_experts = e;
  o.top_k = k;
  o.window = window;
  o.window_batches = 4;
  o.reservoir_capacity = 8;
  o.seed = 5;
  eplb_tracker* raw = nullptr;
  EXPECT_EQ(eplb_tracker_create(&o, &raw), EPLB_OK) << eplb_last_error_message();
  TrackerPtr t(raw);
  std::mt19937_64 rng(1);
  for (int b = 0; b < 20; ++b) {
    const size_t tokens = rng() % 30;
    std::vector<int32_t> ids(tokens * k);
    for (auto& v : ids) v = static_cast<int32_t>(rng() % (e + 1)) - 1;
    EXPECT_EQ(
        eplb_tracker_record(t.get(), static_cast<uint32_t>(rng() % layers), ids.data(), tokens, k),
        EPLB_OK)
        << eplb_last_error_message();
  }
  return t;
}

void expect_same(const eplb_tracker* a, const eplb_tracker* b) {
  eplb_tracker_options oa;
  eplb_tracker_options ob;
  eplb_tracker_options_init(&oa);
  eplb_tracker_options_init(&ob);
  ASSERT_EQ(eplb_tracker_get_options(a, &oa), EPLB_OK);
  ASSERT_EQ(eplb_tracker_get_options(b, &ob), EPLB_OK);
  ASSERT_EQ(oa.num_layers, ob.num_layers);
  ASSERT_EQ(oa.num_logical_experts, ob.num_logical_experts);
  ASSERT_EQ(oa.top_k, ob.top_k);
  EXPECT_EQ(oa.window, ob.window);
  EXPECT_EQ(oa.reservoir_capacity, ob.reservoir_capacity);
  EXPECT_EQ(oa.seed, ob.seed);
  const uint32_t e = oa.num_logical_experts;
  std::vector<double> la(size_t{oa.num_layers} * e), lb(la.size());
  ASSERT_EQ(eplb_tracker_get_loads(a, la.data(), la.size()), EPLB_OK);
  ASSERT_EQ(eplb_tracker_get_loads(b, lb.data(), lb.size()), EPLB_OK);
  EXPECT_EQ(la, lb);
  for (uint32_t l = 0; l < oa.num_layers; ++l) {
    std::vector<double> pa(size_t{e} * (e - 1) / 2), pb(pa.size());
    ASSERT_EQ(eplb_tracker_get_coactivation(a, l, pa.data(), pa.size()), EPLB_OK);
    ASSERT_EQ(eplb_tracker_get_coactivation(b, l, pb.data(), pb.size()), EPLB_OK);
    EXPECT_EQ(pa, pb);
    std::vector<int32_t> sa(size_t{oa.reservoir_capacity} * oa.top_k), sb(sa.size());
    size_t ra = 0;
    size_t rb = 0;
    ASSERT_EQ(eplb_tracker_get_samples(a, l, sa.data(), sa.size(), &ra), EPLB_OK);
    ASSERT_EQ(eplb_tracker_get_samples(b, l, sb.data(), sb.size(), &rb), EPLB_OK);
    EXPECT_EQ(ra, rb);
    EXPECT_EQ(sa, sb);
    uint64_t batches_a = 0, batches_b = 0, tokens_a = 0, tokens_b = 0;
    ASSERT_EQ(eplb_tracker_get_layer_counts(a, l, &batches_a, &tokens_a), EPLB_OK);
    ASSERT_EQ(eplb_tracker_get_layer_counts(b, l, &batches_b, &tokens_b), EPLB_OK);
    EXPECT_EQ(batches_a, batches_b);
    EXPECT_EQ(tokens_a, tokens_b);
  }
}

TEST(TrackerSnapshotCapi, StatisticsSnapshotsRoundTrip) {
  for (uint32_t window : {EPLB_WINDOW_CUMULATIVE, EPLB_WINDOW_SLIDING, EPLB_WINDOW_DECAY}) {
    const TrackerPtr tracker = recorded_tracker(3, 6, 2, window);
    eplb_snapshot_options options;
    eplb_snapshot_options_init(&options);
    options.label = "stats";
    void* buffer = nullptr;
    size_t size = 0;
    ASSERT_EQ(eplb_snapshot_save_statistics_to_buffer(tracker.get(), &options, &buffer, &size),
              EPLB_OK)
        << eplb_last_error_message();
    eplb_snapshot* raw = nullptr;
    ASSERT_EQ(eplb_snapshot_load_from_buffer(buffer, size, &raw), EPLB_OK)
        << eplb_last_error_message();
    eplb_buffer_free(buffer);
    const SnapshotPtr snapshot(raw);
    eplb_snapshot_info info{};
    info.struct_size = sizeof(info);
    ASSERT_EQ(eplb_snapshot_get_info(snapshot.get(), &info), EPLB_OK);
    EXPECT_EQ(info.format_minor, uint32_t{EPLB_SNAPSHOT_FORMAT_MINOR});
    EXPECT_EQ(info.num_layers, 3U);
    EXPECT_EQ(info.num_logical_experts, 6U);
    // No placement: the header's zeros, not the topology defaults (1 node, 1 group).
    EXPECT_EQ(info.num_physical_experts, 0U);
    EXPECT_EQ(info.num_nodes, 0U);
    EXPECT_EQ(info.num_gpus, 0U);
    EXPECT_EQ(info.num_groups, 0U);
    EXPECT_EQ(info.algorithm, 0U);
    EXPECT_EQ(info.has_coactivation, 1U);
    EXPECT_EQ(info.has_loads, 0U);
    EXPECT_STREQ(info.label, "stats");
    eplb_placement* placement = nullptr;
    expect_error(eplb_snapshot_get_placement(snapshot.get(), &placement), EPLB_ERR_INVALID_ARGUMENT,
                 "no placement");
    EXPECT_EQ(placement, nullptr);
    eplb_tracker* loaded = nullptr;
    ASSERT_EQ(eplb_snapshot_get_tracker(snapshot.get(), &loaded), EPLB_OK);
    const TrackerPtr owned(loaded);
    expect_same(tracker.get(), loaded);
  }
}

TEST(TrackerSnapshotCapi, FilesAndPlacementSnapshots) {
  const TrackerPtr tracker = recorded_tracker(2, 12, 2, EPLB_WINDOW_CUMULATIVE);
  const std::string path = ::testing::TempDir() + "eplb_tracker_snapshot_capi.eplb";
  ASSERT_EQ(eplb_snapshot_save_statistics(tracker.get(), nullptr, path.c_str()), EPLB_OK)
      << eplb_last_error_message();
  eplb_snapshot_info info{};
  info.struct_size = sizeof(info);
  ASSERT_EQ(eplb_snapshot_inspect(path.c_str(), &info), EPLB_OK) << eplb_last_error_message();
  EXPECT_EQ(info.num_layers, 2U);
  EXPECT_EQ(info.num_physical_experts, 0U);
  EXPECT_EQ(info.num_nodes, 0U);
  EXPECT_EQ(info.num_groups, 0U);
  eplb_snapshot* raw = nullptr;
  ASSERT_EQ(eplb_snapshot_load(path.c_str(), &raw), EPLB_OK);
  SnapshotPtr snapshot(raw);
  eplb_tracker* loaded = nullptr;
  ASSERT_EQ(eplb_snapshot_get_tracker(snapshot.get(), &loaded), EPLB_OK);
  expect_same(tracker.get(), loaded);
  eplb_tracker_destroy(loaded);
  std::remove(path.c_str());

  // A placement snapshot with the tracker's statistics (README example: 2 x 12, 16 slots).
  eplb_planner_options po;
  eplb_planner_options_init(&po);
  po.algorithm = EPLB_ALGORITHM_DEEPSEEK;
  po.num_layers = 2;
  po.num_logical_experts = 12;
  po.num_physical_experts = 16;
  po.num_groups = 4;
  po.num_nodes = 2;
  po.num_gpus = 8;
  eplb_planner* planner = nullptr;
  ASSERT_EQ(eplb_planner_create(&po, &planner), EPLB_OK) << eplb_last_error_message();
  std::vector<double> loads(24);
  ASSERT_EQ(eplb_tracker_get_loads(tracker.get(), loads.data(), loads.size()), EPLB_OK);
  for (auto& v : loads) v += 1;  // no all-zero layer
  eplb_placement* placement = nullptr;
  ASSERT_EQ(eplb_planner_plan(planner, loads.data(), loads.size(), &placement), EPLB_OK)
      << eplb_last_error_message();
  eplb_planner_destroy(planner);
  const PlacementPtr owned_placement(placement);
  eplb_snapshot_options options;
  eplb_snapshot_options_init(&options);
  options.tracker = tracker.get();
  void* buffer = nullptr;
  size_t size = 0;
  ASSERT_EQ(eplb_snapshot_save_to_buffer(placement, &options, &buffer, &size), EPLB_OK)
      << eplb_last_error_message();
  ASSERT_EQ(eplb_snapshot_load_from_buffer(buffer, size, &raw), EPLB_OK);
  eplb_buffer_free(buffer);
  snapshot.reset(raw);
  ASSERT_EQ(eplb_snapshot_get_tracker(snapshot.get(), &loaded), EPLB_OK);
  expect_same(tracker.get(), loaded);
  eplb_tracker_destroy(loaded);

  // A tracker of another shape is refused.
  const TrackerPtr other = recorded_tracker(3, 12, 2, EPLB_WINDOW_CUMULATIVE);
  options.tracker = other.get();
  expect_error(eplb_snapshot_save_to_buffer(placement, &options, &buffer, &size),
               EPLB_ERR_INVALID_ARGUMENT, "tracker has 3 layers");
  // A snapshot without statistics has no tracker.
  ASSERT_EQ(eplb_snapshot_save_to_buffer(placement, nullptr, &buffer, &size), EPLB_OK);
  ASSERT_EQ(eplb_snapshot_load_from_buffer(buffer, size, &raw), EPLB_OK);
  eplb_buffer_free(buffer);
  snapshot.reset(raw);
  loaded = nullptr;
  expect_error(eplb_snapshot_get_tracker(snapshot.get(), &loaded), EPLB_ERR_INVALID_ARGUMENT,
               "no co-activation statistics");
  EXPECT_EQ(loaded, nullptr);
}

TEST(TrackerSnapshotCapi, BadArguments) {
  const TrackerPtr tracker = recorded_tracker(2, 4, 2, EPLB_WINDOW_CUMULATIVE);
  void* buffer = nullptr;
  size_t size = 0;
  expect_error(eplb_snapshot_save_statistics(nullptr, nullptr, "x.eplb"), EPLB_ERR_INVALID_ARGUMENT,
               "tracker");
  expect_error(eplb_snapshot_save_statistics(tracker.get(), nullptr, nullptr),
               EPLB_ERR_INVALID_ARGUMENT, "path");
  expect_error(eplb_snapshot_save_statistics_to_buffer(nullptr, nullptr, &buffer, &size),
               EPLB_ERR_INVALID_ARGUMENT, "tracker");
  expect_error(eplb_snapshot_save_statistics_to_buffer(tracker.get(), nullptr, nullptr, &size),
               EPLB_ERR_INVALID_ARGUMENT, "out_buffer");
  expect_error(eplb_snapshot_save_statistics_to_buffer(tracker.get(), nullptr, &buffer, nullptr),
               EPLB_ERR_INVALID_ARGUMENT, "out_size");
  eplb_snapshot_options options;
  eplb_snapshot_options_init(&options);
  const double loads[8] = {};
  options.loads = loads;
  options.loads_len = 8;
  expect_error(eplb_snapshot_save_statistics_to_buffer(tracker.get(), &options, &buffer, &size),
               EPLB_ERR_INVALID_ARGUMENT, "options->loads");
  eplb_snapshot_options_init(&options);
  options.tracker = tracker.get();
  expect_error(eplb_snapshot_save_statistics_to_buffer(tracker.get(), &options, &buffer, &size),
               EPLB_ERR_INVALID_ARGUMENT, "options->tracker");
  eplb_snapshot_options_init(&options);
  options.compression_level = 0;
  expect_error(eplb_snapshot_save_statistics_to_buffer(tracker.get(), &options, &buffer, &size),
               EPLB_ERR_INVALID_ARGUMENT, "compression_level");
  expect_error(eplb_snapshot_save_statistics(tracker.get(), nullptr, "/nonexistent-dir/x.eplb"),
               EPLB_ERR_IO, "/nonexistent-dir");
  // The struct of the first version (without `tracker`) is accepted.
  eplb_snapshot_options_init(&options);
  options.struct_size = static_cast<uint32_t>(offsetof(eplb_snapshot_options, tracker));
  ASSERT_EQ(eplb_snapshot_save_statistics_to_buffer(tracker.get(), &options, &buffer, &size),
            EPLB_OK)
      << eplb_last_error_message();
  eplb_buffer_free(buffer);

  eplb_tracker* out = nullptr;
  expect_error(eplb_snapshot_get_tracker(nullptr, &out), EPLB_ERR_INVALID_ARGUMENT, "snapshot");
  eplb_tracker_options o;
  eplb_tracker_options_init(&o);
  expect_error(eplb_tracker_get_options(nullptr, &o), EPLB_ERR_INVALID_ARGUMENT, "tracker");
  expect_error(eplb_tracker_get_options(tracker.get(), nullptr), EPLB_ERR_INVALID_ARGUMENT,
               "out_options");
  o.struct_size = 4;
  expect_error(eplb_tracker_get_options(tracker.get(), &o), EPLB_ERR_INVALID_ARGUMENT,
               "struct_size (4)");
  uint64_t batches = 0;
  expect_error(eplb_tracker_get_layer_counts(nullptr, 0, &batches, nullptr),
               EPLB_ERR_INVALID_ARGUMENT, "tracker");
  expect_error(eplb_tracker_get_layer_counts(tracker.get(), 2, &batches, nullptr),
               EPLB_ERR_INVALID_ARGUMENT, "layer (2)");
  EXPECT_EQ(eplb_tracker_get_layer_counts(tracker.get(), 1, nullptr, nullptr), EPLB_OK);
}

}  // namespace
