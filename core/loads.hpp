// Validation of load matrices crossing into the library.
#pragma once

#include <cstddef>
#include <span>

#include "topology.hpp"

namespace eplb {

// Checks that `loads` is [topology.num_layers][topology.num_logical], every value finite and
// >= 0, and every layer's total finite. Throws Error(invalid_argument) naming the argument, and
// the layer, expert and value.
void validate_loads(std::span<const double> loads, const Topology& topology, const char* name);

// Checks `loads` as [num_windows][layers][experts]; messages name window, layer and expert.
// Each layer's total over all windows must be finite.
void validate_window_loads(std::span<const double> loads, std::size_t num_windows,
                           const Topology& topology, const char* name);

// Checks one layer's row of num_logical values, as validate_loads.
void validate_layer_loads(std::span<const double> loads, std::size_t layer,
                          const Topology& topology, const char* name);

}  // namespace eplb
