// eplb_plan_control_* and eplb_planner_set_control: cancelling plans and reading their progress.
#include <memory>

#include "guard.hpp"
#include "handles.hpp"
#include "struct_io.hpp"

extern "C" {

eplb_status eplb_plan_control_create(eplb_plan_control** out_control) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(out_control, "out_control");
    *out_control = std::make_unique<eplb_plan_control>().release();
  });
}

void eplb_plan_control_destroy(eplb_plan_control* control) {
  delete control;  // NOLINT: owning C handle; planners hold their own references
}

eplb_status eplb_plan_control_cancel(eplb_plan_control* control) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(control, "control");
    control->value->cancel();
  });
}

eplb_status eplb_plan_control_get_progress(const eplb_plan_control* control,
                                           eplb_plan_progress* out_progress) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(control, "control");
    eplb::capi::require_not_null(out_progress, "out_progress");
    const eplb::PlanProgress progress = control->value->progress();
    eplb_plan_progress result{};
    result.struct_size = sizeof(result);
    result.cancelled = progress.cancelled ? 1 : 0;
    result.steps_done = progress.steps_done;
    result.steps_total = progress.steps_total;
    eplb::capi::write_struct(out_progress, result, sizeof(result), "out_progress");
  });
}

eplb_status eplb_planner_set_control(eplb_planner* planner, eplb_plan_control* control) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(planner, "planner");
    planner->value.set_control(control == nullptr ? nullptr : control->value);
  });
}

}  // extern "C"
