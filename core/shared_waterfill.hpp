// Shared-expert waterfill (issue #9): for models with a shared expert, give each token's
// shared-expert work to one GPU among its candidates (by default the GPUs the token already
// visits, plus its source GPU when known, so no new traffic), least loaded first, without
// sampling. The result is an extra top-k column the dispatch understands: the shared expert's
// slot on GPU g is numbered num_physical + g.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "topology.hpp"

namespace eplb {

struct WaterfillInput {
  std::span<const std::int32_t> topk_slots;  // [N][top_k] physical slots, -1 = unused entry
  std::size_t top_k = 0;
  std::span<const std::int32_t> source_gpu;  // [N] or empty: the GPU each token comes from
  std::span<const double> gpu_weights;       // [G] or empty: finite > 0
  bool any_gpu = false;                      // every GPU is a candidate (new traffic allowed)
};

// Reusable scratch (one thread at a time).
class WaterfillWorkspace {
 public:
  // `gpu_loads` [G]: in, the tokens each GPU already has (finite, >= 0); out, plus the shared
  // tokens given to it. Writes `out_topk` [N][top_k + 1]: each input row, then num_physical + g
  // for the chosen GPU g, or -1 for a token with no valid entry (padding). Tokens with fewer
  // candidates choose first (stable in token order); a token takes the candidate whose weighted
  // load after taking it is the smallest, ties to its source GPU, then the lowest GPU id.
  // Throws Error(invalid_argument) naming the offending argument and value.
  void assign(const Topology& topology, const WaterfillInput& input, std::span<double> gpu_loads,
              std::span<std::int32_t> out_topk);

 private:
  std::vector<std::uint32_t> candidates_;  // [N] candidate count
  std::vector<std::uint32_t> offsets_;     // counting sort by candidate count
  std::vector<std::uint32_t> order_;       // [N]
  std::vector<std::size_t> stamp_;         // [G] last token that saw the GPU, + 1
};

}  // namespace eplb
