// A tracker's whole state as bytes and back: the content of the snapshot's co-activation
// section (type 7; layout in docs/SNAPSHOT_FORMAT.md). The bytes hold everything needed to
// resume recording exactly where the tracker stopped: options, per-layer counts (or decayed
// weights and their scale), the sliding window's ring of per-batch deltas, the reservoir's rows,
// population and RNG state.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "tracker.hpp"

namespace eplb {

// The section content of `tracker`, little-endian.
[[nodiscard]] std::vector<std::byte> encode_tracker_state(const Tracker& tracker);

// Decodes and validates section content written by encode_tracker_state. Untrusted input: sizes
// are checked against the content before anything is allocated, and every value against the
// rules of the format (options valid, sample rows = min(tokens seen, capacity), ids in [-1, E),
// a pair count never above either expert's load, a sliding window's totals equal to the sum of
// its ring). Throws Error(corrupt) with a message naming the field, layer and index.
[[nodiscard]] Tracker decode_tracker_state(std::span<const std::byte> content);

}  // namespace eplb
