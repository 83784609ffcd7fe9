// The JSON files of other serving systems: SGLang's placement map (`physical_to_logical_map`)
// and expert load file (`logical_count`), and vLLM-Ascend's expert map (`layer_list`).
//
// Readers throw Error(corrupt) naming the key, row, column and value of the first problem in the
// document, and Error(invalid_argument) when the caller's topology does not fit it (num_gpus not
// dividing the row width, more logical experts than slots, dense layers swallowing every row).
// Writers emit compact rows, one per line, so that files diff well and stay small.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "placement.hpp"

namespace eplb {

// {"physical_to_logical_map": [[...], ...]}: exactly one key, as SGLang's
// --init-expert-location splats the object into keyword arguments. `num_dense_layers` trivial
// rows (slot p holds expert p % E) come first, so that rows equal the model's hidden layers.
// Throws Error(invalid_argument) if num_layers + num_dense_layers exceeds INT32_MAX.
[[nodiscard]] std::string to_sglang_json(const Placement& placement,
                                         std::uint32_t num_dense_layers);

// Reads SGLang's map, skipping the first `num_dense_layers` rows (they are still checked for
// shape and ids). `num_logical` 0 means one more than the largest id of the MoE rows.
[[nodiscard]] Placement from_sglang_json(std::string_view text, std::uint32_t num_logical,
                                         std::uint32_t num_nodes, std::uint32_t num_gpus,
                                         std::uint32_t num_dense_layers);

// {"moe_layer_count": L, "layer_list": [{"layer_id": l, "device_count": G, "device_list":
// [{"device_id": g, "device_expert": [...]}]}]}: device g holds the slots of GPU g in slot order.
[[nodiscard]] std::string to_vllm_ascend_json(const Placement& placement);

// Reads vLLM-Ascend's map. layer_id, device_count and device_id may be omitted (vLLM-Ascend
// reads lists by position) but must agree with the position when present; unknown keys are
// ignored. Every device must list the same number of experts.
[[nodiscard]] Placement from_vllm_ascend_json(std::string_view text, std::uint32_t num_logical,
                                              std::uint32_t num_nodes);

// SGLang's load file: `logical_count` as [layers][experts] or [steps][layers][experts].
struct LoadMatrix {
  std::uint32_t num_layers = 0;
  std::uint32_t num_experts = 0;
  std::uint32_t num_steps = 1;  // 1 for the 2-D form
  std::vector<double> loads;    // [layers][experts], summed over steps
};

// Other keys of the object are ignored. Every load must be a finite number >= 0, and so must
// the sum over steps.
[[nodiscard]] LoadMatrix loads_from_sglang_json(std::string_view text);

}  // namespace eplb
