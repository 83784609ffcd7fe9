#include "loads.hpp"

#include <cmath>
#include <vector>

#include "error.hpp"

namespace eplb {

namespace {

// Every GPU's and node's load is part of its layer's total: a bounded total keeps them, their
// squares, the mean and the balancedness finite (finite loads near DBL_MAX add up to infinity).
void check_layer_total(double total, std::size_t layer, const char* name, const char* what) {
  if (!(total <= kMaxLayerTotal)) {
    fail_invalid(name, ": the loads of layer ", layer, what, " add up to ", total,
                 ", above 1e150 (the most libeplb plans and measures); scale them down");
  }
}

void check_values(std::span<const double> row, std::size_t layer, const char* name) {
  double total = 0;
  for (std::size_t expert = 0; expert < row.size(); ++expert) {
    const double value = row[expert];
    if (std::isnan(value)) fail_invalid(name, "[", layer, "][", expert, "] is NaN");
    if (std::isinf(value)) {
      fail_invalid(name, "[", layer, "][", expert, "] = ", value, " is infinite");
    }
    if (value < 0) fail_invalid(name, "[", layer, "][", expert, "] = ", value, " is negative");
    total += value;
  }
  check_layer_total(total, layer, name, "");
}

}  // namespace

void validate_loads(std::span<const double> loads, const Topology& topology, const char* name) {
  if (loads.data() == nullptr) fail_invalid(name, " is NULL");
  if (loads.size() != topology.load_count()) {
    fail_invalid(name, " has ", loads.size(), " values but num_layers (", topology.num_layers,
                 ") * num_logical_experts (", topology.num_logical, ") = ", topology.load_count());
  }
  for (std::size_t layer = 0; layer < topology.num_layers; ++layer) {
    check_values(loads.subspan(layer * topology.num_logical, topology.num_logical), layer, name);
  }
}

void validate_window_loads(std::span<const double> loads, std::size_t num_windows,
                           const Topology& topology, const char* name) {
  if (loads.data() == nullptr) fail_invalid(name, " is NULL");
  if (num_windows == 0) fail_invalid("num_windows must be at least 1 (got 0)");
  const std::size_t per_window = topology.load_count();
  const std::size_t expected = checked_mul(num_windows, per_window, "num_windows * loads");
  if (loads.size() != expected) {
    fail_invalid(name, " has ", loads.size(), " values but num_windows (", num_windows,
                 ") * num_layers (", topology.num_layers, ") * num_logical_experts (",
                 topology.num_logical, ") = ", expected);
  }
  // Robust planning adds the windows up (their sum is the plan's load): each layer's total over
  // every window must stay finite.
  std::vector<double> layer_totals(topology.num_layers, 0.0);
  for (std::size_t window = 0; window < num_windows; ++window) {
    const auto matrix = loads.subspan(window * per_window, per_window);
    for (std::size_t i = 0; i < per_window; ++i) {
      const double value = matrix[i];
      const std::size_t layer = i / topology.num_logical;
      if (std::isfinite(value) && value >= 0) {
        layer_totals[layer] += value;
        continue;
      }
      const std::size_t expert = i % topology.num_logical;
      fail_invalid(name, "[", window, "][", layer, "][", expert, "] = ", value,
                   std::isnan(value) ? " is NaN"
                   : value < 0       ? " is negative"
                                     : " is infinite");
    }
  }
  for (std::size_t layer = 0; layer < topology.num_layers; ++layer) {
    check_layer_total(layer_totals[layer], layer, name, " over all windows");
  }
}

void validate_layer_loads(std::span<const double> loads, std::size_t layer,
                          const Topology& topology, const char* name) {
  if (loads.data() == nullptr) fail_invalid(name, " is NULL");
  if (loads.size() != topology.num_logical) {
    fail_invalid(name, " has ", loads.size(), " values but num_logical_experts is ",
                 topology.num_logical);
  }
  check_values(loads, layer, name);
}

}  // namespace eplb
