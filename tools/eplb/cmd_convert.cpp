// eplb convert: between .eplb snapshots, SGLang's placement map and vLLM-Ascend's expert map.
#include <iostream>
#include <memory>
#include <string>

#include "eplb/cli_checks.hpp"
#include "eplb/commands.hpp"
#include "eplb/load_file.hpp"
#include "eplb/placement_io.hpp"

namespace eplb_cli {

namespace {

struct ConvertArgs {
  std::string in;
  std::string out;
  std::string to;
  std::string counts;
  std::string label;
  TopologyArgs topology;
};

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

}  // namespace

void register_convert_command(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  auto* command = app.add_subcommand(
      "convert", "Convert a placement between .eplb snapshots, SGLang's map and vLLM-Ascend's map");
  command->footer(
      "Input formats are recognised by content: an .eplb snapshot, or JSON with "
      "physical_to_logical_map (SGLang) or layer_list (vLLM-Ascend). The output format is --to, "
      "or the extension (.eplb = snapshot, .json = SGLang).");
  command->add_option("IN", args->in, "Placement file to read")->required();
  command->add_option("OUT", args->out, "File to write (atomically)")->required();
  command->add_option("--to", args->to, "Output format: eplb, sglang or vllm-ascend")
      ->check(CLI::IsMember({"eplb", "sglang", "vllm-ascend"}))
      ->type_name("FORMAT");
  command
      ->add_option("--gpus", args->topology.gpus,
                   "GPUs the slots are split over (required to read SGLang's map)")
      ->check(whole_number(1))
      ->type_name("G");
  command
      ->add_option("--nodes", args->topology.nodes, "Nodes (JSON maps do not record it; default 1)")
      ->check(whole_number(1))
      ->type_name("N");
  command
      ->add_option("--experts", args->topology.experts,
                   "Logical experts (default: one more than the largest id)")
      ->check(whole_number(1))
      ->type_name("E");
  command
      ->add_option("--dense-layers", args->topology.dense_layers,
                   "SGLang rows before the first MoE layer: skipped when reading, written as "
                   "trivial rows (DeepSeek-V3: 3, for a placement of its 58 MoE layers; one "
                   "planned from SGLang's 61-row load file already has them)")
      ->check(whole_number(0))
      ->type_name("K");
  command
      ->add_option("--counts", args->counts,
                   "Store this load file (SGLang's logical_count) in the .eplb snapshot")
      ->type_name("FILE");
  command->add_option("--label", args->label, "Label of the .eplb snapshot")->type_name("TEXT");
  command->callback([args] { run_convert(*args); });
}

}  // namespace eplb_cli
