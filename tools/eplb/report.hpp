// The JSON report of a plan: settings, planning time, and the metrics per layer and in total.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "eplb/eplb.h"
#include "eplb/table.hpp"

namespace eplb_cli {

[[nodiscard]] nlohmann::json plan_report(const eplb_placement* placement,
                                         const std::vector<double>& loads);

// The summary metrics as a JSON object (shared by `plan --report` and `demo --json`).
[[nodiscard]] nlohmann::json metrics_json(const eplb_metrics& metrics);

// The summary metrics as a text table (shared by `plan` and `inspect`), with a row saying how
// many layers had no load, or that none had (every metric is then 1 by definition).
[[nodiscard]] Table metrics_table(const eplb_metrics& metrics);

}  // namespace eplb_cli
