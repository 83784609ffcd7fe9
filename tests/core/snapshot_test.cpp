// Snapshots in the core: round trips of every algorithm's placement (phy2log, replica counts,
// log2phy in replica-rank order, provenance) with and without load statistics, labels and
// creation times, the writer's option checks, inspect reading only the small sections, files on
// disk, and the committed golden file of format 1.0. Damaged and forged files are in
// snapshot_damage_test.cpp.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "error.hpp"
#include "metrics.hpp"
#include "planner.hpp"
#include "snapshot.hpp"
#include "support/random_cases.hpp"
#include "support/snapshot_files.hpp"

namespace eplb {
namespace {

namespace format = snapshot_format;

// deepseek-ai/EPLB's README example: 2 layers x 12 experts, 16 slots, 4 groups, 2 nodes, 8 GPUs.
Topology readme_topology() {
  Topology t;
  t.num_layers = 2;
  t.num_logical = 12;
  t.num_physical = 16;
  t.num_nodes = 2;
  t.num_gpus = 8;
  t.num_groups = 4;
  return t;
}
const std::vector<double> kReadmeLoads = {90, 132, 40,  61, 104, 165, 39,  4,   73,  56, 183, 86,
                                          20, 107, 104, 64, 19,  197, 187, 157, 172, 86, 16,  27};
const std::vector<std::int32_t> kReadmePhy2log = {5, 6, 5, 7,  8, 4, 3,  4, 10, 9, 10,
                                                  2, 0, 1, 11, 1, 7, 10, 6, 8,  6, 11,
                                                  8, 9, 2, 4,  5, 1, 5,  0, 3,  1};

// The golden file's fixed provenance (see DISABLED_WriteFormat10File).
constexpr std::uint64_t kGoldenCreated = 1790000000;  // 2026-09-21 14:13:20 UTC
constexpr double kGoldenPlanSeconds = 0.00125;
constexpr const char* kGoldenLabel = "golden: format 1.0";
const std::string kGoldenPath = std::string(EPLB_TEST_DATA_DIR) + "/snapshot_format_1_0.eplb";

Topology deepseek_v3_topology() {
  Topology t;
  t.num_layers = 58;
  t.num_logical = 256;
  t.num_physical = 288;
  t.num_nodes = 4;
  t.num_gpus = 32;
  t.num_groups = 8;
  return t;
}

void expect_same_placement(const Placement& actual, const Placement& expected) {
  const Topology& a = actual.topology();
  const Topology& e = expected.topology();
  EXPECT_EQ(a.num_layers, e.num_layers);
  EXPECT_EQ(a.num_logical, e.num_logical);
  EXPECT_EQ(a.num_physical, e.num_physical);
  EXPECT_EQ(a.num_nodes, e.num_nodes);
  EXPECT_EQ(a.num_gpus, e.num_gpus);
  EXPECT_EQ(a.num_groups, e.num_groups);
  EXPECT_EQ(actual.log2phy_width(), expected.log2phy_width());
  EXPECT_TRUE(std::ranges::equal(actual.phy2log(), expected.phy2log()));
  EXPECT_TRUE(std::ranges::equal(actual.replica_counts(), expected.replica_counts()));
  EXPECT_TRUE(std::ranges::equal(actual.log2phy(), expected.log2phy()));
  EXPECT_EQ(actual.provenance().algorithm, expected.provenance().algorithm);
  EXPECT_EQ(actual.provenance().hierarchical, expected.provenance().hierarchical);
  EXPECT_EQ(actual.provenance().plan_seconds, expected.provenance().plan_seconds);
  EXPECT_EQ(actual.provenance().cross_node_budget, expected.provenance().cross_node_budget);
}

void expect_same_metrics(const Metrics& a, const Metrics& e) {
  EXPECT_EQ(a.num_layers, e.num_layers);
  EXPECT_EQ(a.max_replicas, e.max_replicas);
  EXPECT_EQ(a.duplicate_pairs, e.duplicate_pairs);
  EXPECT_EQ(a.cross_node_replicas, e.cross_node_replicas);
  EXPECT_EQ(a.balancedness, e.balancedness);
  EXPECT_EQ(a.min_balancedness, e.min_balancedness);
  EXPECT_EQ(a.node_balancedness, e.node_balancedness);
  EXPECT_EQ(a.max_load_over_bound, e.max_load_over_bound);
  EXPECT_EQ(a.worst_max_load_over_bound, e.worst_max_load_over_bound);
  EXPECT_EQ(a.max_over_mean, e.max_over_mean);
  EXPECT_EQ(a.max_load_over_node_bound, e.max_load_over_node_bound);
}

template <typename Body>
Errc error_code_of(Body&& body, std::string* message = nullptr) {
  try {
    body();
  } catch (const Error& error) {
    if (message != nullptr) *message = error.what();
    return error.code();
  }
  ADD_FAILURE() << "no error";
  return Errc::internal;
}

std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

std::string temp_dir(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) /
                   ("eplb_snapshot_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// --- Round trips --------------------------------------------------------------------------------

TEST(SnapshotRoundTrip, EveryAlgorithmWithAndWithoutLoads) {
  std::mt19937_64 rng(20261123);
  for (std::uint32_t algorithm = 1; algorithm <= 5; ++algorithm) {
    for (int trial = 0; trial < 12; ++trial) {
      SCOPED_TRACE("algorithm " + std::to_string(algorithm) + " trial " + std::to_string(trial));
      const Topology t = test::random_topology(rng, trial % 2 == 0);
      const auto loads = trial % 3 == 0 ? test::random_small_loads(rng, t, 4)
                                        : test::random_tie_free_loads(rng, t);
      PlannerSettings settings;
      settings.algorithm = algorithm;
      settings.cross_node_budget = algorithm == 5 ? std::min<std::uint32_t>(2, t.num_physical) : 0;
      Planner planner(t, settings);
      const Placement placement = planner.plan(loads);
      for (bool with_loads : {false, true}) {
        SnapshotWriteOptions options;
        if (with_loads) options.loads = std::span<const double>(loads);
        const auto bytes = encode_snapshot(placement, options);
        const Snapshot snapshot = Snapshot::decode(bytes, "test");
        expect_same_placement(snapshot.placement(), placement);
        const SnapshotInfo& info = snapshot.info();
        EXPECT_EQ(info.format_major, 1);
        EXPECT_EQ(info.format_minor, snapshot_format::kFormatMinor);
        EXPECT_EQ(info.file_size, bytes.size());
        EXPECT_EQ(info.has_loads, with_loads);
        EXPECT_FALSE(info.has_coactivation);
        EXPECT_EQ(info.log2phy_width, placement.log2phy_width());
        EXPECT_EQ(info.label, "");
        EXPECT_FALSE(info.library_version.empty());
        if (with_loads) {
          EXPECT_TRUE(std::ranges::equal(snapshot.loads(), loads));
          ASSERT_TRUE(info.metrics.has_value());
          expect_same_metrics(*info.metrics, compute_metrics(placement, loads));
        } else {
          EXPECT_TRUE(snapshot.loads().empty());
          EXPECT_FALSE(info.metrics.has_value());
        }
      }
    }
  }
}

TEST(SnapshotRoundTrip, KeepsTheOptionsOfTheRelaxedPlanner) {
  const Topology t = readme_topology();
  PlannerSettings settings;
  settings.algorithm = static_cast<std::uint32_t>(Algorithm::balanced_relaxed);
  settings.cross_node_budget = 3;
  Planner planner(t, settings);
  const Placement placement = planner.plan(kReadmeLoads);
  ASSERT_EQ(placement.provenance().cross_node_budget, 3U);
  const auto snapshot = Snapshot::decode(encode_snapshot(placement, {}), "test");
  EXPECT_EQ(snapshot.placement().provenance().cross_node_budget, 3U);
  expect_same_placement(snapshot.placement(), placement);
}

TEST(SnapshotRoundTrip, ImportedPlacementKeepsItsSlotOrder) {
  const Topology t = readme_topology();
  const Placement placement = Placement::from_phy2log(t, kReadmePhy2log);
  const auto snapshot = Snapshot::decode(encode_snapshot(placement, {}), "test");
  expect_same_placement(snapshot.placement(), placement);
  EXPECT_EQ(snapshot.info().provenance.algorithm, 0U);
}

TEST(SnapshotRoundTrip, DeepSeekV3ShapeThroughAFile) {
  const Topology t = deepseek_v3_topology();
  std::mt19937_64 rng(1);
  const auto loads = test::random_tie_free_loads(rng, t);
  Planner planner(t, static_cast<std::uint32_t>(Algorithm::balanced_hierarchical));
  const Placement placement = planner.plan(loads);
  SnapshotWriteOptions options;
  options.loads = std::span<const double>(loads);
  options.label = "deepseek-v3 4x8";
  const std::string path = temp_dir("v3") + "/v3.eplb";
  save_snapshot(placement, options, path);
  const Snapshot snapshot = Snapshot::load(path);
  expect_same_placement(snapshot.placement(), placement);
  EXPECT_TRUE(std::ranges::equal(snapshot.loads(), loads));
  EXPECT_EQ(snapshot.info().label, "deepseek-v3 4x8");
  EXPECT_EQ(snapshot.info().file_size, std::filesystem::file_size(path));
  const SnapshotInfo inspected = Snapshot::inspect(path);
  EXPECT_EQ(inspected.file_size, snapshot.info().file_size);
  EXPECT_EQ(inspected.created_unix_seconds, snapshot.info().created_unix_seconds);
  ASSERT_TRUE(inspected.metrics.has_value());
  expect_same_metrics(*inspected.metrics, *snapshot.info().metrics);
  // The file is the same bytes as the buffer form.
  EXPECT_EQ(read_file(path).size(), encode_snapshot(placement, options).size());
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

TEST(SnapshotRoundTrip, LabelsAndCreationTime) {
  const Placement placement = Placement::from_phy2log(readme_topology(), kReadmePhy2log);
  for (const std::string& label :
       {std::string("prod \xe2\x80\xa2 2026-11 \xe2\x9c\x93"), std::string(255, 'x'),
        std::string("\xf0\x9f\x9a\x80"), std::string()}) {
    SnapshotWriteOptions options;
    options.label = label;
    options.created_unix_seconds = 1234567890;
    const auto info = Snapshot::decode(encode_snapshot(placement, options), "test").info();
    EXPECT_EQ(info.label, label);
    EXPECT_EQ(info.created_unix_seconds, 1234567890U);
  }
  const auto now = [] {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  };
  const std::uint64_t before = now();
  const auto info = Snapshot::decode(encode_snapshot(placement, {}), "test").info();
  EXPECT_GE(info.created_unix_seconds, before);
  EXPECT_LE(info.created_unix_seconds, now());
}

TEST(SnapshotRoundTrip, EveryCompressionLevel) {
  const Topology t = deepseek_v3_topology();
  std::mt19937_64 rng(3);
  const auto loads = test::random_tie_free_loads(rng, t);
  const Placement placement = Planner(t, 1).plan(loads);
  for (int level = 1; level <= 19; level += 6) {
    SnapshotWriteOptions options;
    options.compression_level = level;
    options.loads = std::span<const double>(loads);
    const auto snapshot = Snapshot::decode(encode_snapshot(placement, options), "test");
    expect_same_placement(snapshot.placement(), placement);
  }
}

TEST(SnapshotRoundTrip, TheWriterIsDeterministicForAFixedTime) {
  const Placement placement = Planner(readme_topology(), 1).plan(kReadmeLoads);
  SnapshotWriteOptions options;
  options.loads = std::span<const double>(kReadmeLoads);
  options.created_unix_seconds = 42;
  EXPECT_EQ(encode_snapshot(placement, options), encode_snapshot(placement, options));
}

// --- Writer options -----------------------------------------------------------------------------

TEST(SnapshotOptions, RejectsBadOptionsNamingThem) {
  const Placement placement = Placement::from_phy2log(readme_topology(), kReadmePhy2log);
  auto code_and_message = [&](const SnapshotWriteOptions& options) {
    std::string message;
    const Errc code = error_code_of([&] { (void)encode_snapshot(placement, options); }, &message);
    EXPECT_EQ(code, Errc::invalid_argument) << message;
    return message;
  };
  SnapshotWriteOptions options;
  options.compression_level = 0;
  EXPECT_NE(code_and_message(options).find("compression_level (0)"), std::string::npos);
  options.compression_level = 20;
  EXPECT_NE(code_and_message(options).find("compression_level (20)"), std::string::npos);

  options = {};
  options.label = std::string(256, 'x');
  EXPECT_NE(code_and_message(options).find("256 bytes"), std::string::npos);
  for (const std::string& bad : {std::string("\xff"), std::string("a\xc3"), std::string("\xc0\xaf"),
                                 std::string("\xed\xa0\x80"), std::string("a\0b", 3)}) {
    options.label = bad;
    EXPECT_NE(code_and_message(options).find("UTF-8"), std::string::npos);
  }

  options = {};
  const std::vector<double> short_loads(5, 1.0);
  options.loads = std::span<const double>(short_loads);
  EXPECT_NE(code_and_message(options).find("has 5 values"), std::string::npos);
  auto bad_loads = kReadmeLoads;
  bad_loads[14] = -1;
  options.loads = std::span<const double>(bad_loads);
  EXPECT_NE(code_and_message(options).find("loads[1][2]"), std::string::npos);
  bad_loads[14] = std::nan("");
  EXPECT_NE(code_and_message(options).find("loads[1][2] is NaN"), std::string::npos);

  options = {};
  options.format_minor = format::kFormatMinor + 1;
  EXPECT_NE(code_and_message(options).find("format_minor"), std::string::npos);
}

// --- Inspect ------------------------------------------------------------------------------------

TEST(SnapshotInspect, ReadsOnlyTheSmallSections) {
  const Placement placement = Planner(readme_topology(), 1).plan(kReadmeLoads);
  SnapshotWriteOptions options;
  options.loads = std::span<const double>(kReadmeLoads);
  options.label = "inspect me";
  auto bytes = encode_snapshot(placement, options);
  const SnapshotInfo full = Snapshot::decode(bytes, "test").info();

  // Damage the phy2log and loads payloads: a full load fails, inspect does not read them.
  auto raw = test::split(bytes);
  raw.section(format::SectionType::phy2log).stored.back() ^= std::byte{1};
  raw.section(format::SectionType::loads).stored.front() ^= std::byte{1};
  bytes = test::join(raw);
  EXPECT_EQ(error_code_of([&] { (void)Snapshot::decode(bytes, "test"); }), Errc::corrupt);
  const SnapshotInfo info = Snapshot::inspect(bytes, "test");
  EXPECT_EQ(info.format_major, full.format_major);
  EXPECT_EQ(info.format_minor, full.format_minor);
  EXPECT_EQ(info.topology.num_physical, full.topology.num_physical);
  EXPECT_EQ(info.topology.num_groups, 4U);
  EXPECT_EQ(info.log2phy_width, full.log2phy_width);
  EXPECT_EQ(info.provenance.algorithm, 1U);
  EXPECT_TRUE(info.provenance.hierarchical);
  EXPECT_EQ(info.provenance.plan_seconds, full.provenance.plan_seconds);
  EXPECT_TRUE(info.has_loads);
  EXPECT_EQ(info.label, "inspect me");
  EXPECT_EQ(info.library_version, full.library_version);
  ASSERT_TRUE(info.metrics.has_value());
  expect_same_metrics(*info.metrics, *full.metrics);

  // Damage in a small section is still found.
  raw.section(format::SectionType::provenance).stored.back() ^= std::byte{1};
  bytes = test::join(raw);
  EXPECT_EQ(error_code_of([&] { (void)Snapshot::inspect(bytes, "test"); }), Errc::corrupt);
}

// --- Files --------------------------------------------------------------------------------------

TEST(SnapshotFile, SaveReplacesAtomicallyAndLeavesNoTemporaryFile) {
  const std::string dir = temp_dir("atomic");
  const std::string path = dir + "/plan.eplb";
  const Placement placement = Placement::from_phy2log(readme_topology(), kReadmePhy2log);
  SnapshotWriteOptions options;
  options.label = "first";
  save_snapshot(placement, options, path);
  std::filesystem::permissions(path, std::filesystem::perms(0640));
  options.label = "second";
  save_snapshot(placement, options, path);
  EXPECT_EQ(Snapshot::load(path).info().label, "second");
  // The replacement keeps the permissions of the file it replaced.
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms(0640));
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{"plan.eplb"});

  // A bad option leaves the old file untouched.
  options.compression_level = 99;
  EXPECT_EQ(error_code_of([&] { save_snapshot(placement, options, path); }),
            Errc::invalid_argument);
  EXPECT_EQ(Snapshot::load(path).info().label, "second");
  std::filesystem::remove_all(dir);
}

TEST(SnapshotFile, IoErrorsNameThePath) {
  const std::string dir = temp_dir("io");
  const Placement placement = Placement::from_phy2log(readme_topology(), kReadmePhy2log);
  std::string message;
  const std::string missing = dir + "/no-such-dir/plan.eplb";
  EXPECT_EQ(error_code_of([&] { save_snapshot(placement, {}, missing); }, &message), Errc::io);
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;

  EXPECT_EQ(error_code_of([&] { (void)Snapshot::load(missing); }, &message), Errc::io);
  EXPECT_NE(message.find("cannot open '" + missing + "'"), std::string::npos) << message;
  EXPECT_EQ(error_code_of([&] { (void)Snapshot::inspect(missing); }, &message), Errc::io);
  EXPECT_EQ(error_code_of([&] { (void)Snapshot::load(dir); }, &message), Errc::io);
  EXPECT_NE(message.find("Is a directory"), std::string::npos) << message;

  // A directory where the file should go: the rename fails, nothing is left behind.
  const std::string taken = dir + "/taken.eplb";
  std::filesystem::create_directory(taken);
  EXPECT_EQ(error_code_of([&] { save_snapshot(placement, {}, taken); }, &message), Errc::io);
  EXPECT_NE(message.find(taken), std::string::npos) << message;
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);
  std::filesystem::remove_all(dir);
}

// --- Format 1.0 ---------------------------------------------------------------------------------

// The placement, statistics and provenance of the golden file.
Placement golden_placement() {
  const Placement planned = Planner(readme_topology(), 1).plan(kReadmeLoads);
  Provenance provenance = planned.provenance();
  provenance.plan_seconds = kGoldenPlanSeconds;
  return Placement::from_stored(
      planned.topology(), {planned.phy2log().begin(), planned.phy2log().end()},
      planned.replica_counts(), {planned.log2phy().begin(), planned.log2phy().end()},
      planned.log2phy_width(), provenance);
}

SnapshotWriteOptions golden_options() {
  SnapshotWriteOptions options;
  options.loads = std::span<const double>(kReadmeLoads);
  options.label = kGoldenLabel;
  options.created_unix_seconds = kGoldenCreated;
  options.format_minor = 0;
  return options;
}

// Regenerates tests/data/snapshot_format_1_0.eplb (only when asked), from the build directory:
//   bin/core_tests --gtest_also_run_disabled_tests
//                  --gtest_filter=SnapshotGolden.DISABLED_WriteFormat10File
// Never regenerate it after format 1.0's writer is gone: it pins what old files look like.
TEST(SnapshotGolden, DISABLED_WriteFormat10File) {
  save_snapshot(golden_placement(), golden_options(), kGoldenPath);
}

TEST(SnapshotGolden, Format10FileStillLoads) {
  const auto bytes = read_file(kGoldenPath);
  ASSERT_FALSE(bytes.empty());
  for (const Snapshot& snapshot :
       {Snapshot::decode(bytes, kGoldenPath), Snapshot::load(kGoldenPath)}) {
    const SnapshotInfo& info = snapshot.info();
    EXPECT_EQ(info.format_major, 1);
    EXPECT_EQ(info.format_minor, 0);
    EXPECT_EQ(info.file_size, bytes.size());
    EXPECT_EQ(info.library_version, "0.1.0");
    EXPECT_EQ(info.label, kGoldenLabel);
    EXPECT_EQ(info.created_unix_seconds, kGoldenCreated);
    EXPECT_TRUE(info.has_loads);
    EXPECT_FALSE(info.has_coactivation);
    EXPECT_FALSE(info.metrics.has_value());  // format 1.0 has no metrics section
    EXPECT_EQ(info.topology.num_groups, 4U);
    EXPECT_EQ(info.provenance.algorithm, 1U);
    EXPECT_TRUE(info.provenance.hierarchical);
    EXPECT_EQ(info.provenance.plan_seconds, kGoldenPlanSeconds);
    EXPECT_TRUE(std::ranges::equal(snapshot.placement().phy2log(), kReadmePhy2log));
    EXPECT_TRUE(std::ranges::equal(snapshot.loads(), kReadmeLoads));
    expect_same_placement(snapshot.placement(), golden_placement());
  }
}

TEST(SnapshotGolden, Minor0WriterOmitsTheMetrics) {
  const auto bytes = encode_snapshot(golden_placement(), golden_options());
  const auto raw = test::split(bytes);
  for (const auto& section : raw.sections) {
    EXPECT_NE(section.type, static_cast<std::uint32_t>(format::SectionType::metrics));
  }
  auto options = golden_options();
  options.format_minor = 1;
  const auto info = Snapshot::decode(encode_snapshot(golden_placement(), options), "t").info();
  EXPECT_EQ(info.format_minor, 1);
  EXPECT_TRUE(info.metrics.has_value());
}

}  // namespace
}  // namespace eplb
