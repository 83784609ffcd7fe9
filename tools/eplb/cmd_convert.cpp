// eplb convert: between .eplb snapshots, SGLang's placement map and vLLM-Ascend's expert map.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "eplb/commands.hpp"
#include "eplb/json_output.hpp"
#include "eplb/load_file.hpp"
#include "eplb/placement_io.hpp"
#include "eplb/table.hpp"

namespace eplb_cli {

namespace {

// The name --to takes for a format.
const char* format_name(PlacementFormat format) {
  switch (format) {
    case PlacementFormat::snapshot:
      return "eplb";
    case PlacementFormat::sglang:
      return "sglang";
    case PlacementFormat::vllm_ascend:
      return "vllm-ascend";
  }
  return "?";
}

// vLLM-Ascend's map holds MoE layers only, so the dense layers' rows of a plan made from
// SGLang's logical_count (61 rows for DeepSeek-V3) would shift every MoE layer: without
// --dense-layers, refuse an input whose leading layers look like them.
void require_no_leading_dense_rows(const PlacementFile& file, const std::string& path) {
  const std::uint32_t dense = leading_dense_layers(file.placement.get(), file.loads, path);
  if (dense == 0) return;
  throw InputError(dense_rows_text(path, dense, !file.loads.empty()) +
                   ", but vLLM-Ascend's map holds MoE layers only: pass --dense-layers " +
                   std::to_string(dense) + " to leave them out (or --dense-layers 0 to keep them)");
}

}  // namespace

void run_convert(const ConvertArgs& args) {
  const PlacementFormat target = output_format(args.out, args.to);
  PlacementFile file = read_placement_file(args.in, args.topology);
  const std::uint32_t dense = args.topology.dense_layers;
  // --dense-layers: the rows an SGLang map has before its MoE layers, or, writing vLLM-Ascend's
  // map (MoE layers only), the dense layers' rows to drop from a plan of SGLang's logical_count.
  const bool strip_dense = dense != 0 && target == PlacementFormat::vllm_ascend &&
                           file.format == PlacementFormat::snapshot;
  if (dense != 0 && file.format != PlacementFormat::sglang && target != PlacementFormat::sglang &&
      !strip_dense) {
    throw InputError(
        "--dense-layers applies to SGLang maps, and to vLLM-Ascend maps written "
        "from a plan with the dense layers' rows (reading " +
        std::string(describe(file.format)) + ", writing " + describe(target) + ")");
  }
  if (!args.counts.empty() || !args.label.empty()) {
    if (target != PlacementFormat::snapshot) {
      throw InputError(std::string(args.counts.empty() ? "--label" : "--counts") +
                       " goes into .eplb snapshots only, not into a " + describe(target));
    }
  }
  const auto source_info = info_of(file.placement.get());
  if (!args.counts.empty()) {
    // (convert's --dense-layers is about the maps' rows, so it is not suggested for the counts.)
    file.loads = loads_for_placement(read_sglang_loads(args.counts), source_info, dense,
                                     args.counts, args.in, false);
  }
  if (target == PlacementFormat::vllm_ascend && file.format != PlacementFormat::vllm_ascend &&
      !args.dense_layers_given) {
    require_no_leading_dense_rows(file, args.in);
  }
  if (strip_dense)
    file.placement = drop_dense_layers(file.placement.get(), file.loads, dense, args.in);
  const auto info = info_of(file.placement.get());
  // Writing SGLang's map adds `dense` trivial rows: refuse a placement that has them already (a
  // plan of SGLang's 61-row logical_count, or vLLM-Ascend's map written from one with them kept).
  if (target == PlacementFormat::sglang && dense != 0 && file.format != PlacementFormat::sglang) {
    require_no_dense_rows_in(file.placement.get(), file.loads, dense, args.in);
  }
  const std::string label = args.label.empty() ? file.label : args.label;
  write_placement_file(args.out, target, file.placement.get(), file.loads, label,
                       file.tracker.get(), dense);

  // Say what the target cannot hold, so nobody expects it back.
  std::vector<std::pair<std::string, std::string>> dropped;  // (JSON key, text)
  if (target != PlacementFormat::snapshot) {
    if (!file.loads.empty()) dropped.emplace_back("loads", "the load statistics");
    if (file.tracker) dropped.emplace_back("coactivation", "the co-activation statistics");
    // (Of the source: dropping dense layers rebuilds the placement without its provenance.)
    if (source_info.algorithm != 0) dropped.emplace_back("algorithm", "the algorithm");
    if (source_info.num_groups > 1) dropped.emplace_back("num_groups", "the expert groups");
    if (source_info.num_nodes > 1) dropped.emplace_back("num_nodes", "the node count");
    if (target == PlacementFormat::sglang) dropped.emplace_back("num_gpus", "the GPU count");
  }
  if (args.json) {
    std::vector<std::string> not_recorded;
    for (const auto& item : dropped) not_recorded.push_back(item.first);
    const nlohmann::json document = {
        {"in", args.in},
        {"in_format", format_name(file.format)},
        {"out", args.out},
        {"out_format", format_name(target)},
        {"num_layers", info.num_layers},
        {"num_logical_experts", info.num_logical_experts},
        {"num_physical_experts", info.num_physical_experts},
        {"num_gpus", info.num_gpus},
        {"num_nodes", info.num_nodes},
        {"dense_layers_dropped", strip_dense ? dense : 0},
        {"sglang_dense_rows", target == PlacementFormat::sglang ? dense : 0},
        {"not_recorded", not_recorded},
    };
    print_json(document);
    return;
  }
  std::cout << "Converted " << args.in << " (" << describe(file.format) << ": "
            << shape_text(source_info) << ") to " << args.out << " (" << describe(target);
  if (target == PlacementFormat::sglang && dense != 0) {
    std::cout << ", " << info.num_layers + dense << " rows with " << dense << " dense";
  }
  if (strip_dense) std::cout << ", without the " << counted(dense, "dense layer");
  std::cout << ")\n";
  if (!dropped.empty()) {
    std::string list;
    for (const auto& item : dropped) list += (list.empty() ? "" : ", ") + item.second;
    std::cout << "Not recorded in a " << describe(target) << ": " << list << " (pass "
              << (dropped.size() == 1 ? "it" : "them") << " again when reading it)\n";
  }
}

}  // namespace eplb_cli
