// One rank's share of a batch-wide replica split (issue #9). The split solver gives each slot the
// number of tokens it takes from the whole batch; each rank then maps only its own tokens (the
// mapping kernel's quota mode ranks an expert's entries within the tokens it is given). Taking the
// batch's entries of an expert in rank order, rank g owns the ranks [O_g, O_g + c_g) with O_g the
// entries of lower ranks, and replica r (log2phy order) takes [Q_r, Q_r + q_r); rank g's quota for
// replica r is the size of their intersection. Fed to every rank's quota mode, these quotas give
// each slot exactly its batch-wide quota.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "placement.hpp"

namespace eplb {

// `quotas` [R]: the batch-wide split of `layer` (per expert, summing to its total over ranks);
// `rank_counts` [num_ranks][E]: each rank's entries per expert (>= 0); writes rank `rank`'s quotas
// [R]. Throws Error(invalid_argument) naming a bad length, rank, count or a quota set that does
// not sum to an expert's total.
void rank_quotas(const Placement& placement, std::size_t layer,
                 std::span<const std::int32_t> quotas, std::span<const std::int32_t> rank_counts,
                 std::size_t num_ranks, std::size_t rank, std::span<std::int32_t> out);

}  // namespace eplb
