// Synthetic per-layer expert loads shaped like real DeepSeek-V3 recordings (see
// ../shared/research/real-data.md §5.1): per layer, expert popularity is lognormal with a
// layer-specific sigma, each expert group gets a lognormal factor (groups differ in load), and
// token counts are drawn for a batch of tokens × top-k picks. Deterministic for a seed.
#pragma once

#include <cstdint>
#include <vector>

namespace eplb_cli {

struct WorkloadSpec {
  std::uint32_t num_layers = 58;
  std::uint32_t num_experts = 256;
  std::uint32_t num_groups = 8;
  double sigma_min = 0.5;        // per-layer sigma of ln(popularity) is uniform in [min, max]
  double sigma_max = 0.8;        // (median 0.65, the middle of the recordings' 0.56..0.86)
  double group_sigma = 0.25;     // sigma of the per-group factor (group max/mean ~1.4..2.0)
  std::uint64_t tokens = 65536;  // tokens per layer
  std::uint32_t top_k = 8;
  std::uint64_t seed = 1;
};

// [layers][experts] token counts (whole numbers stored as double).
[[nodiscard]] std::vector<double> synthetic_loads(const WorkloadSpec& spec);

}  // namespace eplb_cli
