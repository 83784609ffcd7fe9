// Placement files the CLI reads and writes, all through the C API: .eplb snapshots, SGLang's
// placement map and vLLM-Ascend's expert map (both .json, told apart by their keys).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eplb/library.hpp"

namespace eplb_cli {

enum class PlacementFormat { snapshot, sglang, vllm_ascend };

// "eplb snapshot", "SGLang map", "vLLM-Ascend map".
[[nodiscard]] const char* describe(PlacementFormat format);

// What the JSON formats do not record, from the command line (0 = not given).
struct TopologyArgs {
  std::uint32_t nodes = 0;         // default 1 for JSON maps
  std::uint32_t gpus = 0;          // required for SGLang maps
  std::uint32_t experts = 0;       // 0 = one more than the largest id
  std::uint32_t dense_layers = 0;  // SGLang rows before the first MoE layer
};

struct PlacementFile {
  PlacementFormat format = PlacementFormat::snapshot;
  PlacementPtr placement;
  std::vector<double> loads;  // [layers][experts] from a snapshot with statistics, else empty
  std::string label;          // a snapshot's label
};

// Reads `path`: a snapshot if its name ends in .eplb or its content starts with the snapshot
// magic, otherwise JSON recognised by its keys. For a snapshot, given topology arguments must
// agree with the file. Throws InputError (exit 2) for unreadable or bad input.
[[nodiscard]] PlacementFile read_placement_file(const std::string& path, const TopologyArgs& args);

// The output format: `to` ("eplb", "sglang", "vllm-ascend") if not empty, else by extension
// (.eplb, .json = SGLang). Throws InputError.
[[nodiscard]] PlacementFormat output_format(const std::string& path, const std::string& to);

// Writes atomically. `loads` (may be empty) and `label` go into snapshots only.
void write_placement_file(const std::string& path, PlacementFormat format,
                          const eplb_placement* placement, const std::vector<double>& loads,
                          const std::string& label, std::uint32_t dense_layers);

// SGLang's load file through the C API, summed over steps: [layers][experts].
struct Loads {
  std::uint32_t num_layers = 0;
  std::uint32_t num_experts = 0;
  std::vector<double> values;
};
[[nodiscard]] Loads read_sglang_loads(const std::string& path);

// "58 MoE layers x 256 experts, 288 slots on 32 GPUs in 4 nodes".
[[nodiscard]] std::string shape_text(const eplb_placement_info& info);

}  // namespace eplb_cli
