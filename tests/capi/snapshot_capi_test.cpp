// Snapshots through the C ABI only (this file includes nothing from the library but
// "eplb/eplb.h" and links only libeplb.so): save and load through a path and a buffer, inspect,
// the getters, every error status with its message, outputs untouched on failure, and atomic
// writes (a missing directory, a full disk simulated with RLIMIT_FSIZE: the old file survives
// and no temporary file is left).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "eplb/eplb.h"

namespace {

struct PlannerDeleter {
  void operator()(eplb_planner* p) const { eplb_planner_destroy(p); }
};
struct PlacementDeleter {
  void operator()(eplb_placement* p) const { eplb_placement_destroy(p); }
};
struct SnapshotDeleter {
  void operator()(eplb_snapshot* s) const { eplb_snapshot_destroy(s); }
};
struct BufferDeleter {
  void operator()(void* b) const { eplb_buffer_free(b); }
};
using PlacementPtr = std::unique_ptr<eplb_placement, PlacementDeleter>;
using SnapshotPtr = std::unique_ptr<eplb_snapshot, SnapshotDeleter>;

// deepseek-ai/EPLB's README example: 2 layers x 12 experts, 16 slots, 4 groups, 2 nodes, 8 GPUs.
const std::vector<double> kLoads = {90, 132, 40,  61, 104, 165, 39,  4,   73,  56, 183, 86,
                                    20, 107, 104, 64, 19,  197, 187, 157, 172, 86, 16,  27};
const std::vector<int32_t> kPhy2log = {5, 6,  5, 7, 8, 4,  3, 4, 10, 9, 10, 2, 0, 1, 11, 1,
                                       7, 10, 6, 8, 6, 11, 8, 9, 2,  4, 5,  1, 5, 0, 3,  1};

PlacementPtr readme_placement() {
  eplb_planner_options o;
  eplb_planner_options_init(&o);
  o.algorithm = EPLB_ALGORITHM_DEEPSEEK;
  o.num_layers = 2;
  o.num_logical_experts = 12;
  o.num_physical_experts = 16;
  o.num_groups = 4;
  o.num_nodes = 2;
  o.num_gpus = 8;
  eplb_planner* planner = nullptr;
  EXPECT_EQ(eplb_planner_create(&o, &planner), EPLB_OK) << eplb_last_error_message();
  eplb_placement* placement = nullptr;
  EXPECT_EQ(eplb_planner_plan(planner, kLoads.data(), kLoads.size(), &placement), EPLB_OK)
      << eplb_last_error_message();
  eplb_planner_destroy(planner);
  return PlacementPtr(placement);
}

eplb_snapshot_options options_with_loads(const char* label = nullptr) {
  eplb_snapshot_options options;
  eplb_snapshot_options_init(&options);
  options.loads = kLoads.data();
  options.loads_len = kLoads.size();
  options.label = label;
  return options;
}

eplb_placement_info placement_info(const eplb_placement* p) {
  eplb_placement_info info{};
  info.struct_size = sizeof(info);
  EXPECT_EQ(eplb_placement_get_info(p, &info), EPLB_OK) << eplb_last_error_message();
  return info;
}

eplb_snapshot_info snapshot_info(const eplb_snapshot* s) {
  eplb_snapshot_info info{};
  info.struct_size = sizeof(info);
  EXPECT_EQ(eplb_snapshot_get_info(s, &info), EPLB_OK) << eplb_last_error_message();
  return info;
}

std::vector<int32_t> phy2log_of(const eplb_placement* p) {
  const auto info = placement_info(p);
  std::vector<int32_t> out(size_t{info.num_layers} * info.num_physical_experts);
  EXPECT_EQ(eplb_placement_get_phy2log(p, out.data(), out.size()), EPLB_OK);
  return out;
}
std::vector<int32_t> counts_of(const eplb_placement* p) {
  const auto info = placement_info(p);
  std::vector<int32_t> out(size_t{info.num_layers} * info.num_logical_experts);
  EXPECT_EQ(eplb_placement_get_replica_counts(p, out.data(), out.size()), EPLB_OK);
  return out;
}
std::vector<int32_t> log2phy_of(const eplb_placement* p) {
  const auto info = placement_info(p);
  std::vector<int32_t> out(size_t{info.num_layers} * info.num_logical_experts * info.log2phy_width);
  EXPECT_EQ(eplb_placement_get_log2phy(p, out.data(), out.size()), EPLB_OK);
  return out;
}

void expect_same_placement(const eplb_placement* actual, const eplb_placement* expected) {
  const auto a = placement_info(actual);
  const auto e = placement_info(expected);
  EXPECT_EQ(a.num_layers, e.num_layers);
  EXPECT_EQ(a.num_logical_experts, e.num_logical_experts);
  EXPECT_EQ(a.num_physical_experts, e.num_physical_experts);
  EXPECT_EQ(a.num_nodes, e.num_nodes);
  EXPECT_EQ(a.num_gpus, e.num_gpus);
  EXPECT_EQ(a.num_groups, e.num_groups);
  EXPECT_EQ(a.log2phy_width, e.log2phy_width);
  EXPECT_EQ(a.algorithm, e.algorithm);
  EXPECT_EQ(a.hierarchical, e.hierarchical);
  EXPECT_EQ(a.plan_seconds, e.plan_seconds);
  EXPECT_EQ(phy2log_of(actual), phy2log_of(expected));
  EXPECT_EQ(counts_of(actual), counts_of(expected));
  EXPECT_EQ(log2phy_of(actual), log2phy_of(expected));
}

PlacementPtr placement_of(const eplb_snapshot* s) {
  eplb_placement* p = nullptr;
  EXPECT_EQ(eplb_snapshot_get_placement(s, &p), EPLB_OK) << eplb_last_error_message();
  return PlacementPtr(p);
}

std::vector<unsigned char> save_to_buffer(const eplb_placement* p,
                                          const eplb_snapshot_options* options) {
  void* buffer = nullptr;
  size_t size = 0;
  EXPECT_EQ(eplb_snapshot_save_to_buffer(p, options, &buffer, &size), EPLB_OK)
      << eplb_last_error_message();
  const std::unique_ptr<void, BufferDeleter> owned(buffer);
  const auto* bytes = static_cast<const unsigned char*>(buffer);
  return {bytes, bytes + size};
}

std::string message() { return eplb_last_error_message(); }

bool contains(const std::string& text, const std::string& fragment) {
  return text.find(fragment) != std::string::npos;
}

class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(std::filesystem::path(::testing::TempDir()) /
              ("eplb_capi_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }
  [[nodiscard]] std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::filesystem::path path_;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Where the section table ends (the header's documented fields; docs/SNAPSHOT_FORMAT.md).
size_t table_end(const std::vector<unsigned char>& bytes) {
  auto u32 = [&](size_t at) {
    return uint32_t{bytes[at]} | uint32_t{bytes[at + 1]} << 8 | uint32_t{bytes[at + 2]} << 16 |
           uint32_t{bytes[at + 3]} << 24;
  };
  return u32(12) + size_t{u32(40)} * u32(44);
}

// --- Options ------------------------------------------------------------------------------------

TEST(SnapshotCapi, OptionsInit) {
  eplb_snapshot_options options;
  std::memset(&options, 0xab, sizeof(options));
  eplb_snapshot_options_init(&options);
  EXPECT_EQ(options.struct_size, sizeof(options));
  EXPECT_EQ(options.compression_level, 3U);
  EXPECT_EQ(options.loads, nullptr);
  EXPECT_EQ(options.loads_len, 0U);
  EXPECT_EQ(options.label, nullptr);
  EXPECT_EQ(options.tracker, nullptr);
  eplb_snapshot_options_init(nullptr);
  EXPECT_EQ(EPLB_SNAPSHOT_FORMAT_MAJOR, 1);
  EXPECT_EQ(EPLB_SNAPSHOT_FORMAT_MINOR, 2);
}

// --- Round trips --------------------------------------------------------------------------------

TEST(SnapshotCapi, SaveAndLoadThroughAPath) {
  const TempDir dir("path");
  const auto placement = readme_placement();
  const auto options = options_with_loads("readme \xe2\x9c\x93");
  const std::string path = dir.file("readme.eplb");
  ASSERT_EQ(eplb_snapshot_save(placement.get(), &options, path.c_str()), EPLB_OK) << message();
  EXPECT_STREQ(eplb_last_error_message(), "");

  eplb_snapshot* raw = nullptr;
  ASSERT_EQ(eplb_snapshot_load(path.c_str(), &raw), EPLB_OK) << message();
  const SnapshotPtr snapshot(raw);
  const auto loaded = placement_of(snapshot.get());
  expect_same_placement(loaded.get(), placement.get());
  EXPECT_EQ(phy2log_of(loaded.get()), kPhy2log);

  const auto info = snapshot_info(snapshot.get());
  EXPECT_EQ(info.format_major, uint32_t{EPLB_SNAPSHOT_FORMAT_MAJOR});
  EXPECT_EQ(info.format_minor, uint32_t{EPLB_SNAPSHOT_FORMAT_MINOR});
  EXPECT_EQ(info.num_layers, 2U);
  EXPECT_EQ(info.num_logical_experts, 12U);
  EXPECT_EQ(info.num_physical_experts, 16U);
  EXPECT_EQ(info.num_nodes, 2U);
  EXPECT_EQ(info.num_gpus, 8U);
  EXPECT_EQ(info.num_groups, 4U);
  EXPECT_EQ(info.algorithm, uint32_t{EPLB_ALGORITHM_DEEPSEEK});
  EXPECT_EQ(info.has_loads, 1U);
  EXPECT_EQ(info.has_coactivation, 0U);
  EXPECT_EQ(info.file_size, std::filesystem::file_size(path));
  EXPECT_EQ(info.plan_seconds, placement_info(placement.get()).plan_seconds);
  EXPECT_STREQ(info.library_version, eplb_version_string());
  EXPECT_STREQ(info.label, "readme \xe2\x9c\x93");
  const auto now = static_cast<uint64_t>(::time(nullptr));
  EXPECT_LE(info.created_unix_seconds, now);
  EXPECT_GE(info.created_unix_seconds + 60, now);

  // The stored balancedness is the metrics of the stored placement under the stored loads.
  eplb_metrics metrics{};
  metrics.struct_size = sizeof(metrics);
  ASSERT_EQ(eplb_metrics_compute(loaded.get(), kLoads.data(), kLoads.size(), &metrics), EPLB_OK);
  EXPECT_EQ(info.balancedness, metrics.balancedness);

  std::vector<double> loads(kLoads.size() + 3, -7.0);
  ASSERT_EQ(eplb_snapshot_get_loads(snapshot.get(), loads.data(), loads.size()), EPLB_OK);
  EXPECT_TRUE(std::equal(kLoads.begin(), kLoads.end(), loads.begin()));
  EXPECT_EQ(loads.back(), -7.0);  // nothing written past the data

  // inspect reads the same facts without loading.
  eplb_snapshot_info inspected{};
  inspected.struct_size = sizeof(inspected);
  ASSERT_EQ(eplb_snapshot_inspect(path.c_str(), &inspected), EPLB_OK) << message();
  EXPECT_EQ(std::memcmp(&inspected, &info, sizeof(info)), 0);
}

TEST(SnapshotCapi, SaveAndLoadThroughABuffer) {
  const auto placement = readme_placement();
  const auto options = options_with_loads();
  const auto bytes = save_to_buffer(placement.get(), &options);
  ASSERT_GT(bytes.size(), 64U);
  eplb_snapshot* raw = nullptr;
  ASSERT_EQ(eplb_snapshot_load_from_buffer(bytes.data(), bytes.size(), &raw), EPLB_OK) << message();
  const SnapshotPtr snapshot(raw);
  expect_same_placement(placement_of(snapshot.get()).get(), placement.get());
  const auto info = snapshot_info(snapshot.get());
  EXPECT_EQ(info.file_size, bytes.size());
  EXPECT_STREQ(info.label, "");

  // The buffer is the file: saving to a path gives the same size.
  const TempDir dir("buffer");
  ASSERT_EQ(eplb_snapshot_save(placement.get(), &options, dir.file("x.eplb").c_str()), EPLB_OK);
  EXPECT_EQ(std::filesystem::file_size(dir.file("x.eplb")), bytes.size());
}

TEST(SnapshotCapi, WithoutStatisticsAndWithDefaultOptions) {
  const auto placement = readme_placement();
  const auto bytes = save_to_buffer(placement.get(), nullptr);
  eplb_snapshot* raw = nullptr;
  ASSERT_EQ(eplb_snapshot_load_from_buffer(bytes.data(), bytes.size(), &raw), EPLB_OK);
  const SnapshotPtr snapshot(raw);
  const auto info = snapshot_info(snapshot.get());
  EXPECT_EQ(info.has_loads, 0U);
  EXPECT_EQ(info.balancedness, -1.0);
  std::vector<double> loads(kLoads.size(), -7.0);
  EXPECT_EQ(eplb_snapshot_get_loads(snapshot.get(), loads.data(), loads.size()),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(message(), "no load statistics")) << message();
  EXPECT_EQ(loads[0], -7.0);
}

TEST(SnapshotCapi, ImportedPlacementRoundTrips) {
  eplb_placement* raw = nullptr;
  ASSERT_EQ(
      eplb_placement_create_from_phy2log(2, 12, 16, 2, 8, kPhy2log.data(), kPhy2log.size(), &raw),
      EPLB_OK);
  const PlacementPtr placement(raw);
  const auto bytes = save_to_buffer(placement.get(), nullptr);
  eplb_snapshot* s = nullptr;
  ASSERT_EQ(eplb_snapshot_load_from_buffer(bytes.data(), bytes.size(), &s), EPLB_OK);
  const SnapshotPtr snapshot(s);
  expect_same_placement(placement_of(snapshot.get()).get(), placement.get());
  EXPECT_EQ(snapshot_info(snapshot.get()).algorithm, 0U);
}

TEST(SnapshotCapi, GoldenFormat10File) {
  const std::string path = std::string(EPLB_TEST_DATA_DIR) + "/snapshot_format_1_0.eplb";
  eplb_snapshot* raw = nullptr;
  ASSERT_EQ(eplb_snapshot_load(path.c_str(), &raw), EPLB_OK) << message();
  const SnapshotPtr snapshot(raw);
  const auto info = snapshot_info(snapshot.get());
  EXPECT_EQ(info.format_major, 1U);
  EXPECT_EQ(info.format_minor, 0U);
  EXPECT_EQ(info.balancedness, -1.0);  // 1.0 stores no metrics
  EXPECT_EQ(info.has_loads, 1U);
  EXPECT_STREQ(info.label, "golden: format 1.0");
  EXPECT_STREQ(info.library_version, "0.1.0");  // the release that wrote it
  EXPECT_EQ(info.created_unix_seconds, 1790000000U);
  EXPECT_EQ(info.plan_seconds, 0.00125);
  const auto placement = placement_of(snapshot.get());
  EXPECT_EQ(phy2log_of(placement.get()), kPhy2log);
  EXPECT_EQ(placement_info(placement.get()).hierarchical, 1U);
  EXPECT_EQ(log2phy_of(placement.get()), log2phy_of(readme_placement().get()));
  std::vector<double> loads(kLoads.size());
  ASSERT_EQ(eplb_snapshot_get_loads(snapshot.get(), loads.data(), loads.size()), EPLB_OK);
  EXPECT_EQ(loads, kLoads);
}

TEST(SnapshotCapi, ConcurrentReadersOfOneSnapshot) {
  const auto placement = readme_placement();
  const auto options = options_with_loads();
  const auto bytes = save_to_buffer(placement.get(), &options);
  eplb_snapshot* raw = nullptr;
  ASSERT_EQ(eplb_snapshot_load_from_buffer(bytes.data(), bytes.size(), &raw), EPLB_OK);
  const SnapshotPtr snapshot(raw);
  std::vector<std::thread> threads;
  std::vector<int> ok(8, 0);
  for (size_t t = 0; t < ok.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        eplb_placement* p = nullptr;
        eplb_snapshot_info info{};
        info.struct_size = sizeof(info);
        if (eplb_snapshot_get_placement(snapshot.get(), &p) != EPLB_OK) return;
        eplb_placement_destroy(p);
        if (eplb_snapshot_get_info(snapshot.get(), &info) != EPLB_OK) return;
        eplb_snapshot* other = nullptr;
        if (eplb_snapshot_load_from_buffer(bytes.data(), bytes.size(), &other) != EPLB_OK) return;
        eplb_snapshot_destroy(other);
      }
      ok[t] = 1;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(std::count(ok.begin(), ok.end(), 1), 8);
}

// --- Struct sizes -------------------------------------------------------------------------------

TEST(SnapshotCapi, VersionedStructs) {
  const auto placement = readme_placement();
  const auto bytes = save_to_buffer(placement.get(), nullptr);
  eplb_snapshot* raw = nullptr;
  ASSERT_EQ(eplb_snapshot_load_from_buffer(bytes.data(), bytes.size(), &raw), EPLB_OK);
  const SnapshotPtr snapshot(raw);

  eplb_snapshot_info small{};
  small.struct_size = sizeof(small) - 8;
  EXPECT_EQ(eplb_snapshot_get_info(snapshot.get(), &small), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(message(), "out_info->struct_size")) << message();
  // inspect checks the struct before touching the file.
  EXPECT_EQ(eplb_snapshot_inspect("/no/such/file.eplb", &small), EPLB_ERR_INVALID_ARGUMENT);

  struct Larger {
    eplb_snapshot_info info;
    unsigned char tail[24];
  } larger;
  std::memset(&larger, 0xcd, sizeof(larger));
  larger.info.struct_size = sizeof(larger);
  ASSERT_EQ(eplb_snapshot_get_info(snapshot.get(), &larger.info), EPLB_OK) << message();
  EXPECT_EQ(larger.info.struct_size, sizeof(larger));
  EXPECT_EQ(larger.info.num_layers, 2U);
  EXPECT_TRUE(std::all_of(std::begin(larger.tail), std::end(larger.tail),
                          [](unsigned char c) { return c == 0; }));

  struct LargerOptions {
    eplb_snapshot_options options;
    uint64_t future;
  } options{};
  eplb_snapshot_options_init(&options.options);
  options.options.struct_size = sizeof(options);
  void* buffer = nullptr;
  size_t size = 0;
  EXPECT_EQ(eplb_snapshot_save_to_buffer(placement.get(), &options.options, &buffer, &size),
            EPLB_OK);
  eplb_buffer_free(buffer);
  options.future = 1;
  buffer = nullptr;
  EXPECT_EQ(eplb_snapshot_save_to_buffer(placement.get(), &options.options, &buffer, &size),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(buffer, nullptr);
  options.options.struct_size = 4;
  EXPECT_EQ(eplb_snapshot_save_to_buffer(placement.get(), &options.options, &buffer, &size),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(message(), "options->struct_size (4)")) << message();
}

// --- Errors -------------------------------------------------------------------------------------

TEST(SnapshotCapi, SaveRejectsBadArgumentsNamingThem) {
  const auto placement = readme_placement();
  const TempDir dir("args");
  const std::string path = dir.file("x.eplb");
  auto expect_invalid = [&](const eplb_snapshot_options* options, const std::string& fragment) {
    EXPECT_EQ(eplb_snapshot_save(placement.get(), options, path.c_str()),
              EPLB_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(message(), fragment)) << message();
    void* buffer = reinterpret_cast<void*>(0x1);
    size_t size = 77;
    EXPECT_EQ(eplb_snapshot_save_to_buffer(placement.get(), options, &buffer, &size),
              EPLB_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(message(), fragment)) << message();
    EXPECT_EQ(buffer, reinterpret_cast<void*>(0x1));  // outputs untouched on failure
    EXPECT_EQ(size, 77U);
  };
  EXPECT_EQ(eplb_snapshot_save(nullptr, nullptr, path.c_str()), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(message(), "placement is NULL")) << message();
  EXPECT_EQ(eplb_snapshot_save(placement.get(), nullptr, nullptr), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(message(), "path is NULL")) << message();
  size_t size = 0;
  EXPECT_EQ(eplb_snapshot_save_to_buffer(placement.get(), nullptr, nullptr, &size),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(message(), "out_buffer is NULL")) << message();

  auto options = options_with_loads();
  options.loads_len = 5;
  expect_invalid(&options, "has 5 values");
  options = options_with_loads();
  options.loads = nullptr;
  expect_invalid(&options, "options->loads is NULL but options->loads_len is 24");
  auto bad = kLoads;
  bad[13] = -2;
  options = options_with_loads();
  options.loads = bad.data();
  expect_invalid(&options, "loads[1][1] = -2 is negative");
  options = options_with_loads();
  const std::string long_label(256, 'y');
  options.label = long_label.c_str();
  expect_invalid(&options, "options->label is longer than 255 bytes");
  options.label = "bad \xff label";
  expect_invalid(&options, "label is not valid UTF-8");
  options = options_with_loads();
  options.compression_level = 0;
  expect_invalid(&options, "options->compression_level (0) must be in 1..19");
  options.compression_level = 20;
  expect_invalid(&options, "options->compression_level (20)");
  EXPECT_EQ(dir.listing(), std::vector<std::string>{});  // nothing written

  const std::string label255(255, 'z');
  options = options_with_loads(label255.c_str());
  EXPECT_EQ(eplb_snapshot_save(placement.get(), &options, path.c_str()), EPLB_OK) << message();
}

TEST(SnapshotCapi, LoadErrorsHaveStatusesAndMessages) {
  const auto placement = readme_placement();
  const auto options = options_with_loads();
  const auto bytes = save_to_buffer(placement.get(), &options);
  eplb_snapshot* const sentinel = reinterpret_cast<eplb_snapshot*>(0x1);
  auto load = [&](const std::vector<unsigned char>& data) {
    eplb_snapshot* out = sentinel;
    const eplb_status status = eplb_snapshot_load_from_buffer(data.data(), data.size(), &out);
    if (status == EPLB_OK) {
      eplb_snapshot_destroy(out);
    } else {
      EXPECT_EQ(out, sentinel) << "output written on failure";
      EXPECT_FALSE(message().empty());
    }
    return status;
  };

  eplb_snapshot* out = sentinel;
  EXPECT_EQ(eplb_snapshot_load(nullptr, &out), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(message(), "path is NULL"));
  EXPECT_EQ(eplb_snapshot_load("x.eplb", nullptr), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(eplb_snapshot_load_from_buffer(nullptr, 10, &out), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(message(), "data is NULL"));

  const TempDir dir("load");
  const std::string missing = dir.file("missing.eplb");
  EXPECT_EQ(eplb_snapshot_load(missing.c_str(), &out), EPLB_ERR_IO);
  EXPECT_TRUE(contains(message(), "cannot open '" + missing + "': No such file or directory"))
      << message();
  eplb_snapshot_info info{};
  info.struct_size = sizeof(info);
  EXPECT_EQ(eplb_snapshot_inspect(missing.c_str(), &info), EPLB_ERR_IO);
  EXPECT_EQ(eplb_snapshot_load(dir.file("").c_str(), &out), EPLB_ERR_IO);
  EXPECT_TRUE(contains(message(), "Is a directory")) << message();
  EXPECT_EQ(out, sentinel);

  // Truncated at every byte offset.
  for (size_t length = 0; length < bytes.size(); ++length) {
    const std::vector<unsigned char> cut(bytes.begin(), bytes.begin() + static_cast<long>(length));
    ASSERT_EQ(load(cut), EPLB_ERR_TRUNCATED) << "length " << length;
  }
  EXPECT_TRUE(contains(message(), "snapshot buffer: truncated")) << message();

  // Damaged: a payload byte, the header checksum, the magic.
  auto damaged = bytes;
  damaged[bytes.size() - 20] ^= 0x40;
  EXPECT_EQ(load(damaged), EPLB_ERR_CORRUPT);
  EXPECT_TRUE(contains(message(), "checksum mismatch")) << message();
  damaged = bytes;
  damaged[60] ^= 1;
  EXPECT_EQ(load(damaged), EPLB_ERR_CORRUPT);
  EXPECT_TRUE(contains(message(), "header checksum mismatch")) << message();
  damaged = bytes;
  damaged[1] = 'X';
  EXPECT_EQ(load(damaged), EPLB_ERR_CORRUPT);
  EXPECT_TRUE(contains(message(), "not a libeplb snapshot")) << message();
  damaged = bytes;
  damaged.push_back(0);
  EXPECT_EQ(load(damaged), EPLB_ERR_CORRUPT);
  EXPECT_TRUE(contains(message(), "trailing bytes")) << message();

  // Another major version.
  damaged = bytes;
  damaged[8] = 2;
  EXPECT_EQ(load(damaged), EPLB_ERR_UNSUPPORTED_VERSION);
  EXPECT_TRUE(contains(message(), "format version 2.")) << message();

  // Every bit of the header and section table: a clean status every time.
  damaged = bytes;
  for (size_t bit = 0; bit < table_end(bytes) * 8; ++bit) {
    damaged[bit / 8] ^= static_cast<unsigned char>(1U << (bit % 8));
    const eplb_status status = load(damaged);
    damaged[bit / 8] ^= static_cast<unsigned char>(1U << (bit % 8));
    ASSERT_TRUE(status == EPLB_ERR_CORRUPT || status == EPLB_ERR_TRUNCATED ||
                status == EPLB_ERR_UNSUPPORTED_VERSION)
        << "bit " << bit << ": " << status;
  }

  // Through a file, the message names the path.
  const std::string path = dir.file("damaged.eplb");
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<long>(bytes.size() / 2));
  EXPECT_EQ(eplb_snapshot_load(path.c_str(), &out), EPLB_ERR_TRUNCATED);
  EXPECT_TRUE(contains(message(), path + ": truncated")) << message();
  EXPECT_EQ(eplb_snapshot_inspect(path.c_str(), &info), EPLB_ERR_TRUNCATED);
  EXPECT_EQ(out, sentinel);
}

TEST(SnapshotCapi, GettersRejectBadArguments) {
  const auto placement = readme_placement();
  const auto options = options_with_loads();
  const auto bytes = save_to_buffer(placement.get(), &options);
  eplb_snapshot* raw = nullptr;
  ASSERT_EQ(eplb_snapshot_load_from_buffer(bytes.data(), bytes.size(), &raw), EPLB_OK);
  const SnapshotPtr snapshot(raw);
  eplb_snapshot_info info{};
  info.struct_size = sizeof(info);
  EXPECT_EQ(eplb_snapshot_get_info(nullptr, &info), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(message(), "snapshot is NULL"));
  EXPECT_EQ(eplb_snapshot_get_info(snapshot.get(), nullptr), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(message(), "out_info is NULL"));
  EXPECT_EQ(eplb_snapshot_get_placement(nullptr, nullptr), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(eplb_snapshot_get_placement(snapshot.get(), nullptr), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(message(), "out_placement is NULL"));
  std::vector<double> loads(kLoads.size() - 1);
  EXPECT_EQ(eplb_snapshot_get_loads(snapshot.get(), loads.data(), loads.size()),
            EPLB_ERR_BUFFER_TOO_SMALL);
  EXPECT_TRUE(contains(message(), "needs 24 elements but out_len is 23")) << message();
  EXPECT_EQ(eplb_snapshot_get_loads(snapshot.get(), nullptr, 24), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(eplb_snapshot_get_loads(nullptr, loads.data(), 24), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(eplb_snapshot_inspect(nullptr, &info), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(eplb_snapshot_inspect("x.eplb", nullptr), EPLB_ERR_INVALID_ARGUMENT);
  eplb_snapshot_destroy(nullptr);
  eplb_buffer_free(nullptr);
}

// --- Atomic writes ------------------------------------------------------------------------------

TEST(SnapshotCapi, SavingIntoAMissingDirectoryIsAnIoError) {
  const auto placement = readme_placement();
  const TempDir dir("missing");
  const std::string path = dir.file("no-such-dir/x.eplb");
  EXPECT_EQ(eplb_snapshot_save(placement.get(), nullptr, path.c_str()), EPLB_ERR_IO);
  EXPECT_TRUE(contains(message(), path)) << message();
  EXPECT_TRUE(contains(message(), "No such file or directory")) << message();
  EXPECT_EQ(dir.listing(), std::vector<std::string>{});
}

TEST(SnapshotCapi, AFailedSaveLeavesTheOldFileIntact) {
  const auto placement = readme_placement();
  const TempDir dir("intact");
  const std::string path = dir.file("plan.eplb");
  const auto options = options_with_loads("old");
  ASSERT_EQ(eplb_snapshot_save(placement.get(), &options, path.c_str()), EPLB_OK);
  const std::string before = read_text(path);

  // The destination is a directory: the rename fails after the data was written.
  const std::string taken = dir.file("taken.eplb");
  std::filesystem::create_directory(taken);
  EXPECT_EQ(eplb_snapshot_save(placement.get(), nullptr, taken.c_str()), EPLB_ERR_IO);
  EXPECT_TRUE(contains(message(), "cannot replace '" + taken + "'")) << message();
  EXPECT_EQ(dir.listing(), (std::vector<std::string>{"plan.eplb", "taken.eplb"}));

  // A full disk, simulated with a file size limit below the snapshot's size: write() fails
  // part-way (EFBIG; SIGXFSZ is ignored so that it is an error rather than a signal).
  struct rlimit old_limit {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct rlimit limit = old_limit;
  limit.rlim_cur = 200;
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  const auto new_options = options_with_loads("new");
  const eplb_status status = eplb_snapshot_save(placement.get(), &new_options, path.c_str());
  const std::string failure = message();
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(status, EPLB_ERR_IO);
  EXPECT_TRUE(contains(failure, "cannot write '" + path + "'")) << failure;
  EXPECT_TRUE(contains(failure, "File too large")) << failure;
  EXPECT_EQ(read_text(path), before);
  EXPECT_EQ(dir.listing(), (std::vector<std::string>{"plan.eplb", "taken.eplb"}));
  eplb_snapshot_info info{};
  info.struct_size = sizeof(info);
  ASSERT_EQ(eplb_snapshot_inspect(path.c_str(), &info), EPLB_OK);
  EXPECT_STREQ(info.label, "old");
}

TEST(SnapshotCapi, ReadOnlyDirectory) {
  if (::geteuid() == 0) GTEST_SKIP() << "root may write into read-only directories";
  const auto placement = readme_placement();
  const TempDir dir("readonly");
  const std::string path = dir.file("locked/x.eplb");
  std::filesystem::create_directory(dir.file("locked"));
  std::filesystem::permissions(dir.file("locked"), std::filesystem::perms(0555));
  EXPECT_EQ(eplb_snapshot_save(placement.get(), nullptr, path.c_str()), EPLB_ERR_IO);
  EXPECT_TRUE(contains(message(), path)) << message();
  EXPECT_TRUE(contains(message(), "Permission denied")) << message();
  std::filesystem::permissions(dir.file("locked"), std::filesystem::perms(0755));
}

// A pipe has no size and no pread: load reads it to its end (the same snapshot as the file), and
// save writes straight into it (nothing to replace).
TEST(SnapshotCapi, LoadsFromAndSavesIntoAFifo) {
  const auto placement = readme_placement();
  const TempDir dir("fifo");
  const auto options = options_with_loads("fifo");
  const std::string path = dir.file("plan.eplb");
  ASSERT_EQ(eplb_snapshot_save(placement.get(), &options, path.c_str()), EPLB_OK) << message();
  const std::string bytes = read_text(path);

  const std::string in = dir.file("in.fifo");
  ASSERT_EQ(::mkfifo(in.c_str(), 0600), 0);
  std::thread writer([&] {
    std::ofstream fifo(in, std::ios::binary);
    fifo.write(bytes.data(), 5);  // in two writes, so that a reader sees a short first read
    fifo.flush();
    fifo.write(bytes.data() + 5, static_cast<std::streamsize>(bytes.size() - 5));
  });
  eplb_snapshot* raw = nullptr;
  const eplb_status loaded = eplb_snapshot_load(in.c_str(), &raw);
  writer.join();
  ASSERT_EQ(loaded, EPLB_OK) << message();
  const SnapshotPtr snapshot(raw);
  EXPECT_EQ(phy2log_of(placement_of(snapshot.get()).get()), kPhy2log);
  EXPECT_STREQ(snapshot_info(snapshot.get()).label, "fifo");

  const std::string out = dir.file("out.fifo");
  ASSERT_EQ(::mkfifo(out.c_str(), 0600), 0);
  std::string received;
  std::thread reader([&] {
    std::ifstream fifo(out, std::ios::binary);
    received.assign(std::istreambuf_iterator<char>(fifo), std::istreambuf_iterator<char>());
  });
  const eplb_status saved = eplb_snapshot_save(placement.get(), &options, out.c_str());
  reader.join();
  ASSERT_EQ(saved, EPLB_OK) << message();
  ASSERT_GT(received.size(), 8U);
  eplb_snapshot* again = nullptr;
  ASSERT_EQ(eplb_snapshot_load_from_buffer(received.data(), received.size(), &again), EPLB_OK)
      << message();
  eplb_snapshot_destroy(again);
}

// A stream that is not a snapshot is refused after its first bytes, not read forever.
TEST(SnapshotCapi, AnEndlessStreamThatIsNoSnapshotIsRefused) {
  eplb_snapshot* raw = nullptr;
  EXPECT_EQ(eplb_snapshot_load("/dev/zero", &raw), EPLB_ERR_CORRUPT);
  EXPECT_EQ(raw, nullptr);
  EXPECT_TRUE(contains(message(), "not a libeplb snapshot")) << message();
}

// Saving to a symbolic link replaces the file it points to (keeping its permissions) and keeps
// the link; a dangling link gets its target created.
TEST(SnapshotCapi, SavesThroughSymbolicLinks) {
  const auto placement = readme_placement();
  const TempDir dir("links");
  const std::string target = dir.file("target.eplb");
  { std::ofstream(target) << "old\n"; }
  std::filesystem::permissions(target, std::filesystem::perms(0640));
  const std::string link = dir.file("link.eplb");
  std::filesystem::create_symlink("target.eplb", link);
  ASSERT_EQ(eplb_snapshot_save(placement.get(), nullptr, link.c_str()), EPLB_OK) << message();
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_EQ(read_text(target).substr(0, 5),
            "\x89"
            "EPLB");
  EXPECT_EQ(std::filesystem::status(target).permissions() & std::filesystem::perms::all,
            std::filesystem::perms(0640));

  const std::string dangling = dir.file("dangling.eplb");
  std::filesystem::create_symlink("made.eplb", dangling);
  ASSERT_EQ(eplb_snapshot_save(placement.get(), nullptr, dangling.c_str()), EPLB_OK) << message();
  EXPECT_TRUE(std::filesystem::is_symlink(dangling));
  eplb_snapshot* raw = nullptr;
  ASSERT_EQ(eplb_snapshot_load(dir.file("made.eplb").c_str(), &raw), EPLB_OK) << message();
  eplb_snapshot_destroy(raw);
  EXPECT_EQ(dir.listing(),
            (std::vector<std::string>{"dangling.eplb", "link.eplb", "made.eplb", "target.eplb"}));
}

// /dev/fd/N names this process's descriptor: the snapshot goes into it, after what the
// descriptor already holds (an append-mode redirect keeps its earlier content).
TEST(SnapshotCapi, SavesIntoAnOpenDescriptor) {
  const auto placement = readme_placement();
  void* expected = nullptr;
  size_t expected_size = 0;
  ASSERT_EQ(eplb_snapshot_save_to_buffer(placement.get(), nullptr, &expected, &expected_size),
            EPLB_OK);
  const std::unique_ptr<void, BufferDeleter> owned(expected);
  const std::string bytes(static_cast<const char*>(expected), expected_size);

  const TempDir dir("descriptor");
  const std::string log = dir.file("log");
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "header\n", 7), 7);
  const std::string name = "/dev/fd/" + std::to_string(fd);
  // (The creation time may tick between the two saves: compare all but the header.)
  ASSERT_EQ(eplb_snapshot_save(placement.get(), nullptr, name.c_str()), EPLB_OK) << message();
  ::close(fd);
  const std::string written = read_text(log);
  ASSERT_EQ(written.size(), 7 + bytes.size());
  EXPECT_EQ(written.substr(0, 7), "header\n");
  eplb_snapshot* raw = nullptr;
  ASSERT_EQ(eplb_snapshot_load_from_buffer(written.data() + 7, bytes.size(), &raw), EPLB_OK)
      << message();
  const SnapshotPtr snapshot(raw);
  EXPECT_EQ(phy2log_of(placement_of(snapshot.get()).get()), kPhy2log);
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"log"});
}

// A short stream that is no snapshot is refused at once, while its writer still holds it open;
// one whose header states an absurd size is refused without reading it.
TEST(SnapshotCapi, StreamsAreJudgedByTheirFirstBytes) {
  int pipe_fds[2] = {-1, -1};
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ASSERT_EQ(::write(pipe_fds[1], "err\n", 4), 4);  // and the write end stays open
  const std::string name = "/dev/fd/" + std::to_string(pipe_fds[0]);
  eplb_snapshot* raw = nullptr;
  EXPECT_EQ(eplb_snapshot_load(name.c_str(), &raw), EPLB_ERR_CORRUPT);
  EXPECT_TRUE(contains(message(), "not a libeplb snapshot")) << message();
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);

  ASSERT_EQ(::pipe(pipe_fds), 0);
  std::string header(64, '\0');
  const unsigned char magic[8] = {0x89, 'E', 'P', 'L', 'B', '\r', '\n', 0x1a};
  std::memcpy(header.data(), magic, 8);
  const std::uint64_t huge = std::uint64_t{1} << 50;
  std::memcpy(header.data() + 32, &huge, 8);  // the file_size field (little-endian host)
  ASSERT_EQ(::write(pipe_fds[1], header.data(), header.size()), 64);
  const std::string second = "/dev/fd/" + std::to_string(pipe_fds[0]);
  EXPECT_EQ(eplb_snapshot_load(second.c_str(), &raw), EPLB_ERR_IO);
  EXPECT_TRUE(contains(message(), "states 1125899906842624 bytes")) << message();
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

// fs.protected_symlinks: another user's link in a sticky, world-writable directory is not
// followed (the kernel refuses it; following it by hand would let that user aim the write).
TEST(SnapshotCapi, RefusesAnotherUsersLinkInAStickyDirectory) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a link another owner";
  const auto placement = readme_placement();
  const TempDir dir("sticky");
  const std::string shared = dir.file("shared");
  std::filesystem::create_directory(shared);
  ASSERT_EQ(::chmod(shared.c_str(), 01777), 0);
  const std::string victim = dir.file("victim.eplb");
  { std::ofstream(victim) << "keep\n"; }
  const std::string link = shared + "/plan.eplb";
  std::filesystem::create_symlink(victim, link);
  ASSERT_EQ(::lchown(link.c_str(), 4242, 4242), 0);
  EXPECT_EQ(eplb_snapshot_save(placement.get(), nullptr, link.c_str()), EPLB_ERR_IO);
  EXPECT_TRUE(contains(message(), link)) << message();
  EXPECT_EQ(read_text(victim), "keep\n");
  // The same link as our own is followed.
  std::filesystem::remove(link);
  std::filesystem::create_symlink(victim, link);
  EXPECT_EQ(eplb_snapshot_save(placement.get(), nullptr, link.c_str()), EPLB_OK) << message();
  EXPECT_EQ(read_text(victim).substr(1, 4), "EPLB");
}

}  // namespace
