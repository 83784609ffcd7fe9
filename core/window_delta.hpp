// One batch of a tracker's sliding window (tracker.hpp). A small batch keeps its own top-k rows
// and leaves the window by being counted again, negatively; a large one keeps its counts over
// the loads then the pairs, indices [0, E + E*(E-1)/2), and leaves by one pass over them.
// DeepSeek-V3's decode batch of 128 tokens x top-8 keeps 4 KB of ids instead of 132 KB of
// counts, and retiring it costs what counting it did.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace eplb {

struct WindowDelta {
  // Whether a batch of `tokens` rows of top_k ids, which adds at most top_k loads and
  // top_k*(top_k-1)/2 pairs per token, keeps its rows: while those increments are at most half
  // of the `size` counts, counting them again costs less than a pass over the counts.
  [[nodiscard]] static bool keeps_rows(std::size_t tokens, std::size_t top_k, std::size_t size) {
    return tokens * (top_k + top_k * (top_k - 1) / 2) <= size / 2;
  }

  bool dense = false;                 // which of the two below holds the batch
  std::vector<std::int32_t> rows;     // small: [tokens][top_k] logical ids, as recorded
  std::size_t tokens = 0;             // small: rows.size() / top_k
  std::vector<std::uint32_t> counts;  // large: [E + P]

  // Holds `counts` [size] (any unsigned type): dense, or no rows when they are all zero (a slot no
  // batch has filled yet, as a snapshot or an all-reduce gives it).
  template <typename T>
  void assign_counts(const T* from, std::size_t size) {
    const bool any = std::any_of(from, from + size, [](T v) { return v != 0; });
    dense = any;
    tokens = 0;
    std::vector<std::int32_t>().swap(rows);
    if (any) {
      counts.assign(from, from + size);
    } else {
      std::vector<std::uint32_t>().swap(counts);
    }
  }

  [[nodiscard]] std::size_t memory_bytes() const {
    return rows.capacity() * sizeof(std::int32_t) + counts.capacity() * sizeof(std::uint32_t);
  }
};

}  // namespace eplb
