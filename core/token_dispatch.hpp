// Portable token dispatch and combine for expert parallelism without DeepEP (issue #8): each
// token is sent once to every rank that holds one of its top-k physical slots, the ranks run
// their experts, and the results come back and are summed with the top-k weights. This is the
// logic every transport follows (the in-process CPU transport in the tests, NCCL grouped
// send/recv on a GPU), written once over MigrationTransport's send/recv/wait.
//
// Messages, per step, between every ordered pair of ranks (self included, in ascending peer
// order, so that NCCL's in-order matching pairs them):
//   dispatch: a count (uint32: tokens the sender sends the receiver), then one packed block of
//             rows [n][row_bytes], local slots [n][top_k] (int32, -1 where the slot is on
//             another rank) and weights [n][top_k] (float32, 0 where the slot is elsewhere);
//   combine:  the receiver's partial outputs [n][hidden] (float32), back to the sender.
// The exact variant waits for the counts before posting the blocks (on a GPU that is a host
// synchronisation); the padded variant (capacity > 0) posts blocks of `capacity` tokens at once,
// so the sizes of every message are fixed and a CUDA graph can capture the exchange.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "migration_exchange.hpp"

namespace eplb {

struct DispatchShape {
  std::uint32_t num_ranks = 0;       // ranks of the expert-parallel group
  std::uint32_t slots_per_rank = 0;  // physical slot s lives on rank s / slots_per_rank
  std::uint32_t top_k = 0;           // slots per token
  std::size_t row_bytes = 0;         // bytes of one token row (e.g. hidden * 2 for bf16)
  std::size_t hidden = 0;            // floats of one combine output row
  std::uint32_t capacity = 0;        // 0: exact sizes; > 0: padded, at most this many tokens
                                     // per rank and step (the same on every rank)

  // Throws Error(invalid_argument) naming a zero field or an overflowing size.
  void validate() const;
};

// One rank's send side, from its own tokens: which tokens go to which rank.
struct DispatchPlan {
  std::vector<std::uint32_t> offsets;  // [num_ranks + 1] into tokens
  std::vector<std::uint32_t> tokens;   // per destination rank, ascending token ids
  [[nodiscard]] std::uint32_t count(std::uint32_t rank) const {
    return offsets[rank + 1] - offsets[rank];
  }
};

// Builds the plan from `topk_slots` [num_tokens][top_k] (physical slots, -1 = unused). Throws
// Error(invalid_argument) for a slot outside [-1, num_ranks * slots_per_rank), a length that is
// not num_tokens * top_k, or more than `capacity` tokens in the padded variant.
[[nodiscard]] DispatchPlan plan_dispatch(const DispatchShape& shape,
                                         std::span<const std::int32_t> topk_slots,
                                         std::size_t num_tokens);

// What a rank received in a dispatch, ordered by source rank, then by the source's token order.
struct ReceivedTokens {
  std::vector<std::uint32_t> offsets;     // [num_ranks + 1] by source rank
  std::vector<std::byte> rows;            // [n][row_bytes]
  std::vector<std::int32_t> local_slots;  // [n][top_k]: this rank's slot index or -1
  std::vector<float> weights;             // [n][top_k]
  [[nodiscard]] std::size_t size() const { return offsets.empty() ? 0 : offsets.back(); }
};

// Sends this rank's tokens (`rows` [num_tokens][row_bytes], `topk_slots` and `topk_weights`
// [num_tokens][top_k]) to the ranks of `plan` and receives the others'. Every rank of the group
// calls it with its own tokens. Throws Error(invalid_argument) on inconsistent lengths.
[[nodiscard]] ReceivedTokens dispatch_tokens(const DispatchShape& shape, const DispatchPlan& plan,
                                             std::span<const std::int32_t> topk_slots,
                                             std::span<const float> topk_weights,
                                             std::span<const std::byte> rows,
                                             MigrationTransport& transport);

// Returns the partial outputs `expert_out` [received.size()][hidden] (one row per received token:
// the weighted sum of this rank's experts for it, computed by the caller) to their senders, and
// writes `out` [num_tokens][hidden]: for each token, the sum of the partial rows from its
// destination ranks in ascending rank order (so results are deterministic), zero for a token with
// no valid slot. Every rank of the group calls it after its dispatch_tokens.
void combine_tokens(const DispatchShape& shape, const DispatchPlan& plan,
                    const ReceivedTokens& received, std::span<const float> expert_out,
                    std::span<float> out, MigrationTransport& transport);

}  // namespace eplb
