// Helpers of the GPU kernel benchmarks (built with the CUDA runtime only): exit-on-error checks,
// device buffers, and the timing of an operation both replayed from a CUDA graph and issued from
// the stream. C API only.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "eplb/eplb.h"

// A benchmark has no way to go on after a failed call: print it and exit 1.
#define CHECK_CUDA(call)                                                      \
  do {                                                                        \
    const cudaError_t e_ = (call);                                            \
    if (e_ != cudaSuccess) {                                                  \
      std::fprintf(stderr, "%s failed: %s\n", #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                           \
    }                                                                         \
  } while (false)

#define CHECK_EPLB(call)                                                         \
  do {                                                                           \
    const eplb_status s_ = (call);                                               \
    if (s_ != EPLB_OK) {                                                         \
      std::fprintf(stderr, "%s failed: %s\n", #call, eplb_last_error_message()); \
      std::exit(1);                                                              \
    }                                                                            \
  } while (false)

namespace eplb_bench {

// `count` zeroed elements (at least one is allocated); the caller frees it with cudaFree.
template <typename T>
T* device_alloc(std::size_t count) {
  void* p = nullptr;
  CHECK_CUDA(cudaMalloc(&p, std::max<std::size_t>(count, 1) * sizeof(T)));
  CHECK_CUDA(cudaMemset(p, 0, std::max<std::size_t>(count, 1) * sizeof(T)));
  return static_cast<T*>(p);
}

// A device copy of `host` (at least one element is allocated); the caller frees it with cudaFree.
template <typename T>
T* upload(const std::vector<T>& host) {
  void* device = nullptr;
  CHECK_CUDA(cudaMalloc(&device, std::max<std::size_t>(host.size(), 1) * sizeof(T)));
  CHECK_CUDA(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return static_cast<T*>(device);
}

struct Timing {
  double graph_us = 0;
  double stream_us = 0;
};

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median per-call time of `op(stream)`: `calls` calls captured in one graph and replayed
// `repeats` times, and `calls` calls issued directly from the stream, `repeats` times (cudaEvent
// timing; one warm-up call and one warm-up replay first).
template <typename Op>
Timing time_op(cudaStream_t stream, int calls, int repeats, Op op) {
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  op(stream);  // warm-up (module load)
  CHECK_CUDA(cudaStreamSynchronize(stream));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CHECK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < calls; ++i) op(stream);
  CHECK_CUDA(cudaStreamEndCapture(stream, &graph));
  CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  CHECK_CUDA(cudaGraphLaunch(exec, stream));
  CHECK_CUDA(cudaStreamSynchronize(stream));
  std::vector<double> graph_times;
  std::vector<double> stream_times;
  for (int r = 0; r < repeats; ++r) {
    float ms = 0;
    CHECK_CUDA(cudaEventRecord(start, stream));
    CHECK_CUDA(cudaGraphLaunch(exec, stream));
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    graph_times.push_back(1000.0 * ms / calls);
    CHECK_CUDA(cudaEventRecord(start, stream));
    for (int i = 0; i < calls; ++i) op(stream);
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    stream_times.push_back(1000.0 * ms / calls);
  }
  CHECK_CUDA(cudaGraphExecDestroy(exec));
  CHECK_CUDA(cudaGraphDestroy(graph));
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  return {median(graph_times), median(stream_times)};
}

}  // namespace eplb_bench
