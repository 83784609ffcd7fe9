// The placement of a server without load balancing: slot p holds expert p % E (SGLang's
// `trivial` expert location). With R == E that is contiguous blocks of experts per GPU.
#pragma once

#include <cstdint>
#include <span>

#include "topology.hpp"

namespace eplb {

void trivial_plan_layer(const Topology& topology, std::span<std::int32_t> phy2log,
                        std::span<std::int32_t> replica_rank);

}  // namespace eplb
