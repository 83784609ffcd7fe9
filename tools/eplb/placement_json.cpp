#include "eplb/placement_json.hpp"

#include <memory>

#include "eplb/library.hpp"

namespace eplb_cli {

namespace {

// Runs a C API writer and takes its malloc'ed string.
template <typename Write>
std::string take_text(const Write& write, const std::string& context) {
  char* text = nullptr;
  std::size_t len = 0;
  check(write(&text, &len), context);
  const std::unique_ptr<char, LibraryBufferFree> owned(text);
  return {text, len};
}

}  // namespace

std::string sglang_placement_json(const eplb_placement* placement, std::uint32_t num_dense_layers) {
  return take_text(
      [&](char** text, std::size_t* len) {
        return eplb_placement_to_sglang_json(placement, num_dense_layers, text, len);
      },
      "cannot write SGLang's map: ");
}

std::string vllm_ascend_placement_json(const eplb_placement* placement) {
  return take_text(
      [&](char** text, std::size_t* len) {
        return eplb_placement_to_vllm_ascend_json(placement, text, len);
      },
      "cannot write vLLM-Ascend's map: ");
}

}  // namespace eplb_cli
