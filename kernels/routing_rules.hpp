// The per-token routing rules shared by the CPU references (routing_reference.cpp) and the CUDA
// kernels (routing.cu), written once as __host__ __device__ inline functions so that both sides
// compute bit-identical results. Plain C++ when not compiled by nvcc; no CUDA header.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define EPLB_HD __host__ __device__ __forceinline__
#else
#define EPLB_HD inline
#endif

namespace eplb::kernels {

// Mapping modes (the C API's EPLB_MAP_* values).
enum MapMode : std::uint32_t {
  map_static = 0,
  map_round_robin = 1,
  map_hash = 2,
  map_node_aware = 3,
  map_quota = 4,
};
inline constexpr std::uint32_t map_mode_count = 5;

// Limits of the kernels, checked on the host before any launch (same on the CPU references).
inline constexpr std::uint32_t max_top_k = 1024;
inline constexpr std::uint32_t max_node_aware_nodes = 64;  // node sets are 64-bit masks
inline constexpr std::uint32_t max_quota_experts = 1024;   // shared-memory counters per block
inline constexpr std::uint32_t max_pair_experts = 65535;   // pair indices fit in int32
inline constexpr std::uint32_t max_pair_top_k = 64;        // a token's ids live in registers

// A placement's lookup tables for one rank, as plain pointers (host or device memory).
struct TablesView {
  const std::int32_t* phy2log = nullptr;        // [L][P]
  const std::int32_t* replica_count = nullptr;  // [L][E]
  const std::int32_t* log2phy = nullptr;        // [L][E][width], -1 padded
  const std::int32_t* static_map = nullptr;     // [L][E]
  const std::uint64_t* node_mask = nullptr;     // [L][E], bit n: a replica on node n (<= 64 nodes)
  std::uint32_t num_layers = 0;
  std::uint32_t num_logical = 0;   // E
  std::uint32_t num_physical = 0;  // P
  std::uint32_t width = 0;         // log2phy row capacity (max replicas)
  std::uint32_t num_gpus = 0;
  std::uint32_t num_nodes = 0;
  std::uint32_t slots_per_gpu = 0;
  std::uint32_t gpus_per_node = 0;
  std::uint32_t gpu = 0;  // the rank these tables were built for
};

// Reads entry i of an int32 or int64 id array; the result is a valid expert id in [0, limit) or
// -1 (masked, negative or out of range).
EPLB_HD std::int32_t load_id(const void* ids, bool ids64, std::size_t i, std::uint32_t limit) {
  const std::int64_t v = ids64
                             ? static_cast<const std::int64_t*>(ids)[i]
                             : static_cast<std::int64_t>(static_cast<const std::int32_t*>(ids)[i]);
  return (v >= 0 && v < static_cast<std::int64_t>(limit)) ? static_cast<std::int32_t>(v) : -1;
}

EPLB_HD std::uint32_t popcount64(std::uint64_t x) {
#if defined(__CUDA_ARCH__)
  return static_cast<std::uint32_t>(__popcll(x));
#else
  return static_cast<std::uint32_t>(__builtin_popcountll(x));
#endif
}

// Index of the lowest set bit; x != 0.
EPLB_HD std::uint32_t lowest_bit(std::uint64_t x) {
#if defined(__CUDA_ARCH__)
  return static_cast<std::uint32_t>(__ffsll(static_cast<long long>(x)) - 1);
#else
  return static_cast<std::uint32_t>(__builtin_ctzll(x));
#endif
}

// SplitMix64's finaliser.
EPLB_HD std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// EPLB_MAP_HASH: replica index in [0, count) of entry `position` (token * top_k + slot).
EPLB_HD std::uint32_t hash_replica(std::uint64_t seed, std::uint32_t layer, std::uint64_t position,
                                   std::uint32_t expert, std::uint32_t count) {
  std::uint64_t h = mix64(seed ^ layer);
  h = mix64(h ^ position);
  h = mix64(h ^ expert);
  return static_cast<std::uint32_t>(((h >> 32) * count) >> 32);
}

EPLB_HD std::size_t expert_row(const TablesView& t, std::uint32_t layer, std::int32_t expert) {
  return static_cast<std::size_t>(layer) * t.num_logical + static_cast<std::uint32_t>(expert);
}

EPLB_HD std::uint32_t node_of_slot(const TablesView& t, std::int32_t slot) {
  return static_cast<std::uint32_t>(slot) / (t.slots_per_gpu * t.gpus_per_node);
}

// EPLB_MAP_QUOTA: the slot of the occurrence of `expert` whose rank among this batch's valid
// occurrences of it (in token-major order) is `rank`. Replica r (log2phy order) takes the ranks
// [Q_r, Q_r + quota_r) with Q the prefix sums of the quotas (negative quotas count as 0); ranks
// beyond the quotas' total go round-robin: replica rank % count.
EPLB_HD std::int32_t quota_slot(const TablesView& t, std::uint32_t layer, std::int32_t expert,
                                std::int64_t rank, const std::int32_t* quotas) {
  const std::size_t row = expert_row(t, layer, expert);
  const std::int32_t* slots = t.log2phy + row * t.width;
  const std::int32_t count = t.replica_count[row];
  std::int64_t end = 0;
  for (std::int32_t r = 0; r < count; ++r) {
    const std::int32_t q = quotas[slots[r]];
    end += q > 0 ? q : 0;
    if (rank < end) return slots[r];
  }
  return slots[rank % count];
}

// True when row[i] is the first occurrence of its (valid) id in the row.
EPLB_HD bool first_occurrence(const void* row_ids, bool ids64, std::size_t row_start,
                              std::uint32_t i, std::int32_t id, std::uint32_t limit) {
  for (std::uint32_t j = 0; j < i; ++j) {
    if (load_id(row_ids, ids64, row_start + j, limit) == id) return false;
  }
  return true;
}

// EPLB_MAP_NODE_AWARE, per token: the nodes chosen by the traffic metric's rule
// (core/traffic.hpp): experts with replicas on a single node fix that node (`fixed`); then,
// while some expert has no replica on a chosen node, the node holding replicas of the most such
// experts (lowest index on ties) is chosen next; picks[0..*num_picks) lists these in order.
// Returns the union of all chosen nodes.
EPLB_HD std::uint64_t node_aware_choice(const TablesView& t, std::uint32_t layer, const void* ids,
                                        bool ids64, std::size_t row_start, std::uint32_t top_k,
                                        std::uint64_t* fixed, std::uint8_t* picks,
                                        std::uint32_t* num_picks) {
  std::uint64_t chosen = 0;
  for (std::uint32_t i = 0; i < top_k; ++i) {
    const std::int32_t e = load_id(ids, ids64, row_start + i, t.num_logical);
    if (e < 0) continue;
    const std::uint64_t m = t.node_mask[expert_row(t, layer, e)];
    if (popcount64(m) == 1) chosen |= m;
  }
  *fixed = chosen;
  *num_picks = 0;
  while (true) {
    std::uint64_t open = 0;  // nodes holding an uncovered expert
    for (std::uint32_t i = 0; i < top_k; ++i) {
      const std::int32_t e = load_id(ids, ids64, row_start + i, t.num_logical);
      if (e < 0) continue;
      const std::uint64_t m = t.node_mask[expert_row(t, layer, e)];
      if ((m & chosen) == 0) open |= m;
    }
    if (open == 0) break;
    std::uint32_t best = 0;
    std::uint32_t best_votes = 0;
    for (std::uint64_t rest = open; rest != 0; rest &= rest - 1) {
      const std::uint32_t n = lowest_bit(rest);
      std::uint32_t votes = 0;
      for (std::uint32_t i = 0; i < top_k; ++i) {
        const std::int32_t e = load_id(ids, ids64, row_start + i, t.num_logical);
        if (e < 0) continue;
        const std::uint64_t m = t.node_mask[expert_row(t, layer, e)];
        if ((m & chosen) != 0 || ((m >> n) & 1u) == 0) continue;
        if (first_occurrence(ids, ids64, row_start, i, e, t.num_logical)) ++votes;
      }
      if (votes > best_votes) {  // ascending n: the lowest index wins ties
        best = n;
        best_votes = votes;
      }
    }
    picks[(*num_picks)++] = static_cast<std::uint8_t>(best);
    chosen |= std::uint64_t{1} << best;
  }
  return chosen;
}

// EPLB_MAP_NODE_AWARE, per entry: the node serving `expert` is the node that covered it: one of
// the fixed nodes if it has a replica there (the caller's node if possible, else the lowest),
// else the first pick holding a replica. Within that node: the replica on the caller's GPU if
// the node is the caller's and that GPU holds one, else the (position % m)-th of the expert's m
// replicas on that node in log2phy order.
EPLB_HD std::int32_t node_aware_slot(const TablesView& t, std::uint32_t layer, std::int32_t expert,
                                     std::uint64_t position, std::uint64_t fixed,
                                     const std::uint8_t* picks, std::uint32_t num_picks) {
  const std::size_t row = expert_row(t, layer, expert);
  const std::uint64_t mask = t.node_mask[row];
  const std::uint32_t my_node = t.gpu / t.gpus_per_node;
  std::uint32_t node = 0;
  const std::uint64_t fixed_here = mask & fixed;
  if (fixed_here != 0) {
    node = ((fixed_here >> my_node) & 1u) != 0 ? my_node : lowest_bit(fixed_here);
  } else {
    for (std::uint32_t p = 0; p < num_picks; ++p) {
      if (((mask >> picks[p]) & 1u) != 0) {
        node = picks[p];
        break;
      }
    }
  }
  const std::int32_t* slots = t.log2phy + row * t.width;
  const std::int32_t count = t.replica_count[row];
  std::uint32_t on_node = 0;
  for (std::int32_t r = 0; r < count; ++r) {
    if (node_of_slot(t, slots[r]) != node) continue;
    if (node == my_node && static_cast<std::uint32_t>(slots[r]) / t.slots_per_gpu == t.gpu) {
      return slots[r];
    }
    ++on_node;
  }
  std::uint32_t want = static_cast<std::uint32_t>(position % on_node);
  for (std::int32_t r = 0; r < count; ++r) {
    if (node_of_slot(t, slots[r]) != node) continue;
    if (want == 0) return slots[r];
    --want;
  }
  return slots[0];  // unreachable: `node` holds a replica
}

// EPLB_MAP_STATIC, EPLB_MAP_ROUND_ROBIN and EPLB_MAP_HASH for one valid entry.
EPLB_HD std::int32_t simple_slot(const TablesView& t, std::uint32_t mode, std::uint32_t layer,
                                 std::int32_t expert, std::uint64_t position, std::uint64_t seed) {
  const std::size_t row = expert_row(t, layer, expert);
  if (mode == map_static) return t.static_map[row];
  const std::uint32_t count = static_cast<std::uint32_t>(t.replica_count[row]);
  const std::uint32_t r =
      mode == map_round_robin
          ? static_cast<std::uint32_t>(position % count)
          : hash_replica(seed, layer, position, static_cast<std::uint32_t>(expert), count);
  return t.log2phy[row * t.width + r];
}

// Number of sampled rows of the co-activation counter: tokens offset, offset + stride, ... below
// num_tokens, at most capacity (0 when stride is 0).
EPLB_HD std::size_t sampled_rows(std::size_t num_tokens, std::uint32_t stride, std::uint32_t offset,
                                 std::uint32_t capacity) {
  if (stride == 0 || offset >= num_tokens) return 0;
  const std::size_t rows = (num_tokens - offset + stride - 1) / stride;
  return rows < capacity ? rows : capacity;
}

// Index of pair (a, b), a < b, in the packed upper triangle of E experts (core/tracker.hpp).
EPLB_HD std::int64_t pair_index(std::uint32_t num_experts, std::int32_t a, std::int32_t b) {
  const std::int64_t ea = a;
  return ea * (2 * static_cast<std::int64_t>(num_experts) - ea - 1) / 2 + (b - ea - 1);
}

}  // namespace eplb::kernels
