// The device-side steps of the NCCL token dispatch and combine (issue #8 item 5), behind a
// CUDA-free interface: pack a rank's tokens into one block per destination rank, read the counts
// a rank received out of the gathered count messages, and sum the partial outputs that come back
// into each token's result. The exchange between them (nccl/token_exchange.hpp) is grouped
// send/recv; the layout that tells which token goes where is the dispatch layout kernel's
// (dispatch.hpp) `tokens_per_rank` and `send_offsets`.
//
// Each step has an argument struct, a CPU reference (token_exchange_cpu.cpp, the semantics the
// tests check) and a launcher (token_exchange.cu, only in builds with CUDA). The callers are
// library code that sized every buffer itself, so there is no public validation here; the
// exchange validates what users pass.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dispatch.hpp"

#if defined(__CUDACC__)
#define EPLB_EXCHANGE_HD __host__ __device__ __forceinline__
#else
#define EPLB_EXCHANGE_HD inline
#endif

namespace eplb::kernels {

// Where entry (token t, destination rank r) goes in the send blocks, or -1 when the token does
// not go to r or (padded) its position is beyond the capacity. `send_offsets` is the layout's
// rank-major position p; exact blocks are packed back to back (row p), padded ones are slabs of
// `capacity` rows (row r * capacity + p - start[r], start = exclusive prefix of tokens_per_rank).
// Shared by the CPU references and the kernels.
struct ExchangeGeometry {
  size_t num_tokens = 0;
  uint32_t num_ranks = 0;
  uint32_t slots_per_rank = 0;
  size_t top_k = 0;
  uint32_t capacity = 0;                     // 0: exact
  const int32_t* tokens_per_rank = nullptr;  // [num_ranks], from the layout
  const int32_t* send_offsets = nullptr;     // [num_tokens][num_ranks], from the layout
};

struct TokenPackArgs {
  ExchangeGeometry geometry;
  const int32_t* topk_slots = nullptr;  // [num_tokens][top_k] slots (dispatch_rules.hpp)
  const float* topk_weights = nullptr;  // [num_tokens][top_k]
  const void* rows = nullptr;           // [num_tokens][row_bytes], 16-byte aligned
  size_t row_bytes = 0;                 // a multiple of 16
  uint32_t recv_capacity = 0;           // this rank's receive rows, the count message's last entry
  void* send_rows = nullptr;            // [send rows][row_bytes]
  int32_t* send_slots = nullptr;        // [send rows][top_k]: slot_local on the rank, or -1
  float* send_weights = nullptr;        // [send rows][top_k]: the weight or 0
  int32_t* count_message = nullptr;     // [num_ranks + 1]: tokens sent to each rank, recv_capacity
  int32_t* dropped = nullptr;           // [1] or NULL: tokens beyond capacity (padded)
};

// Packs: for every token and destination, its row, its slots as destination-local indices (-1
// for slots elsewhere) and its weights (0 elsewhere); padded slabs have their unused rows' slots
// set to -1 and weights to 0 (their row bytes are left as they are). Writes the count message and
// the dropped count.
void token_pack_cpu(const TokenPackArgs& args);
void launch_token_pack(const TokenPackArgs& args, void* stream);  // token_exchange.cu

struct RecvCountsArgs {
  const int32_t* gathered = nullptr;  // [num_ranks][num_ranks + 1]: every rank's count message
  uint32_t num_ranks = 0;
  uint32_t rank = 0;               // this rank
  int32_t* recv_counts = nullptr;  // [num_ranks]: gathered[s][rank]
};
void recv_counts_cpu(const RecvCountsArgs& args);
void launch_recv_counts(const RecvCountsArgs& args, void* stream);  // token_exchange.cu

struct TokenCombineArgs {
  ExchangeGeometry geometry;
  const void* partial = nullptr;  // [send rows][hidden] of dtype: what each destination returned
  RowDtype dtype = RowDtype::float32;
  size_t hidden = 0;    // a multiple of 8
  void* out = nullptr;  // [num_tokens][hidden] of dtype
};

// out[t] = the sum, in ascending destination rank order and in float32, of the partial rows of
// token t's destinations (dropped entries skipped), rounded to dtype; zero for a token without
// destinations.
void token_combine_cpu(const TokenCombineArgs& args);
void launch_token_combine(const TokenCombineArgs& args, void* stream);  // token_exchange.cu

// Where (t, r) goes, or -1 (the rule of ExchangeGeometry); `start` is the exclusive prefix sum of
// tokens_per_rank at r. One definition for the CPU references and the kernels.
EPLB_EXCHANGE_HD int64_t exchange_row(const ExchangeGeometry& g, size_t t, uint32_t r,
                                      int64_t start) {
  const int32_t p = g.send_offsets[t * g.num_ranks + r];
  if (p < 0) return -1;
  if (g.capacity == 0) return p;
  const int64_t i = int64_t{p} - start;
  return i < int64_t{g.capacity} ? int64_t{r} * int64_t{g.capacity} + i : -1;
}

}  // namespace eplb::kernels
