// Reading SGLang's expert load file: a JSON object with `logical_count`, either
// [layers][experts] or [steps][layers][experts] (steps are summed). Other keys are ignored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eplb/eplb.h"

namespace eplb_cli {

struct LoadMatrix {
  std::uint32_t num_layers = 0;
  std::uint32_t num_experts = 0;
  std::uint32_t num_steps = 1;  // 1 for the 2-D form
  std::vector<double> loads;    // [layers][experts], summed over steps
  std::vector<double> steps;    // [steps][layers][experts] as recorded
};

// Throws InputError naming the file, key, indices and value of the first problem. An .eplb
// snapshot gives the load statistics it stores (read_snapshot_loads).
[[nodiscard]] LoadMatrix read_logical_count_file(const std::string& path);

// A tracker's loads, as one window.
[[nodiscard]] LoadMatrix load_matrix_of(const eplb_tracker* tracker);

// The load statistics a snapshot stores (`bytes`, the content of `path`): a plan's loads, or else
// its tracker's, so that re-planning a saved plan for another layout needs no JSON file. Throws
// InputError for a damaged snapshot or one saved without either.
[[nodiscard]] LoadMatrix read_snapshot_loads(const std::string& path, const std::string& bytes);

// For --dense-layers K (K trivial rows written before the MoE layers of SGLang's map): throws
// InputError when the first K layers of `loads` ([layers][num_experts]) have no load, i.e. the
// input already has the dense layers' rows, as SGLang's own logical_count files do (61 rows for
// DeepSeek-V3), and K more would be written. `source` names the input in the message.
void require_no_dense_rows(const std::vector<double>& loads, std::uint32_t num_experts,
                           std::uint32_t dense_layers, const std::string& source);

// Parses the JSON text of a load file; `source` names it in messages.
[[nodiscard]] LoadMatrix parse_logical_count(const std::string& text, const std::string& source);

}  // namespace eplb_cli
