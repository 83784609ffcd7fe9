// GPU timings of the per-batch balancing kernels (issue #9): eplb_kernel_split_solve (256 experts,
// 288 slots on 32 GPUs / 4 nodes, counts of 8192 tokens x top-8; and the no-copies shape where
// the kernel only copies counts) and eplb_kernel_shared_waterfill (8192 and 128 tokens x top-8,
// 256 slots on 32 GPUs). Each is timed issued from the stream (back-to-back launches, CUDA
// events) and replayed from a CUDA graph of 100 launches, next to its CPU reference on this
// host. Without a GPU (or in a build without CUDA) it prints "skipped: no CUDA device" and exits 0.
// Compare with bench/split_kernels_torch.py on the same GPU. Usage: eplb_bench_split_kernels
// [--iters N].
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "eplb/eplb.h"

#if EPLB_BENCH_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace {

constexpr std::uint32_t kExperts = 256;
constexpr std::uint32_t kGpus = 32;
constexpr std::uint32_t kNodes = 4;
constexpr std::uint32_t kTopK = 8;

#if EPLB_BENCH_WITH_CUDA

// Every expert once plus `redundant` replicas of the most loaded experts (load ~ 1/rank^1.1 of a
// shuffled ranking), placed on random GPUs with a free slot; `slots` = experts + redundant.
std::vector<std::int32_t> placement_rows(std::mt19937& rng, std::uint32_t redundant,
                                         std::vector<double>& popularity) {
  popularity.resize(kExperts);
  for (std::uint32_t e = 0; e < kExperts; ++e) popularity[e] = 1.0 / std::pow(1.0 + e, 1.1);
  std::shuffle(popularity.begin(), popularity.end(), rng);
  std::vector<std::int32_t> order(kExperts);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::int32_t a, std::int32_t b) { return popularity[a] > popularity[b]; });
  std::vector<std::int32_t> row(kExperts);
  std::iota(row.begin(), row.end(), 0);
  for (std::uint32_t r = 0; r < redundant; ++r) row.push_back(order[r % 16]);
  std::shuffle(row.begin(), row.end(), rng);
  return row;
}

std::vector<std::int32_t> sample_counts(std::mt19937& rng, const std::vector<double>& popularity,
                                        std::uint32_t tokens) {
  std::discrete_distribution<int> pick(popularity.begin(), popularity.end());
  std::vector<std::int32_t> counts(kExperts, 0);
  for (std::uint32_t i = 0; i < tokens * kTopK; ++i) ++counts[static_cast<std::size_t>(pick(rng))];
  return counts;
}

std::vector<std::int32_t> sample_topk(std::mt19937& rng, std::uint32_t tokens, std::uint32_t slots,
                                      double skew) {
  std::vector<double> popularity(slots);
  for (std::uint32_t s = 0; s < slots; ++s) popularity[s] = 1.0 / std::pow(1.0 + s, skew);
  std::shuffle(popularity.begin(), popularity.end(), rng);
  std::discrete_distribution<int> pick(popularity.begin(), popularity.end());
  std::vector<std::int32_t> topk(std::size_t{tokens} * kTopK);
  for (std::uint32_t t = 0; t < tokens; ++t) {
    for (std::uint32_t j = 0; j < kTopK; ++j) {
      std::int32_t s = 0;
      do {
        s = pick(rng);
      } while (std::find(topk.begin() + t * kTopK, topk.begin() + t * kTopK + j, s) !=
               topk.begin() + t * kTopK + j);
      topk[std::size_t{t} * kTopK + j] = s;
    }
  }
  return topk;
}

double median_cpu_us(const std::function<void()>& call, int reps) {
  std::vector<double> us;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    call();
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

void check(eplb_status status, const char* what) {
  if (status != EPLB_OK) {
    std::fprintf(stderr, "%s: %s\n", what, eplb_last_error_message());
    std::exit(1);
  }
}

void cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(status));
    std::exit(1);
  }
}

template <typename T>
T* upload(const std::vector<T>& host) {
  void* device = nullptr;
  cuda(cudaMalloc(&device, std::max<std::size_t>(host.size(), 1) * sizeof(T)), "cudaMalloc");
  if (!host.empty()) {
    cuda(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
         "cudaMemcpy");
  }
  return static_cast<T*>(device);
}

struct Timing {
  double graph_us = 0.0;
  double stream_us = 0.0;
};

// Per-launch time: `iters` launches from the stream, and a graph of 100 launches replayed.
Timing time_launches(const std::function<void(cudaStream_t)>& launch, int iters) {
  cudaStream_t stream = nullptr;
  cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  cuda(cudaEventCreate(&start), "cudaEventCreate");
  cuda(cudaEventCreate(&stop), "cudaEventCreate");
  for (int i = 0; i < 10; ++i) launch(stream);  // warm-up
  cuda(cudaStreamSynchronize(stream), "warm-up");
  Timing t;
  cuda(cudaEventRecord(start, stream), "cudaEventRecord");
  for (int i = 0; i < iters; ++i) launch(stream);
  cuda(cudaEventRecord(stop, stream), "cudaEventRecord");
  cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0.0f;
  cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  t.stream_us = 1000.0 * ms / iters;

  constexpr int kPerGraph = 100;
  cudaGraph_t graph = nullptr;
  cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
  for (int i = 0; i < kPerGraph; ++i) launch(stream);
  cuda(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
  cudaGraphExec_t exec = nullptr;
  cuda(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
  cuda(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");  // warm-up
  cuda(cudaStreamSynchronize(stream), "graph warm-up");
  const int replays = std::max(1, iters / kPerGraph);
  cuda(cudaEventRecord(start, stream), "cudaEventRecord");
  for (int i = 0; i < replays; ++i) cuda(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
  cuda(cudaEventRecord(stop, stream), "cudaEventRecord");
  cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
  cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  t.graph_us = 1000.0 * ms / (replays * kPerGraph);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  return t;
}

void row(const char* kernel, const char* shape, const Timing& t, double cpu_us) {
  std::printf("| %-16s | %-44s | %8.2f | %9.2f | %12.1f |\n", kernel, shape, t.graph_us,
              t.stream_us, cpu_us);
}

int run(int iters) {
  std::mt19937 rng(42);
  int32_t devices = 0;
  check(eplb_device_count(&devices), "eplb_device_count");
  cudaDeviceProp prop{};
  cuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::printf("device: %s; %d launches per stream timing, graphs of 100 launches\n\n", prop.name,
              iters);
  std::printf("| %-16s | %-44s | %8s | %9s | %12s |\n", "kernel", "shape", "graph us", "stream us",
              "cpu ref us");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(18, '-').c_str(), std::string(46, '-').c_str(),
              std::string(10, '-').c_str(), std::string(11, '-').c_str(),
              std::string(14, '-').c_str());

  // Replica split: 32 redundant slots (288 = 32 x 9) and none (256 = 32 x 8: copy only).
  for (const std::uint32_t redundant : {32u, 0u}) {
    const std::uint32_t slots = kExperts + redundant;
    std::vector<double> popularity;
    const auto phy2log = placement_rows(rng, redundant, popularity);
    eplb_placement* placement = nullptr;
    check(eplb_placement_create_from_phy2log(1, kExperts, slots, kNodes, kGpus, phy2log.data(),
                                             phy2log.size(), &placement),
          "eplb_placement_create_from_phy2log");
    eplb_split_tables* tables = nullptr;
    eplb_split_tables* host_tables = nullptr;
    check(eplb_split_tables_create(placement, 0, 1, 0, nullptr, &tables), "split tables");
    check(eplb_split_tables_create(placement, 0, 1, EPLB_SPLIT_TABLES_HOST_ONLY, nullptr,
                                   &host_tables),
          "split tables (host)");
    std::size_t ws_bytes = 0;
    check(eplb_kernel_split_solve_workspace_size(tables, &ws_bytes), "workspace size");
    const auto counts = sample_counts(rng, popularity, 8192);
    std::int32_t* d_counts = upload(counts);
    std::int32_t* d_quotas = upload(std::vector<std::int32_t>(slots));
    double* d_max = upload(std::vector<double>(1));
    unsigned char* d_ws = upload(std::vector<unsigned char>(ws_bytes));
    const Timing t = time_launches(
        [&](cudaStream_t s) {
          check(eplb_kernel_split_solve(tables, 0, d_counts, nullptr, nullptr, d_quotas, d_max,
                                        d_ws, ws_bytes, s),
                "eplb_kernel_split_solve");
        },
        iters);
    std::vector<std::int32_t> quotas(slots);
    std::vector<std::uint64_t> ws(ws_bytes / 8 + 1);
    double max_load = 0.0;
    const double cpu = median_cpu_us(
        [&] {
          check(eplb_kernel_split_solve_cpu(host_tables, 0, counts.data(), nullptr, nullptr,
                                            quotas.data(), &max_load, ws.data(), ws_bytes, nullptr),
                "eplb_kernel_split_solve_cpu");
        },
        51);
    const std::string shape =
        "256 experts, " + std::to_string(slots) + " slots, 32 GPUs, 8192x8 counts";
    row("split_solve", shape.c_str(), t, cpu);
    cudaFree(d_counts);
    cudaFree(d_quotas);
    cudaFree(d_max);
    cudaFree(d_ws);
    eplb_split_tables_destroy(tables);
    eplb_split_tables_destroy(host_tables);
    eplb_placement_destroy(placement);
  }

  // Waterfill: 256 slots (one expert each) on 32 GPUs, visited GPUs + source.
  std::vector<std::int32_t> flat(kExperts);
  std::iota(flat.begin(), flat.end(), 0);
  eplb_placement* placement = nullptr;
  check(eplb_placement_create_from_phy2log(1, kExperts, kExperts, kNodes, kGpus, flat.data(),
                                           flat.size(), &placement),
        "eplb_placement_create_from_phy2log");
  for (const std::uint32_t tokens : {8192u, 128u}) {
    const auto topk = sample_topk(rng, tokens, kExperts, 1.0);
    std::vector<std::int32_t> source(tokens);
    for (std::uint32_t t = 0; t < tokens; ++t) {
      source[t] = static_cast<std::int32_t>(t * kGpus / tokens);
    }
    std::int32_t* d_topk = upload(topk);
    std::int32_t* d_source = upload(source);
    std::int32_t* d_out = upload(std::vector<std::int32_t>(std::size_t{tokens} * (kTopK + 1)));
    double* d_loads = upload(std::vector<double>(kGpus));
    std::size_t ws_bytes = 0;
    check(eplb_kernel_shared_waterfill_workspace_size(placement, tokens, &ws_bytes),
          "waterfill workspace size");
    unsigned char* d_ws = upload(std::vector<unsigned char>(ws_bytes));
    std::vector<std::uint64_t> ws(ws_bytes / 8 + 1);
    const Timing t = time_launches(
        [&](cudaStream_t s) {
          check(eplb_kernel_shared_waterfill(placement, d_topk, tokens, kTopK, d_source, nullptr,
                                             nullptr, 0, d_out, d_loads, d_ws, ws_bytes, s),
                "eplb_kernel_shared_waterfill");
        },
        iters);
    std::vector<std::int32_t> out(std::size_t{tokens} * (kTopK + 1));
    std::vector<double> loads(kGpus);
    const double cpu = median_cpu_us(
        [&] {
          check(eplb_kernel_shared_waterfill_cpu(placement, topk.data(), tokens, kTopK,
                                                 source.data(), nullptr, nullptr, 0, out.data(),
                                                 loads.data(), ws.data(), ws_bytes, nullptr),
                "eplb_kernel_shared_waterfill_cpu");
        },
        21);
    const std::string shape = std::to_string(tokens) + " tokens x top-8, 256 slots, 32 GPUs";
    row("shared_waterfill", shape.c_str(), t, cpu);
    cudaFree(d_topk);
    cudaFree(d_source);
    cudaFree(d_out);
    cudaFree(d_loads);
    cudaFree(d_ws);
  }
  eplb_placement_destroy(placement);
  return 0;
}

#endif

}  // namespace

int main(int argc, char** argv) {
  int iters = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--iters") iters = std::max(100, std::atoi(argv[i + 1]));
  }
  int32_t devices = 0;
  if (eplb_device_count(&devices) != EPLB_OK) {
    std::printf("skipped: no CUDA device (%s)\n", eplb_last_error_message());
    return 0;
  }
#if EPLB_BENCH_WITH_CUDA
  return run(iters);
#else
  static_cast<void>(iters);
  std::printf("skipped: no CUDA device (this benchmark was built without CUDA)\n");
  return 0;
#endif
}
