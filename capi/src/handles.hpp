// The private structs behind the C API's opaque handles: each wraps its C++ object, so handles
// can grow per-handle state without changing the C++ classes.
#pragma once

#include <memory>
#include <utility>

#include "../../core/migration_plan.hpp"
#include "../../core/placement.hpp"
#include "../../core/plan_control.hpp"
#include "../../core/planner.hpp"
#include "../../core/snapshot.hpp"
#include "../../core/tracker.hpp"

struct eplb_placement {
  explicit eplb_placement(eplb::Placement p) : value(std::move(p)) {}
  eplb::Placement value;
};

struct eplb_planner {
  explicit eplb_planner(eplb::Planner p) : value(std::move(p)) {}
  eplb::Planner value;
};

// Shared: planners it is attached to keep it alive (eplb_plan_control_destroy).
struct eplb_plan_control {
  std::shared_ptr<eplb::PlanControl> value = std::make_shared<eplb::PlanControl>();
};

struct eplb_snapshot {
  explicit eplb_snapshot(eplb::Snapshot s) : value(std::move(s)) {}
  eplb::Snapshot value;
};

struct eplb_tracker {
  explicit eplb_tracker(eplb::Tracker t) : value(std::move(t)) {}
  eplb::Tracker value;
};

struct eplb_migration {
  explicit eplb_migration(eplb::MigrationPlan p) : value(std::move(p)) {}
  eplb::MigrationPlan value;
};
