// libFuzzer target for the CLI's own reader of SGLang's load file (eplb_cli::parse_logical_count,
// used by `eplb plan --counts`): any bytes give a LoadMatrix or an InputError, never a crash, a
// leak, undefined behaviour or another exception; what it accepts is well formed (shapes agree,
// every load finite and >= 0, loads the sum of the steps) and equals what the C API's reader
// (eplb_loads_from_sglang_json) makes of the same text when that accepts it too.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "eplb/cli_error.hpp"
#include "eplb/eplb.h"
#include "eplb/load_file.hpp"

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  eplb_cli::LoadMatrix matrix;
  try {
    matrix = eplb_cli::parse_logical_count(text, "fuzz");
  } catch (const eplb_cli::InputError&) {
    return 0;
  }
  const size_t cells = static_cast<size_t>(matrix.num_layers) * matrix.num_experts;
  require(matrix.num_layers > 0 && matrix.num_experts > 0 && matrix.num_steps > 0);
  require(matrix.loads.size() == cells);
  require(matrix.steps.size() == cells * matrix.num_steps);
  for (size_t i = 0; i < cells; ++i) {
    double sum = 0;
    for (size_t s = 0; s < matrix.num_steps; ++s) {
      const double value = matrix.steps[s * cells + i];
      require(value >= 0 && value <= std::numeric_limits<double>::max());  // NaN fails too
      sum += value;
    }
    require(sum == matrix.loads[i]);
  }

  double* loads = nullptr;
  uint32_t layers = 0;
  uint32_t experts = 0;
  if (eplb_loads_from_sglang_json(text.data(), text.size(), &loads, &layers, &experts) == EPLB_OK) {
    require(layers == matrix.num_layers && experts == matrix.num_experts);
    require(std::vector<double>(loads, loads + cells) == matrix.loads);
    eplb_buffer_free(loads);
  }
  return 0;
}
