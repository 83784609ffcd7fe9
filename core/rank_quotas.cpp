#include "rank_quotas.hpp"

#include <algorithm>
#include <vector>

#include "error.hpp"

namespace eplb {

void rank_quotas(const Placement& placement, std::size_t layer,
                 std::span<const std::int32_t> quotas, std::span<const std::int32_t> rank_counts,
                 std::size_t num_ranks, std::size_t rank, std::span<std::int32_t> out) {
  const Topology& t = placement.topology();
  const std::size_t experts = t.num_logical, slots = t.num_physical;
  if (layer >= t.num_layers) {
    fail_invalid("layer (", layer, ") must be below num_layers (", t.num_layers, ")");
  }
  if (quotas.size() != slots) {
    fail_invalid("quotas has ", quotas.size(), " entries, expected num_physical_experts = ", slots);
  }
  if (out.size() != slots) {
    fail_invalid("out_quotas has ", out.size(),
                 " entries, expected num_physical_experts = ", slots);
  }
  if (num_ranks == 0) fail_invalid("num_ranks is 0");
  if (rank >= num_ranks)
    fail_invalid("rank (", rank, ") must be below num_ranks (", num_ranks, ")");
  if (rank_counts.size() / experts != num_ranks || rank_counts.size() % experts != 0) {
    fail_invalid("rank_counts has ", rank_counts.size(), " entries, expected num_ranks (",
                 num_ranks, ") x num_logical_experts (", experts, ")");
  }
  for (std::size_t i = 0; i < rank_counts.size(); ++i) {
    if (rank_counts[i] < 0)
      fail_invalid("rank_counts[", i, "] = ", rank_counts[i], " must be >= 0");
  }
  for (std::size_t s = 0; s < slots; ++s) {
    if (quotas[s] < 0) fail_invalid("quotas[", s, "] = ", quotas[s], " must be >= 0");
  }
  const auto replicas = placement.replica_counts_layer(layer);
  const std::size_t width = placement.log2phy_width();
  const auto log2phy = placement.log2phy().subspan(layer * experts * width, experts * width);
  // Computed aside: an expert whose quotas do not add up fails the call with `out` untouched.
  std::vector<std::int32_t> result(slots, 0);
  for (std::size_t e = 0; e < experts; ++e) {
    std::int64_t before = 0, total = 0;  // entries of lower ranks; of all ranks
    for (std::size_t g = 0; g < num_ranks; ++g) {
      if (g < rank) before += rank_counts[g * experts + e];
      total += rank_counts[g * experts + e];
    }
    const std::int64_t own_end = before + rank_counts[rank * experts + e];
    std::int64_t q_start = 0;
    for (std::size_t r = 0; r < static_cast<std::size_t>(replicas[e]); ++r) {
      const auto s = static_cast<std::size_t>(log2phy[e * width + r]);
      const std::int64_t q_end = q_start + quotas[s];
      const std::int64_t overlap = std::min(q_end, own_end) - std::max(q_start, before);
      result[s] = static_cast<std::int32_t>(std::max<std::int64_t>(overlap, 0));
      q_start = q_end;
    }
    if (q_start != total) {
      fail_invalid("the quotas of expert ", e, " sum to ", q_start, " but the ranks have ", total,
                   " of its entries");
    }
  }
  std::copy(result.begin(), result.end(), out.begin());
}

}  // namespace eplb
