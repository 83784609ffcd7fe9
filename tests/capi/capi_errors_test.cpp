// Every invalid input through the C ABI: the documented status, a message naming the offending
// argument and value, and outputs left as they were. Includes only "eplb/eplb.h" from libeplb.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "eplb/eplb.h"

namespace {

struct PlannerDeleter {
  void operator()(eplb_planner* p) const { eplb_planner_destroy(p); }
};
struct PlacementDeleter {
  void operator()(eplb_placement* p) const { eplb_placement_destroy(p); }
};
using PlannerPtr = std::unique_ptr<eplb_planner, PlannerDeleter>;
using PlacementPtr = std::unique_ptr<eplb_placement, PlacementDeleter>;

// A pointer value that is never dereferenced: outputs must still hold it after a failed call.
template <typename T>
T* sentinel() {
  static int anchor = 0;
  return reinterpret_cast<T*>(&anchor);
}

// Expects `status` to be `expected` and the thread's message to contain every fragment.
::testing::AssertionResult fails_with(eplb_status status, eplb_status expected,
                                      const std::vector<std::string>& fragments) {
  const std::string message = eplb_last_error_message();
  if (status != expected) {
    return ::testing::AssertionFailure()
           << "status " << status << " (" << eplb_status_string(status) << "), expected "
           << expected << " (" << eplb_status_string(expected) << "); message: " << message;
  }
  if (message.empty()) return ::testing::AssertionFailure() << "empty error message";
  for (const auto& fragment : fragments) {
    if (message.find(fragment) == std::string::npos) {
      return ::testing::AssertionFailure()
             << "message \"" << message << "\" does not contain \"" << fragment << "\"";
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult invalid(eplb_status status, const std::vector<std::string>& fragments) {
  return fails_with(status, EPLB_ERR_INVALID_ARGUMENT, fragments);
}

// The DeepSeek README shape: 2 layers, 12 experts, 16 slots, 4 groups, 2 nodes, 8 GPUs.
eplb_planner_options readme_options(uint32_t algorithm = EPLB_ALGORITHM_DEEPSEEK) {
  eplb_planner_options o;
  eplb_planner_options_init(&o);
  o.algorithm = algorithm;
  o.num_layers = 2;
  o.num_logical_experts = 12;
  o.num_physical_experts = 16;
  o.num_groups = 4;
  o.num_nodes = 2;
  o.num_gpus = 8;
  return o;
}

const std::vector<double> kLoads = {90, 132, 40,  61, 104, 165, 39,  4,   73,  56, 183, 86,
                                    20, 107, 104, 64, 19,  197, 187, 157, 172, 86, 16,  27};

PlannerPtr make_planner(const eplb_planner_options& o) {
  eplb_planner* raw = nullptr;
  EXPECT_EQ(eplb_planner_create(&o, &raw), EPLB_OK) << eplb_last_error_message();
  return PlannerPtr(raw);
}

PlacementPtr make_placement() {
  const PlannerPtr planner = make_planner(readme_options());
  eplb_placement* raw = nullptr;
  EXPECT_EQ(eplb_planner_plan(planner.get(), kLoads.data(), kLoads.size(), &raw), EPLB_OK)
      << eplb_last_error_message();
  return PlacementPtr(raw);
}

// ----------------------------------------------------------------------------------------------
// Statuses
// ----------------------------------------------------------------------------------------------

TEST(StatusString, EveryStatusAndUnknownValues) {
  EXPECT_STREQ(eplb_status_string(EPLB_OK), "ok");
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_INVALID_ARGUMENT), "invalid argument");
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_OUT_OF_MEMORY), "out of memory");
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_BUFFER_TOO_SMALL), "buffer too small");
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_INTERNAL), "internal error");
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_IO), "input/output error");
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_CORRUPT), "corrupt data");
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_TRUNCATED), "truncated data");
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_UNSUPPORTED_VERSION), "unsupported version");
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_NO_DEVICE), "no CUDA device");
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_DEVICE), "CUDA error");
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_NO_NCCL), "NCCL not available");
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_NCCL), "NCCL error");
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_CANCELLED), "cancelled");
  // Values this version does not know (kept inside the enum's value range, 0..15, so the
  // conversion is well defined in C++).
  for (int value : {14, 15}) {
    const char* text = eplb_status_string(static_cast<eplb_status>(value));
    ASSERT_NE(text, nullptr);
    EXPECT_STREQ(text, "unknown status") << value;
  }
  EXPECT_EQ(EPLB_OK, 0);
  EXPECT_EQ(EPLB_ERR_INVALID_ARGUMENT, 1);
  EXPECT_EQ(EPLB_ERR_OUT_OF_MEMORY, 2);
  EXPECT_EQ(EPLB_ERR_BUFFER_TOO_SMALL, 3);
  EXPECT_EQ(EPLB_ERR_INTERNAL, 4);
  EXPECT_EQ(EPLB_ERR_IO, 5);
  EXPECT_EQ(EPLB_ERR_CORRUPT, 6);
  EXPECT_EQ(EPLB_ERR_TRUNCATED, 7);
  EXPECT_EQ(EPLB_ERR_UNSUPPORTED_VERSION, 8);
  EXPECT_EQ(EPLB_ERR_NO_DEVICE, 9);
  EXPECT_EQ(EPLB_ERR_DEVICE, 10);
  EXPECT_EQ(EPLB_ERR_NO_NCCL, 11);
  EXPECT_EQ(EPLB_ERR_NCCL, 12);
  EXPECT_EQ(EPLB_ERR_CANCELLED, 13);
}

TEST(Destroy, NullIsANoOp) {
  eplb_planner_destroy(nullptr);
  eplb_placement_destroy(nullptr);
  eplb_planner_options_init(nullptr);
}

// ----------------------------------------------------------------------------------------------
// Algorithms
// ----------------------------------------------------------------------------------------------

TEST(AlgorithmFromName, Errors) {
  uint32_t id = 4242;
  EXPECT_TRUE(invalid(eplb_algorithm_from_name(nullptr, &id), {"name", "NULL"}));
  EXPECT_EQ(id, 4242U);
  EXPECT_TRUE(invalid(eplb_algorithm_from_name("deepseek", nullptr), {"out_algorithm", "NULL"}));
  for (const char* bad : {"", "DeepSeek", "deepseek ", "nope"}) {
    EXPECT_TRUE(invalid(eplb_algorithm_from_name(bad, &id),
                        {std::string("\"") + bad + "\"", "default", "deepseek", "trivial"}))
        << bad;
    EXPECT_EQ(id, 4242U);
  }
}

// ----------------------------------------------------------------------------------------------
// eplb_planner_create
// ----------------------------------------------------------------------------------------------

struct OptionsCase {
  const char* what;
  std::function<void(eplb_planner_options&)> edit;
  std::vector<std::string> fragments;
};

TEST(PlannerCreate, InvalidOptions) {
  constexpr uint32_t kAboveInt32 = 0x80000000U;  // 2147483648
  const std::vector<OptionsCase> cases = {
      {"struct_size 0", [](auto& o) { o.struct_size = 0; }, {"struct_size", "(0)"}},
      {"struct_size too small", [](auto& o) { o.struct_size = 4; }, {"struct_size", "(4)"}},
      {"unknown algorithm", [](auto& o) { o.algorithm = 999; }, {"algorithm", "999"}},
      {"algorithm count+1",
       [](auto& o) { o.algorithm = eplb_algorithm_count() + 1; },
       {"algorithm", std::to_string(eplb_algorithm_count() + 1)}},
      {"zero layers", [](auto& o) { o.num_layers = 0; }, {"num_layers", "got 0"}},
      {"zero experts",
       [](auto& o) { o.num_logical_experts = 0; },
       {"num_logical_experts", "got 0"}},
      {"zero slots",
       [](auto& o) { o.num_physical_experts = 0; },
       {"num_physical_experts", "got 0"}},
      {"zero gpus", [](auto& o) { o.num_gpus = 0; }, {"num_gpus", "got 0"}},
      {"zero nodes", [](auto& o) { o.num_nodes = 0; }, {"num_nodes", "got 0"}},
      {"zero groups", [](auto& o) { o.num_groups = 0; }, {"num_groups", "got 0"}},
      {"E % groups",
       [](auto& o) { o.num_groups = 5; },
       {"num_logical_experts (12)", "num_groups (5)"}},
      {"R % gpus",
       [](auto& o) { o.num_physical_experts = 20; },
       {"num_physical_experts (20)", "num_gpus (8)"}},
      {"gpus % nodes", [](auto& o) { o.num_nodes = 3; }, {"num_gpus (8)", "num_nodes (3)"}},
      {"R < E",
       [](auto& o) {
         o.num_logical_experts = 32;
         o.num_groups = 4;
       },
       {"num_physical_experts (16)", "num_logical_experts (32)"}},
      {"layers above INT32_MAX",
       [](auto& o) { o.num_layers = kAboveInt32; },
       {"num_layers", "2147483648", "INT32_MAX"}},
      {"experts above INT32_MAX",
       [](auto& o) { o.num_logical_experts = kAboveInt32; },
       {"num_logical_experts", "2147483648"}},
      {"slots above INT32_MAX",
       [](auto& o) { o.num_physical_experts = UINT32_MAX; },
       {"num_physical_experts", "4294967295"}},
      {"gpus above INT32_MAX",
       [](auto& o) { o.num_gpus = kAboveInt32; },
       {"num_gpus", "2147483648"}},
      {"nodes above INT32_MAX",
       [](auto& o) { o.num_nodes = kAboveInt32; },
       {"num_nodes", "2147483648"}},
      {"groups above INT32_MAX",
       [](auto& o) { o.num_groups = kAboveInt32; },
       {"num_groups", "2147483648"}},
      // A budget only balanced-relaxed uses: any other algorithm (the default too) would ignore
      // it silently.
      {"budget with deepseek",
       [](auto& o) { o.cross_node_budget = 2; },
       {"cross_node_budget (2)", "balanced-relaxed", "algorithm 1 (deepseek)"}},
      {"budget with the default",
       [](auto& o) {
         o.algorithm = EPLB_ALGORITHM_DEFAULT;
         o.cross_node_budget = 4;
       },
       {"cross_node_budget (4)", "algorithm 0 (balanced)"}},
      {"budget with balanced-hierarchical",
       [](auto& o) {
         o.algorithm = EPLB_ALGORITHM_BALANCED_HIERARCHICAL;
         o.cross_node_budget = 1;
       },
       {"cross_node_budget (1)", "balanced-hierarchical"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    eplb_planner_options o = readme_options();
    c.edit(o);
    eplb_planner* planner = sentinel<eplb_planner>();
    EXPECT_TRUE(invalid(eplb_planner_create(&o, &planner), c.fragments));
    EXPECT_EQ(planner, sentinel<eplb_planner>()) << "output written on failure";
  }
}

TEST(PlannerCreate, NullPointers) {
  const eplb_planner_options o = readme_options();
  eplb_planner* planner = sentinel<eplb_planner>();
  EXPECT_TRUE(invalid(eplb_planner_create(nullptr, &planner), {"options", "NULL"}));
  EXPECT_EQ(planner, sentinel<eplb_planner>());
  EXPECT_TRUE(invalid(eplb_planner_create(&o, nullptr), {"out_planner", "NULL"}));
}

TEST(PlannerCreate, LargerStructWithUnknownNonZeroFieldIsRejected) {
  const eplb_planner_options o = readme_options();
  alignas(8) unsigned char buffer[sizeof(eplb_planner_options) + 8] = {};
  std::memcpy(buffer, &o, sizeof(o));
  const uint32_t size = sizeof(buffer);
  std::memcpy(buffer, &size, sizeof(size));
  buffer[sizeof(eplb_planner_options) + 3] = 7;
  eplb_planner* planner = sentinel<eplb_planner>();
  EXPECT_TRUE(
      invalid(eplb_planner_create(reinterpret_cast<const eplb_planner_options*>(buffer), &planner),
              {"struct_size", std::to_string(size)}));
  EXPECT_EQ(planner, sentinel<eplb_planner>());
}

// ----------------------------------------------------------------------------------------------
// eplb_planner_plan
// ----------------------------------------------------------------------------------------------

TEST(PlannerPlan, NullPointers) {
  const PlannerPtr planner = make_planner(readme_options());
  eplb_placement* out = sentinel<eplb_placement>();
  EXPECT_TRUE(
      invalid(eplb_planner_plan(nullptr, kLoads.data(), kLoads.size(), &out), {"planner", "NULL"}));
  EXPECT_TRUE(
      invalid(eplb_planner_plan(planner.get(), nullptr, kLoads.size(), &out), {"loads", "NULL"}));
  EXPECT_TRUE(invalid(eplb_planner_plan(planner.get(), nullptr, 0, &out), {"loads", "NULL"}));
  EXPECT_EQ(out, sentinel<eplb_placement>());
  EXPECT_TRUE(invalid(eplb_planner_plan(planner.get(), kLoads.data(), kLoads.size(), nullptr),
                      {"out_placement", "NULL"}));
}

TEST(PlannerPlan, LoadsLengthMismatch) {
  const PlannerPtr planner = make_planner(readme_options());
  for (size_t len : {size_t{0}, size_t{12}, size_t{23}, size_t{25}, SIZE_MAX}) {
    SCOPED_TRACE(len);
    eplb_placement* out = sentinel<eplb_placement>();
    EXPECT_TRUE(invalid(eplb_planner_plan(planner.get(), kLoads.data(), len, &out),
                        {"loads", std::to_string(len), "24"}));
    EXPECT_EQ(out, sentinel<eplb_placement>());
  }
}

struct BadLoadCase {
  const char* what;
  size_t index;  // into the 2 x 12 matrix
  double value;
  std::vector<std::string> fragments;
};

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

const std::vector<BadLoadCase>& bad_load_cases() {
  static const std::vector<BadLoadCase> cases = {
      {"negative", 12 + 3, -1.5, {"loads[1][3]", "-1.5", "negative"}},
      {"negative zero-ish", 0, -1e-300, {"loads[0][0]", "negative"}},
      {"NaN", 7, kNaN, {"loads[0][7]", "NaN"}},
      {"+inf", 12 + 11, kInf, {"loads[1][11]", "inf"}},
      {"-inf", 2, -kInf, {"loads[0][2]", "-inf"}},
  };
  return cases;
}

TEST(PlannerPlan, BadLoadValues) {
  for (uint32_t algorithm : {uint32_t{EPLB_ALGORITHM_DEEPSEEK}, uint32_t{EPLB_ALGORITHM_TRIVIAL}}) {
    const PlannerPtr planner = make_planner(readme_options(algorithm));
    for (const auto& c : bad_load_cases()) {
      SCOPED_TRACE(std::string(c.what) + " algorithm " + std::to_string(algorithm));
      std::vector<double> loads = kLoads;
      loads[c.index] = c.value;
      eplb_placement* out = sentinel<eplb_placement>();
      EXPECT_TRUE(
          invalid(eplb_planner_plan(planner.get(), loads.data(), loads.size(), &out), c.fragments));
      EXPECT_EQ(out, sentinel<eplb_placement>());
    }
  }
}

TEST(PlannerPlan, LoadsAboveFloatMaxForDeepseek) {
  std::vector<double> loads = kLoads;
  loads[12 + 5] = static_cast<double>(FLT_MAX) * 2;
  {
    const PlannerPtr planner = make_planner(readme_options(EPLB_ALGORITHM_DEEPSEEK));
    eplb_placement* out = sentinel<eplb_placement>();
    EXPECT_TRUE(invalid(eplb_planner_plan(planner.get(), loads.data(), loads.size(), &out),
                        {"loads[1][5]", "FLT_MAX"}));
    EXPECT_EQ(out, sentinel<eplb_placement>());
    if (out != sentinel<eplb_placement>()) eplb_placement_destroy(out);
  }
  // A quarter of FLT_MAX is fine (a layer may add up to FLT_MAX / 2), and the trivial algorithm
  // does not compute in float32.
  {
    std::vector<double> ok = kLoads;
    ok[3] = static_cast<double>(FLT_MAX) / 4;
    const PlannerPtr planner = make_planner(readme_options());
    eplb_placement* out = nullptr;
    EXPECT_EQ(eplb_planner_plan(planner.get(), ok.data(), ok.size(), &out), EPLB_OK)
        << eplb_last_error_message();
    eplb_placement_destroy(out);
  }
  {
    const PlannerPtr planner = make_planner(readme_options(EPLB_ALGORITHM_TRIVIAL));
    eplb_placement* out = nullptr;
    EXPECT_EQ(eplb_planner_plan(planner.get(), loads.data(), loads.size(), &out), EPLB_OK)
        << eplb_last_error_message();
    eplb_placement_destroy(out);
  }
}

// Finite loads whose layer total is infinite would make every GPU sum, the mean and the
// balancedness inf or NaN: a layer total above 1e150 (whose square would overflow) is refused
// by every call that takes a load matrix, naming the layer. Deepseek sums in float32: FLT_MAX/2.
TEST(PlannerPlan, LoadsWhoseLayerTotalOverflowsAreRefused) {
  std::vector<double> loads = kLoads;
  loads[12 + 2] = 1e308;
  loads[12 + 9] = 1e308;  // each finite, layer 1 adds up to inf
  const std::vector<std::string> fragments = {"layer 1", "above 1e150"};
  for (uint32_t algorithm : {uint32_t{EPLB_ALGORITHM_TRIVIAL}, uint32_t{EPLB_ALGORITHM_BALANCED}}) {
    SCOPED_TRACE("algorithm " + std::to_string(algorithm));
    const PlannerPtr planner = make_planner(readme_options(algorithm));
    eplb_placement* out = sentinel<eplb_placement>();
    EXPECT_TRUE(
        invalid(eplb_planner_plan(planner.get(), loads.data(), loads.size(), &out), fragments));
    EXPECT_EQ(out, sentinel<eplb_placement>());
  }
  // Windows: each window's layer total is accepted (1e150), their sum over two windows is not.
  {
    std::vector<double> one = kLoads;
    one[12 + 2] = 1e150 - 1e140;
    std::vector<double> windows = one;
    windows.insert(windows.end(), one.begin(), one.end());
    const PlannerPtr planner = make_planner(readme_options(EPLB_ALGORITHM_BALANCED));
    eplb_placement* out = sentinel<eplb_placement>();
    EXPECT_TRUE(
        invalid(eplb_planner_plan_windows(planner.get(), windows.data(), 2, windows.size(), &out),
                {"layer 1", "over all windows", "above 1e150"}));
    EXPECT_EQ(out, sentinel<eplb_placement>());
    ASSERT_EQ(eplb_planner_plan_windows(planner.get(), one.data(), 1, one.size(), &out), EPLB_OK)
        << eplb_last_error_message();
    eplb_placement_destroy(out);
  }
  // Deepseek: each load below FLT_MAX, their float32 sum is not.
  {
    std::vector<double> floats = kLoads;
    floats[12 + 2] = static_cast<double>(FLT_MAX) * 0.3;
    floats[12 + 9] = static_cast<double>(FLT_MAX) * 0.3;
    const PlannerPtr planner = make_planner(readme_options(EPLB_ALGORITHM_DEEPSEEK));
    eplb_placement* out = sentinel<eplb_placement>();
    EXPECT_TRUE(invalid(eplb_planner_plan(planner.get(), floats.data(), floats.size(), &out),
                        {"layer 1", "FLT_MAX / 2", "float32"}));
    EXPECT_EQ(out, sentinel<eplb_placement>());
  }
  const PlacementPtr p = make_placement();
  eplb_metrics metrics{};
  metrics.struct_size = sizeof(metrics);
  EXPECT_TRUE(
      invalid(eplb_metrics_compute(p.get(), loads.data(), loads.size(), &metrics), fragments));
  std::vector<double> gpu_loads(2 * 8);
  EXPECT_TRUE(invalid(eplb_metrics_gpu_loads(p.get(), loads.data(), loads.size(), gpu_loads.data(),
                                             gpu_loads.size()),
                      fragments));
  eplb_layer_metrics layer{};
  layer.struct_size = sizeof(layer);
  EXPECT_TRUE(invalid(eplb_metrics_compute_layer(p.get(), 1, loads.data() + 12, 12, &layer),
                      {"above 1e150"}));
  // Totals up to 1e150 are fine: every figure stays finite.
  std::vector<double> large = kLoads;
  large[12 + 2] = 1e149;
  ASSERT_EQ(eplb_metrics_compute(p.get(), large.data(), large.size(), &metrics), EPLB_OK)
      << eplb_last_error_message();
  EXPECT_TRUE(std::isfinite(metrics.balancedness)) << metrics.balancedness;
}

// ----------------------------------------------------------------------------------------------
// Placement getters
// ----------------------------------------------------------------------------------------------

using Getter = eplb_status (*)(const eplb_placement*, int32_t*, size_t);

struct GetterCase {
  const char* name;
  Getter get;
  size_t needed;  // for the README placement
};

TEST(PlacementGetters, NullAndTooSmall) {
  const PlacementPtr p = make_placement();
  ASSERT_NE(p, nullptr);
  const std::vector<GetterCase> cases = {
      {"phy2log", eplb_placement_get_phy2log, 2 * 16},
      {"replica counts", eplb_placement_get_replica_counts, 2 * 12},
      {"log2phy", eplb_placement_get_log2phy, 2 * 12 * 2},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<int32_t> buffer(c.needed + 1, -77);
    EXPECT_TRUE(invalid(c.get(nullptr, buffer.data(), buffer.size()), {"placement", "NULL"}));
    EXPECT_TRUE(invalid(c.get(p.get(), nullptr, buffer.size()), {"out", "NULL"}));
    for (size_t len : {size_t{0}, size_t{1}, c.needed - 1}) {
      EXPECT_TRUE(fails_with(c.get(p.get(), buffer.data(), len), EPLB_ERR_BUFFER_TOO_SMALL,
                             {c.name, std::to_string(c.needed), std::to_string(len)}))
          << "out_len " << len;
    }
    for (int32_t v : buffer) EXPECT_EQ(v, -77) << "buffer written on failure";
    EXPECT_EQ(c.get(p.get(), buffer.data(), c.needed), EPLB_OK);
    EXPECT_STREQ(eplb_last_error_message(), "");
  }
}

TEST(PlacementGetInfo, Errors) {
  const PlacementPtr p = make_placement();
  eplb_placement_info info;
  std::memset(&info, 0x5C, sizeof(info));
  info.struct_size = sizeof(info);
  const eplb_placement_info before = info;
  EXPECT_TRUE(invalid(eplb_placement_get_info(nullptr, &info), {"placement", "NULL"}));
  EXPECT_TRUE(invalid(eplb_placement_get_info(p.get(), nullptr), {"out_info", "NULL"}));
  EXPECT_EQ(std::memcmp(&info, &before, sizeof(info)), 0);
  for (uint32_t size : {0U, 4U, static_cast<uint32_t>(sizeof(info) - 8)}) {
    info.struct_size = size;
    EXPECT_TRUE(invalid(eplb_placement_get_info(p.get(), &info),
                        {"out_info", "struct_size (" + std::to_string(size) + ")"}));
    EXPECT_EQ(info.struct_size, size);
    EXPECT_EQ(std::memcmp(reinterpret_cast<const unsigned char*>(&info) + 4,
                          reinterpret_cast<const unsigned char*>(&before) + 4, sizeof(info) - 4),
              0);
  }
}

// ----------------------------------------------------------------------------------------------
// Metrics
// ----------------------------------------------------------------------------------------------

TEST(Metrics, NullPointersAndStructSize) {
  const PlacementPtr p = make_placement();
  eplb_metrics m;
  std::memset(&m, 0x3E, sizeof(m));
  m.struct_size = sizeof(m);
  const eplb_metrics before = m;
  EXPECT_TRUE(invalid(eplb_metrics_compute(nullptr, kLoads.data(), kLoads.size(), &m),
                      {"placement", "NULL"}));
  EXPECT_TRUE(
      invalid(eplb_metrics_compute(p.get(), nullptr, kLoads.size(), &m), {"loads", "NULL"}));
  EXPECT_TRUE(invalid(eplb_metrics_compute(p.get(), kLoads.data(), kLoads.size(), nullptr),
                      {"out_metrics", "NULL"}));
  EXPECT_EQ(std::memcmp(&m, &before, sizeof(m)), 0);
  m.struct_size = 0;
  EXPECT_TRUE(invalid(eplb_metrics_compute(p.get(), kLoads.data(), kLoads.size(), &m),
                      {"out_metrics", "struct_size (0)"}));

  eplb_layer_metrics lm;
  std::memset(&lm, 0x3E, sizeof(lm));
  lm.struct_size = sizeof(lm);
  const eplb_layer_metrics lm_before = lm;
  EXPECT_TRUE(invalid(eplb_metrics_compute_layer(nullptr, 0, kLoads.data(), 12, &lm),
                      {"placement", "NULL"}));
  EXPECT_TRUE(
      invalid(eplb_metrics_compute_layer(p.get(), 0, nullptr, 12, &lm), {"layer_loads", "NULL"}));
  EXPECT_TRUE(invalid(eplb_metrics_compute_layer(p.get(), 0, kLoads.data(), 12, nullptr),
                      {"out_metrics", "NULL"}));
  EXPECT_EQ(std::memcmp(&lm, &lm_before, sizeof(lm)), 0);
  lm.struct_size = 0;
  EXPECT_TRUE(invalid(eplb_metrics_compute_layer(p.get(), 0, kLoads.data(), 12, &lm),
                      {"out_metrics", "struct_size (0)"}));

  std::vector<double> gpu(16, -9.0);
  EXPECT_TRUE(
      invalid(eplb_metrics_gpu_loads(nullptr, kLoads.data(), kLoads.size(), gpu.data(), gpu.size()),
              {"placement", "NULL"}));
  EXPECT_TRUE(
      invalid(eplb_metrics_gpu_loads(p.get(), nullptr, kLoads.size(), gpu.data(), gpu.size()),
              {"loads", "NULL"}));
  EXPECT_TRUE(
      invalid(eplb_metrics_gpu_loads(p.get(), kLoads.data(), kLoads.size(), nullptr, gpu.size()),
              {"out", "NULL"}));
  for (double v : gpu) EXPECT_EQ(v, -9.0);
}

TEST(Metrics, LoadsLengthMismatch) {
  const PlacementPtr p = make_placement();
  for (size_t len : {size_t{0}, size_t{23}, size_t{25}, SIZE_MAX}) {
    SCOPED_TRACE(len);
    eplb_metrics m;
    m.struct_size = sizeof(m);
    EXPECT_TRUE(invalid(eplb_metrics_compute(p.get(), kLoads.data(), len, &m),
                        {"loads", std::to_string(len), "24"}));
    std::vector<double> gpu(16, -9.0);
    EXPECT_TRUE(invalid(eplb_metrics_gpu_loads(p.get(), kLoads.data(), len, gpu.data(), gpu.size()),
                        {"loads", std::to_string(len), "24"}));
    for (double v : gpu) EXPECT_EQ(v, -9.0);
  }
  for (size_t len : {size_t{0}, size_t{11}, size_t{13}, size_t{24}, SIZE_MAX}) {
    SCOPED_TRACE(len);
    eplb_layer_metrics lm;
    lm.struct_size = sizeof(lm);
    EXPECT_TRUE(invalid(eplb_metrics_compute_layer(p.get(), 1, kLoads.data(), len, &lm),
                        {"layer_loads", std::to_string(len), "12"}));
  }
}

TEST(Metrics, BadLoadValues) {
  const PlacementPtr p = make_placement();
  for (const auto& c : bad_load_cases()) {
    SCOPED_TRACE(c.what);
    std::vector<double> loads = kLoads;
    loads[c.index] = c.value;
    eplb_metrics m;
    std::memset(&m, 0x44, sizeof(m));
    m.struct_size = sizeof(m);
    const eplb_metrics before = m;
    EXPECT_TRUE(
        invalid(eplb_metrics_compute(p.get(), loads.data(), loads.size(), &m), c.fragments));
    EXPECT_EQ(std::memcmp(&m, &before, sizeof(m)), 0);

    std::vector<double> gpu(16, -9.0);
    EXPECT_TRUE(
        invalid(eplb_metrics_gpu_loads(p.get(), loads.data(), loads.size(), gpu.data(), gpu.size()),
                c.fragments));
    for (double v : gpu) EXPECT_EQ(v, -9.0);

    // The per-layer call names the layer it was asked about.
    const size_t layer = c.index / 12;
    eplb_layer_metrics lm;
    lm.struct_size = sizeof(lm);
    std::vector<std::string> layer_fragments = c.fragments;
    layer_fragments[0] = "layer_loads" + c.fragments[0].substr(std::string("loads").size());
    EXPECT_TRUE(invalid(eplb_metrics_compute_layer(p.get(), static_cast<uint32_t>(layer),
                                                   loads.data() + layer * 12, 12, &lm),
                        layer_fragments));
  }
  // Values beyond FLT_MAX are fine for metrics (double precision), up to a layer total of 1e150.
  std::vector<double> big = kLoads;
  big[0] = 1e149;
  eplb_metrics m;
  m.struct_size = sizeof(m);
  EXPECT_EQ(eplb_metrics_compute(p.get(), big.data(), big.size(), &m), EPLB_OK)
      << eplb_last_error_message();
}

TEST(Metrics, LayerOutOfRange) {
  const PlacementPtr p = make_placement();
  for (uint32_t layer : {2U, 3U, 300U, UINT32_MAX}) {
    eplb_layer_metrics lm;
    std::memset(&lm, 0x66, sizeof(lm));
    lm.struct_size = sizeof(lm);
    const eplb_layer_metrics before = lm;
    EXPECT_TRUE(invalid(eplb_metrics_compute_layer(p.get(), layer, kLoads.data(), 12, &lm),
                        {"layer", std::to_string(layer), "num_layers (2)"}));
    EXPECT_EQ(std::memcmp(&lm, &before, sizeof(lm)), 0);
  }
}

TEST(Metrics, GpuLoadsBufferTooSmall) {
  const PlacementPtr p = make_placement();
  for (size_t len : {size_t{0}, size_t{1}, size_t{8}, size_t{15}}) {
    std::vector<double> gpu(16, -9.0);
    EXPECT_TRUE(
        fails_with(eplb_metrics_gpu_loads(p.get(), kLoads.data(), kLoads.size(), gpu.data(), len),
                   EPLB_ERR_BUFFER_TOO_SMALL, {"16", "out_len", std::to_string(len)}))
        << len;
    for (double v : gpu) EXPECT_EQ(v, -9.0);
  }
}

// ----------------------------------------------------------------------------------------------
// eplb_placement_create_from_phy2log
// ----------------------------------------------------------------------------------------------

const std::vector<int32_t> kMap = {5, 6,  5, 7, 8, 4,  3, 4, 10, 9, 10, 2, 0, 1, 11, 1,
                                   7, 10, 6, 8, 6, 11, 8, 9, 2,  4, 5,  1, 5, 0, 3,  1};

struct ImportCase {
  const char* what;
  uint32_t layers, experts, physical, nodes, gpus;
  std::function<void(std::vector<int32_t>&)> edit;  // applied to a copy of kMap
  size_t len;                                       // SIZE_MAX - 1: the edited map's size
  std::vector<std::string> fragments;
};

constexpr size_t kMapSize = SIZE_MAX - 1;

TEST(CreateFromPhy2log, InvalidInputs) {
  const auto keep = [](std::vector<int32_t>&) {};
  const std::vector<ImportCase> cases = {
      {"zero layers", 0, 12, 16, 2, 8, keep, kMapSize, {"num_layers", "got 0"}},
      {"zero experts", 2, 0, 16, 2, 8, keep, kMapSize, {"num_logical_experts", "got 0"}},
      {"zero slots", 2, 12, 0, 2, 8, keep, kMapSize, {"num_physical_experts", "got 0"}},
      {"zero nodes", 2, 12, 16, 0, 8, keep, kMapSize, {"num_nodes", "got 0"}},
      {"zero gpus", 2, 12, 16, 2, 0, keep, kMapSize, {"num_gpus", "got 0"}},
      {"R % gpus", 2, 12, 16, 2, 6, keep, kMapSize, {"num_physical_experts (16)", "num_gpus (6)"}},
      {"gpus % nodes", 2, 12, 16, 3, 8, keep, kMapSize, {"num_gpus (8)", "num_nodes (3)"}},
      {"R < E", 2, 17, 16, 2, 8, keep, kMapSize, {"num_physical_experts (16)", "17"}},
      {"layers above INT32_MAX",
       0x80000000U,
       12,
       16,
       2,
       8,
       keep,
       kMapSize,
       {"num_layers", "2147483648"}},
      {"too short", 2, 12, 16, 2, 8, keep, 31, {"phy2log", "31", "32"}},
      {"too long",
       2,
       12,
       16,
       2,
       8,
       [](auto& m) { m.push_back(0); },
       kMapSize,
       {"phy2log", "33", "32"}},
      {"length SIZE_MAX",
       2,
       12,
       16,
       2,
       8,
       keep,
       SIZE_MAX,
       {"phy2log", std::to_string(SIZE_MAX), "32"}},
      {"one layer too many", 3, 12, 16, 2, 8, keep, kMapSize, {"phy2log", "32", "48"}},
      {"id == E",
       2,
       12,
       16,
       2,
       8,
       [](auto& m) { m[16 + 3] = 12; },
       kMapSize,
       {"phy2log[1][3]", "12"}},
      {"id 300", 2, 12, 16, 2, 8, [](auto& m) { m[7] = 300; }, kMapSize, {"phy2log[0][7]", "300"}},
      {"negative id",
       2,
       12,
       16,
       2,
       8,
       [](auto& m) { m[16 + 15] = -1; },
       kMapSize,
       {"phy2log[1][15]", "-1"}},
      {"INT32_MIN",
       2,
       12,
       16,
       2,
       8,
       [](auto& m) { m[0] = INT32_MIN; },
       kMapSize,
       {"phy2log[0][0]", "-2147483648"}},
      // Layer 1: slot 7 held expert 9, its only replica; give it expert 1 instead.
      {"missing expert",
       2,
       12,
       16,
       2,
       8,
       [](auto& m) { m[16 + 7] = 1; },
       kMapSize,
       {"layer 1", "expert 9"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    std::vector<int32_t> map = kMap;
    c.edit(map);
    const size_t len = c.len == kMapSize ? map.size() : c.len;
    eplb_placement* out = sentinel<eplb_placement>();
    EXPECT_TRUE(invalid(eplb_placement_create_from_phy2log(c.layers, c.experts, c.physical, c.nodes,
                                                           c.gpus, map.data(), len, &out),
                        c.fragments));
    EXPECT_EQ(out, sentinel<eplb_placement>()) << "output written on failure";
  }
}

TEST(CreateFromPhy2log, NullPointers) {
  eplb_placement* out = sentinel<eplb_placement>();
  EXPECT_TRUE(invalid(eplb_placement_create_from_phy2log(2, 12, 16, 2, 8, nullptr, 32, &out),
                      {"phy2log", "NULL"}));
  EXPECT_EQ(out, sentinel<eplb_placement>());
  EXPECT_TRUE(invalid(
      eplb_placement_create_from_phy2log(2, 12, 16, 2, 8, kMap.data(), kMap.size(), nullptr),
      {"out_placement", "NULL"}));
}

// ----------------------------------------------------------------------------------------------
// The message belongs to the last call
// ----------------------------------------------------------------------------------------------

TEST(LastError, EachFailureReplacesTheMessageAndSuccessClearsIt) {
  eplb_planner_options o = readme_options();
  o.num_gpus = 0;
  eplb_planner* planner = nullptr;
  EXPECT_TRUE(invalid(eplb_planner_create(&o, &planner), {"num_gpus"}));
  o = readme_options();
  o.num_nodes = 3;
  EXPECT_TRUE(invalid(eplb_planner_create(&o, &planner), {"num_nodes (3)"}));
  EXPECT_EQ(std::string(eplb_last_error_message()).find("at least 1"), std::string::npos);
  // Reading the message does not change it.
  EXPECT_STREQ(eplb_last_error_message(), eplb_last_error_message());
  o = readme_options();
  ASSERT_EQ(eplb_planner_create(&o, &planner), EPLB_OK);
  EXPECT_STREQ(eplb_last_error_message(), "");
  eplb_planner_destroy(planner);
}

// eplb.h: calls that return no status leave the thread's message as it is, so a caller can
// release everything on its error path and print the message afterwards.
TEST(LastError, CallsWithoutAStatusLeaveTheMessage) {
  // Live handles of every kind the CPU can make, to release after the failure.
  const PlannerPtr planner = make_planner(readme_options());
  eplb_placement* placement = make_placement().release();
  eplb_placement* other = make_placement().release();
  eplb_tracker_options to;
  eplb_tracker_options_init(&to);
  to.num_layers = 2;
  to.num_logical_experts = 12;
  to.top_k = 2;
  eplb_tracker* tracker = nullptr;
  ASSERT_EQ(eplb_tracker_create(&to, &tracker), EPLB_OK) << eplb_last_error_message();
  void* buffer = nullptr;
  size_t size = 0;
  ASSERT_EQ(eplb_snapshot_save_to_buffer(placement, nullptr, &buffer, &size), EPLB_OK);
  eplb_snapshot* snapshot = nullptr;
  ASSERT_EQ(eplb_snapshot_load_from_buffer(buffer, size, &snapshot), EPLB_OK);
  eplb_migration_options mo;
  eplb_migration_options_init(&mo);
  eplb_migration* migration = nullptr;
  ASSERT_EQ(eplb_migration_plan(placement, other, kLoads.data(), kLoads.size(), &mo, &migration),
            EPLB_OK)
      << eplb_last_error_message();
  eplb_split_workspace* workspace = nullptr;
  ASSERT_EQ(eplb_split_workspace_create(&workspace), EPLB_OK);
  eplb_workload_options wo;
  eplb_workload_options_init(&wo);
  eplb_workload* workload = nullptr;
  ASSERT_EQ(eplb_workload_create(&wo, &workload), EPLB_OK) << eplb_last_error_message();
  // Host-only tables work without a GPU; a CUDA build's destroy paths run on them too.
  eplb_device_tables* device_tables = nullptr;
  ASSERT_EQ(eplb_device_tables_create(placement, 0, 0, EPLB_DEVICE_TABLES_HOST_ONLY, nullptr,
                                      &device_tables),
            EPLB_OK)
      << eplb_last_error_message();
  eplb_split_tables* split_tables = nullptr;
  ASSERT_EQ(eplb_split_tables_create(placement, 0, 0, EPLB_SPLIT_TABLES_HOST_ONLY, nullptr,
                                     &split_tables),
            EPLB_OK)
      << eplb_last_error_message();

  eplb_planner_options o = readme_options();
  o.num_nodes = 3;
  eplb_planner* failed = nullptr;
  ASSERT_TRUE(invalid(eplb_planner_create(&o, &failed), {"num_nodes (3)"}));
  const std::string message = eplb_last_error_message();

  eplb_placement_destroy(placement);
  eplb_placement_destroy(other);
  eplb_tracker_destroy(tracker);
  eplb_buffer_free(buffer);
  eplb_snapshot_destroy(snapshot);
  eplb_migration_destroy(migration);
  eplb_split_workspace_destroy(workspace);
  eplb_workload_destroy(workload);
  eplb_device_tables_destroy(device_tables);
  eplb_split_tables_destroy(split_tables);
  eplb_planner_destroy(nullptr);
  eplb_comm_destroy(nullptr);
  eplb_device_tables_destroy(nullptr);
  eplb_split_tables_destroy(nullptr);
  eplb_token_exchange_destroy(nullptr);
  eplb_planner_options_init(&o);
  eplb_tracker_options_init(&to);
  eplb_migration_options_init(&mo);
  eplb_snapshot_options so;
  eplb_snapshot_options_init(&so);
  eplb_token_exchange_options xo;
  eplb_token_exchange_options_init(&xo);
  eplb_workload_options_init(&wo);
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_IO), "input/output error");
  EXPECT_EQ(eplb_version_number(), static_cast<uint32_t>(EPLB_VERSION_NUMBER));
  EXPECT_NE(eplb_version_string(), nullptr);
  EXPECT_GE(eplb_algorithm_count(), 1U);
  EXPECT_NE(eplb_algorithm_name(1), nullptr);
  EXPECT_NE(eplb_algorithm_description(1), nullptr);
  EXPECT_NE(eplb_algorithm_default(), 0U);
  EXPECT_EQ(eplb_last_error_message(), message);
}

}  // namespace
