// The parallel shared-expert waterfill rule (eplb_kernel_shared_waterfill), the pieces shared by
// the CPU reference and the CUDA kernel so that both take bit-identical decisions. The rule is
// documented in eplb.h; in short: a water level over the GPUs gives each GPU a capacity; in
// rounds, every unplaced token proposes to one of its candidates (a fixed low-discrepancy
// position in its candidates' remaining capacity), and each GPU accepts its proposers in token
// order up to its capacity; tokens still unplaced take their least loaded candidate. (The code
// allows several phases, each recomputing the level; one is used.) Floating-point expressions avoid
// a*b+c so that contraction cannot change them.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define EPLB_WF_HD __host__ __device__
#else
#define EPLB_WF_HD
#endif

namespace eplb::kernels::waterfill {

inline constexpr int kPhases = 1;  // 2 phases x 3 rounds measured no better
inline constexpr int kRounds = 2;  // 1 round: up to 4.5 % worse max load
inline constexpr std::uint32_t kMaxGpus = 256;
inline constexpr std::int32_t kUnplaced = -2147483647 - 1;  // internal mark in the output column

// Calls f(g) for each distinct candidate GPU of a token, in order of first appearance among its
// valid slots (slot >= 0 and < num_physical), then its source GPU (source in [0, gpus), when not
// already seen). Returns whether the token has a valid slot.
template <typename F>
EPLB_WF_HD bool for_each_candidate(const std::int32_t* row, std::uint32_t top_k,
                                   std::int32_t source, std::int32_t slots_per_gpu,
                                   std::int32_t num_physical, std::int32_t gpus, F&& f) {
  bool any = false;
  bool source_seen = false;
  for (std::uint32_t i = 0; i < top_k; ++i) {
    const std::int32_t s = row[i];
    if (s < 0 || s >= num_physical) continue;
    any = true;
    const std::int32_t g = s / slots_per_gpu;
    const std::int32_t first = g * slots_per_gpu;  // GPU g holds slots [first, first + spg)
    bool dup = false;
    for (std::uint32_t j = 0; j < i && !dup; ++j) {
      const std::int32_t t = row[j];
      dup = t >= first && t < first + slots_per_gpu;
    }
    if (dup) continue;
    source_seen = source_seen || g == source;
    f(g);
  }
  if (any && !source_seen && source >= 0 && source < gpus) f(source);
  return any;
}

// floor(h * total / 2^32) exactly, for h < 2^32 and total < 2^40 (split in 16-bit halves).
EPLB_WF_HD inline std::uint64_t scaled_position(std::uint32_t h, std::uint64_t total) {
  const std::uint64_t hi = h >> 16;
  const std::uint64_t lo = h & 0xffffu;
  return (hi * total + ((lo * total) >> 16)) >> 16;
}

// The token's fixed position in [0, 2^32): Knuth's multiplicative golden-ratio sequence, so that
// consecutive tokens spread evenly over any split of the interval.
EPLB_WF_HD inline std::uint32_t token_position(std::uint32_t token) {
  return static_cast<std::uint32_t>((token + 1u) * 2654435769u);
}

// Capacity of a GPU for a phase: ceil(level / w - load), at least 0, at most `limit`.
EPLB_WF_HD inline std::int64_t phase_capacity(double level, double load, double weight,
                                              std::int64_t limit) {
  const double c = std::ceil(level / weight - load);
  if (!(c > 0.0)) return 0;
  return c >= static_cast<double>(limit) ? limit : static_cast<std::int64_t>(c);
}

// The water level of pouring `amount` tokens over GPUs given in ascending (w * load, id) order:
// every GPU below the level rises to it, fractionally.
EPLB_WF_HD inline double water_level(const std::int32_t* order, std::int32_t gpus,
                                     const double* load, const double* weight, double amount) {
  double sum_inv = 0.0;
  double sum_base = 0.0;
  double level = 0.0;
  for (std::int32_t j = 0; j < gpus; ++j) {
    const std::int32_t g = order[j];
    sum_inv += 1.0 / weight[g];
    sum_base += load[g];
    level = (amount + sum_base) / sum_inv;
    if (j + 1 == gpus) break;
    const std::int32_t n = order[j + 1];
    if (level <= weight[n] * load[n]) break;
  }
  return level;
}

// Position of GPU g in ascending (w * load, id) order (each thread of the kernel computes one).
EPLB_WF_HD inline std::int32_t level_rank(std::int32_t g, std::int32_t gpus, const double* load,
                                          const double* weight) {
  const double mine = weight[g] * load[g];
  std::int32_t rank = 0;
  for (std::int32_t h = 0; h < gpus; ++h) {
    const double other = weight[h] * load[h];
    rank += (other < mine || (other == mine && h < g)) ? 1 : 0;
  }
  return rank;
}

// The proposal of token `token` among restricted candidates: -1 if no candidate has remaining
// capacity, else the GPU whose share of the candidates' total remaining capacity (in candidate
// order) holds the token's position.
EPLB_WF_HD inline std::int32_t propose_restricted(const std::int32_t* row, std::uint32_t top_k,
                                                  std::int32_t source, std::int32_t slots_per_gpu,
                                                  std::int32_t num_physical, std::int32_t gpus,
                                                  const std::int64_t* rem, std::uint32_t token) {
  std::uint64_t total = 0;
  for_each_candidate(row, top_k, source, slots_per_gpu, num_physical, gpus, [&](std::int32_t g) {
    if (rem[g] > 0) total += static_cast<std::uint64_t>(rem[g]);
  });
  if (total == 0) return -1;
  const std::uint64_t pos = scaled_position(token_position(token), total);
  std::uint64_t seen = 0;
  std::int32_t pick = -1;
  for_each_candidate(row, top_k, source, slots_per_gpu, num_physical, gpus, [&](std::int32_t g) {
    if (pick >= 0 || rem[g] <= 0) return;
    seen += static_cast<std::uint64_t>(rem[g]);
    if (seen > pos) pick = g;
  });
  return pick;
}

// The same with every GPU a candidate (ascending id): `prefix` [gpus + 1] holds the running sums
// of max(rem, 0); a binary search finds the first GPU whose running sum exceeds the position.
EPLB_WF_HD inline std::int32_t propose_any(const std::uint64_t* prefix, std::int32_t gpus,
                                           std::uint32_t token) {
  const std::uint64_t total = prefix[gpus];
  if (total == 0) return -1;
  const std::uint64_t pos = scaled_position(token_position(token), total);
  std::int32_t lo = 0;  // smallest g with prefix[g + 1] > pos
  std::int32_t hi = gpus - 1;
  while (lo < hi) {
    const std::int32_t mid = (lo + hi) / 2;
    if (prefix[mid + 1] > pos) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

// The fallback: the candidate with the smallest w * (load + taken + 1), ties to the source GPU,
// then the lowest id. `any` = every GPU is a candidate.
EPLB_WF_HD inline std::int32_t least_loaded(const std::int32_t* row, std::uint32_t top_k,
                                            std::int32_t source, std::int32_t slots_per_gpu,
                                            std::int32_t num_physical, std::int32_t gpus, bool any,
                                            const double* load, const std::int64_t* taken,
                                            const double* weight) {
  std::int32_t best = -1;
  double best_load = 0.0;
  auto consider = [&](std::int32_t g) {
    const double l = weight[g] * (load[g] + static_cast<double>(taken[g] + 1));
    const bool better = best < 0 || l < best_load ||
                        (l == best_load && best != source && (g == source || g < best));
    if (better) {
      best = g;
      best_load = l;
    }
  };
  if (any) {
    for (std::int32_t g = 0; g < gpus; ++g) consider(g);
  } else {
    for_each_candidate(row, top_k, source, slots_per_gpu, num_physical, gpus, consider);
  }
  return best;
}

// Tokens per block of the kernels (a block's rank counts are one row of the workspace).
inline constexpr std::uint32_t kBlockTokens = 512;

// The workspace, carved from the caller's bytes (layout shared with waterfill_workspace_bytes).
struct WaterfillWorkspace {
  unsigned* ticket;            // blocks arrived in the current launch (reset by the last)
  long long* eligible;         // tokens with a valid slot
  double* load;                // [G] input loads
  std::int64_t* taken;         // [G] tokens accepted so far
  std::int64_t* rem;           // [G] remaining capacity
  std::int64_t* rem_round;     // [G] capacity of the round being accepted
  std::uint64_t* prefix;       // [G + 1] running sums of max(rem, 0) (any-GPU proposals)
  std::int32_t* block_counts;  // [B][G + 1] per-block counts (the last column: eligible)
  std::int32_t* offsets;       // [B][G] earlier blocks' proposals per GPU
  std::int32_t* prop;          // [N] proposal of the round, -1 none
  std::int32_t* rank;          // [N] its rank among the block's proposals to that GPU
};

EPLB_WF_HD inline WaterfillWorkspace carve_workspace(void* base, std::uint32_t tokens,
                                                     std::uint32_t gpus, std::uint32_t blocks) {
  auto* p = static_cast<unsigned char*>(base);
  auto take = [&p](std::size_t bytes) {
    unsigned char* at = p;
    p += (bytes + 7) & ~std::size_t{7};
    return at;
  };
  const std::size_t g = gpus;
  WaterfillWorkspace w{};
  w.ticket = reinterpret_cast<unsigned*>(take(sizeof(unsigned)));
  w.eligible = reinterpret_cast<long long*>(take(8));
  w.load = reinterpret_cast<double*>(take(8 * g));
  w.taken = reinterpret_cast<std::int64_t*>(take(8 * g));
  w.rem = reinterpret_cast<std::int64_t*>(take(8 * g));
  w.rem_round = reinterpret_cast<std::int64_t*>(take(8 * g));
  w.prefix = reinterpret_cast<std::uint64_t*>(take(8 * (g + 1)));
  w.block_counts = reinterpret_cast<std::int32_t*>(take(4 * std::size_t{blocks} * (g + 1)));
  w.offsets = reinterpret_cast<std::int32_t*>(take(4 * std::size_t{blocks} * g));
  w.prop = reinterpret_cast<std::int32_t*>(take(4 * std::size_t{tokens}));
  w.rank = reinterpret_cast<std::int32_t*>(take(4 * std::size_t{tokens}));
  return w;
}

EPLB_WF_HD inline std::uint32_t kernel_blocks(std::uint32_t tokens) {
  return tokens == 0 ? 1 : (tokens + kBlockTokens - 1) / kBlockTokens;
}

// Bytes of the workspace: exactly what carve_workspace takes.
inline std::size_t workspace_bytes(std::uint32_t tokens, std::uint32_t gpus) {
  auto align8 = [](std::size_t n) { return (n + 7) & ~std::size_t{7}; };
  const std::size_t g = gpus;
  const std::size_t b = kernel_blocks(tokens);
  return 8 + 8 + 8 * g * 4 + 8 * (g + 1) + align8(4 * b * (g + 1)) + align8(4 * b * g) +
         2 * align8(4 * std::size_t{tokens});
}

}  // namespace eplb::kernels::waterfill
