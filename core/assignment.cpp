#include "assignment.hpp"

#include <algorithm>
#include <limits>

#include "error.hpp"

namespace eplb {

// The O(n^3) shortest-augmenting-path form of the Hungarian algorithm with row and column
// potentials (Kuhn-Munkres as in Jonker-Volgenant), minimising cost = -weight.
std::vector<std::uint32_t> max_weight_assignment(std::span<const std::int64_t> weights,
                                                 std::size_t n) {
  if (weights.size() != n * n) {
    fail_invalid("assignment weights have ", weights.size(), " entries, expected n * n = ", n * n);
  }
  if (n == 0) return {};
  constexpr std::int64_t kInf = std::numeric_limits<std::int64_t>::max() / 4;
  const auto cost = [&](std::size_t row, std::size_t col) {
    return -weights[(row - 1) * n + (col - 1)];
  };
  // 1-based arrays; index 0 is the virtual start of each augmenting path.
  std::vector<std::int64_t> u(n + 1, 0), v(n + 1, 0), min_to(n + 1);
  std::vector<std::size_t> match_of_col(n + 1, 0), way(n + 1, 0);
  std::vector<char> used(n + 1);
  for (std::size_t row = 1; row <= n; ++row) {
    match_of_col[0] = row;
    std::size_t col0 = 0;
    std::fill(min_to.begin(), min_to.end(), kInf);
    std::fill(used.begin(), used.end(), 0);
    do {
      used[col0] = 1;
      const std::size_t row0 = match_of_col[col0];
      std::int64_t delta = kInf;
      std::size_t next = 0;
      for (std::size_t col = 1; col <= n; ++col) {
        if (used[col]) continue;
        const std::int64_t reduced = cost(row0, col) - u[row0] - v[col];
        if (reduced < min_to[col]) {
          min_to[col] = reduced;
          way[col] = col0;
        }
        if (min_to[col] < delta) {
          delta = min_to[col];
          next = col;
        }
      }
      for (std::size_t col = 0; col <= n; ++col) {
        if (used[col]) {
          u[match_of_col[col]] += delta;
          v[col] -= delta;
        } else {
          min_to[col] -= delta;
        }
      }
      col0 = next;
    } while (match_of_col[col0] != 0);
    do {
      const std::size_t previous = way[col0];
      match_of_col[col0] = match_of_col[previous];
      col0 = previous;
    } while (col0 != 0);
  }
  std::vector<std::uint32_t> column_of_row(n);
  for (std::size_t col = 1; col <= n; ++col) {
    column_of_row[match_of_col[col] - 1] = static_cast<std::uint32_t>(col - 1);
  }
  return column_of_row;
}

}  // namespace eplb
