// GPU launchers of the token exchange's device steps (token_exchange.hpp). Semantics are those of
// token_exchange_cpu.cpp, bit for bit. Each launcher only enqueues kernels on the caller's stream
// (no allocation, no memset, no host synchronisation), so a CUDA graph can capture it.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

#include "cuda_check.hpp"
#include "device.hpp"
#include "dispatch_rules.hpp"
#include "row_vector.cuh"
#include "token_exchange.hpp"
#include "warp.cuh"

namespace eplb::kernels {

namespace {

constexpr int kThreads = 128;

// Warp 0 writes the exclusive prefix sums of tokens_per_rank into `start` (num_ranks entries):
// 32 ranks at a time, a shuffle scan within each chunk plus the running total. Needed only by
// padded slabs; the caller syncs the block afterwards.
__device__ void scan_rank_starts(const int32_t* __restrict__ tokens_per_rank, int num_ranks,
                                 long long* start) {
  if (threadIdx.x >= 32) return;
  const int lane = static_cast<int>(threadIdx.x);
  long long carry = 0;
  for (int base = 0; base < num_ranks; base += 32) {
    const int r = base + lane;
    const long long count = r < num_ranks ? tokens_per_rank[r] : 0;
    long long inclusive = count;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      const long long up = __shfl_up_sync(kAllLanes, inclusive, offset);
      if (lane >= offset) inclusive += up;
    }
    if (r < num_ranks) start[r] = carry + inclusive - count;
    carry += __shfl_sync(kAllLanes, inclusive, 31);
  }
}

// One block per token: for each destination (ascending), the block copies the row as 16-byte
// vectors and its first top_k threads write the local slots and weights. Blocks past the tokens
// fill the unused rows of padded slabs; block 0 also writes the count message and the dropped
// count (both functions of tokens_per_rank alone, so no atomics).
__global__ void token_pack_kernel(ExchangeGeometry g, const int32_t* __restrict__ topk_slots,
                                  const float* __restrict__ topk_weights,
                                  const uint4* __restrict__ rows, int vectors_per_row,
                                  int recv_capacity, uint4* __restrict__ send_rows,
                                  int32_t* __restrict__ send_slots,
                                  float* __restrict__ send_weights,
                                  int32_t* __restrict__ count_message, int32_t* dropped) {
  extern __shared__ long long start[];  // [num_ranks], padded slabs only
  const int num_ranks = static_cast<int>(g.num_ranks);
  const int top_k = static_cast<int>(g.top_k);
  if (g.capacity > 0) {
    scan_rank_starts(g.tokens_per_rank, num_ranks, start);
    __syncthreads();
  }
  const size_t block = blockIdx.x;
  if (block == 0) {
    long long over = 0;
    for (int r = static_cast<int>(threadIdx.x); r < num_ranks; r += blockDim.x) {
      const int count = g.tokens_per_rank[r];
      const int capacity = static_cast<int>(g.capacity);
      const int sent = g.capacity == 0 || count <= capacity ? count : capacity;
      count_message[r] = sent;
      over += count - sent;
    }
    if (threadIdx.x == 0) count_message[num_ranks] = recv_capacity;
    // Sum `over` over the block (a few warps): warp shuffles, then thread 0 adds the warps.
    __shared__ long long warp_over[kThreads / 32];
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1)
      over += __shfl_down_sync(kAllLanes, over, offset);
    if (threadIdx.x % 32 == 0) warp_over[threadIdx.x / 32] = over;
    __syncthreads();
    if (threadIdx.x == 0 && dropped != nullptr) {
      long long total = 0;
      for (int w = 0; w < kThreads / 32; ++w) total += warp_over[w];
      *dropped = static_cast<int32_t>(total);
    }
  }
  if (block < g.num_tokens) {
    const size_t t = block;
    for (int r = 0; r < num_ranks; ++r) {
      const int64_t row =
          exchange_row(g, t, static_cast<uint32_t>(r), g.capacity > 0 ? start[r] : 0);
      if (row < 0) continue;
      const uint4* from = rows + t * vectors_per_row;
      uint4* to = send_rows + static_cast<size_t>(row) * vectors_per_row;
      for (int v = static_cast<int>(threadIdx.x); v < vectors_per_row; v += blockDim.x)
        to[v] = from[v];
      for (int j = static_cast<int>(threadIdx.x); j < top_k; j += blockDim.x) {
        const int32_t slot = topk_slots[t * top_k + j];
        const bool here = slot_rank(slot, g.num_ranks, g.slots_per_rank) == r;
        const size_t at = static_cast<size_t>(row) * top_k + j;
        send_slots[at] = here ? slot_local(slot, g.num_ranks, g.slots_per_rank) : -1;
        send_weights[at] = here ? topk_weights[t * top_k + j] : 0.0f;
      }
    }
    return;
  }
  // Fill blocks: the unused rows of each padded slab get no slot and no weight.
  if (g.capacity == 0) return;
  const size_t fill_block = block - g.num_tokens;
  const size_t fill_blocks = gridDim.x - g.num_tokens;
  const size_t per_slab = static_cast<size_t>(g.capacity) * top_k;
  const size_t entries = per_slab * num_ranks;
  for (size_t i = fill_block * blockDim.x + threadIdx.x; i < entries;
       i += fill_blocks * blockDim.x) {
    const size_t r = i / per_slab;
    const int count = g.tokens_per_rank[r];
    const size_t used =
        static_cast<size_t>(count < static_cast<int>(g.capacity) ? count
                                                                 : static_cast<int>(g.capacity)) *
        top_k;
    if (i - r * per_slab < used) continue;
    send_slots[i] = -1;
    send_weights[i] = 0.0f;
  }
}

__global__ void recv_counts_kernel(const int32_t* __restrict__ gathered, int num_ranks, int rank,
                                   int32_t* __restrict__ recv_counts) {
  for (int s = static_cast<int>(threadIdx.x); s < num_ranks; s += blockDim.x) {
    recv_counts[s] = gathered[static_cast<size_t>(s) * (num_ranks + 1) + rank];
  }
}

// Block (t, slice): thread v sums vector v of token t's partial rows over its destinations in
// ascending rank order, in float32 from -0 (the additive identity, as in the reference; 0 for a
// token without destinations), and rounds once to the row type.
template <typename Element>
__global__ void token_combine_kernel(ExchangeGeometry g, const uint4* __restrict__ partial,
                                     int vectors_per_row, uint4* __restrict__ out) {
  using Vector = RowVector<Element>;
  extern __shared__ long long start[];
  const int num_ranks = static_cast<int>(g.num_ranks);
  if (g.capacity > 0) {
    scan_rank_starts(g.tokens_per_rank, num_ranks, start);
    __syncthreads();
  }
  const size_t t = blockIdx.x;
  const int v = static_cast<int>(blockIdx.y) * kThreads + static_cast<int>(threadIdx.x);
  if (v >= vectors_per_row) return;
  float sum[Vector::kCount];
#pragma unroll
  for (int i = 0; i < Vector::kCount; ++i) sum[i] = -0.0f;
  bool any = false;
  for (int r = 0; r < num_ranks; ++r) {
    const int64_t row = exchange_row(g, t, static_cast<uint32_t>(r), g.capacity > 0 ? start[r] : 0);
    if (row < 0) continue;
    any = true;
    float x[Vector::kCount];
    Vector::unpack(partial[static_cast<size_t>(row) * vectors_per_row + v], x);
#pragma unroll
    for (int i = 0; i < Vector::kCount; ++i) sum[i] = __fadd_rn(sum[i], x[i]);
  }
  if (!any) {
#pragma unroll
    for (int i = 0; i < Vector::kCount; ++i) sum[i] = 0.0f;
  }
  out[t * vectors_per_row + v] = Vector::pack(sum);
}

size_t scan_bytes(const ExchangeGeometry& g) {
  return g.capacity > 0 ? sizeof(long long) * g.num_ranks : 0;
}

}  // namespace

void launch_token_pack(const TokenPackArgs& a, void* stream_handle) {
  const ExchangeGeometry& g = a.geometry;
  const size_t fill_entries = size_t{g.capacity} * g.top_k * g.num_ranks;
  const size_t fill_blocks =
      g.capacity == 0 ? 0 : std::min<size_t>((fill_entries + kThreads - 1) / kThreads, 1024);
  const size_t blocks = std::max<size_t>(g.num_tokens + fill_blocks, 1);
  token_pack_kernel<<<static_cast<unsigned>(blocks), kThreads, scan_bytes(g),
                      as_stream(stream_handle)>>>(
      g, a.topk_slots, a.topk_weights, static_cast<const uint4*>(a.rows),
      static_cast<int>(a.row_bytes / 16), static_cast<int>(a.recv_capacity),
      static_cast<uint4*>(a.send_rows), a.send_slots, a.send_weights, a.count_message, a.dropped);
  check_launch("token pack kernel");
}

void launch_recv_counts(const RecvCountsArgs& a, void* stream_handle) {
  recv_counts_kernel<<<1, 256, 0, as_stream(stream_handle)>>>(
      a.gathered, static_cast<int>(a.num_ranks), static_cast<int>(a.rank), a.recv_counts);
  check_launch("recv counts kernel");
}

void launch_token_combine(const TokenCombineArgs& a, void* stream_handle) {
  const ExchangeGeometry& g = a.geometry;
  if (g.num_tokens == 0) return;
  const int vectors = static_cast<int>(a.hidden * row_dtype_bytes(a.dtype) / 16);
  const dim3 grid(static_cast<unsigned>(g.num_tokens),
                  static_cast<unsigned>((vectors + kThreads - 1) / kThreads));
  const cudaStream_t stream = as_stream(stream_handle);
  const auto* partial = static_cast<const uint4*>(a.partial);
  auto* out = static_cast<uint4*>(a.out);
  switch (a.dtype) {
    case RowDtype::float32:
      token_combine_kernel<float>
          <<<grid, kThreads, scan_bytes(g), stream>>>(g, partial, vectors, out);
      break;
    case RowDtype::float16:
      token_combine_kernel<__half>
          <<<grid, kThreads, scan_bytes(g), stream>>>(g, partial, vectors, out);
      break;
    case RowDtype::bfloat16:
      token_combine_kernel<__nv_bfloat16>
          <<<grid, kThreads, scan_bytes(g), stream>>>(g, partial, vectors, out);
      break;
  }
  check_launch("token combine kernel");
}

}  // namespace eplb::kernels
