// Token dispatch and combine for expert parallelism without DeepEP (issue #8 item 5): each token
// goes once to every rank that holds one of its top-k physical slots, the ranks run their experts,
// and the results come back and are summed per token. This is the step logic, written once over
// MigrationTransport and a TokenExchangeDevice: the NCCL path runs it with grouped
// ncclSend/ncclRecv and the CUDA kernels on a stream (device_token_exchange.cpp); the tests run it
// over the in-process transport with the CPU references, one thread per rank. No CUDA here.
//
// A dispatch, on every rank of the group:
//   1. the dispatch layout kernel (one node, num_ranks * slots_per_rank physical slots): each
//      token's destination ranks and its position in each destination's block;
//   2. the pack kernel: each token's row, destination-local slots and weights into the block of
//      each of its destinations;
//   3. the count messages: every rank sends every rank (itself included) its counts per
//      destination plus its receive capacity, so every rank knows the whole count matrix;
//   4. exact variant (capacity 0): the matrix is read on the host (a host synchronisation), a rank
//      whose receive buffer is too small fails the call on every rank alike, and each block is
//      sent with its exact size into the receiver's arrays, ordered by source rank; padded
//      variant (capacity > 0): every block is a slab of `capacity` rows, posted in the same group
//      as the counts, so message sizes are fixed and a CUDA graph can capture the dispatch;
//      tokens beyond the capacity of a (source, destination) pair are dropped and counted.
// A combine sends each source its rows of the caller's expert output back (exact sizes, or the
// slabs) and sums, per token, the rows from its destinations in ascending rank order.
// Messages between a pair of ranks are posted in one order on both sides (NCCL matches in order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "../kernels/dispatch.hpp"
#include "../kernels/token_exchange.hpp"
#include "migration_exchange.hpp"

namespace eplb::nccl {

// The same on every rank apart from `rank` (the NCCL path checks that across ranks).
struct TokenExchangeShape {
  std::uint32_t num_ranks = 0;
  std::uint32_t rank = 0;
  std::uint32_t slots_per_rank = 0;  // physical slot s lives on rank s / slots_per_rank
  std::uint32_t top_k = 0;
  std::size_t row_bytes = 0;  // bytes of a dispatched row, a positive multiple of 16
  std::size_t hidden = 0;     // elements of a combine row, a positive multiple of 8, <= 2^24
  kernels::RowDtype out_dtype = kernels::RowDtype::float32;
  std::uint32_t max_tokens = 0;  // most tokens one dispatch sends from this rank
  std::uint32_t capacity = 0;    // 0: exact sizes; > 0: padded, rows per source and destination

  // Throws Error(invalid_argument) naming the field.
  void validate() const;
  // Rows of the send blocks (and of the returned partial outputs): num_ranks * capacity padded,
  // max_tokens * min(num_ranks, top_k) exact.
  [[nodiscard]] std::size_t send_rows() const;
  // Receive rows a padded dispatch needs: num_ranks * capacity (0 for exact).
  [[nodiscard]] std::size_t padded_recv_rows() const;
  [[nodiscard]] std::size_t out_row_bytes() const;  // hidden * the size of out_dtype
};

// The exchange's own buffers: device memory on a GPU, host memory in the CPU tests. Made by
// carve() from one allocation of bytes() (every buffer 256-byte aligned).
struct TokenExchangeBuffers {
  std::int32_t* tokens_per_expert = nullptr;  // layout outputs
  std::int32_t* tokens_per_rank = nullptr;
  std::int32_t* tokens_per_node = nullptr;
  std::uint8_t* is_token_in_rank = nullptr;
  std::int32_t* send_offsets = nullptr;
  void* layout_workspace = nullptr;
  std::size_t layout_workspace_bytes = 0;
  void* send_rows = nullptr;  // pack outputs
  std::int32_t* send_slots = nullptr;
  float* send_weights = nullptr;
  std::int32_t* count_message = nullptr;  // [num_ranks + 1]
  std::int32_t* gathered = nullptr;       // [num_ranks][num_ranks + 1]
  void* partial = nullptr;                // [send_rows][hidden] of out_dtype

  // Bytes of one allocation holding every buffer of `shape`. Throws Error(out_of_memory) when
  // that overflows.
  [[nodiscard]] static std::size_t bytes(const TokenExchangeShape& shape);
  // The buffers within `base` (bytes(shape) long, 256-byte aligned).
  [[nodiscard]] static TokenExchangeBuffers carve(const TokenExchangeShape& shape, void* base);
};

// The device steps: the CPU references (CpuTokenExchangeDevice) or kernel launches on a stream.
class TokenExchangeDevice {
 public:
  virtual ~TokenExchangeDevice() = default;
  virtual void layout(const kernels::LayoutArgs& args) = 0;
  virtual void pack(const kernels::TokenPackArgs& args) = 0;
  virtual void recv_counts(const kernels::RecvCountsArgs& args) = 0;
  virtual void combine(const kernels::TokenCombineArgs& args) = 0;
  // Copies `from` into host memory `to` once the work before it is done (a host synchronisation
  // on a GPU).
  virtual void read(std::span<std::int32_t> to, const std::int32_t* from) = 0;
  // Throws Error(invalid_argument) naming `name` unless `pointer` is memory the steps can use.
  virtual void require_memory(const void* pointer, const char* name) = 0;
};

class CpuTokenExchangeDevice final : public TokenExchangeDevice {
 public:
  void layout(const kernels::LayoutArgs& args) override;
  void pack(const kernels::TokenPackArgs& args) override;
  void recv_counts(const kernels::RecvCountsArgs& args) override;
  void combine(const kernels::TokenCombineArgs& args) override;
  void read(std::span<std::int32_t> to, const std::int32_t* from) override;
  void require_memory(const void* pointer, const char* name) override;
};

// One dispatch's inputs (this rank's tokens) and receive arrays.
struct DispatchRequest {
  std::size_t num_tokens = 0;                // <= shape.max_tokens
  const std::int32_t* topk_slots = nullptr;  // [num_tokens][top_k]; slots_per_rank * num_ranks
                                             // + r is the shared expert on rank r (local slot
                                             // slots_per_rank); -1 and ids beyond are not sent
  const float* topk_weights = nullptr;       // [num_tokens][top_k]
  const void* rows = nullptr;                // [num_tokens][row_bytes], 16-byte aligned
  void* recv_rows = nullptr;                 // [recv_capacity][row_bytes], 16-byte aligned
  std::int32_t* recv_slots = nullptr;        // [recv_capacity][top_k]
  float* recv_weights = nullptr;             // [recv_capacity][top_k]
  std::int32_t* recv_counts = nullptr;       // [num_ranks]: tokens from each source
  std::uint64_t recv_capacity = 0;           // rows of the receive arrays
  std::int32_t* dropped = nullptr;           // optional [1]: tokens over capacity (padded)
};

// The state of one rank's exchange between a dispatch and its combine. Not thread-safe.
class TokenExchange {
 public:
  TokenExchange(const TokenExchangeShape& shape, const TokenExchangeBuffers& buffers);

  // Runs a dispatch (see the file comment). Returns the receive rows in use: the tokens received
  // (exact) or num_ranks * capacity (padded: source s's tokens are rows [s * capacity, s *
  // capacity + recv_counts[s]), the rest of its slab has no slots). Throws Error
  // (invalid_argument) for bad arguments, before any message; Error(buffer_too_small) on every
  // rank when a rank's receive capacity is too small (exact variant), after the count messages.
  std::uint64_t dispatch(const DispatchRequest& request, TokenExchangeDevice& device,
                         MigrationTransport& transport);

  // Returns `expert_out` ([expert_out_rows][hidden] of out_dtype: one row per receive row of the
  // last dispatch, the caller's weighted expert output) to the sources, and writes `out`
  // ([num_tokens of that dispatch][hidden] of out_dtype). Throws Error(invalid_argument) when no
  // dispatch came before, or for bad arguments.
  void combine(const void* expert_out, std::uint64_t expert_out_rows, void* out,
               TokenExchangeDevice& device, MigrationTransport& transport);

  [[nodiscard]] const TokenExchangeShape& shape() const { return shape_; }

 private:
  [[nodiscard]] kernels::ExchangeGeometry geometry(std::size_t num_tokens) const;
  // Exact variant: the count matrix on the host (rows: sources, columns: destinations).
  [[nodiscard]] std::int32_t sent(std::uint32_t from, std::uint32_t to) const;

  TokenExchangeShape shape_;
  TokenExchangeBuffers buffers_;
  std::vector<std::int32_t> gathered_;  // exact variant: the last dispatch's count matrix
  std::size_t num_tokens_ = 0;          // of the last dispatch
  std::uint64_t received_rows_ = 0;     // of the last dispatch
  bool dispatched_ = false;
};

}  // namespace eplb::nccl
