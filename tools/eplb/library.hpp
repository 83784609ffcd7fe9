// Small RAII helpers over the C API for the CLI and benchmarks: handles in unique_ptrs, and a
// failed status turned into an InputError (invalid argument) or a Failure (anything else)
// carrying the library's message.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eplb/cli_error.hpp"
#include "eplb/eplb.h"

namespace eplb_cli {

struct PlannerDeleter {
  void operator()(eplb_planner* p) const { eplb_planner_destroy(p); }
};
struct PlacementDeleter {
  void operator()(eplb_placement* p) const { eplb_placement_destroy(p); }
};
struct PlanControlDeleter {
  void operator()(eplb_plan_control* c) const { eplb_plan_control_destroy(c); }
};
using PlannerPtr = std::unique_ptr<eplb_planner, PlannerDeleter>;
using PlacementPtr = std::unique_ptr<eplb_placement, PlacementDeleter>;
using PlanControlPtr = std::unique_ptr<eplb_plan_control, PlanControlDeleter>;
struct SnapshotDeleter {
  void operator()(eplb_snapshot* s) const { eplb_snapshot_destroy(s); }
};
using SnapshotPtr = std::unique_ptr<eplb_snapshot, SnapshotDeleter>;

// Frees a buffer the library allocated (eplb_buffer_free), whatever its element type:
// std::unique_ptr<double, LibraryBufferFree>.
struct LibraryBufferFree {
  void operator()(void* buffer) const { eplb_buffer_free(buffer); }
};

// Throws if `status` is not EPLB_OK; `context` prefixes the library's message.
inline void check(eplb_status status, const std::string& context) {
  if (status == EPLB_OK) return;
  std::string message = context + eplb_last_error_message();
  if (status == EPLB_ERR_INVALID_ARGUMENT) throw InputError(message);
  throw Failure(message + " [" + eplb_status_string(status) + "]");
}

inline PlannerPtr make_planner(const eplb_planner_options& options, const std::string& context) {
  eplb_planner* planner = nullptr;
  check(eplb_planner_create(&options, &planner), context);
  return PlannerPtr(planner);
}

inline PlanControlPtr make_plan_control() {
  eplb_plan_control* control = nullptr;
  check(eplb_plan_control_create(&control), "");
  return PlanControlPtr(control);
}

// How far the plans using `control` are, as "37 %" of their layer steps.
inline std::string percent_done(const eplb_plan_control* control) {
  eplb_plan_progress progress{};
  progress.struct_size = sizeof(progress);
  if (eplb_plan_control_get_progress(control, &progress) != EPLB_OK || progress.steps_total == 0) {
    return "0 %";
  }
  return std::to_string(progress.steps_done * 100 / progress.steps_total) + " %";
}

inline PlacementPtr plan(eplb_planner* planner, const std::vector<double>& loads,
                         const std::string& context = "") {
  eplb_placement* placement = nullptr;
  check(eplb_planner_plan(planner, loads.data(), loads.size(), &placement), context);
  return PlacementPtr(placement);
}

inline PlacementPtr plan_windows(eplb_planner* planner, const std::vector<double>& windows,
                                 std::size_t num_windows, const std::string& context = "") {
  eplb_placement* placement = nullptr;
  check(eplb_planner_plan_windows(planner, windows.data(), num_windows, windows.size(), &placement),
        context);
  return PlacementPtr(placement);
}

inline eplb_placement_info info_of(const eplb_placement* placement) {
  eplb_placement_info info{};
  info.struct_size = sizeof(info);
  check(eplb_placement_get_info(placement, &info), "");
  return info;
}

inline eplb_metrics metrics_of(const eplb_placement* placement, const std::vector<double>& loads) {
  eplb_metrics metrics{};
  metrics.struct_size = sizeof(metrics);
  check(eplb_metrics_compute(placement, loads.data(), loads.size(), &metrics), "");
  return metrics;
}

inline std::vector<std::int32_t> phy2log_of(const eplb_placement* placement) {
  const auto info = info_of(placement);
  std::vector<std::int32_t> map(static_cast<std::size_t>(info.num_layers) *
                                info.num_physical_experts);
  check(eplb_placement_get_phy2log(placement, map.data(), map.size()), "");
  return map;
}

inline std::string algorithm_name(std::uint32_t id) {
  const char* name = eplb_algorithm_name(id);
  return name == nullptr ? "imported" : name;
}

// The library's recommended algorithm (what "default" and an unset --algorithm mean).
inline std::uint32_t default_algorithm() { return eplb_algorithm_default(); }

inline std::string default_algorithm_name() { return algorithm_name(default_algorithm()); }

}  // namespace eplb_cli
