// RAII for the C API's tracker and snapshot handles, shared by `eplb record`, `plan --stats` and
// `inspect`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eplb/eplb.h"
#include "eplb/library.hpp"

namespace eplb_cli {

struct TrackerDeleter {
  void operator()(eplb_tracker* t) const { eplb_tracker_destroy(t); }
};
using TrackerPtr = std::unique_ptr<eplb_tracker, TrackerDeleter>;

inline eplb_tracker_options tracker_options_of(const eplb_tracker* tracker) {
  eplb_tracker_options options;
  eplb_tracker_options_init(&options);
  check(eplb_tracker_get_options(tracker, &options), "");
  return options;
}

// Loads [layers][E] at current weights.
inline std::vector<double> tracker_loads(const eplb_tracker* tracker) {
  const auto o = tracker_options_of(tracker);
  std::vector<double> loads(std::size_t{o.num_layers} * o.num_logical_experts);
  check(eplb_tracker_get_loads(tracker, loads.data(), loads.size()), "");
  return loads;
}

inline const char* window_text(std::uint32_t window) {
  switch (window) {
    case EPLB_WINDOW_CUMULATIVE:
      return "cumulative";
    case EPLB_WINDOW_SLIDING:
      return "sliding";
    case EPLB_WINDOW_DECAY:
      return "decay";
    default:
      return "unknown";
  }
}

// The tracker stored in the snapshot at `path`, for `--stats`-style options: a missing, damaged
// or placement-only file is an InputError naming `option` and the path.
TrackerPtr load_tracker_from_snapshot(const std::string& path, const std::string& option);

}  // namespace eplb_cli
