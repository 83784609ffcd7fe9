// The interop section of the C API: SGLang's and vLLM-Ascend's JSON files (core/json_formats).
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "../../core/json_formats.hpp"
#include "buffers.hpp"
#include "guard.hpp"
#include "handles.hpp"

namespace {

using eplb::capi::require_not_null;

// Hands `text` to the caller as a malloc'ed NUL-terminated string (eplb_buffer_free).
void hand_out(const std::string& text, char** out_json, size_t* out_len) {
  char* copy = eplb::capi::copy_to_malloc(std::string_view(text));
  *out_json = copy;
  *out_len = text.size();
}

void hand_out(eplb::Placement placement, eplb_placement** out_placement) {
  *out_placement = std::make_unique<eplb_placement>(std::move(placement)).release();
}

}  // namespace

extern "C" {

eplb_status eplb_placement_to_sglang_json(const eplb_placement* placement,
                                          uint32_t num_dense_layers, char** out_json,
                                          size_t* out_len) {
  return eplb::capi::guard([&] {
    require_not_null(placement, "placement");
    require_not_null(out_json, "out_json");
    require_not_null(out_len, "out_len");
    hand_out(eplb::to_sglang_json(placement->value, num_dense_layers), out_json, out_len);
  });
}

eplb_status eplb_placement_from_sglang_json(const char* json, size_t json_len,
                                            uint32_t num_logical_experts, uint32_t num_nodes,
                                            uint32_t num_gpus, uint32_t num_dense_layers,
                                            eplb_placement** out_placement) {
  return eplb::capi::guard([&] {
    require_not_null(json, "json");
    require_not_null(out_placement, "out_placement");
    hand_out(eplb::from_sglang_json(std::string_view(json, json_len), num_logical_experts,
                                    num_nodes, num_gpus, num_dense_layers),
             out_placement);
  });
}

eplb_status eplb_placement_to_vllm_ascend_json(const eplb_placement* placement, char** out_json,
                                               size_t* out_len) {
  return eplb::capi::guard([&] {
    require_not_null(placement, "placement");
    require_not_null(out_json, "out_json");
    require_not_null(out_len, "out_len");
    hand_out(eplb::to_vllm_ascend_json(placement->value), out_json, out_len);
  });
}

eplb_status eplb_placement_from_vllm_ascend_json(const char* json, size_t json_len,
                                                 uint32_t num_logical_experts, uint32_t num_nodes,
                                                 eplb_placement** out_placement) {
  return eplb::capi::guard([&] {
    require_not_null(json, "json");
    require_not_null(out_placement, "out_placement");
    hand_out(eplb::from_vllm_ascend_json(std::string_view(json, json_len), num_logical_experts,
                                         num_nodes),
             out_placement);
  });
}

eplb_status eplb_loads_from_sglang_json(const char* json, size_t json_len, double** out_loads,
                                        uint32_t* out_num_layers, uint32_t* out_num_experts) {
  return eplb::capi::guard([&] {
    require_not_null(json, "json");
    require_not_null(out_loads, "out_loads");
    require_not_null(out_num_layers, "out_num_layers");
    require_not_null(out_num_experts, "out_num_experts");
    const eplb::LoadMatrix matrix = eplb::loads_from_sglang_json(std::string_view(json, json_len));
    double* loads = eplb::capi::copy_to_malloc(std::span<const double>(matrix.loads));
    *out_loads = loads;
    *out_num_layers = matrix.num_layers;
    *out_num_experts = matrix.num_experts;
  });
}

}  // extern "C"
