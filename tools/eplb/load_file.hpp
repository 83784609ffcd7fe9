// Reading SGLang's expert load file: a JSON object with `logical_count`, either
// [layers][experts] or [steps][layers][experts] (steps are summed). Other keys are ignored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace eplb_cli {

struct LoadMatrix {
  std::uint32_t num_layers = 0;
  std::uint32_t num_experts = 0;
  std::uint32_t num_steps = 1;  // 1 for the 2-D form
  std::vector<double> loads;    // [layers][experts], summed over steps
  std::vector<double> steps;    // [steps][layers][experts] as recorded
};

// Throws InputError naming the file, key, indices and value of the first problem.
[[nodiscard]] LoadMatrix read_logical_count_file(const std::string& path);

// Parses the JSON text of a load file; `source` names it in messages.
[[nodiscard]] LoadMatrix parse_logical_count(const std::string& text, const std::string& source);

}  // namespace eplb_cli
