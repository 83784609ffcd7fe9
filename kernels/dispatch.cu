// GPU launchers of the dispatch kernels (dispatch.hpp): the dispatch layout, the stable expert
// sort and permute / unpermute. Semantics are those of dispatch_reference.cpp, bit for bit.
//
// Every launcher only enqueues kernels on the caller's stream: no allocation, no host
// synchronisation, no memset, fixed launch shapes for fixed sizes, so a CUDA graph can capture
// it. Integer results come from integer atomics in shared memory (order-independent) and from
// ordered scans, so they are deterministic.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

#include "cuda_check.hpp"
#include "device.hpp"
#include "dispatch.hpp"
#include "dispatch_rules.hpp"
#include "row_vector.cuh"
#include "warp.cuh"

namespace eplb::kernels {

namespace {

constexpr int kLayoutTokensPerBlock = 128;  // = threads per block; must match the reference
constexpr int kLayoutWarps = kLayoutTokensPerBlock / 32;
constexpr int kSortPairsPerChunk = 1024;  // must match the reference
constexpr int kCountThreads = 256;
constexpr int kScatterThreads = 128;
constexpr int kRowThreads = 128;
constexpr int kPermuteVectorsPerThread = 2;

__device__ __forceinline__ unsigned lanemask_lt(int lane) { return (1u << lane) - 1u; }

// Inclusive warp scan of v.
__device__ __forceinline__ int warp_inclusive_scan(int v, int lane) {
#pragma unroll
  for (int offset = 1; offset < 32; offset *= 2) {
    const int other = __shfl_up_sync(kAllLanes, v, offset);
    if (lane >= offset) v += other;
  }
  return v;
}

// In-place exclusive scan of data[0, n) in shared memory by the whole block (blockDim.x a
// multiple of 32, at most 1024). Returns the total to every thread.
__device__ int block_exclusive_scan(int* data, int n) {
  __shared__ int warp_sums[32];
  __shared__ int block_total;
  const int threads = static_cast<int>(blockDim.x);
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int per_thread = (n + threads - 1) / threads;
  const int begin = min(n, tid * per_thread);
  const int end = min(n, begin + per_thread);
  int sum = 0;
  for (int i = begin; i < end; ++i) sum += data[i];
  const int inclusive = warp_inclusive_scan(sum, lane);
  if (lane == 31) warp_sums[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const int warps = threads / 32;
    const int v = lane < warps ? warp_sums[lane] : 0;
    const int scanned = warp_inclusive_scan(v, lane);
    if (lane < warps) warp_sums[lane] = scanned - v;
    if (lane == 31) block_total = scanned;
  }
  __syncthreads();
  int running = warp_sums[warp] + inclusive - sum;
  for (int i = begin; i < end; ++i) {
    const int v = data[i];
    data[i] = running;
    running += v;
  }
  __syncthreads();
  return block_total;
}

// Column-wise exclusive scan over `rows` of a row-major [rows][columns] int table, one warp per
// column, rows in order. Writes the prefix back when write_prefix(column) and returns the column
// total to lane 0.
__device__ int warp_column_scan(int* table, int rows, int columns, int column, bool write_prefix,
                                int lane) {
  int carry = 0;
  for (int row0 = 0; row0 < rows; row0 += 32) {
    const int row = row0 + lane;
    const int v = row < rows ? table[static_cast<size_t>(row) * columns + column] : 0;
    const int inclusive = warp_inclusive_scan(v, lane);
    if (write_prefix && row < rows) {
      table[static_cast<size_t>(row) * columns + column] = carry + inclusive - v;
    }
    carry += __shfl_sync(kAllLanes, inclusive, 31);
  }
  return carry;
}

// --- dispatch layout
// ------------------------------------------------------------------------------ Kernel 1: one
// thread per token, kLayoutTokensPerBlock tokens per block. Shared-memory histograms of experts,
// ranks (tokens touching the rank) and nodes (tokens touching the node), written as one partial row
// per block; and per warp (32 tokens) one bit word per rank: bit l = token l of the warp sends to
// the rank. Kernel 2: one warp per column sums the partial rows in block order into the outputs,
// and turns the rank columns into exclusive prefixes over blocks. Kernel 3: one block per token
// block writes is_token_in_rank and the send offsets from the bit words, coalesced over
// [token][rank].

__global__ void layout_count_kernel(const int32_t* __restrict__ ids, int num_tokens, int top_k,
                                    int num_experts, int num_ranks, int num_nodes,
                                    int experts_per_rank, int ranks_per_node,
                                    int32_t* __restrict__ partial, uint32_t* __restrict__ words) {
  extern __shared__ int histogram[];  // [E + R + N]
  const int columns = num_experts + num_ranks + num_nodes;
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  for (int i = tid; i < columns; i += kLayoutTokensPerBlock) histogram[i] = 0;
  __syncthreads();

  const int token = static_cast<int>(blockIdx.x) * kLayoutTokensPerBlock + tid;
  const bool valid = token < num_tokens;
  const int32_t* row = ids + static_cast<size_t>(valid ? token : 0) * top_k;
  if (valid) {
    for (int k = 0; k < top_k; ++k) {
      const int id = row[k];
      if (id >= 0 && id < num_experts) atomicAdd(&histogram[id], 1);
    }
  }
  const size_t chunk = static_cast<size_t>(blockIdx.x) * kLayoutWarps + warp;
  // Ranks, 32 at a time: a mask of the ranks [r0, r0 + 32) this token touches, then one ballot per
  // rank gives the warp's bit word; lane j keeps the word of rank r0 + j.
  for (int r0 = 0; r0 < num_ranks; r0 += 32) {
    unsigned mask = 0;
    if (valid) {
      for (int k = 0; k < top_k; ++k) {
        const int rank = slot_rank(row[k], static_cast<uint32_t>(num_ranks),
                                   static_cast<uint32_t>(experts_per_rank));
        if (rank < 0) continue;
        const int offset = rank - r0;
        if (offset >= 0 && offset < 32) mask |= 1u << offset;
      }
    }
    const int width = min(32, num_ranks - r0);
    unsigned mine = 0;
    for (int j = 0; j < width; ++j) {
      const unsigned word = __ballot_sync(kAllLanes, (mask >> j) & 1u);
      if (lane == j) mine = word;
    }
    if (lane < width) {
      words[chunk * num_ranks + r0 + lane] = mine;
      if (mine != 0) atomicAdd(&histogram[num_experts + r0 + lane], __popc(mine));
    }
  }
  // Nodes, 32 at a time, the same way (only the counts are kept).
  for (int n0 = 0; n0 < num_nodes; n0 += 32) {
    unsigned mask = 0;
    if (valid) {
      for (int k = 0; k < top_k; ++k) {
        const int rank = slot_rank(row[k], static_cast<uint32_t>(num_ranks),
                                   static_cast<uint32_t>(experts_per_rank));
        if (rank < 0) continue;
        const int offset = rank / ranks_per_node - n0;
        if (offset >= 0 && offset < 32) mask |= 1u << offset;
      }
    }
    const int width = min(32, num_nodes - n0);
    for (int j = 0; j < width; ++j) {
      const unsigned word = __ballot_sync(kAllLanes, (mask >> j) & 1u);
      if (lane == 0 && word != 0) {
        atomicAdd(&histogram[num_experts + num_ranks + n0 + j], __popc(word));
      }
    }
  }
  __syncthreads();
  int32_t* out = partial + static_cast<size_t>(blockIdx.x) * columns;
  for (int i = tid; i < columns; i += kLayoutTokensPerBlock) out[i] = histogram[i];
}

__global__ void layout_reduce_kernel(int32_t* __restrict__ partial, int blocks, int num_experts,
                                     int num_ranks, int num_nodes,
                                     int32_t* __restrict__ tokens_per_expert,
                                     int32_t* __restrict__ tokens_per_rank,
                                     int32_t* __restrict__ tokens_per_node) {
  const int columns = num_experts + num_ranks + num_nodes;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int column = static_cast<int>((blockIdx.x * blockDim.x + threadIdx.x) / 32);
  if (column >= columns) return;  // whole warps leave together
  const bool is_rank = column >= num_experts && column < num_experts + num_ranks;
  const int total = warp_column_scan(partial, blocks, columns, column, is_rank, lane);
  if (lane != 0) return;
  if (column < num_experts) {
    tokens_per_expert[column] = total;
  } else if (is_rank) {
    tokens_per_rank[column - num_experts] = total;
  } else {
    tokens_per_node[column - num_experts - num_ranks] = total;
  }
}

__global__ void layout_rows_kernel(int num_tokens, int num_experts, int num_ranks, int columns,
                                   const int32_t* __restrict__ rank_prefix,  // partial table
                                   const uint32_t* __restrict__ words,
                                   const int32_t* __restrict__ tokens_per_rank,
                                   uint8_t* __restrict__ is_token_in_rank,
                                   int32_t* __restrict__ send_offsets) {
  extern __shared__ int shared[];
  int* start = shared;                                              // [R]
  auto* word_of = reinterpret_cast<unsigned*>(shared + num_ranks);  // [4][R]
  int* base_of = shared + num_ranks + kLayoutWarps * num_ranks;     // [4][R]
  const int tid = static_cast<int>(threadIdx.x);
  const int block = static_cast<int>(blockIdx.x);
  if (send_offsets != nullptr) {
    for (int r = tid; r < num_ranks; r += blockDim.x) start[r] = tokens_per_rank[r];
    __syncthreads();
    block_exclusive_scan(start, num_ranks);
  }
  for (int r = tid; r < num_ranks; r += blockDim.x) {
    int running =
        send_offsets != nullptr
            ? start[r] + rank_prefix[static_cast<size_t>(block) * columns + num_experts + r]
            : 0;
    for (int c = 0; c < kLayoutWarps; ++c) {
      const unsigned word = words[(static_cast<size_t>(block) * kLayoutWarps + c) * num_ranks + r];
      word_of[c * num_ranks + r] = word;
      base_of[c * num_ranks + r] = running;
      running += __popc(word);
    }
  }
  __syncthreads();
  const int first_token = block * kLayoutTokensPerBlock;
  const int tokens = min(kLayoutTokensPerBlock, num_tokens - first_token);
  const int cells = tokens * num_ranks;
  const size_t first_cell = static_cast<size_t>(first_token) * num_ranks;
  for (int cell = tid; cell < cells; cell += blockDim.x) {
    const int local = cell / num_ranks;
    const int r = cell - local * num_ranks;
    const int c = local >> 5;
    const int lane = local & 31;
    const unsigned word = word_of[c * num_ranks + r];
    const bool in_rank = ((word >> lane) & 1u) != 0;
    is_token_in_rank[first_cell + cell] = in_rank ? 1 : 0;
    if (send_offsets != nullptr) {
      send_offsets[first_cell + cell] =
          in_rank ? base_of[c * num_ranks + r] + __popc(word & lanemask_lt(lane)) : -1;
    }
  }
}

// --- expert sort
// ---------------------------------------------------------------------------------- Kernel 1: per
// chunk of kSortPairsPerChunk (token, slot) pairs, an expert histogram. Kernel 2: one warp per
// expert: totals, and the chunk counts turned into exclusive prefixes. Kernel 3: every block scans
// the padded totals into segment starts (shared memory); all threads fill padding entries of
// sorted_ids and block_experts (grid-stride); then warp 0 of block b ranks chunk b's pairs in order
// (match_any groups equal experts in a 32-pair step, the lowest lane advances the cursor), so that
// within an expert pairs stay in (token, slot) order.

__global__ void sort_count_kernel(const int32_t* __restrict__ ids, int pairs, int num_experts,
                                  int32_t* __restrict__ partial) {
  extern __shared__ int histogram[];  // [E]
  const int tid = static_cast<int>(threadIdx.x);
  for (int e = tid; e < num_experts; e += kCountThreads) histogram[e] = 0;
  __syncthreads();
  // 64-bit indices: near the 2^31 pair limit, begin + kSortPairsPerChunk and i + kCountThreads
  // would overflow int.
  const long long begin = static_cast<long long>(blockIdx.x) * kSortPairsPerChunk;
  const long long end = min(static_cast<long long>(pairs), begin + kSortPairsPerChunk);
  for (long long i = begin + tid; i < end; i += kCountThreads) {
    const int id = ids[i];
    if (id >= 0 && id < num_experts) atomicAdd(&histogram[id], 1);
  }
  __syncthreads();
  int32_t* out = partial + static_cast<size_t>(blockIdx.x) * num_experts;
  for (int e = tid; e < num_experts; e += kCountThreads) out[e] = histogram[e];
}

__global__ void sort_prefix_kernel(int32_t* __restrict__ partial, int chunks, int num_experts,
                                   int32_t* __restrict__ totals) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int expert = static_cast<int>((blockIdx.x * blockDim.x + threadIdx.x) / 32);
  if (expert >= num_experts) return;
  const int total = warp_column_scan(partial, chunks, num_experts, expert, true, lane);
  if (lane == 0) totals[expert] = total;
}

// Index of the segment holding position s: the last e with start[e] <= s (start has E + 1
// entries, start[0] = 0 <= s).
__device__ int segment_of(const int* start, int num_experts, int s) {
  int low = 0;
  int high = num_experts;  // answer in [low, high)
  while (high - low > 1) {
    const int mid = (low + high) / 2;
    if (start[mid] <= s) {
      low = mid;
    } else {
      high = mid;
    }
  }
  return low;
}

__global__ void sort_scatter_kernel(
    const int32_t* __restrict__ ids, int pairs, int num_experts, int block_size, int capacity,
    int chunks, const int32_t* __restrict__ prefix, const int32_t* __restrict__ totals,
    int32_t* __restrict__ sorted_ids, int32_t* __restrict__ block_experts,
    int32_t* __restrict__ expert_offsets, int32_t* __restrict__ inverse,
    int32_t* __restrict__ total_padded) {
  extern __shared__ int start[];  // [E + 1]
  const int tid = static_cast<int>(threadIdx.x);
  for (int e = tid; e < num_experts; e += blockDim.x) {
    start[e] = (totals[e] + block_size - 1) / block_size * block_size;
  }
  __syncthreads();
  const int total = block_exclusive_scan(start, num_experts);
  if (tid == 0) start[num_experts] = total;
  __syncthreads();
  if (blockIdx.x == 0) {
    for (int e = tid; e <= num_experts; e += blockDim.x) expert_offsets[e] = start[e];
    if (tid == 0) *total_padded = total;
  }
  // Padding: entries past the end of their segment's pairs, and everything from `total` on.
  // 64-bit loop index: near the 2^31 capacity limit, s + stride would overflow int. Inside the
  // loop s < capacity, so it fits an int.
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long s64 = static_cast<long long>(blockIdx.x) * blockDim.x + tid; s64 < capacity;
       s64 += stride) {
    const int s = static_cast<int>(s64);
    int expert = -1;
    if (s < total) expert = segment_of(start, num_experts, s);
    if (expert < 0 || s - start[expert] >= totals[expert]) sorted_ids[s] = pairs;
    if (s % block_size == 0) block_experts[s / block_size] = expert;
  }
  if (static_cast<int>(blockIdx.x) >= chunks) return;
  // Cursor of each expert for this chunk: segment start + pairs of earlier chunks.
  __syncthreads();
  for (int e = tid; e < num_experts; e += blockDim.x) {
    start[e] += prefix[static_cast<size_t>(blockIdx.x) * num_experts + e];
  }
  __syncthreads();
  if (tid >= 32) return;
  const int lane = tid;
  const long long begin = static_cast<long long>(blockIdx.x) * kSortPairsPerChunk;
  const long long end = min(static_cast<long long>(pairs), begin + kSortPairsPerChunk);
  for (long long step = begin; step < end; step += 32) {
    const long long i = step + lane;
    int key = -1;
    if (i < end) {
      const int id = ids[i];
      key = (id >= 0 && id < num_experts) ? id : -1;
    }
    const unsigned peers = __match_any_sync(kAllLanes, key);
    const unsigned before = peers & lanemask_lt(lane);
    if (key >= 0) {
      const int position = start[key] + __popc(before);
      sorted_ids[position] = static_cast<int>(i);  // i < end <= pairs < 2^31
      inverse[i] = position;
    } else if (i < end) {
      inverse[i] = -1;
    }
    __syncwarp();
    if (key >= 0 && before == 0) start[key] += __popc(peers);
    __syncwarp();
  }
}

// --- permute / unpermute
// --------------------------------------------------------------------------

// Token-major permute: block (t, slice) reads its slice of token t's row once and writes it to
// each of the token's destination rows. Rows are moved as 16-byte vectors.
__global__ void permute_kernel(const uint4* __restrict__ input, int top_k, int vectors_per_row,
                               const int32_t* __restrict__ inverse, int output_rows,
                               uint4* __restrict__ output) {
  const size_t token = blockIdx.x;
  const int first = (static_cast<int>(blockIdx.y) * kRowThreads * kPermuteVectorsPerThread) +
                    static_cast<int>(threadIdx.x);
  uint4 values[kPermuteVectorsPerThread] = {};
#pragma unroll
  for (int j = 0; j < kPermuteVectorsPerThread; ++j) {
    const int v = first + j * kRowThreads;
    if (v < vectors_per_row) values[j] = input[token * vectors_per_row + v];
  }
  const int32_t* destinations = inverse + token * top_k;
  for (int k = 0; k < top_k; ++k) {
    const int row = destinations[k];
    if (row < 0 || row >= output_rows) continue;
    uint4* out = output + static_cast<size_t>(row) * vectors_per_row;
#pragma unroll
    for (int j = 0; j < kPermuteVectorsPerThread; ++j) {
      const int v = first + j * kRowThreads;
      if (v < vectors_per_row) out[v] = values[j];
    }
  }
}

// Unpermute: thread (t, v) sums w[t][k] * permuted[inverse[t][k]][v] over k = 0..K-1 in order, in
// float32 with separate rounded multiply and add (no FMA contraction, like the CPU reference),
// then rounds once to the row type.
template <typename Element>
__global__ void unpermute_kernel(const uint4* __restrict__ permuted, int top_k, int vectors_per_row,
                                 const int32_t* __restrict__ inverse,
                                 const float* __restrict__ weights, int permuted_rows,
                                 uint4* __restrict__ output) {
  using Vector = RowVector<Element>;
  constexpr int kGroup = 4;  // loads in flight per thread
  const size_t token = blockIdx.x;
  const int v = static_cast<int>(blockIdx.y) * kRowThreads + static_cast<int>(threadIdx.x);
  if (v >= vectors_per_row) return;
  float sum[Vector::kCount];  // -0: the additive identity, as in the reference
#pragma unroll
  for (int i = 0; i < Vector::kCount; ++i) sum[i] = -0.0f;
  bool any = false;
  const int32_t* rows = inverse + token * top_k;
  const float* token_weights = weights + token * top_k;
  for (int k0 = 0; k0 < top_k; k0 += kGroup) {
    uint4 loaded[kGroup] = {};
    bool present[kGroup] = {};
#pragma unroll
    for (int j = 0; j < kGroup; ++j) {
      const int k = k0 + j;
      const int row = k < top_k ? rows[k] : -1;
      present[j] = row >= 0 && row < permuted_rows;
      if (present[j]) loaded[j] = permuted[static_cast<size_t>(row) * vectors_per_row + v];
    }
#pragma unroll
    for (int j = 0; j < kGroup; ++j) {
      if (!present[j]) continue;
      any = true;
      const float weight = token_weights[k0 + j];
      float x[Vector::kCount];
      Vector::unpack(loaded[j], x);
#pragma unroll
      for (int i = 0; i < Vector::kCount; ++i) sum[i] = __fadd_rn(sum[i], __fmul_rn(weight, x[i]));
    }
  }
  if (!any) {
#pragma unroll
    for (int i = 0; i < Vector::kCount; ++i) sum[i] = 0.0f;
  }
  output[token * vectors_per_row + v] = Vector::pack(sum);
}

}  // namespace

void launch_dispatch_layout(const LayoutArgs& a, void* stream_handle) {
  const cudaStream_t stream = as_stream(stream_handle);
  const int tokens = static_cast<int>(a.num_tokens);
  const int experts = static_cast<int>(a.num_experts);
  const int ranks = static_cast<int>(a.num_ranks);
  const int nodes = static_cast<int>(a.num_nodes);
  const int columns = experts + ranks + nodes;
  const int blocks = (tokens + kLayoutTokensPerBlock - 1) / kLayoutTokensPerBlock;
  auto* partial = static_cast<int32_t*>(a.workspace);
  auto* words = reinterpret_cast<uint32_t*>(partial + static_cast<size_t>(blocks) * columns);
  if (blocks > 0) {
    layout_count_kernel<<<blocks, kLayoutTokensPerBlock, sizeof(int) * columns, stream>>>(
        a.topk_ids, tokens, static_cast<int>(a.top_k), experts, ranks, nodes, experts / ranks,
        ranks / nodes, partial, words);
    check_launch("dispatch_layout count kernel");
  }
  const int reduce_threads = 256;
  const int reduce_blocks = (columns * 32 + reduce_threads - 1) / reduce_threads;
  layout_reduce_kernel<<<reduce_blocks, reduce_threads, 0, stream>>>(
      partial, blocks, experts, ranks, nodes, a.tokens_per_expert, a.tokens_per_rank,
      a.tokens_per_node);
  check_launch("dispatch_layout reduce kernel");
  if (blocks > 0) {
    const size_t shared = sizeof(int) * static_cast<size_t>(ranks) * (1 + 2 * kLayoutWarps);
    layout_rows_kernel<<<blocks, kLayoutTokensPerBlock, shared, stream>>>(
        tokens, experts, ranks, columns, partial, words, a.tokens_per_rank, a.is_token_in_rank,
        a.send_offsets);
    check_launch("dispatch_layout rows kernel");
  }
}

void launch_expert_sort(const SortArgs& a, void* stream_handle) {
  const cudaStream_t stream = as_stream(stream_handle);
  const int pairs = static_cast<int>(a.num_tokens * a.top_k);
  const int experts = static_cast<int>(a.num_experts);
  const int chunks = static_cast<int>((static_cast<long long>(pairs) + kSortPairsPerChunk - 1) /
                                      kSortPairsPerChunk);
  auto* partial = static_cast<int32_t*>(a.workspace);
  int32_t* totals = partial + static_cast<size_t>(chunks) * experts;
  if (chunks > 0) {
    sort_count_kernel<<<chunks, kCountThreads, sizeof(int) * experts, stream>>>(a.topk_ids, pairs,
                                                                                experts, partial);
    check_launch("expert_sort count kernel");
  }
  const int prefix_threads = 256;
  const int prefix_blocks = (experts * 32 + prefix_threads - 1) / prefix_threads;
  sort_prefix_kernel<<<prefix_blocks, prefix_threads, 0, stream>>>(partial, chunks, experts,
                                                                   totals);
  check_launch("expert_sort prefix kernel");
  const int capacity = static_cast<int>(a.capacity);
  const int fill_blocks = static_cast<int>(
      (static_cast<long long>(capacity) + kScatterThreads * 8 - 1) / (kScatterThreads * 8));
  const int scatter_blocks = std::max({chunks, std::min(fill_blocks, 1024), 1});
  sort_scatter_kernel<<<scatter_blocks, kScatterThreads, sizeof(int) * (experts + 1), stream>>>(
      a.topk_ids, pairs, experts, static_cast<int>(a.block_size), capacity, chunks, partial, totals,
      a.sorted_ids, a.block_experts, a.expert_offsets, a.inverse, a.total_padded);
  check_launch("expert_sort scatter kernel");
}

void launch_permute(const PermuteArgs& a, void* stream_handle) {
  if (a.num_tokens == 0) return;
  const int vectors = static_cast<int>(a.hidden * row_dtype_bytes(a.dtype) / 16);
  const int per_block = kRowThreads * kPermuteVectorsPerThread;
  const dim3 grid(static_cast<unsigned>(a.num_tokens),
                  static_cast<unsigned>((vectors + per_block - 1) / per_block));
  permute_kernel<<<grid, kRowThreads, 0, as_stream(stream_handle)>>>(
      static_cast<const uint4*>(a.input), static_cast<int>(a.top_k), vectors, a.inverse,
      static_cast<int>(a.output_rows), static_cast<uint4*>(a.output));
  check_launch("permute kernel");
}

void launch_unpermute(const UnpermuteArgs& a, void* stream_handle) {
  if (a.num_tokens == 0) return;
  const int vectors = static_cast<int>(a.hidden * row_dtype_bytes(a.dtype) / 16);
  const dim3 grid(static_cast<unsigned>(a.num_tokens),
                  static_cast<unsigned>((vectors + kRowThreads - 1) / kRowThreads));
  const cudaStream_t stream = as_stream(stream_handle);
  const auto* permuted = static_cast<const uint4*>(a.permuted);
  auto* output = static_cast<uint4*>(a.output);
  const int top_k = static_cast<int>(a.top_k);
  const int rows = static_cast<int>(a.permuted_rows);
  switch (a.dtype) {
    case RowDtype::float32:
      unpermute_kernel<float><<<grid, kRowThreads, 0, stream>>>(permuted, top_k, vectors, a.inverse,
                                                                a.weights, rows, output);
      break;
    case RowDtype::float16:
      unpermute_kernel<__half><<<grid, kRowThreads, 0, stream>>>(
          permuted, top_k, vectors, a.inverse, a.weights, rows, output);
      break;
    case RowDtype::bfloat16:
      unpermute_kernel<__nv_bfloat16><<<grid, kRowThreads, 0, stream>>>(
          permuted, top_k, vectors, a.inverse, a.weights, rows, output);
      break;
  }
  check_launch("unpermute kernel");
}

}  // namespace eplb::kernels
