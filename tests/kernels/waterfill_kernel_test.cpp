// eplb_kernel_shared_waterfill and its CPU reference (issue #9): the reference against a plain
// re-implementation of the rule documented in eplb.h, its properties (rows copied, a candidate
// chosen, loads accounted), determinism, its max load next to the sequential
// eplb_shared_expert_waterfill (within a few percent), bad input; GPU-vs-CPU parity (bit-exact,
// from a CUDA graph too) skips without a GPU. C API only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "eplb/eplb.h"
#include "split_test_support.hpp"
#include "support/gpu_test_support.hpp"

namespace {

__extension__ typedef unsigned __int128 Uint128;  // floor(h * total / 2^32) exactly

using split_test::make_placement;
using split_test::Placement;

// A placement of `gpus` GPUs x `per_gpu` slots (one replica each) in `nodes` nodes.
void flat_placement(Placement& p, std::uint32_t gpus, std::uint32_t per_gpu,
                    std::uint32_t nodes = 1) {
  std::vector<std::int32_t> phy2log(gpus * per_gpu);
  std::iota(phy2log.begin(), phy2log.end(), 0);
  make_placement(p, 1, gpus * per_gpu, gpus * per_gpu, gpus, phy2log, nodes);
}

struct Batch {
  std::size_t tokens = 0;
  std::uint32_t top_k = 0;
  std::vector<std::int32_t> topk;    // [tokens][top_k]
  std::vector<std::int32_t> source;  // [tokens] or empty
};

// Distinct slots per token drawn from a skewed popularity (or uniform), some padding tokens and
// some unused entries; sources in contiguous blocks of tokens (a DP rank's batch).
Batch random_batch(std::mt19937& rng, std::size_t tokens, std::uint32_t top_k, std::uint32_t slots,
                   std::uint32_t gpus, double skew, bool with_source) {
  Batch b{tokens, top_k, std::vector<std::int32_t>(tokens * top_k, -1), {}};
  std::vector<double> popularity(slots);
  for (std::uint32_t s = 0; s < slots; ++s) popularity[s] = 1.0 / std::pow(1.0 + s, skew);
  std::shuffle(popularity.begin(), popularity.end(), rng);
  std::discrete_distribution<int> pick(popularity.begin(), popularity.end());
  for (std::size_t t = 0; t < tokens; ++t) {
    if (rng() % 50 == 0) continue;  // padding
    for (std::uint32_t j = 0; j < top_k && j < slots; ++j) {
      if (rng() % 40 == 0) continue;  // an unused entry
      std::int32_t s = 0;
      do {
        s = pick(rng);
      } while (std::find(b.topk.begin() + static_cast<std::ptrdiff_t>(t * top_k),
                         b.topk.begin() + static_cast<std::ptrdiff_t>(t * top_k + j),
                         s) != b.topk.begin() + static_cast<std::ptrdiff_t>(t * top_k + j));
      b.topk[t * top_k + j] = s;
    }
  }
  if (with_source) {
    for (std::size_t t = 0; t < tokens; ++t) {
      b.source.push_back(static_cast<std::int32_t>(t * gpus / tokens));
    }
  }
  return b;
}

struct Output {
  std::vector<std::int32_t> topk;
  std::vector<double> loads;
};

Output run_cpu(const Placement& p, const Batch& b, const std::vector<double>& w,
               const std::vector<double>& loads, std::uint32_t flags, std::uint32_t gpus) {
  Output o{std::vector<std::int32_t>(b.tokens * (b.top_k + 1), -9), std::vector<double>(gpus)};
  size_t bytes = 0;
  EXPECT_EQ(eplb_kernel_shared_waterfill_workspace_size(p.p, b.tokens, &bytes), EPLB_OK);
  std::vector<std::uint64_t> workspace(bytes / 8 + 1);
  EXPECT_EQ(eplb_kernel_shared_waterfill_cpu(
                p.p, b.topk.data(), b.tokens, b.top_k, b.source.empty() ? nullptr : b.source.data(),
                w.empty() ? nullptr : w.data(), loads.empty() ? nullptr : loads.data(), flags,
                o.topk.data(), o.loads.data(), workspace.data(), bytes, nullptr),
            EPLB_OK)
      << eplb_last_error_message();
  return o;
}

// The rule exactly as eplb.h documents it, written plainly (no shared code with the library).
Output documented_rule(const Batch& b, std::uint32_t slots, std::uint32_t gpus,
                       const std::vector<double>& w_in, const std::vector<double>& loads_in,
                       bool any) {
  const std::uint32_t spg = slots / gpus;
  const std::size_t n = b.tokens;
  const std::uint32_t k = b.top_k;
  std::vector<double> w(gpus, 1.0);
  if (!w_in.empty()) w = w_in;
  std::vector<double> load(gpus, 0.0);
  std::vector<std::vector<std::int32_t>> cand(n);
  std::vector<bool> valid(n, false);
  for (std::size_t t = 0; t < n; ++t) {
    for (std::uint32_t j = 0; j < k; ++j) {
      const std::int32_t s = b.topk[t * k + j];
      if (s < 0) continue;
      valid[t] = true;
      load[static_cast<std::size_t>(s) / spg] += 1.0;
      const auto g = static_cast<std::int32_t>(static_cast<std::uint32_t>(s) / spg);
      if (std::find(cand[t].begin(), cand[t].end(), g) == cand[t].end()) cand[t].push_back(g);
    }
    if (valid[t] && !b.source.empty() &&
        std::find(cand[t].begin(), cand[t].end(), b.source[t]) == cand[t].end()) {
      cand[t].push_back(b.source[t]);
    }
    if (any) {
      cand[t].resize(gpus);
      std::iota(cand[t].begin(), cand[t].end(), 0);
    }
  }
  if (!loads_in.empty()) load = loads_in;
  std::vector<std::int32_t> choice(n, -1);  // -1 unplaced
  std::vector<std::int64_t> taken(gpus, 0);
  for (int phase = 0; phase < 1; ++phase) {  // one phase
    std::int64_t left = 0;
    for (std::size_t t = 0; t < n; ++t) left += valid[t] && choice[t] < 0 ? 1 : 0;
    std::vector<double> cur(gpus);
    for (std::uint32_t g = 0; g < gpus; ++g) cur[g] = load[g] + static_cast<double>(taken[g]);
    std::vector<std::int32_t> order(gpus);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int32_t a, std::int32_t c) { return w[a] * cur[a] < w[c] * cur[c]; });
    double sum_inv = 0.0;
    double sum_base = 0.0;
    double level = 0.0;
    for (std::uint32_t j = 0; j < gpus; ++j) {
      sum_inv += 1.0 / w[order[j]];
      sum_base += cur[order[j]];
      level = (static_cast<double>(left) + sum_base) / sum_inv;
      if (j + 1 == gpus || level <= w[order[j + 1]] * cur[order[j + 1]]) break;
    }
    std::vector<std::int64_t> rem(gpus);
    for (std::uint32_t g = 0; g < gpus; ++g) {
      const double c = std::ceil(level / w[g] - cur[g]);
      rem[g] = c > 0.0 ? std::min<std::int64_t>(static_cast<std::int64_t>(c), left) : 0;
    }
    for (int round = 0; round < 2; ++round) {
      std::vector<std::int64_t> accepted(gpus, 0);
      for (std::size_t t = 0; t < n; ++t) {
        if (!valid[t] || choice[t] >= 0) continue;
        std::uint64_t total = 0;
        for (const std::int32_t g : cand[t])
          total += rem[g] > 0 ? static_cast<std::uint64_t>(rem[g]) : 0;
        if (total == 0) continue;
        const std::uint32_t h = static_cast<std::uint32_t>((t + 1) * 2654435769ull);
        const auto p = static_cast<std::uint64_t>((static_cast<Uint128>(h) * total) >> 32);
        std::uint64_t running = 0;
        std::int32_t pick = -1;
        for (const std::int32_t g : cand[t]) {
          if (rem[g] <= 0) continue;
          running += static_cast<std::uint64_t>(rem[g]);
          if (running > p) {
            pick = g;
            break;
          }
        }
        if (accepted[pick] < rem[pick]) choice[t] = pick;
        ++accepted[pick];
      }
      for (std::uint32_t g = 0; g < gpus; ++g) {
        const std::int64_t a = std::min(accepted[g], rem[g]);
        rem[g] -= a;
        taken[g] += a;
      }
    }
  }
  std::vector<std::int64_t> extra(taken);
  for (std::size_t t = 0; t < n; ++t) {
    if (!valid[t] || choice[t] >= 0) continue;
    const std::int32_t source = b.source.empty() ? -1 : b.source[t];
    std::int32_t best = -1;
    double best_load = 0.0;
    for (const std::int32_t g : cand[t]) {
      const double l = w[g] * (load[g] + static_cast<double>(taken[g] + 1));
      if (best < 0 || l < best_load ||
          (l == best_load && best != source && (g == source || g < best))) {
        best = g;
        best_load = l;
      }
    }
    choice[t] = best;
    ++extra[best];
  }
  Output o{std::vector<std::int32_t>(n * (k + 1)), std::vector<double>(gpus)};
  for (std::size_t t = 0; t < n; ++t) {
    std::copy_n(b.topk.begin() + static_cast<std::ptrdiff_t>(t * k), k,
                o.topk.begin() + static_cast<std::ptrdiff_t>(t * (k + 1)));
    o.topk[t * (k + 1) + k] = valid[t] ? static_cast<std::int32_t>(slots) + choice[t] : -1;
  }
  for (std::uint32_t g = 0; g < gpus; ++g) o.loads[g] = load[g] + static_cast<double>(extra[g]);
  return o;
}

double max_of(const std::vector<double>& loads, const std::vector<double>& w) {
  double worst = 0.0;
  for (std::size_t g = 0; g < loads.size(); ++g) {
    worst = std::max(worst, (w.empty() ? 1.0 : w[g]) * loads[g]);
  }
  return worst;
}

TEST(WaterfillKernelCpu, FollowsTheDocumentedRule) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 60; ++trial) {
    const std::uint32_t gpus = 1 + static_cast<std::uint32_t>(rng() % 40);
    const std::uint32_t per_gpu = 1 + static_cast<std::uint32_t>(rng() % 6);
    const std::uint32_t slots = gpus * per_gpu;
    Placement p;
    flat_placement(p, gpus, per_gpu);
    const std::uint32_t k = 1 + static_cast<std::uint32_t>(rng() % 8);
    const std::size_t tokens = static_cast<std::size_t>(rng() % 3000);
    const Batch b =
        random_batch(rng, tokens, k, slots, gpus, trial % 2 ? 1.2 : 0.0, trial % 3 != 0);
    std::vector<double> w;
    std::vector<double> loads;
    if (trial % 4 == 1) {
      for (std::uint32_t g = 0; g < gpus; ++g)
        w.push_back(0.5 + 0.25 * static_cast<double>(rng() % 6));
    }
    if (trial % 5 == 2) {
      for (std::uint32_t g = 0; g < gpus; ++g)
        loads.push_back(0.5 * static_cast<double>(rng() % 400));
    }
    const bool any = trial % 7 == 3;
    const Output got = run_cpu(p, b, w, loads, any ? EPLB_WATERFILL_ANY_GPU : 0, gpus);
    const Output want = documented_rule(b, slots, gpus, w, loads, any);
    EXPECT_EQ(got.topk, want.topk) << "trial " << trial;
    EXPECT_EQ(got.loads, want.loads) << "trial " << trial;
    if (HasFailure()) FAIL() << "trial " << trial;
  }
}

TEST(WaterfillKernelCpu, ChoosesACandidateAndAccountsForEveryToken) {
  std::mt19937 rng(2);
  Placement p;
  flat_placement(p, 32, 8, 4);
  const Batch b = random_batch(rng, 8192, 8, 256, 32, 1.0, true);
  std::vector<double> before(32, 0.0);
  for (const std::int32_t s : b.topk) {
    if (s >= 0) before[static_cast<std::size_t>(s) / 8] += 1.0;
  }
  const Output o = run_cpu(p, b, {}, {}, 0, 32);
  std::vector<double> shared(32, 0.0);
  for (std::size_t t = 0; t < b.tokens; ++t) {
    bool valid = false;
    std::vector<std::int32_t> candidates{b.source[t]};
    for (std::uint32_t j = 0; j < 8; ++j) {
      EXPECT_EQ(o.topk[t * 9 + j], b.topk[t * 8 + j]);
      if (b.topk[t * 8 + j] >= 0) {
        valid = true;
        candidates.push_back(b.topk[t * 8 + j] / 8);
      }
    }
    const std::int32_t last = o.topk[t * 9 + 8];
    if (!valid) {
      EXPECT_EQ(last, -1);
      continue;
    }
    ASSERT_GE(last, 256);
    ASSERT_LT(last, 256 + 32);
    EXPECT_NE(std::find(candidates.begin(), candidates.end(), last - 256), candidates.end())
        << "token " << t << " got a GPU it does not visit";
    shared[static_cast<std::size_t>(last - 256)] += 1.0;
  }
  for (std::size_t g = 0; g < 32; ++g) EXPECT_EQ(o.loads[g], before[g] + shared[g]);
}

TEST(WaterfillKernelCpu, IsDeterministic) {
  std::mt19937 rng(8);
  Placement p;
  flat_placement(p, 16, 4);
  const Batch b = random_batch(rng, 5000, 6, 64, 16, 1.1, true);
  const Output a = run_cpu(p, b, {}, {}, 0, 16);
  const Output c = run_cpu(p, b, {}, {}, 0, 16);
  EXPECT_EQ(a.topk, c.topk);
  EXPECT_EQ(a.loads, c.loads);
}

// The max load against the sequential greedy (eplb_shared_expert_waterfill): within a few %.
TEST(WaterfillKernelCpu, MaxLoadIsCloseToTheSequentialWaterfill) {
  std::mt19937 rng(31);
  double worst_ratio = 0.0;
  for (int trial = 0; trial < 24; ++trial) {
    const std::uint32_t gpus = trial % 3 == 0 ? 8 : 32;
    Placement p;
    flat_placement(p, gpus, 256 / gpus, gpus / 8);
    const std::size_t tokens = trial % 4 == 0 ? 1024 : 8192;
    const double skew = (trial % 4) * 0.5;
    const bool any = trial % 6 == 5;
    const Batch b = random_batch(rng, tokens, 8, 256, gpus, skew, trial % 2 == 0);
    const Output par = run_cpu(p, b, {}, {}, any ? EPLB_WATERFILL_ANY_GPU : 0, gpus);
    std::vector<std::int32_t> seq_topk(tokens * 9);
    std::vector<double> seq_loads(gpus, 0.0);
    for (const std::int32_t s : b.topk) {
      if (s >= 0) seq_loads[static_cast<std::size_t>(s) / (256 / gpus)] += 1.0;
    }
    ASSERT_EQ(eplb_shared_expert_waterfill(p.p, b.topk.data(), tokens, 8,
                                           b.source.empty() ? nullptr : b.source.data(), nullptr,
                                           seq_loads.data(), gpus, any ? EPLB_WATERFILL_ANY_GPU : 0,
                                           seq_topk.data(), seq_topk.size()),
              EPLB_OK);
    const double ratio = max_of(par.loads, {}) / max_of(seq_loads, {});
    std::printf(
        "trial %2d: %2u GPUs, %4zu tokens, skew %.1f, %s%s: max load parallel %.0f, "
        "sequential %.0f (x%.4f)\n",
        trial, gpus, tokens, skew, any ? "any GPU" : "visited GPUs",
        b.source.empty() ? "" : " + source", max_of(par.loads, {}), max_of(seq_loads, {}), ratio);
    worst_ratio = std::max(worst_ratio, ratio);
    EXPECT_LE(ratio, 1.03) << "trial " << trial;
  }
  std::printf("worst ratio parallel / sequential: %.4f\n", worst_ratio);
}

TEST(WaterfillKernelCpu, RejectsBadInputWithoutWritingOutputs) {
  Placement p;
  flat_placement(p, 4, 2);
  const std::vector<std::int32_t> topk{0, 1, 2, 8};  // 2 tokens of top-2; slot 8 is out of range
  std::vector<std::int32_t> out(6, -9);
  std::vector<double> loads(4, -9.0);
  size_t bytes = 0;
  ASSERT_EQ(eplb_kernel_shared_waterfill_workspace_size(p.p, 2, &bytes), EPLB_OK);
  EXPECT_GT(bytes, 0u);
  std::vector<std::uint64_t> ws(bytes / 8 + 1);
  auto call = [&](const std::int32_t* slots, std::uint32_t k, const std::int32_t* source,
                  std::uint32_t flags, size_t ws_bytes) {
    return eplb_kernel_shared_waterfill_cpu(p.p, slots, 2, k, source, nullptr, nullptr, flags,
                                            out.data(), loads.data(), ws.data(), ws_bytes, nullptr);
  };
  EXPECT_EQ(call(topk.data(), 2, nullptr, 0, bytes), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("topk_slots[3] = 8"), std::string::npos);
  const std::vector<std::int32_t> good{0, 1, 2, 7};
  const std::vector<std::int32_t> source{0, 4};
  EXPECT_EQ(call(good.data(), 2, source.data(), 0, bytes), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("source_gpu[1] = 4"), std::string::npos);
  EXPECT_EQ(call(good.data(), 0, nullptr, 0, bytes), EPLB_ERR_INVALID_ARGUMENT);
  // top_k is bounded (the kernels' per-block int counters): rejected before any row is read.
  EXPECT_EQ(call(good.data(), 1025, nullptr, 0, bytes), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("top_k (1025)"), std::string::npos);
  EXPECT_EQ(call(good.data(), 2, nullptr, 4, bytes), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(call(good.data(), 2, nullptr, 0, bytes - 1), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("workspace_bytes"), std::string::npos);
  EXPECT_EQ(out, std::vector<std::int32_t>(6, -9));
  EXPECT_EQ(loads, std::vector<double>(4, -9.0));
  // More GPUs than the kernel's shared-memory tables hold: the same answer on every machine.
  Placement wide;
  flat_placement(wide, 257, 1);
  EXPECT_EQ(eplb_kernel_shared_waterfill(wide.p, good.data(), 2, 2, nullptr, nullptr, nullptr, 0,
                                         out.data(), nullptr, ws.data(), bytes, nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("num_gpus (257)"), std::string::npos);
}

// --- GPU vs CPU parity --------------------------------------------------------------------------

#if EPLB_TEST_WITH_CUDA

using eplb::test::DeviceArray;

TEST(WaterfillKernelParity, GpuEqualsCpuBitForBit) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(19);
  const std::size_t sizes[] = {0, 1, 31, 128, 1000, 8192, 8193, 20000};
  int trial = 0;
  for (const std::size_t tokens : sizes) {
    for (int variant = 0; variant < 4; ++variant, ++trial) {
      const std::uint32_t gpus = variant == 3 ? 256 : (variant == 2 ? 7 : 32);
      const std::uint32_t per_gpu = variant == 3 ? 1 : 8;
      Placement p;
      flat_placement(p, gpus, per_gpu);
      const Batch b =
          random_batch(rng, tokens, 8, gpus * per_gpu, gpus, variant * 0.4, variant % 2 == 0);
      std::vector<double> w;
      std::vector<double> loads;
      if (variant == 1) {
        for (std::uint32_t g = 0; g < gpus; ++g) {
          w.push_back(0.5 + 0.25 * static_cast<double>(rng() % 6));
          loads.push_back(0.5 * static_cast<double>(rng() % 900));
        }
      }
      const std::uint32_t flags = variant == 2 ? EPLB_WATERFILL_ANY_GPU : 0;
      const Output cpu = run_cpu(p, b, w, loads, flags, gpus);
      DeviceArray<std::int32_t> d_topk(b.topk);
      DeviceArray<std::int32_t> d_source(b.source);
      DeviceArray<double> d_w(w);
      DeviceArray<double> d_loads(loads);
      DeviceArray<std::int32_t> d_out(b.tokens * 9);
      DeviceArray<double> d_out_loads(gpus);
      size_t bytes = 0;
      ASSERT_EQ(eplb_kernel_shared_waterfill_workspace_size(p.p, b.tokens, &bytes), EPLB_OK);
      DeviceArray<unsigned char> d_ws(bytes);  // poisoned: the kernels need no zeroed workspace
      ASSERT_EQ(eplb_kernel_shared_waterfill(
                    p.p, d_topk.pointer, b.tokens, 8, b.source.empty() ? nullptr : d_source.pointer,
                    w.empty() ? nullptr : d_w.pointer, loads.empty() ? nullptr : d_loads.pointer,
                    flags, d_out.pointer, d_out_loads.pointer, d_ws.pointer, bytes, nullptr),
                EPLB_OK)
          << eplb_last_error_message();
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      EXPECT_EQ(d_out.to_host(), cpu.topk) << "tokens " << tokens << " variant " << variant;
      EXPECT_EQ(d_out_loads.to_host(), cpu.loads) << "tokens " << tokens << " variant " << variant;
    }
  }
}

TEST(WaterfillKernelParity, ReplaysFromACudaGraph) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(29);
  Placement p;
  flat_placement(p, 32, 8, 4);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  DeviceArray<std::int32_t> d_topk(8192 * 8);
  DeviceArray<std::int32_t> d_source(8192);
  DeviceArray<std::int32_t> d_out(8192 * 9);
  DeviceArray<double> d_loads(32);
  size_t bytes = 0;
  ASSERT_EQ(eplb_kernel_shared_waterfill_workspace_size(p.p, 8192, &bytes), EPLB_OK);
  DeviceArray<unsigned char> d_ws(bytes);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  ASSERT_EQ(
      eplb_kernel_shared_waterfill(p.p, d_topk.pointer, 8192, 8, d_source.pointer, nullptr, nullptr,
                                   0, d_out.pointer, d_loads.pointer, d_ws.pointer, bytes, stream),
      EPLB_OK);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (int batch = 0; batch < 4; ++batch) {
    const Batch b = random_batch(rng, 8192, 8, 256, 32, batch * 0.5, true);
    ASSERT_EQ(cudaMemcpy(d_topk.pointer, b.topk.data(), b.topk.size() * 4, cudaMemcpyHostToDevice),
              cudaSuccess);
    ASSERT_EQ(
        cudaMemcpy(d_source.pointer, b.source.data(), b.source.size() * 4, cudaMemcpyHostToDevice),
        cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    const Output cpu = run_cpu(p, b, {}, {}, 0, 32);
    EXPECT_EQ(d_out.to_host(), cpu.topk);
    EXPECT_EQ(d_loads.to_host(), cpu.loads);
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

#else

TEST(WaterfillKernelParity, SkippedInABuildWithoutCuda) {
  GTEST_SKIP() << "this test binary was built without the CUDA runtime: parity not checked";
}

#endif

}  // namespace
