// The assignment problem (Hungarian algorithm): pair n rows with n columns, one to one, so that
// the summed weight of the pairs is as large as possible. The migration planner uses it to
// relabel a new plan's GPUs and nodes so that as many experts as possible stay where they are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace eplb {

// `weights` is an n x n row-major matrix (n * n entries, any sign, |w| < 2^52). Returns, for each
// row, its column in a maximum-weight perfect matching. O(n^3); deterministic (the same input
// always gives the same matching). Throws Error(invalid_argument) if weights.size() != n * n.
[[nodiscard]] std::vector<std::uint32_t> max_weight_assignment(
    std::span<const std::int64_t> weights, std::size_t n);

}  // namespace eplb
