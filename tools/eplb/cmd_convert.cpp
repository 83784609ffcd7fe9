// eplb convert: between .eplb snapshots, SGLang's placement map and vLLM-Ascend's expert map.
#include <iostream>
#include <memory>
#include <string>

#include "eplb/commands.hpp"
#include "eplb/load_file.hpp"
#include "eplb/placement_io.hpp"

namespace eplb_cli {

void run_convert(const ConvertArgs& args) {
  const PlacementFormat target = output_format(args.out, args.to);
  PlacementFile file = read_placement_file(args.in, args.topology);
  if (args.topology.dense_layers != 0 && file.format != PlacementFormat::sglang &&
      target != PlacementFormat::sglang) {
    throw InputError("--dense-layers applies to SGLang maps only (reading " +
                     std::string(describe(file.format)) + ", writing " + describe(target) + ")");
  }
  const auto info = info_of(file.placement.get());
  if (!args.counts.empty() || !args.label.empty()) {
    if (target != PlacementFormat::snapshot) {
      throw InputError(std::string(args.counts.empty() ? "--label" : "--counts") +
                       " goes into .eplb snapshots only, not into a " + describe(target));
    }
  }
  if (!args.counts.empty()) {
    Loads loads = read_sglang_loads(args.counts);
    if (loads.num_layers != info.num_layers || loads.num_experts != info.num_logical_experts) {
      throw InputError(args.counts + ": " + std::to_string(loads.num_layers) + " layers x " +
                       std::to_string(loads.num_experts) + " experts, but " + args.in + " has " +
                       std::to_string(info.num_layers) + " x " +
                       std::to_string(info.num_logical_experts));
    }
    file.loads = std::move(loads.values);
  }
  if (target == PlacementFormat::sglang && args.topology.dense_layers != 0 && !file.loads.empty()) {
    require_no_dense_rows(file.loads, info.num_logical_experts, args.topology.dense_layers,
                          args.in);
  }
  const std::string label = args.label.empty() ? file.label : args.label;
  write_placement_file(args.out, target, file.placement.get(), file.loads, label,
                       args.topology.dense_layers);

  std::cout << "Converted " << args.in << " (" << describe(file.format) << ": " << shape_text(info)
            << ") to " << args.out << " (" << describe(target);
  if (target == PlacementFormat::sglang && args.topology.dense_layers != 0) {
    std::cout << ", " << info.num_layers + args.topology.dense_layers << " rows with "
              << args.topology.dense_layers << " dense";
  }
  std::cout << ")\n";
  // Say what the target cannot hold, so nobody expects it back.
  if (target != PlacementFormat::snapshot) {
    std::string dropped;
    if (!file.loads.empty()) dropped += "the load statistics, ";
    if (info.algorithm != 0) dropped += "the algorithm, ";
    if (info.num_groups > 1) dropped += "the expert groups, ";
    if (info.num_nodes > 1) dropped += "the node count, ";
    if (target == PlacementFormat::sglang) dropped += "the GPU count, ";
    if (!dropped.empty()) {
      dropped.resize(dropped.size() - 2);
      std::cout << "Not recorded in a " << describe(target) << ": " << dropped
                << " (pass them again when reading it)\n";
    }
  }
}

}  // namespace eplb_cli
