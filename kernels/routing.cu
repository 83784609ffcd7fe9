// CUDA kernels of the routing operations (routing_launch.hpp) and their launchers. Every launcher
// only enqueues work on the caller's stream: no allocation, no host synchronisation, so each can be
// captured in a CUDA graph. The per-entry rules come from routing_rules.hpp, shared with the CPU
// references, which keeps the two bit-identical. Integer counters make atomics order-independent,
// so every output is deterministic.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

#include "cuda_check.hpp"
#include "device.hpp"
#include "routing_launch.hpp"

namespace eplb::kernels {

namespace {

constexpr unsigned full_warp = 0xffffffffu;
constexpr std::size_t smem_limit = 48 * 1024;  // dynamic shared memory without an opt-in
constexpr unsigned record_threads = 256;
constexpr unsigned max_grid = 1024;

__device__ __forceinline__ bool flag_enabled(const std::int32_t* flag) {
  return flag == nullptr || *flag != 0;
}

// The enable flag as one value for the whole block: thread 0 reads it once and the barrier
// (__syncthreads_or) hands its value to every thread. The host or another stream may flip the flag
// while a kernel runs, so per-thread reads could disagree, and the barriers and warp collectives
// that depend on the flag would then diverge. No shared memory: the kernels may use all 48 KiB of
// dynamic shared memory. Every thread of the block must call it (it is a barrier). Blocks may
// still see different values; no kernel here synchronises across blocks.
__device__ __forceinline__ bool block_flag_enabled(const std::int32_t* flag) {
  return __syncthreads_or(threadIdx.x == 0 && flag_enabled(flag)) != 0;
}

__device__ __forceinline__ void add_count(std::int64_t* counts, std::size_t index,
                                          unsigned long long amount) {
  atomicAdd(reinterpret_cast<unsigned long long*>(counts) + index, amount);
}

unsigned grid_for(std::size_t work, unsigned per_block) {
  const std::size_t blocks = (work + per_block - 1) / per_block;
  return static_cast<unsigned>(std::clamp<std::size_t>(blocks, 1, max_grid));
}

// --- load recorder ------------------------------------------------------------------------------

// Counts valid ids into a per-block shared histogram (when it fits), then adds the non-zero bins
// to the layer's row with one global atomic each: skewed routing contends only in shared memory.
__global__ void record_load_kernel(RecordArgs a, bool privatise) {
  extern __shared__ unsigned int hist[];
  if (!block_flag_enabled(a.enable_flag)) return;  // uniform within the block
  std::int64_t* row = a.counts + static_cast<std::size_t>(a.layer) * a.num_experts;
  const std::size_t n = a.topk.entries();
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  if (privatise) {
    for (unsigned e = threadIdx.x; e < a.num_experts; e += blockDim.x) hist[e] = 0;
    __syncthreads();
  }
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const std::int32_t e = load_id(a.topk.ids, a.topk.ids64, i, a.num_experts);
    if (e < 0) continue;
    if (privatise) {
      atomicAdd(&hist[e], 1u);
    } else {
      add_count(row, static_cast<std::size_t>(e), 1ull);
    }
  }
  if (privatise) {
    __syncthreads();
    for (unsigned e = threadIdx.x; e < a.num_experts; e += blockDim.x) {
      if (hist[e] != 0) add_count(row, e, hist[e]);
    }
  }
}

// --- logical -> physical mapping (static, round-robin, hash, node-aware) + recording -----------

__global__ void map_record_kernel(TablesView t, MapArgs a, bool privatise) {
  extern __shared__ unsigned int hist[];
  // Uniform within the block (the barriers below depend on it); the map is written either way.
  const bool record = block_flag_enabled(a.enable_flag) && a.counts != nullptr;
  std::int64_t* row =
      record ? a.counts + static_cast<std::size_t>(a.layer) * t.num_physical : nullptr;
  const bool shared_hist = record && privatise;
  if (shared_hist) {
    for (unsigned p = threadIdx.x; p < t.num_physical; p += blockDim.x) hist[p] = 0;
    __syncthreads();
  }
  const std::size_t first = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::uint32_t k = a.topk.top_k;
  auto count_slot = [&](std::int32_t slot) {
    if (!record || slot < 0) return;
    if (shared_hist) {
      atomicAdd(&hist[slot], 1u);
    } else {
      add_count(row, static_cast<std::size_t>(slot), 1ull);
    }
  };
  if (a.mode == map_node_aware) {
    // One thread per token: the node choice needs the whole row.
    std::uint8_t picks[max_node_aware_nodes];
    for (std::size_t token = first; token < a.topk.num_tokens; token += stride) {
      const std::size_t start = token * k;
      std::uint64_t fixed = 0;
      std::uint32_t num_picks = 0;
      static_cast<void>(node_aware_choice(t, a.layer, a.topk.ids, a.topk.ids64, start, k, &fixed,
                                          picks, &num_picks));
      for (std::uint32_t j = 0; j < k; ++j) {
        const std::int32_t e = load_id(a.topk.ids, a.topk.ids64, start + j, t.num_logical);
        const std::int32_t slot =
            e < 0 ? -1 : node_aware_slot(t, a.layer, e, start + j, fixed, picks, num_picks);
        a.out[start + j] = slot;
        count_slot(slot);
      }
    }
  } else {
    const std::size_t n = a.topk.entries();
    for (std::size_t i = first; i < n; i += stride) {
      const std::int32_t e = load_id(a.topk.ids, a.topk.ids64, i, t.num_logical);
      const std::int32_t slot = e < 0 ? -1 : simple_slot(t, a.mode, a.layer, e, i, a.seed);
      a.out[i] = slot;
      count_slot(slot);
    }
  }
  if (shared_hist) {
    __syncthreads();
    for (unsigned p = threadIdx.x; p < t.num_physical; p += blockDim.x) {
      if (hist[p] != 0) add_count(row, p, hist[p]);
    }
  }
}

// --- quota mode ---------------------------------------------------------------------------------

// Block b maps entries [1024 b, 1024 (b + 1)). An entry's rank among the valid occurrences of its
// expert is (occurrences before the block's chunk: the block counts them itself, so blocks never
// wait on each other) + (occurrences in earlier warps of the chunk: per-warp counts in shared
// memory) + (earlier lanes of its warp: __match_any_sync).
constexpr unsigned quota_threads = 1024;
constexpr unsigned quota_warps = quota_threads / 32;

__global__ void __launch_bounds__(quota_threads) quota_map_kernel(TablesView t, MapArgs a) {
  extern __shared__ int quota_smem[];
  // Uniform within the block (the __match_any_sync below depends on it); the map is written
  // either way.
  const bool record = block_flag_enabled(a.enable_flag) && a.counts != nullptr;
  const std::uint32_t E = t.num_logical;
  int* before = quota_smem;                                             // [E]
  auto* warp_count = reinterpret_cast<unsigned char*>(quota_smem + E);  // [32][E]
  for (unsigned e = threadIdx.x; e < E; e += blockDim.x) before[e] = 0;
  for (unsigned i = threadIdx.x; i < quota_warps * E; i += blockDim.x) warp_count[i] = 0;
  __syncthreads();
  const unsigned lane = threadIdx.x & 31u;
  const unsigned warp = threadIdx.x >> 5;
  const std::size_t chunk = static_cast<std::size_t>(blockIdx.x) * quota_threads;
  // `chunk` is a multiple of the block size: every warp runs this loop full.
  for (std::size_t i = threadIdx.x; i < chunk; i += quota_threads) {
    const std::int32_t e = load_id(a.topk.ids, a.topk.ids64, i, E);
    const unsigned peers = __match_any_sync(full_warp, e);
    if (e >= 0 && lane == static_cast<unsigned>(__ffs(static_cast<int>(peers)) - 1)) {
      atomicAdd(&before[e], __popc(peers));
    }
  }
  const std::size_t n = a.topk.entries();
  const std::size_t i = chunk + threadIdx.x;
  const std::int32_t e = i < n ? load_id(a.topk.ids, a.topk.ids64, i, E) : -1;
  const unsigned peers = __match_any_sync(full_warp, e);
  const unsigned lower = peers & ((1u << lane) - 1u);
  if (e >= 0 && lower == 0)
    warp_count[warp * E + static_cast<unsigned>(e)] = static_cast<unsigned char>(__popc(peers));
  __syncthreads();
  std::int32_t slot = -1;
  if (e >= 0) {
    std::int64_t rank = before[e] + __popc(lower);
    for (unsigned w = 0; w < warp; ++w) rank += warp_count[w * E + static_cast<unsigned>(e)];
    slot = quota_slot(t, a.layer, e, rank, a.quotas);
  }
  if (i < n) a.out[i] = slot;
  if (record) {
    const unsigned same = __match_any_sync(full_warp, slot);
    if (slot >= 0 && (same & ((1u << lane) - 1u)) == 0) {
      add_count(a.counts,
                static_cast<std::size_t>(a.layer) * t.num_physical + static_cast<std::size_t>(slot),
                static_cast<unsigned long long>(__popc(same)));
    }
  }
}

// --- fold ---------------------------------------------------------------------------------------

__global__ void fold_counts_kernel(TablesView t, const std::int64_t* physical,
                                   std::int64_t* logical) {
  const std::size_t rows = static_cast<std::size_t>(t.num_layers) * t.num_logical;
  for (std::size_t row = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       row < rows; row += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t layer_base = (row / t.num_logical) * t.num_physical;
    std::int64_t sum = 0;
    for (std::int32_t r = 0; r < t.replica_count[row]; ++r) {
      sum += physical[layer_base + static_cast<std::size_t>(
                                       t.log2phy[row * t.width + static_cast<std::size_t>(r)])];
    }
    logical[row] = sum;
  }
}

// --- co-activation ------------------------------------------------------------------------------

// Block b owns pair indices [b * slice, (b + 1) * slice) of the layer's triangle: it reads every
// token, counts its own pairs in shared memory and adds them to global memory without atomics
// (no other block writes them), so skew costs only shared-memory contention.
constexpr unsigned pair_threads = 512;
constexpr std::uint32_t max_pair_slice = 12 * 1024;  // 48 KiB of uint32 counters
constexpr std::uint32_t pair_blocks_target = 32;

__global__ void __launch_bounds__(pair_threads)
    coactivation_kernel(CoactivationArgs a, std::int64_t pairs_total, std::uint32_t slice) {
  extern __shared__ unsigned int pair_hist[];
  if (!block_flag_enabled(a.enable_flag)) return;  // uniform within the block
  const std::uint32_t E = a.num_experts;
  const std::uint32_t k = a.topk.top_k;
  if (a.pair_counts != nullptr && pairs_total > 0) {
    const std::int64_t lo = static_cast<std::int64_t>(blockIdx.x) * slice;
    const std::int64_t hi = lo + slice < pairs_total ? lo + slice : pairs_total;
    const auto own = static_cast<std::uint32_t>(hi > lo ? hi - lo : 0);
    for (std::uint32_t x = threadIdx.x; x < own; x += blockDim.x) pair_hist[x] = 0;
    __syncthreads();
    std::int32_t ids[max_pair_top_k];
    for (std::size_t token = threadIdx.x; token < a.topk.num_tokens; token += blockDim.x) {
      const std::size_t start = token * k;
      // Keep first occurrences of valid ids; repeats and masked slots become -1.
      for (std::uint32_t i = 0; i < k; ++i) {
        const std::int32_t x = load_id(a.topk.ids, a.topk.ids64, start + i, E);
        bool repeat = false;
        for (std::uint32_t j = 0; j < i; ++j) repeat = repeat || ids[j] == x;
        ids[i] = repeat ? -1 : x;
      }
      for (std::uint32_t i = 0; i < k; ++i) {
        const std::int32_t x = ids[i];
        if (x < 0) continue;
        for (std::uint32_t j = i + 1; j < k; ++j) {
          const std::int32_t y = ids[j];
          if (y < 0) continue;
          const std::int64_t p = pair_index(E, x < y ? x : y, x < y ? y : x) - lo;
          if (p >= 0 && p < static_cast<std::int64_t>(own)) atomicAdd(&pair_hist[p], 1u);
        }
      }
    }
    __syncthreads();
    std::int64_t* out = a.pair_counts +
                        static_cast<std::size_t>(a.layer) * static_cast<std::size_t>(pairs_total) +
                        static_cast<std::size_t>(lo);
    for (std::uint32_t x = threadIdx.x; x < own; x += blockDim.x) {
      if (pair_hist[x] != 0) out[x] += pair_hist[x];
    }
  }
  if (a.samples != nullptr) {
    const std::size_t rows =
        sampled_rows(a.topk.num_tokens, a.sample_stride, a.sample_offset, a.sample_capacity);
    for (std::size_t r = blockIdx.x; r < a.sample_capacity; r += gridDim.x) {
      for (std::uint32_t j = threadIdx.x; j < k; j += blockDim.x) {
        a.samples[r * k + j] = r < rows
                                   ? load_id(a.topk.ids, a.topk.ids64,
                                             (a.sample_offset + r * a.sample_stride) * k + j, E)
                                   : -1;
      }
    }
  }
}

}  // namespace

// --- launchers ----------------------------------------------------------------------------------

void record_load_gpu(const RecordArgs& args, void* stream) {
  const std::size_t n = args.topk.entries();
  if (n == 0) return;
  const std::size_t smem = static_cast<std::size_t>(args.num_experts) * sizeof(unsigned);
  const bool privatise = smem <= smem_limit;
  record_load_kernel<<<grid_for(n, record_threads * 4), record_threads, privatise ? smem : 0,
                       as_stream(stream)>>>(args, privatise);
  check_launch("record_load kernel");
}

void map_record_gpu(const TablesView& tables, const MapArgs& args, void* stream) {
  const std::size_t n = args.topk.entries();
  if (n == 0) return;
  if (args.mode == map_quota) {
    const std::size_t smem = static_cast<std::size_t>(tables.num_logical) * (4 + quota_warps);
    const auto blocks = static_cast<unsigned>((n + quota_threads - 1) / quota_threads);
    quota_map_kernel<<<blocks, quota_threads, smem, as_stream(stream)>>>(tables, args);
    check_launch("map_record kernel (quota)");
    return;
  }
  const std::size_t smem = static_cast<std::size_t>(tables.num_physical) * sizeof(unsigned);
  const bool privatise = args.counts != nullptr && smem <= smem_limit;
  const std::size_t work = args.mode == map_node_aware ? args.topk.num_tokens : n;
  const unsigned per_block = args.mode == map_node_aware ? record_threads : record_threads * 4;
  map_record_kernel<<<grid_for(work, per_block), record_threads, privatise ? smem : 0,
                      as_stream(stream)>>>(tables, args, privatise);
  check_launch("map_record kernel");
}

void fold_counts_gpu(const TablesView& tables, const std::int64_t* physical, std::int64_t* logical,
                     void* stream) {
  const std::size_t rows = static_cast<std::size_t>(tables.num_layers) * tables.num_logical;
  fold_counts_kernel<<<grid_for(rows, record_threads), record_threads, 0, as_stream(stream)>>>(
      tables, physical, logical);
  check_launch("fold_counts kernel");
}

void coactivation_gpu(const CoactivationArgs& args, void* stream) {
  const std::int64_t pairs =
      static_cast<std::int64_t>(args.num_experts) * (args.num_experts - 1) / 2;
  const bool counting = args.pair_counts != nullptr && pairs > 0 && args.topk.num_tokens > 0;
  const bool sampling = args.samples != nullptr && args.sample_capacity > 0;
  if (!counting && !sampling) return;
  std::uint32_t slice = 0;
  unsigned blocks = 1;
  if (counting) {
    const std::int64_t even = (pairs + pair_blocks_target - 1) / pair_blocks_target;
    slice = static_cast<std::uint32_t>(std::clamp<std::int64_t>(even, 256, max_pair_slice));
    blocks = static_cast<unsigned>((pairs + slice - 1) / slice);
  } else {
    blocks = std::min<unsigned>(pair_blocks_target, args.sample_capacity);
  }
  CoactivationArgs launch = args;
  if (!counting) launch.pair_counts = nullptr;
  coactivation_kernel<<<blocks, pair_threads, static_cast<std::size_t>(slice) * sizeof(unsigned),
                        as_stream(stream)>>>(launch, pairs, slice);
  check_launch("coactivation kernel");
}

void* tables_device_alloc(std::size_t bytes, int* device_id) {
  check_cuda(cudaGetDevice(device_id), "cudaGetDevice");
  void* pointer = nullptr;
  check_cuda(cudaMalloc(&pointer, bytes), "cudaMalloc (device tables)");
  return pointer;
}

void tables_device_free(void* pointer) noexcept {
  // A failed free (a destructor cannot report it) must not stay in this thread's last-error
  // slot, where check_launch would blame the next, healthy launch for it.
  if (cudaFree(pointer) != cudaSuccess) static_cast<void>(cudaGetLastError());
}

void tables_device_upload(void* device, const void* host, std::size_t bytes, void* stream) {
  check_cuda(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, as_stream(stream)),
             "cudaMemcpyAsync (device tables)");
}

void tables_device_wait(void* stream) {
  check_cuda(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize (device tables)");
}

}  // namespace eplb::kernels
