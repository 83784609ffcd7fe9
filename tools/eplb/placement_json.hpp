// The JSON placement files of other serving systems, written through the C API's interop
// section. SGLang's file is an object with exactly one key, `physical_to_logical_map`, one row
// per layer (SGLang's --init-expert-location accepts it; any extra key would be rejected), with
// `num_dense_layers` trivial rows first so that rows equal the model's hidden layers.
// vLLM-Ascend's is its expert map (`moe_layer_count`, `layer_list[].device_list[]`).
#pragma once

#include <cstdint>
#include <string>

#include "eplb/eplb.h"

namespace eplb_cli {

[[nodiscard]] std::string sglang_placement_json(const eplb_placement* placement,
                                                std::uint32_t num_dense_layers = 0);

[[nodiscard]] std::string vllm_ascend_placement_json(const eplb_placement* placement);

}  // namespace eplb_cli
