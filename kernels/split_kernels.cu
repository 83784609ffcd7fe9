// CUDA side of the per-batch balancing kernels (split_kernels.hpp): the replica-split solver (one
// block) and the parallel shared-expert waterfill (four launches over the tokens), no allocation,
// no host synchronisation (graph-capturable). The decisions come from split_solver.hpp and
// waterfill_rule.hpp, compiled here and in the CPU reference; this file is compiled with
// -fmad=false so that no multiply-add is fused and both sides round the same. Integer counters only
// (no floating-point atomics): every output is deterministic.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda_check.hpp"
#include "device.hpp"
#include "split_kernels.hpp"
#include "split_solver.hpp"
#include "waterfill_rule.hpp"

namespace eplb::kernels {

namespace {

constexpr std::size_t smem_limit = 48 * 1024;  // dynamic shared memory without an opt-in
constexpr unsigned split_threads = 256;

// Device-side weights and loads the host cannot check (the CPU references reject such values): a
// weight that is not finite and > 0 counts as 1, a load that is not finite and >= 0 as 0, so NaN
// or infinity never reaches the comparisons the warps and the rank computations rely on. Valid
// values pass unchanged, so results stay bit-identical with the CPU references.
__device__ __forceinline__ double device_weight(double w) {
  return isfinite(w) && w > 0.0 ? w : 1.0;
}
__device__ __forceinline__ double device_load(double x) {
  return isfinite(x) && x >= 0.0 ? x : 0.0;
}

// --- replica-split solver ---------------------------------------------------------------------

// Threads compute the GPUs' fixed loads, warp 0 runs the solver on the state (in shared memory
// when it fits, else in the caller's workspace), then threads write the quotas.
__global__ void __launch_bounds__(split_threads)
    split_solve_kernel(SplitSolveArgs a, bool state_in_shared) {
  extern __shared__ __align__(16) unsigned char smem[];
  const SplitTableShape& sh = a.shape;
  const SplitLayerView v = split_layer_view(a.tables, a.layer);
  SplitState s = split_state_carve(state_in_shared ? static_cast<void*>(smem) : a.workspace,
                                   sh.max_movable, sh.max_edges, sh.num_gpus);
  for (std::int32_t g = static_cast<std::int32_t>(threadIdx.x); g < v.num_gpus;
       g += static_cast<std::int32_t>(blockDim.x)) {
    std::int64_t fixed = 0;
    for (std::int32_t slot = g * v.slots_per_gpu; slot < (g + 1) * v.slots_per_gpu; ++slot) {
      if (v.slot_role[slot] == split_layout::kWholeCount) {
        const std::int32_t c = a.counts[v.slot_expert[slot]];
        fixed += c > 0 ? c : 0;
      }
    }
    s.x[g] =
        (a.gpu_extra != nullptr ? device_load(a.gpu_extra[g]) : 0.0) + static_cast<double>(fixed);
    s.w[g] = a.gpu_weights != nullptr ? device_weight(a.gpu_weights[g]) : 1.0;
  }
  __syncthreads();
  if (threadIdx.x < 32) {  // warp 0 runs the solver (split_solver.hpp, WarpExec)
    const double best = SplitSolver<WarpExec>(v, a.counts, s, WarpExec{threadIdx.x}).run();
    if (threadIdx.x == 0 && a.max_load != nullptr) *a.max_load = best;
  }
  __syncthreads();
  for (std::int32_t slot = static_cast<std::int32_t>(threadIdx.x); slot < v.num_slots;
       slot += static_cast<std::int32_t>(blockDim.x)) {
    const std::int32_t role = v.slot_role[slot];
    std::int32_t q = 0;
    if (role >= 0) {
      q = s.flow[role];
    } else if (role == split_layout::kWholeCount) {
      const std::int32_t c = a.counts[v.slot_expert[slot]];
      q = c > 0 ? c : 0;
    }
    a.quotas[slot] = q;
  }
}

// --- shared-expert waterfill ------------------------------------------------------------------
//
// Four launches on the stream (plus a 4-byte memset of the arrival ticket), each over
// ceil(N / 512) blocks of 256 threads: init (copy rows, count loads, level and capacities),
// round 0 (propose), round 1 (accept round 0, propose), final (accept round 1, fallback, loads).
// A block owns 512 consecutive tokens; within it, warp w owns 64 consecutive tokens, 32 at a
// time, so (block, warp, iteration, lane) order is token order. Ranks per GPU in token order are
// the warp-local rank (__match_any_sync), plus the earlier warps' counts (an in-block scan), plus
// the earlier blocks' counts (scanned by the last block to arrive, whose work depends only on
// the other blocks' published counts, never on which block it is). Integer arithmetic only for
// every count; the floating-point level is computed by one thread like the CPU reference.

namespace W = waterfill;
static_assert(W::kPhases == 1, "the kernels implement one phase");
static_assert(W::kRounds == 2, "the kernels implement two rounds");
constexpr unsigned wf_warps = 8;
constexpr unsigned wf_threads = wf_warps * 32;
constexpr unsigned wf_per_lane = 2;
static_assert(wf_threads * wf_per_lane == W::kBlockTokens, "a block owns kBlockTokens tokens");
using W::WaterfillWorkspace;

// True in the last block to finish this launch; its threads then see every block's writes.
__device__ bool wf_last_block(unsigned* ticket) {
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(ticket, 1u) == gridDim.x - 1;
  __syncthreads();
  if (last) __threadfence();
  return last;
}

struct WfToken {
  const WaterfillKernelArgs& a;
  std::int32_t gpus, physical, spg;
  __device__ const std::int32_t* row(std::uint32_t t) const {
    return a.topk_slots + static_cast<std::size_t>(t) * a.top_k;
  }
  __device__ std::int32_t& col(std::uint32_t t) const {
    return a.out_topk[static_cast<std::size_t>(t) * (a.top_k + 1) + a.top_k];
  }
  __device__ std::int32_t source(std::uint32_t t) const {
    const std::int32_t s = a.source_gpu != nullptr ? a.source_gpu[t] : -1;
    return s >= 0 && s < gpus ? s : -1;  // out of range: no source (the CPU rejects it)
  }
};

__device__ __forceinline__ std::uint32_t wf_token(unsigned warp, unsigned j, unsigned lane) {
  return blockIdx.x * W::kBlockTokens + warp * (wf_per_lane * 32) + j * 32 + lane;
}

__global__ void __launch_bounds__(wf_threads)
    waterfill_init_kernel(WaterfillKernelArgs a, WaterfillWorkspace ws) {
  __shared__ int counted[W::kMaxGpus + 1];  // entries per GPU, then eligible tokens
  __shared__ double weight[W::kMaxGpus];
  __shared__ double cur[W::kMaxGpus];
  __shared__ int order[W::kMaxGpus];
  __shared__ double level;
  const WfToken tk{a, static_cast<std::int32_t>(a.num_gpus),
                   static_cast<std::int32_t>(a.num_physical),
                   static_cast<std::int32_t>(a.num_physical / a.num_gpus)};
  const std::int32_t gpus = tk.gpus;
  for (std::int32_t g = static_cast<std::int32_t>(threadIdx.x); g <= gpus;
       g += static_cast<std::int32_t>(blockDim.x))
    counted[g] = 0;
  __syncthreads();
  const unsigned warp = threadIdx.x / 32;
  const unsigned lane = threadIdx.x % 32;
  for (unsigned j = 0; j < wf_per_lane; ++j) {
    const std::uint32_t t = wf_token(warp, j, lane);
    if (t >= a.num_tokens) continue;
    bool valid = false;
    for (std::uint32_t i = 0; i < a.top_k; ++i) {
      const std::int32_t slot = tk.row(t)[i];
      a.out_topk[static_cast<std::size_t>(t) * (a.top_k + 1) + i] = slot;
      if (slot >= 0 && slot < tk.physical) {
        valid = true;
        atomicAdd(&counted[slot / tk.spg], 1);
      }
    }
    tk.col(t) = valid ? W::kUnplaced : -1;
    if (valid) atomicAdd(&counted[gpus], 1);
  }
  __syncthreads();
  for (std::int32_t g = static_cast<std::int32_t>(threadIdx.x); g <= gpus;
       g += static_cast<std::int32_t>(blockDim.x)) {
    ws.block_counts[static_cast<std::size_t>(blockIdx.x) * (gpus + 1) + g] = counted[g];
  }
  if (!wf_last_block(ws.ticket)) return;
  // The last block: loads, the level and the capacities (sums over blocks in block order).
  for (std::int32_t g = static_cast<std::int32_t>(threadIdx.x); g <= gpus;
       g += static_cast<std::int32_t>(blockDim.x)) {
    long long sum = 0;
    for (unsigned b = 0; b < gridDim.x; ++b) {
      sum += __ldcg(&ws.block_counts[static_cast<std::size_t>(b) * (gpus + 1) + g]);
    }
    if (g == gpus) {
      *ws.eligible = sum;
    } else {
      ws.load[g] = a.gpu_loads != nullptr ? device_load(a.gpu_loads[g]) : static_cast<double>(sum);
      cur[g] = ws.load[g] + 0.0;  // + taken (0), rounded like the CPU reference
      weight[g] = a.gpu_weights != nullptr ? device_weight(a.gpu_weights[g]) : 1.0;
      ws.taken[g] = 0;
    }
  }
  __syncthreads();
  for (std::int32_t g = static_cast<std::int32_t>(threadIdx.x); g < gpus;
       g += static_cast<std::int32_t>(blockDim.x)) {
    order[W::level_rank(g, gpus, cur, weight)] = g;
  }
  __syncthreads();
  const long long n = *ws.eligible;
  if (threadIdx.x == 0) level = W::water_level(order, gpus, cur, weight, static_cast<double>(n));
  __syncthreads();
  for (std::int32_t g = static_cast<std::int32_t>(threadIdx.x); g < gpus;
       g += static_cast<std::int32_t>(blockDim.x)) {
    ws.rem[g] = W::phase_capacity(level, cur[g], weight[g], n);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    ws.prefix[0] = 0;
    for (std::int32_t g = 0; g < gpus; ++g) {
      ws.prefix[g + 1] = ws.prefix[g] + static_cast<std::uint64_t>(ws.rem[g] > 0 ? ws.rem[g] : 0);
    }
    *ws.ticket = 0;
  }
}

// Tokens of this block whose proposal of the previous round ranks below its GPU's capacity.
__device__ void wf_accept(const WfToken& tk, const WaterfillWorkspace& ws) {
  const unsigned warp = threadIdx.x / 32;
  const unsigned lane = threadIdx.x % 32;
  for (unsigned j = 0; j < wf_per_lane; ++j) {
    const std::uint32_t t = wf_token(warp, j, lane);
    if (t >= tk.a.num_tokens) continue;
    const std::int32_t g = ws.prop[t];
    if (g < 0) continue;
    const std::int64_t rank =
        std::int64_t{ws.offsets[static_cast<std::size_t>(blockIdx.x) * tk.gpus + g]} + ws.rank[t];
    if (rank < ws.rem_round[g]) tk.col(t) = g;
  }
}

__global__ void __launch_bounds__(wf_threads)
    waterfill_round_kernel(WaterfillKernelArgs a, WaterfillWorkspace ws, bool accept_first) {
  __shared__ std::int64_t rem[W::kMaxGpus];
  __shared__ std::uint64_t prefix[W::kMaxGpus + 1];
  __shared__ int warp_count[wf_warps][W::kMaxGpus];
  const WfToken tk{a, static_cast<std::int32_t>(a.num_gpus),
                   static_cast<std::int32_t>(a.num_physical),
                   static_cast<std::int32_t>(a.num_physical / a.num_gpus)};
  const std::int32_t gpus = tk.gpus;
  const unsigned warp = threadIdx.x / 32;
  const unsigned lane = threadIdx.x % 32;
  if (accept_first) wf_accept(tk, ws);
  for (std::int32_t g = static_cast<std::int32_t>(threadIdx.x); g <= gpus;
       g += static_cast<std::int32_t>(blockDim.x)) {
    if (g < gpus) rem[g] = ws.rem[g];
    prefix[g] = ws.prefix[g];
  }
  for (unsigned i = threadIdx.x; i < wf_warps * W::kMaxGpus; i += blockDim.x) {
    warp_count[i / W::kMaxGpus][i % W::kMaxGpus] = 0;
  }
  __syncthreads();
  std::int32_t proposal[wf_per_lane];
  int local_rank[wf_per_lane];
  for (unsigned j = 0; j < wf_per_lane; ++j) {
    const std::uint32_t t = wf_token(warp, j, lane);
    std::int32_t g = -1;
    if (t < a.num_tokens && tk.col(t) == W::kUnplaced) {
      g = a.any_gpu ? W::propose_any(prefix, gpus, t)
                    : W::propose_restricted(tk.row(t), a.top_k, tk.source(t), tk.spg, tk.physical,
                                            gpus, rem, t);
    }
    // Rank among this warp's proposers to g so far, in token order.
    const unsigned peers = __match_any_sync(0xffffffffu, g);
    const int before = g >= 0 ? warp_count[warp][g] : 0;
    __syncwarp();
    if (g >= 0 && static_cast<int>(lane) == __ffs(static_cast<int>(peers)) - 1) {
      warp_count[warp][g] = before + __popc(peers);
    }
    __syncwarp();
    proposal[j] = g;
    local_rank[j] = before + __popc(peers & ((1u << lane) - 1u));
  }
  __syncthreads();
  // In-block exclusive scan over warps per GPU; the block's totals go to the workspace.
  for (std::int32_t g = static_cast<std::int32_t>(threadIdx.x); g < gpus;
       g += static_cast<std::int32_t>(blockDim.x)) {
    int running = 0;
    for (unsigned w = 0; w < wf_warps; ++w) {
      const int c = warp_count[w][g];
      warp_count[w][g] = running;
      running += c;
    }
    ws.block_counts[static_cast<std::size_t>(blockIdx.x) * (gpus + 1) + g] = running;
  }
  __syncthreads();
  for (unsigned j = 0; j < wf_per_lane; ++j) {
    const std::uint32_t t = wf_token(warp, j, lane);
    if (t >= a.num_tokens) continue;
    ws.prop[t] = proposal[j];
    ws.rank[t] = proposal[j] >= 0 ? warp_count[warp][proposal[j]] + local_rank[j] : 0;
  }
  if (!wf_last_block(ws.ticket)) return;
  // The last block: earlier blocks' counts per GPU, and the round's acceptances.
  for (std::int32_t g = static_cast<std::int32_t>(threadIdx.x); g < gpus;
       g += static_cast<std::int32_t>(blockDim.x)) {
    int running = 0;
    for (unsigned b = 0; b < gridDim.x; ++b) {
      ws.offsets[static_cast<std::size_t>(b) * gpus + g] = running;
      running += __ldcg(&ws.block_counts[static_cast<std::size_t>(b) * (gpus + 1) + g]);
    }
    const std::int64_t r = ws.rem[g];
    const std::int64_t accepted = running < r ? running : r;
    ws.rem_round[g] = r;
    ws.rem[g] = r - accepted;
    ws.taken[g] += accepted;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    ws.prefix[0] = 0;
    for (std::int32_t g = 0; g < gpus; ++g) {
      ws.prefix[g + 1] = ws.prefix[g] + static_cast<std::uint64_t>(ws.rem[g] > 0 ? ws.rem[g] : 0);
    }
    *ws.ticket = 0;
  }
}

__global__ void __launch_bounds__(wf_threads)
    waterfill_final_kernel(WaterfillKernelArgs a, WaterfillWorkspace ws) {
  __shared__ double load[W::kMaxGpus];
  __shared__ double weight[W::kMaxGpus];
  __shared__ std::int64_t taken[W::kMaxGpus];
  __shared__ int fallback[W::kMaxGpus];
  const WfToken tk{a, static_cast<std::int32_t>(a.num_gpus),
                   static_cast<std::int32_t>(a.num_physical),
                   static_cast<std::int32_t>(a.num_physical / a.num_gpus)};
  const std::int32_t gpus = tk.gpus;
  const unsigned warp = threadIdx.x / 32;
  const unsigned lane = threadIdx.x % 32;
  wf_accept(tk, ws);
  for (std::int32_t g = static_cast<std::int32_t>(threadIdx.x); g < gpus;
       g += static_cast<std::int32_t>(blockDim.x)) {
    load[g] = ws.load[g];  // sanitised by the init kernel
    weight[g] = a.gpu_weights != nullptr ? device_weight(a.gpu_weights[g]) : 1.0;
    taken[g] = ws.taken[g];
    fallback[g] = 0;
  }
  __syncthreads();
  for (unsigned j = 0; j < wf_per_lane; ++j) {
    const std::uint32_t t = wf_token(warp, j, lane);
    if (t >= a.num_tokens) continue;
    std::int32_t g = tk.col(t);
    if (g == W::kUnplaced) {
      g = W::least_loaded(tk.row(t), a.top_k, tk.source(t), tk.spg, tk.physical, gpus, a.any_gpu,
                          load, taken, weight);
      atomicAdd(&fallback[g], 1);
    }
    tk.col(t) = g >= 0 ? tk.physical + g : -1;
  }
  __syncthreads();
  for (std::int32_t g = static_cast<std::int32_t>(threadIdx.x); g < gpus;
       g += static_cast<std::int32_t>(blockDim.x)) {
    ws.block_counts[static_cast<std::size_t>(blockIdx.x) * (gpus + 1) + g] = fallback[g];
  }
  if (!wf_last_block(ws.ticket)) return;
  for (std::int32_t g = static_cast<std::int32_t>(threadIdx.x); g < gpus;
       g += static_cast<std::int32_t>(blockDim.x)) {
    long long sum = 0;
    for (unsigned b = 0; b < gridDim.x; ++b) {
      sum += __ldcg(&ws.block_counts[static_cast<std::size_t>(b) * (gpus + 1) + g]);
    }
    if (a.out_gpu_loads != nullptr) {
      a.out_gpu_loads[g] = ws.load[g] + static_cast<double>(ws.taken[g] + sum);
    }
  }
  if (threadIdx.x == 0) *ws.ticket = 0;
}

}  // namespace

void launch_split_solve(const SplitSolveArgs& args, void* stream) {
  const std::size_t state = split_workspace_bytes(args.shape);
  const bool in_shared = state <= smem_limit;
  split_solve_kernel<<<1, split_threads, in_shared ? state : 0, as_stream(stream)>>>(args,
                                                                                     in_shared);
  check_launch("split_solve kernel");
}

void launch_shared_waterfill(const WaterfillKernelArgs& args, void* stream) {
  const std::uint32_t blocks = W::kernel_blocks(args.num_tokens);
  const WaterfillWorkspace ws =
      W::carve_workspace(args.workspace, args.num_tokens, args.num_gpus, blocks);
  const cudaStream_t s = as_stream(stream);
  check_cuda(cudaMemsetAsync(ws.ticket, 0, sizeof(unsigned), s), "cudaMemsetAsync (waterfill)");
  waterfill_init_kernel<<<blocks, wf_threads, 0, s>>>(args, ws);
  check_launch("shared_waterfill init kernel");
  waterfill_round_kernel<<<blocks, wf_threads, 0, s>>>(args, ws, false);
  check_launch("shared_waterfill round kernel");
  waterfill_round_kernel<<<blocks, wf_threads, 0, s>>>(args, ws, true);
  check_launch("shared_waterfill round kernel");
  waterfill_final_kernel<<<blocks, wf_threads, 0, s>>>(args, ws);
  check_launch("shared_waterfill final kernel");
}

std::int32_t* upload_split_tables(const std::vector<std::int32_t>& packed, void* stream) {
  void* device = nullptr;
  const std::size_t bytes = packed.size() * sizeof(std::int32_t);
  check_cuda(cudaMalloc(&device, bytes), "cudaMalloc (split tables)");
  const cudaError_t copied =
      cudaMemcpyAsync(device, packed.data(), bytes, cudaMemcpyHostToDevice, as_stream(stream));
  const cudaError_t synced =
      copied == cudaSuccess ? cudaStreamSynchronize(as_stream(stream)) : copied;
  if (synced != cudaSuccess) {
    static_cast<void>(cudaFree(device));
    check_cuda(synced, "copying the split tables to the device");
  }
  return static_cast<std::int32_t*>(device);
}

void free_split_tables(std::int32_t* device_tables) noexcept {
  if (device_tables == nullptr) return;
  // As tables_device_free: a failed free is not the next launch's error.
  if (cudaFree(device_tables) != cudaSuccess) static_cast<void>(cudaGetLastError());
}

}  // namespace eplb::kernels
