// libFuzzer target for the JSON readers of the C API's interop section: SGLang's placement map,
// vLLM-Ascend's expert map and SGLang's load file. Any input must give EPLB_OK or an error
// status (never a crash, a leak or undefined behaviour), and whatever a reader accepts must
// survive a write and a second read unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "eplb/eplb.h"

namespace {

// A broken invariant is a finding: stop here so libFuzzer saves the input.
void require(bool condition) {
  if (!condition) std::abort();
}

std::vector<int32_t> phy2log_of(const eplb_placement* placement) {
  eplb_placement_info info{};
  info.struct_size = sizeof(info);
  require(eplb_placement_get_info(placement, &info) == EPLB_OK);
  std::vector<int32_t> map(static_cast<size_t>(info.num_layers) * info.num_physical_experts);
  require(eplb_placement_get_phy2log(placement, map.data(), map.size()) == EPLB_OK);
  return map;
}

eplb_placement_info info_of(const eplb_placement* placement) {
  eplb_placement_info info{};
  info.struct_size = sizeof(info);
  require(eplb_placement_get_info(placement, &info) == EPLB_OK);
  return info;
}

void sglang(const char* text, size_t size, uint32_t gpus, uint32_t dense) {
  eplb_placement* placement = nullptr;
  if (eplb_placement_from_sglang_json(text, size, 0, 1, gpus, dense, &placement) != EPLB_OK) {
    require(placement == nullptr);
    return;
  }
  const eplb_placement_info info = info_of(placement);
  char* json = nullptr;
  size_t len = 0;
  require(eplb_placement_to_sglang_json(placement, dense, &json, &len) == EPLB_OK);
  eplb_placement* again = nullptr;
  require(eplb_placement_from_sglang_json(json, len, info.num_logical_experts, 1, gpus, dense,
                                          &again) == EPLB_OK);
  require(phy2log_of(again) == phy2log_of(placement));
  eplb_buffer_free(json);
  eplb_placement_destroy(again);
  eplb_placement_destroy(placement);
}

void vllm_ascend(const char* text, size_t size) {
  eplb_placement* placement = nullptr;
  if (eplb_placement_from_vllm_ascend_json(text, size, 0, 1, &placement) != EPLB_OK) {
    require(placement == nullptr);
    return;
  }
  char* json = nullptr;
  size_t len = 0;
  require(eplb_placement_to_vllm_ascend_json(placement, &json, &len) == EPLB_OK);
  eplb_placement* again = nullptr;
  require(eplb_placement_from_vllm_ascend_json(json, len, 0, 1, &again) == EPLB_OK);
  require(phy2log_of(again) == phy2log_of(placement));
  require(info_of(again).num_gpus == info_of(placement).num_gpus);
  eplb_buffer_free(json);
  eplb_placement_destroy(again);
  eplb_placement_destroy(placement);
}

void loads(const char* text, size_t size) {
  double* values = nullptr;
  uint32_t layers = 0;
  uint32_t experts = 0;
  if (eplb_loads_from_sglang_json(text, size, &values, &layers, &experts) != EPLB_OK) {
    require(values == nullptr);
    return;
  }
  require(layers > 0 && experts > 0);
  for (size_t i = 0; i < static_cast<size_t>(layers) * experts; ++i) require(values[i] >= 0);
  eplb_buffer_free(values);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* text = reinterpret_cast<const char*>(data);
  sglang(text, size, 1, 0);
  sglang(text, size, 2, 1);
  vllm_ascend(text, size);
  loads(text, size);
  return 0;
}
