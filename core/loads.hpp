// Validation of load matrices crossing into the library.
#pragma once

#include <cstddef>
#include <span>

#include "topology.hpp"

namespace eplb {

// The largest total load of one layer that libeplb plans and measures: far above any token count
// or frequency, and low enough that the planners' sums, products and squares of GPU loads stay
// finite (1e150 squared is 1e300 < DBL_MAX).
inline constexpr double kMaxLayerTotal = 1e150;  // messages write it as "1e150"

// Checks that `loads` is [topology.num_layers][topology.num_logical], every value finite and
// >= 0, and every layer's total at most kMaxLayerTotal. Throws Error(invalid_argument) naming the
// argument, and the layer, expert and value.
void validate_loads(std::span<const double> loads, const Topology& topology, const char* name);

// Checks `loads` as [num_windows][layers][experts]; messages name window, layer and expert.
// Each layer's total over all windows must be at most kMaxLayerTotal.
void validate_window_loads(std::span<const double> loads, std::size_t num_windows,
                           const Topology& topology, const char* name);

// Checks one layer's row of num_logical values, as validate_loads.
void validate_layer_loads(std::span<const double> loads, std::size_t layer,
                          const Topology& topology, const char* name);

}  // namespace eplb
