// Dispatch kernels on the GPU (issue #7 items 4-5): dispatch layout, expert sort (+ padding +
// inverse map), permute and unpermute (bf16, hidden 7168), each timed in a CUDA graph (many calls
// captured once, replayed) and issued from the stream, for 8192 tokens x top-8 (prefill) and 128
// tokens (decode) over 288 physical experts on 32 ranks in 4 nodes; permute / unpermute are set
// against a device-to-device cudaMemcpy moving the same bytes. Prints a table (or --json).
// Without a GPU it prints "skipped: no CUDA device" and exits 0.
//
//   eplb_bench_dispatch_kernels [--json] [--repeats N]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "eplb/eplb.h"

#if EPLB_BENCH_WITH_CUDA
#include "gpu_bench_support.hpp"
#endif

namespace {

constexpr uint32_t kExperts = 288;
constexpr uint32_t kRanks = 32;
constexpr uint32_t kNodes = 4;
constexpr size_t kTopK = 8;
constexpr uint32_t kBlock = 64;
constexpr size_t kHidden = 7168;

#if EPLB_BENCH_WITH_CUDA

using eplb_bench::device_alloc;
using eplb_bench::time_op;
using eplb_bench::Timing;
using eplb_bench::upload;

struct Row {
  std::string op;
  size_t tokens;
  Timing t;
  double bytes;      // minimum HBM traffic, 0 for metadata kernels
  double memcpy_us;  // D2D memcpy of the same traffic (reads + writes), 0 if not applicable
};

int run(bool json, int repeats) {
  cudaStream_t stream = nullptr;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  std::vector<Row> rows;
  for (const size_t tokens : {size_t{8192}, size_t{128}}) {
    // Routing: distinct uniform top-8 over the physical experts, 1 % masked slots.
    std::mt19937 rng(42);
    std::vector<int32_t> ids(tokens * kTopK);
    std::vector<float> weights(tokens * kTopK);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (size_t t = 0; t < tokens; ++t) {
      std::vector<int32_t> pool(kExperts);
      for (uint32_t e = 0; e < kExperts; ++e) pool[e] = static_cast<int32_t>(e);
      std::shuffle(pool.begin(), pool.end(), rng);
      for (size_t k = 0; k < kTopK; ++k) {
        ids[t * kTopK + k] = unit(rng) < 0.01 ? -1 : pool[k];
        weights[t * kTopK + k] = static_cast<float>(unit(rng));
      }
    }
    size_t valid = 0;
    for (int32_t id : ids) valid += id >= 0 ? 1 : 0;
    int32_t* d_ids = upload(ids);
    float* d_weights = upload(weights);
    const int calls = tokens > 1000 ? 100 : 200;

    // Layout.
    size_t layout_bytes = 0;
    CHECK_EPLB(eplb_kernel_dispatch_layout_workspace_size(tokens, kTopK, kExperts, kRanks, kNodes,
                                                          &layout_bytes));
    auto* per_expert = device_alloc<int32_t>(kExperts);
    auto* per_rank = device_alloc<int32_t>(kRanks);
    auto* per_node = device_alloc<int32_t>(kNodes);
    auto* in_rank = device_alloc<uint8_t>(tokens * kRanks);
    auto* offsets = device_alloc<int32_t>(tokens * kRanks);
    auto* layout_ws = device_alloc<unsigned char>(layout_bytes);
    rows.push_back({"layout (+offsets)", tokens,
                    time_op(stream, calls, repeats,
                            [&](cudaStream_t s) {
                              CHECK_EPLB(eplb_kernel_dispatch_layout(
                                  d_ids, tokens, kTopK, kExperts, kRanks, kNodes, per_expert,
                                  per_rank, per_node, in_rank, offsets, layout_ws, layout_bytes,
                                  s));
                            }),
                    0, 0});
    rows.push_back({"layout (no offsets)", tokens,
                    time_op(stream, calls, repeats,
                            [&](cudaStream_t s) {
                              CHECK_EPLB(eplb_kernel_dispatch_layout(
                                  d_ids, tokens, kTopK, kExperts, kRanks, kNodes, per_expert,
                                  per_rank, per_node, in_rank, nullptr, layout_ws, layout_bytes,
                                  s));
                            }),
                    0, 0});

    // Sort + padding + inverse map.
    size_t capacity = 0;
    size_t sort_bytes = 0;
    CHECK_EPLB(eplb_kernel_expert_sort_capacity(tokens, kTopK, kExperts, kBlock, &capacity));
    CHECK_EPLB(eplb_kernel_expert_sort_workspace_size(tokens, kTopK, kExperts, &sort_bytes));
    auto* sorted = device_alloc<int32_t>(capacity);
    auto* blocks = device_alloc<int32_t>(capacity / kBlock);
    auto* expert_offsets = device_alloc<int32_t>(kExperts + 1);
    auto* inverse = device_alloc<int32_t>(tokens * kTopK);
    auto* total = device_alloc<int32_t>(1);
    auto* sort_ws = device_alloc<unsigned char>(sort_bytes);
    rows.push_back({"sort+pad+inverse", tokens,
                    time_op(stream, calls, repeats,
                            [&](cudaStream_t s) {
                              CHECK_EPLB(eplb_kernel_expert_sort(
                                  d_ids, tokens, kTopK, kExperts, kBlock, capacity, sorted, blocks,
                                  expert_offsets, inverse, total, sort_ws, sort_bytes, s));
                            }),
                    0, 0});
    CHECK_CUDA(cudaStreamSynchronize(stream));

    // Permute / unpermute, bf16 rows.
    const size_t row_bytes = kHidden * 2;
    auto* input = device_alloc<unsigned char>(tokens * row_bytes);
    auto* permuted = device_alloc<unsigned char>(capacity * row_bytes);
    auto* output = device_alloc<unsigned char>(tokens * row_bytes);
    const int row_calls = tokens > 1000 ? 20 : 200;
    const double traffic = static_cast<double>((tokens + valid) * row_bytes);
    // The reference copy moves traffic / 2 bytes (it reads and writes each byte once).
    const size_t copy_bytes = static_cast<size_t>(traffic / 2);
    auto* copy_src = device_alloc<unsigned char>(copy_bytes);
    auto* copy_dst = device_alloc<unsigned char>(copy_bytes);
    const Timing copy = time_op(stream, row_calls, repeats, [&](cudaStream_t s) {
      CHECK_CUDA(cudaMemcpyAsync(copy_dst, copy_src, copy_bytes, cudaMemcpyDeviceToDevice, s));
    });
    rows.push_back({"permute bf16", tokens,
                    time_op(stream, row_calls, repeats,
                            [&](cudaStream_t s) {
                              CHECK_EPLB(eplb_kernel_permute(input, EPLB_ROW_DTYPE_BFLOAT16, tokens,
                                                             kTopK, kHidden, inverse, capacity,
                                                             permuted, s));
                            }),
                    traffic, copy.graph_us});
    rows.push_back({"unpermute bf16", tokens,
                    time_op(stream, row_calls, repeats,
                            [&](cudaStream_t s) {
                              CHECK_EPLB(eplb_kernel_unpermute(permuted, EPLB_ROW_DTYPE_BFLOAT16,
                                                               tokens, kTopK, kHidden, inverse,
                                                               d_weights, capacity, output, s));
                            }),
                    traffic, copy.graph_us});
    rows.push_back({"memcpy D2D (same bytes)", tokens, copy, traffic, copy.graph_us});
    for (void* p :
         {static_cast<void*>(d_ids), static_cast<void*>(d_weights), static_cast<void*>(per_expert),
          static_cast<void*>(per_rank), static_cast<void*>(per_node), static_cast<void*>(in_rank),
          static_cast<void*>(offsets), static_cast<void*>(layout_ws), static_cast<void*>(sorted),
          static_cast<void*>(blocks), static_cast<void*>(expert_offsets),
          static_cast<void*>(inverse), static_cast<void*>(total), static_cast<void*>(sort_ws),
          static_cast<void*>(input), static_cast<void*>(permuted), static_cast<void*>(output),
          static_cast<void*>(copy_src), static_cast<void*>(copy_dst)}) {
      CHECK_CUDA(cudaFree(p));
    }
  }
  cudaDeviceProp prop{};
  int device = 0;
  CHECK_CUDA(cudaGetDevice(&device));
  CHECK_CUDA(cudaGetDeviceProperties(&prop, device));
  if (json) {
    std::printf(
        "{\"device\": \"%s\", \"experts\": %u, \"ranks\": %u, \"nodes\": %u, \"top_k\": %zu, "
        "\"block\": %u, \"hidden\": %zu, \"rows\": [\n",
        prop.name, kExperts, kRanks, kNodes, kTopK, kBlock, kHidden);
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::printf(
          "  {\"op\": \"%s\", \"tokens\": %zu, \"graph_us\": %.3f, \"stream_us\": %.3f, "
          "\"bytes\": %.0f, \"memcpy_us\": %.3f}%s\n",
          r.op.c_str(), r.tokens, r.t.graph_us, r.t.stream_us, r.bytes, r.memcpy_us,
          i + 1 < rows.size() ? "," : "");
    }
    std::printf("]}\n");
  } else {
    std::printf(
        "device: %s; %u physical experts, %u ranks in %u nodes, top-%zu, block %u, "
        "hidden %zu; median of %d repeats\n\n",
        prop.name, kExperts, kRanks, kNodes, kTopK, kBlock, kHidden, repeats);
    std::printf("| op | tokens | graph us | stream us | GB/s (graph) | vs memcpy |\n");
    std::printf("| --- | --- | --- | --- | --- | --- |\n");
    for (const Row& r : rows) {
      if (r.bytes > 0) {
        std::printf("| %s | %zu | %.2f | %.2f | %.0f | %.0f %% |\n", r.op.c_str(), r.tokens,
                    r.t.graph_us, r.t.stream_us, r.bytes / r.t.graph_us / 1e3,
                    100.0 * r.memcpy_us / r.t.graph_us);
      } else {
        std::printf("| %s | %zu | %.2f | %.2f | - | - |\n", r.op.c_str(), r.tokens, r.t.graph_us,
                    r.t.stream_us);
      }
    }
  }
  CHECK_CUDA(cudaStreamDestroy(stream));
  return 0;
}

#endif

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  int repeats = 20;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) {
      json = true;
    } else if (std::strcmp(argv[i], "--repeats") == 0 && i + 1 < argc) {
      repeats = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--json] [--repeats N]\n", argv[0]);
      return 2;
    }
  }
  int32_t devices = 0;
  if (eplb_device_count(&devices) != EPLB_OK) {
    std::printf("skipped: no CUDA device (%s)\n", eplb_last_error_message());
    return 0;
  }
#if EPLB_BENCH_WITH_CUDA
  return run(json, repeats);
#else
  static_cast<void>(json);
  static_cast<void>(repeats);
  std::printf("skipped: no CUDA device (benchmark built without the CUDA runtime)\n");
  return 0;
#endif
}
