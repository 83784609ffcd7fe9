// eplb_kernel_split_solve and its CPU reference (issue #9): the reference's max load equals the
// exact optimum of eplb_split_solve (core/replica_split) on random instances and of a brute force
// on tiny ones; quotas are integral and sum exactly; results are deterministic; bad input is
// answered with a status. GPU-vs-CPU parity (bit-exact, also replayed from a CUDA graph) skips
// without a GPU. C API only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "eplb/eplb.h"
#include "split_test_support.hpp"
#include "support/gpu_test_support.hpp"

namespace {

using split_test::make_placement;
using split_test::Placement;

struct Tables {
  eplb_split_tables* t = nullptr;
  Tables() = default;
  Tables(const Tables&) = delete;
  Tables& operator=(const Tables&) = delete;
  ~Tables() { eplb_split_tables_destroy(t); }
};

// Creates host-only tables of `count` layers from `first` (0: every layer from `first`).
::testing::AssertionResult host_tables(const Placement& p, std::uint32_t first, std::uint32_t count,
                                       Tables& out) {
  if (eplb_split_tables_create(p.p, first, count, EPLB_SPLIT_TABLES_HOST_ONLY, nullptr, &out.t) ==
      EPLB_OK) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << eplb_last_error_message();
}

struct Instance {
  std::uint32_t layers = 1;
  std::uint32_t experts = 0;
  std::uint32_t slots = 0;
  std::uint32_t gpus = 0;
  std::vector<std::int32_t> phy2log;  // [layers][slots]
};

// Every expert once, the remaining slots to random experts (a few hot ones more often), shuffled.
Instance random_instance(std::mt19937& rng, std::uint32_t layers, std::uint32_t experts,
                         std::uint32_t gpus, std::uint32_t slots_per_gpu) {
  Instance in{layers, experts, gpus * slots_per_gpu, gpus, {}};
  for (std::uint32_t l = 0; l < layers; ++l) {
    std::vector<std::int32_t> row(in.slots);
    std::iota(row.begin(), row.begin() + experts, 0);
    for (std::uint32_t s = experts; s < in.slots; ++s) {
      const bool hot = rng() % 3 == 0;
      row[s] =
          static_cast<std::int32_t>(rng() % (hot ? std::min<std::uint32_t>(experts, 3) : experts));
    }
    std::shuffle(row.begin(), row.end(), rng);
    in.phy2log.insert(in.phy2log.end(), row.begin(), row.end());
  }
  return in;
}

std::vector<std::int32_t> random_counts(std::mt19937& rng, std::uint32_t experts, int kind) {
  std::vector<std::int32_t> counts(experts);
  for (std::uint32_t e = 0; e < experts; ++e) {
    const std::uint32_t r = static_cast<std::uint32_t>(rng());
    switch (kind % 4) {
      case 0:
        counts[e] = static_cast<std::int32_t>(r % 60);
        break;
      case 1:  // skewed
        counts[e] = static_cast<std::int32_t>(4000.0 / std::pow(1.0 + e, 1.2)) +
                    static_cast<std::int32_t>(r % 7);
        break;
      case 2:  // sparse
        counts[e] = r % 3 == 0 ? static_cast<std::int32_t>(r % 200) : 0;
        break;
      default:
        counts[e] = static_cast<std::int32_t>(r % 5);
    }
  }
  std::shuffle(counts.begin(), counts.end(), rng);
  return counts;
}

struct Result {
  std::vector<std::int32_t> quotas;
  double max_load = -1.0;
};

Result solve_cpu(const Tables& tables, std::uint32_t layer, const std::vector<std::int32_t>& counts,
                 const std::vector<double>& w, const std::vector<double>& x, std::uint32_t slots) {
  size_t bytes = 0;
  EXPECT_EQ(eplb_kernel_split_solve_workspace_size(tables.t, &bytes), EPLB_OK);
  std::vector<std::uint64_t> workspace(bytes / 8 + 1);
  Result r;
  r.quotas.assign(slots, -7);
  EXPECT_EQ(
      eplb_kernel_split_solve_cpu(tables.t, layer, counts.data(), w.empty() ? nullptr : w.data(),
                                  x.empty() ? nullptr : x.data(), r.quotas.data(), &r.max_load,
                                  workspace.data(), bytes, nullptr),
      EPLB_OK)
      << eplb_last_error_message();
  return r;
}

double core_optimum(const Placement& p, std::uint32_t layer,
                    const std::vector<std::int32_t>& counts, const std::vector<double>& w,
                    const std::vector<double>& x, std::uint32_t slots, std::uint32_t gpus) {
  std::vector<std::int32_t> quotas(slots);
  double max_load = -1.0;
  EXPECT_EQ(eplb_split_solve(nullptr, p.p, layer, counts.data(), counts.size(),
                             w.empty() ? nullptr : w.data(), x.empty() ? nullptr : x.data(),
                             (w.empty() && x.empty()) ? 0 : gpus, quotas.data(), slots, &max_load),
            EPLB_OK)
      << eplb_last_error_message();
  return max_load;
}

// Quotas >= 0, zero on all but the first slot of an expert on each GPU, summing to the count;
// returns the max load they give.
double check_quotas(const Instance& in, std::uint32_t layer,
                    const std::vector<std::int32_t>& counts, const std::vector<double>& w,
                    const std::vector<double>& x, const std::vector<std::int32_t>& quotas) {
  const std::int32_t* row = in.phy2log.data() + static_cast<std::size_t>(layer) * in.slots;
  const std::uint32_t spg = in.slots / in.gpus;
  std::vector<std::int64_t> sum(in.experts, 0);
  std::vector<std::int64_t> tokens(in.gpus, 0);
  for (std::uint32_t s = 0; s < in.slots; ++s) {
    EXPECT_GE(quotas[s], 0) << "slot " << s;
    sum[static_cast<std::size_t>(row[s])] += quotas[s];
    tokens[s / spg] += quotas[s];
    for (std::uint32_t t = (s / spg) * spg; t < s; ++t) {
      if (row[t] == row[s]) {
        EXPECT_EQ(quotas[s], 0) << "second replica on one GPU, slot " << s;
      }
    }
  }
  for (std::uint32_t e = 0; e < in.experts; ++e) EXPECT_EQ(sum[e], counts[e]) << "expert " << e;
  double worst = 0.0;
  for (std::uint32_t g = 0; g < in.gpus; ++g) {
    const double wg = w.empty() ? 1.0 : w[g];
    const double xg = x.empty() ? 0.0 : x[g];
    worst = std::max(worst, wg * (xg + static_cast<double>(tokens[g])));
  }
  return worst;
}

void expect_same_load(double got, double want, bool integral) {
  if (integral) {
    EXPECT_EQ(got, want);
  } else {
    EXPECT_NEAR(got, want, 1e-12 * std::max(1.0, std::abs(want)));
  }
}

TEST(SplitKernelCpu, EqualsTheCoreOptimumOnRandomInstances) {
  std::mt19937 rng(91);
  int checked = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const std::uint32_t gpus = 2 + static_cast<std::uint32_t>(rng() % 9);
    const std::uint32_t spg = 1 + static_cast<std::uint32_t>(rng() % 5);
    const std::uint32_t slots = gpus * spg;
    const std::uint32_t experts =
        std::max<std::uint32_t>(1, slots - static_cast<std::uint32_t>(rng() % (slots / 2 + 1)));
    const Instance in = random_instance(rng, 2, experts, gpus, spg);
    Placement p;
    make_placement(p, in.layers, in.experts, in.slots, in.gpus, in.phy2log);
    Tables tables;
    ASSERT_TRUE(host_tables(p, 0, 0, tables));
    const std::uint32_t layer = static_cast<std::uint32_t>(trial % 2);
    const auto counts = random_counts(rng, experts, trial);
    std::vector<double> w;
    std::vector<double> x;
    const int terms = trial % 5;
    if (terms == 1 || terms == 3) {
      for (std::uint32_t g = 0; g < gpus; ++g) x.push_back(static_cast<double>(rng() % 40));
    }
    if (terms == 2) {
      for (std::uint32_t g = 0; g < gpus; ++g) w.push_back(1.0 + static_cast<double>(rng() % 3));
    }
    if (terms == 3) {
      for (std::uint32_t g = 0; g < gpus; ++g)
        w.push_back(0.5 + 0.25 * static_cast<double>(rng() % 5));
    }
    if (terms == 4) {
      for (std::uint32_t g = 0; g < gpus; ++g) {
        w.push_back(0.7 + 0.1 * static_cast<double>(rng() % 7));
        x.push_back(0.3 * static_cast<double>(rng() % 11));
      }
    }
    const Result r = solve_cpu(tables, layer, counts, w, x, in.slots);
    const double loads = check_quotas(in, layer, counts, w, x, r.quotas);
    EXPECT_EQ(loads, r.max_load) << "trial " << trial;
    const double want = core_optimum(p, layer, counts, w, x, in.slots, gpus);
    expect_same_load(r.max_load, want, terms < 4);
    if (HasFailure()) FAIL() << "trial " << trial;
    ++checked;
  }
  EXPECT_EQ(checked, 400);
}

// Layer totals past 2^31 tokens (counts up to INT32_MAX): still the exact optimum.
TEST(SplitKernelCpu, EqualsTheCoreOptimumForCountsNearInt32Max) {
  std::mt19937 rng(92);
  std::uniform_int_distribution<std::int32_t> big(0, std::numeric_limits<std::int32_t>::max());
  for (int trial = 0; trial < 100; ++trial) {
    const std::uint32_t gpus = 2 + static_cast<std::uint32_t>(rng() % 6);
    const std::uint32_t spg = 2 + static_cast<std::uint32_t>(rng() % 3);
    const std::uint32_t experts = gpus * spg - static_cast<std::uint32_t>(rng() % gpus);
    const Instance in = random_instance(rng, 1, experts, gpus, spg);
    Placement p;
    make_placement(p, in.layers, in.experts, in.slots, in.gpus, in.phy2log);
    Tables tables;
    ASSERT_TRUE(host_tables(p, 0, 0, tables));
    std::vector<std::int32_t> counts(experts);
    for (auto& c : counts) c = big(rng);
    std::vector<double> x;
    if (trial % 2 == 1) {
      for (std::uint32_t g = 0; g < gpus; ++g) x.push_back(static_cast<double>(big(rng)));
    }
    const Result r = solve_cpu(tables, 0, counts, {}, x, in.slots);
    EXPECT_EQ(check_quotas(in, 0, counts, {}, x, r.quotas), r.max_load) << "trial " << trial;
    EXPECT_EQ(r.max_load, core_optimum(p, 0, counts, {}, x, in.slots, gpus)) << "trial " << trial;
  }
}

TEST(SplitKernelCpu, EqualsTheCoreOptimumOnTheDeepSeekShape) {
  // 256 experts, 288 slots on 32 GPUs (9 each), batches of 8192 tokens x top-8.
  std::mt19937 rng(7);
  for (int trial = 0; trial < 12; ++trial) {
    const Instance in = random_instance(rng, 1, 256, 32, 9);
    Placement p;
    make_placement(p, 1, 256, 288, 32, in.phy2log, 4);
    Tables tables;
    ASSERT_TRUE(host_tables(p, 0, 1, tables));
    std::vector<double> weight(256);
    for (auto& v : weight)
      v = std::exp(std::normal_distribution<double>(0.0, trial % 2 ? 1.0 : 0.3)(rng));
    std::discrete_distribution<int> pick(weight.begin(), weight.end());
    std::vector<std::int32_t> counts(256, 0);
    for (int i = 0; i < 8192 * 8; ++i) ++counts[static_cast<std::size_t>(pick(rng))];
    const Result r = solve_cpu(tables, 0, counts, {}, {}, 288);
    EXPECT_EQ(check_quotas(in, 0, counts, {}, {}, r.quotas), r.max_load);
    EXPECT_EQ(r.max_load, core_optimum(p, 0, counts, {}, {}, 288, 32)) << "trial " << trial;
  }
}

// Every split of every expert's tokens over its slots, on 3 GPUs x 3 slots.
double brute_force(const Instance& in, const std::vector<std::int32_t>& counts,
                   const std::vector<double>& w) {
  std::vector<std::int32_t> left(counts);
  std::vector<double> load(in.gpus, 0.0);
  const std::uint32_t spg = in.slots / in.gpus;
  double best = std::numeric_limits<double>::infinity();
  std::function<void(std::uint32_t)> visit = [&](std::uint32_t s) {
    if (s == in.slots) {
      if (std::all_of(left.begin(), left.end(), [](std::int32_t v) { return v == 0; })) {
        double worst = 0.0;
        for (std::uint32_t g = 0; g < in.gpus; ++g) worst = std::max(worst, w[g] * load[g]);
        best = std::min(best, worst);
      }
      return;
    }
    const auto e = static_cast<std::size_t>(in.phy2log[s]);
    for (std::int32_t q = 0; q <= left[e]; ++q) {
      left[e] -= q;
      load[s / spg] += q;
      visit(s + 1);
      left[e] += q;
      load[s / spg] -= q;
    }
  };
  visit(0);
  return best;
}

TEST(SplitKernelCpu, EqualsABruteForceOnTinyInstances) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 150; ++trial) {
    const std::uint32_t experts = 3 + static_cast<std::uint32_t>(rng() % 3);
    const Instance in =
        random_instance(rng, 1, experts, 3, 2 + static_cast<std::uint32_t>(rng() % 2));
    Placement p;
    make_placement(p, 1, in.experts, in.slots, in.gpus, in.phy2log);
    Tables tables;
    ASSERT_TRUE(host_tables(p, 0, 1, tables));
    std::vector<std::int32_t> counts(experts);
    for (auto& c : counts) c = static_cast<std::int32_t>(rng() % 5);
    std::vector<double> w{1.0, 1.0, 1.0};
    if (trial % 3 == 1) w = {1.0, 2.0, 1.5};
    if (trial % 3 == 2) w = {0.75, 1.25, 3.0};
    const Result r = solve_cpu(tables, 0, counts, w, {}, in.slots);
    EXPECT_EQ(check_quotas(in, 0, counts, w, {}, r.quotas), r.max_load);
    EXPECT_EQ(r.max_load, brute_force(in, counts, w)) << "trial " << trial;
  }
}

TEST(SplitKernelCpu, WithoutMultiGpuExpertsCopiesTheCounts) {
  // Every expert on one GPU (expert 1 twice on GPU 0): nothing to solve.
  const std::vector<std::int32_t> phy2log{0, 1, 1, 2, 3, 4};
  Placement p;
  make_placement(p, 1, 5, 6, 2, phy2log);
  Tables tables;
  ASSERT_TRUE(host_tables(p, 0, 1, tables));
  const std::vector<std::int32_t> counts{5, 7, 1, 2, 3};
  const Result r = solve_cpu(tables, 0, counts, {}, {}, 6);
  EXPECT_EQ(r.quotas, (std::vector<std::int32_t>{5, 7, 0, 1, 2, 3}));
  EXPECT_EQ(r.max_load, 12.0);
}

TEST(SplitKernelCpu, IsDeterministicAndTheLayerSetDoesNotMatter) {
  std::mt19937 rng(3);
  const Instance in = random_instance(rng, 4, 64, 16, 5);
  Placement p;
  make_placement(p, 4, 64, 80, 16, in.phy2log, 2);
  Tables all;
  Tables one;
  ASSERT_TRUE(host_tables(p, 0, 0, all));
  ASSERT_TRUE(host_tables(p, 2, 1, one));
  for (int trial = 0; trial < 20; ++trial) {
    const auto counts = random_counts(rng, 64, trial);
    const Result a = solve_cpu(all, 2, counts, {}, {}, 80);
    const Result b = solve_cpu(all, 2, counts, {}, {}, 80);
    const Result c = solve_cpu(one, 2, counts, {}, {}, 80);
    EXPECT_EQ(a.quotas, b.quotas);
    EXPECT_EQ(a.quotas, c.quotas);
    EXPECT_EQ(a.max_load, c.max_load);
  }
}

TEST(SplitKernelCpu, RejectsBadInputWithoutWritingOutputs) {
  const std::vector<std::int32_t> phy2log{0, 1, 2, 0, 3, 1};
  Placement p;
  make_placement(p, 1, 4, 6, 2, phy2log);
  Tables tables;
  ASSERT_TRUE(host_tables(p, 0, 1, tables));
  size_t bytes = 0;
  ASSERT_EQ(eplb_kernel_split_solve_workspace_size(tables.t, &bytes), EPLB_OK);
  EXPECT_GT(bytes, 0u);
  std::vector<std::uint64_t> ws(bytes / 8 + 1);
  std::vector<std::int32_t> quotas(6, -7);
  double max_load = -1.0;
  auto call = [&](std::uint32_t layer, const std::vector<std::int32_t>& counts, size_t ws_bytes,
                  const double* w) {
    return eplb_kernel_split_solve_cpu(tables.t, layer, counts.data(), w, nullptr, quotas.data(),
                                       &max_load, ws.data(), ws_bytes, nullptr);
  };
  const double bad_w[2] = {1.0, std::nan("")};
  EXPECT_EQ(call(1, {1, 2, 3, 4}, bytes, nullptr), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("layer (1)"), std::string::npos);
  EXPECT_EQ(call(0, {1, 2, 3, 4}, bytes - 1, nullptr), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("workspace_bytes"), std::string::npos);
  EXPECT_EQ(call(0, {1, -2, 3, 4}, bytes, nullptr), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("counts[1] = -2"), std::string::npos);
  EXPECT_EQ(call(0, {1, 2, 3, 4}, bytes, bad_w), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("gpu_weights[1]"), std::string::npos);
  EXPECT_EQ(quotas, std::vector<std::int32_t>(6, -7));
  EXPECT_EQ(max_load, -1.0);
  // Host-only tables cannot feed the GPU kernel: the same status with or without a GPU.
  EXPECT_EQ(eplb_kernel_split_solve(tables.t, 0, quotas.data(), nullptr, nullptr, quotas.data(),
                                    nullptr, ws.data(), bytes, nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("HOST_ONLY"), std::string::npos);
  // Creating device tables needs a GPU.
  int32_t devices = 0;
  if (eplb_device_count(&devices) == EPLB_ERR_NO_DEVICE) {
    eplb_split_tables* t = nullptr;
    EXPECT_EQ(eplb_split_tables_create(p.p, 0, 1, 0, nullptr, &t), EPLB_ERR_NO_DEVICE);
    EXPECT_EQ(t, nullptr);
  }
}

// --- GPU vs CPU parity --------------------------------------------------------------------------

#if EPLB_TEST_WITH_CUDA

using eplb::test::DeviceArray;

TEST(SplitKernelParity, GpuEqualsCpuBitForBit) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(17);
  for (int trial = 0; trial < 60; ++trial) {
    const bool deepseek = trial % 4 == 0;
    const std::uint32_t gpus = deepseek ? 32 : 2 + static_cast<std::uint32_t>(rng() % 15);
    const std::uint32_t spg = deepseek ? 9 : 1 + static_cast<std::uint32_t>(rng() % 5);
    const std::uint32_t experts =
        deepseek ? 256
                 : std::max<std::uint32_t>(
                       1, gpus * spg - static_cast<std::uint32_t>(rng() % (gpus * spg / 2 + 1)));
    const Instance in = random_instance(rng, 2, experts, gpus, spg);
    Placement p;
    make_placement(p, 2, experts, in.slots, gpus, in.phy2log);
    Tables host;
    Tables device;
    ASSERT_TRUE(host_tables(p, 0, 0, host));
    ASSERT_EQ(eplb_split_tables_create(p.p, 0, 0, 0, nullptr, &device.t), EPLB_OK)
        << eplb_last_error_message();
    const auto counts = random_counts(rng, experts, trial);
    std::vector<double> w;
    std::vector<double> x;
    if (trial % 3 == 1) {
      for (std::uint32_t g = 0; g < gpus; ++g) {
        w.push_back(0.7 + 0.1 * static_cast<double>(rng() % 7));
        x.push_back(0.3 * static_cast<double>(rng() % 11));
      }
    }
    const std::uint32_t layer = static_cast<std::uint32_t>(trial % 2);
    const Result cpu = solve_cpu(host, layer, counts, w, x, in.slots);
    size_t bytes = 0;
    ASSERT_EQ(eplb_kernel_split_solve_workspace_size(device.t, &bytes), EPLB_OK);
    DeviceArray<std::int32_t> d_counts(counts);
    DeviceArray<double> d_w(w);
    DeviceArray<double> d_x(x);
    DeviceArray<std::int32_t> d_quotas(in.slots);
    DeviceArray<double> d_max(1);
    DeviceArray<unsigned char> d_ws(bytes);
    ASSERT_EQ(eplb_kernel_split_solve(device.t, layer, d_counts.pointer,
                                      w.empty() ? nullptr : d_w.pointer,
                                      x.empty() ? nullptr : d_x.pointer, d_quotas.pointer,
                                      d_max.pointer, d_ws.pointer, bytes, nullptr),
              EPLB_OK)
        << eplb_last_error_message();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(d_quotas.to_host(), cpu.quotas) << "trial " << trial;
    EXPECT_EQ(d_max.to_host()[0], cpu.max_load) << "trial " << trial;
  }
}

TEST(SplitKernelParity, ReplaysFromACudaGraph) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(23);
  const Instance in = random_instance(rng, 1, 256, 32, 9);
  Placement p;
  make_placement(p, 1, 256, 288, 32, in.phy2log, 4);
  Tables host;
  Tables device;
  ASSERT_TRUE(host_tables(p, 0, 1, host));
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(eplb_split_tables_create(p.p, 0, 1, 0, stream, &device.t), EPLB_OK);
  size_t bytes = 0;
  ASSERT_EQ(eplb_kernel_split_solve_workspace_size(device.t, &bytes), EPLB_OK);
  DeviceArray<std::int32_t> d_counts(256);
  DeviceArray<std::int32_t> d_quotas(288);
  DeviceArray<double> d_max(1);
  DeviceArray<unsigned char> d_ws(bytes);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  ASSERT_EQ(eplb_kernel_split_solve(device.t, 0, d_counts.pointer, nullptr, nullptr,
                                    d_quotas.pointer, d_max.pointer, d_ws.pointer, bytes, stream),
            EPLB_OK);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (int batch = 0; batch < 5; ++batch) {  // new counts each replay, no re-capture
    const auto counts = random_counts(rng, 256, batch);
    ASSERT_EQ(cudaMemcpy(d_counts.pointer, counts.data(), 256 * sizeof(std::int32_t),
                         cudaMemcpyHostToDevice),
              cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    const Result cpu = solve_cpu(host, 0, counts, {}, {}, 288);
    EXPECT_EQ(d_quotas.to_host(), cpu.quotas);
    EXPECT_EQ(d_max.to_host()[0], cpu.max_load);
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

#else

TEST(SplitKernelParity, SkippedInABuildWithoutCuda) {
  GTEST_SKIP() << "this test binary was built without the CUDA runtime: parity not checked";
}

#endif

}  // namespace
