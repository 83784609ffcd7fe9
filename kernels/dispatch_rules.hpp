// Where a dispatched slot id goes, one rule for the dispatch layout, the token pack and their CPU
// references: a physical slot s in [0, num_ranks * slots_per_rank) lives on rank
// s / slots_per_rank as local slot s % slots_per_rank; the shared expert's slot
// num_ranks * slots_per_rank + r (what eplb_shared_expert_waterfill appends to a token's row)
// lives on rank r as local slot slots_per_rank, one past the rank's physical slots. Any other id
// (-1 = masked, out of range) goes nowhere.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define EPLB_DISPATCH_HD __host__ __device__ __forceinline__
#else
#define EPLB_DISPATCH_HD inline
#endif

namespace eplb::kernels {

// The rank `slot` is dispatched to, or -1.
EPLB_DISPATCH_HD int32_t slot_rank(int32_t slot, uint32_t num_ranks, uint32_t slots_per_rank) {
  if (slot < 0) return -1;
  const uint64_t s = static_cast<uint32_t>(slot);
  const uint64_t physical = static_cast<uint64_t>(num_ranks) * slots_per_rank;
  if (s < physical) return static_cast<int32_t>(static_cast<uint32_t>(s) / slots_per_rank);
  if (s - physical < num_ranks) return static_cast<int32_t>(s - physical);
  return -1;
}

// The local slot of `slot` on its rank (slots_per_rank for the shared expert), or -1.
EPLB_DISPATCH_HD int32_t slot_local(int32_t slot, uint32_t num_ranks, uint32_t slots_per_rank) {
  if (slot < 0) return -1;
  const uint64_t s = static_cast<uint32_t>(slot);
  const uint64_t physical = static_cast<uint64_t>(num_ranks) * slots_per_rank;
  if (s < physical) return static_cast<int32_t>(static_cast<uint32_t>(s) % slots_per_rank);
  if (s - physical < num_ranks) return static_cast<int32_t>(slots_per_rank);
  return -1;
}

}  // namespace eplb::kernels
