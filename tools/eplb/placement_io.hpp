// Placement files the CLI reads and writes, all through the C API: .eplb snapshots, SGLang's
// placement map and vLLM-Ascend's expert map (both .json, told apart by their keys).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eplb/library.hpp"
#include "eplb/tracker_handle.hpp"

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
  TrackerPtr tracker;         // a snapshot's co-activation statistics, else null
};

// Reads `path`: a snapshot if its name ends in .eplb or its content starts with the snapshot
// magic, otherwise JSON recognised by its keys. For a snapshot, given topology arguments must
// agree with the file. Throws InputError (exit 2) for unreadable or bad input.
[[nodiscard]] PlacementFile read_placement_file(const std::string& path, const TopologyArgs& args);

// The output format: `to` ("eplb", "sglang", "vllm-ascend") if not empty, else by extension
// (.eplb, .json = SGLang). Throws InputError.
[[nodiscard]] PlacementFormat output_format(const std::string& path, const std::string& to);

// Writes atomically. `loads` (may be empty), `label` and `tracker` (may be null: co-activation
// statistics) go into snapshots only.
void write_placement_file(const std::string& path, PlacementFormat format,
                          const eplb_placement* placement, const std::vector<double>& loads,
                          const std::string& label, const eplb_tracker* tracker,
                          std::uint32_t dense_layers);

// The placement without its first `dense_layers` layers (a plan from SGLang's logical_count,
// which has rows for the dense layers, written for a format that has MoE layers only). Throws
// InputError when the placement has no more layers than that, or a dropped layer is not dense:
// it has load in `loads`, or (without loads) not the trivial placement. `loads` loses the same
// rows.
[[nodiscard]] PlacementPtr drop_dense_layers(const eplb_placement* placement,
                                             std::vector<double>& loads, std::uint32_t dense_layers,
                                             const std::string& path);

// How many leading layers of `placement` look like the dense layers' rows of a plan made from
// SGLang's logical_count (61 rows for DeepSeek-V3, the first 3 dense): layers without load in
// `loads` ([layers][experts]), or, when `loads` is empty, layers with the trivial placement
// (slot s holds expert s mod E) that a plan gives a layer without load. 0 unless some later
// layer does not look so: a map whose every layer is trivial is a default placement, not a plan
// with dense rows. `path` names the placement in messages.
[[nodiscard]] std::uint32_t leading_dense_layers(const eplb_placement* placement,
                                                 const std::vector<double>& loads,
                                                 const std::string& path);

// "p.eplb: the first 3 layers have no load, like the dense layers' rows of a plan from SGLang's
// logical_count" (or "... the trivial placement ..." when judged without loads), for `layers`
// leading layers found by leading_dense_layers().
[[nodiscard]] std::string dense_rows_text(const std::string& path, std::uint32_t layers,
                                          bool by_load);

// Writing SGLang's map adds `dense_layers` trivial rows: throws InputError when `placement`
// (named `path`) has them already: leading layers without load in `loads` or, when `loads` is
// empty, with the trivial placement (leading_dense_layers).
void require_no_dense_rows_in(const eplb_placement* placement, const std::vector<double>& loads,
                              std::uint32_t dense_layers, const std::string& path);

// SGLang's load file through the C API, summed over steps: [layers][experts]; or the load
// statistics an .eplb snapshot stores (read_snapshot_loads).
struct Loads {
  std::uint32_t num_layers = 0;
  std::uint32_t num_experts = 0;
  std::vector<double> values;
};
[[nodiscard]] Loads read_sglang_loads(const std::string& path);

// `counts` as loads of `placement` ([layers][experts], read from `counts_path`): as many rows as
// the placement has MoE layers, or `dense_layers` more (SGLang records dense layers as rows; they
// must be zero and are dropped). Throws InputError naming both files otherwise, and, with
// `suggest_dense_layers` (the command would drop them from the counts alone), the --dense-layers
// that matches the extra rows.
[[nodiscard]] std::vector<double> loads_for_placement(
    Loads counts, const eplb_placement_info& placement, std::uint32_t dense_layers,
    const std::string& counts_path, const std::string& placement_path, bool suggest_dense_layers);

// "58 MoE layers x 256 experts, 288 slots on 32 GPUs in 4 nodes".
[[nodiscard]] std::string shape_text(const eplb_placement_info& info);

}  // namespace eplb_cli
