#include <cstddef>
#include <memory>
#include <span>

#include "guard.hpp"
#include "handles.hpp"
#include "struct_io.hpp"

namespace {

// The 0.1 struct ended at num_threads.
constexpr std::size_t kOptionsV1Size = offsetof(eplb_planner_options, affinity);
constexpr std::size_t kNearReportV1Size = offsetof(eplb_plan_near_report, layers_partly_replanned);

eplb_planner_options default_options() {
  eplb_planner_options options{};
  options.struct_size = sizeof(eplb_planner_options);
  options.algorithm = EPLB_ALGORITHM_DEFAULT;
  options.num_groups = 1;
  options.num_nodes = 1;
  options.num_threads = 1;
  options.affinity_min_balance = 0.99;
  return options;
}

eplb_plan_near_options default_near_options() {
  eplb_plan_near_options options{};
  options.struct_size = sizeof(eplb_plan_near_options);
  options.min_balance = eplb::NearSettings{}.min_balance;
  return options;
}

}  // namespace

extern "C" {

void eplb_planner_options_init(eplb_planner_options* options) {
  if (options != nullptr) *options = default_options();
}

eplb_status eplb_planner_create(const eplb_planner_options* options, eplb_planner** out_planner) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(options, "options");
    eplb::capi::require_not_null(out_planner, "out_planner");
    const auto o = eplb::capi::read_struct(options, default_options(), kOptionsV1Size, "options");
    eplb::Topology topology;
    topology.num_layers = o.num_layers;
    topology.num_logical = o.num_logical_experts;
    topology.num_physical = o.num_physical_experts;
    topology.num_nodes = o.num_nodes;
    topology.num_gpus = o.num_gpus;
    topology.num_groups = o.num_groups;
    eplb::PlannerSettings settings;
    settings.algorithm = o.algorithm;
    settings.cross_node_budget = o.cross_node_budget;
    settings.num_threads = o.num_threads;
    if (o.affinity > 1) eplb::fail_invalid("options->affinity (", o.affinity, ") must be 0 or 1");
    if (o.reserved0 != 0) {
      eplb::fail_invalid("options->reserved0 (", o.reserved0, ") must be 0");
    }
    settings.affinity = o.affinity == 1;
    settings.affinity_min_balance = o.affinity_min_balance;
    *out_planner = std::make_unique<eplb_planner>(eplb::Planner(topology, settings)).release();
  });
}

void eplb_planner_destroy(eplb_planner* planner) { delete planner; }  // NOLINT: owning C handle

eplb_status eplb_planner_plan(eplb_planner* planner, const double* loads, size_t loads_len,
                              eplb_placement** out_placement) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(planner, "planner");
    eplb::capi::require_not_null(loads, "loads");
    eplb::capi::require_not_null(out_placement, "out_placement");
    auto placement = planner->value.plan(std::span(loads, loads_len));
    *out_placement = std::make_unique<eplb_placement>(std::move(placement)).release();
  });
}

eplb_status eplb_planner_plan_windows(eplb_planner* planner, const double* loads,
                                      size_t num_windows, size_t loads_len,
                                      eplb_placement** out_placement) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(planner, "planner");
    eplb::capi::require_not_null(loads, "loads");
    eplb::capi::require_not_null(out_placement, "out_placement");
    auto placement = planner->value.plan_windows(std::span(loads, loads_len), num_windows);
    *out_placement = std::make_unique<eplb_placement>(std::move(placement)).release();
  });
}

void eplb_plan_near_options_init(eplb_plan_near_options* options) {
  if (options != nullptr) *options = default_near_options();
}

eplb_status eplb_planner_plan_near(eplb_planner* planner, const double* loads, size_t loads_len,
                                   const eplb_placement* current,
                                   const eplb_plan_near_options* options,
                                   eplb_placement** out_placement,
                                   eplb_plan_near_report* out_report) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(planner, "planner");
    eplb::capi::require_not_null(loads, "loads");
    eplb::capi::require_not_null(current, "current");
    eplb::capi::require_not_null(out_placement, "out_placement");
    const eplb_plan_near_options o =
        options == nullptr ? default_near_options()
                           : eplb::capi::read_struct(options, default_near_options(),
                                                     sizeof(eplb_plan_near_options), "options");
    if (o.reserved0 != 0) {
      eplb::fail_invalid("options->reserved0 (", o.reserved0, ") must be 0");
    }
    if (out_report != nullptr) {
      // Checked before planning, so a bad struct_size costs no plan.
      eplb::capi::check_size_bounds(out_report->struct_size, kNearReportV1Size, "out_report",
                                    "set it to sizeof before the call");
    }
    eplb::Planner::NearReport report;
    auto placement = std::make_unique<eplb_placement>(planner->value.plan_near(
        std::span(loads, loads_len), current->value, o.min_balance, &report));
    if (out_report != nullptr) {
      eplb_plan_near_report out{};
      out.struct_size = sizeof(eplb_plan_near_report);
      out.layers_kept = report.kept;
      out.layers_rebalanced = report.rebalanced;
      out.layers_replanned = report.replanned;
      out.layers_partly_replanned = report.partly_replanned;
      // A caller built before layers_partly_replanned still sees every layer counted once.
      if (out_report->struct_size < sizeof(eplb_plan_near_report)) {
        out.layers_replanned += report.partly_replanned;
      }
      eplb::capi::write_struct(out_report, out, kNearReportV1Size, "out_report");
    }
    *out_placement = placement.release();
  });
}

eplb_status eplb_planner_plan_tracked(eplb_planner* planner, const double* loads, size_t loads_len,
                                      const eplb_tracker* tracker, eplb_placement** out_placement) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(planner, "planner");
    eplb::capi::require_not_null(tracker, "tracker");
    eplb::capi::require_not_null(out_placement, "out_placement");
    if (loads == nullptr && loads_len != 0) {
      eplb::fail_invalid("loads is NULL but loads_len is ", loads_len);
    }
    const std::span<const double> given =
        loads == nullptr ? std::span<const double>() : std::span(loads, loads_len);
    if (loads != nullptr && loads_len == 0) {
      eplb::fail_invalid("loads_len is 0; pass loads = NULL to plan from the tracker's loads");
    }
    auto placement = planner->value.plan_tracked(given, tracker->value);
    *out_placement = std::make_unique<eplb_placement>(std::move(placement)).release();
  });
}

}  // extern "C"
