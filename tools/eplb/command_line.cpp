// Every `eplb` command's options and help text: the one translation unit (with main.cpp) that
// includes CLI11, whose header alone costs seconds of compile time per file.
#include "eplb/command_line.hpp"

#include <CLI/CLI.hpp>
#include <cstdint>
#include <limits>
#include <memory>

#include "eplb/cli_checks.hpp"
#include "eplb/commands.hpp"
#include "eplb/library.hpp"

namespace eplb_cli {

namespace {

void add_plan_command(CLI::App& app) {
  auto args = std::make_shared<PlanArgs>();
  auto* command = app.add_subcommand(
      "plan",
      "Plan a placement from expert loads: SGLang's logical_count JSON (--counts) or a "
      "statistics snapshot of 'eplb record' (--stats)");
  command
      ->add_option("--counts", args->counts,
                   "Load file: JSON object with logical_count as [layers][experts] or "
                   "[steps][layers][experts]; repeat for several files. Steps and files are "
                   "summed, or are the windows of --robust")
      ->take_all()
      ->allow_extra_args(true)
      ->type_name("FILE...");
  command
      ->add_option("--stats", args->stats,
                   "Plan from the loads of a statistics snapshot ('eplb record') instead of "
                   "--counts; an .eplb --out keeps its co-activation statistics")
      ->type_name("FILE.eplb");
  command->add_flag("--robust", args->robust,
                    "Plan for the mean over windows (steps, files) of each window's busiest GPU "
                    "instead of the busiest GPU of their sum (balanced algorithms)");
  command->add_option("--replicas", args->replicas, "Physical expert slots per layer (R)")
      ->required()
      ->check(whole_number(1))
      ->type_name("R");
  command->add_option("--gpus", args->gpus, "GPUs in the expert-parallel group")
      ->required()
      ->check(whole_number(1))
      ->type_name("G");
  command->add_option("--nodes", args->nodes, "Nodes (GPUs are split evenly)")
      ->capture_default_str()
      ->check(whole_number(1))
      ->type_name("N");
  command->add_option("--groups", args->groups, "Expert groups (DeepSeek-V3: 8)")
      ->capture_default_str()
      ->check(whole_number(1))
      ->type_name("K");
  command->add_option("--algorithm", args->algorithm, "Placement algorithm (see 'eplb algorithms')")
      ->default_str(default_algorithm_name())
      ->type_name("NAME");
  command
      ->add_option("--out", args->out,
                   "Write the placement: x.json = SGLang's physical_to_logical_map, x.eplb = a "
                   "libeplb snapshot with the load statistics (see 'eplb inspect')")
      ->type_name("FILE");
  command->add_option("--label", args->label, "A label stored in an .eplb snapshot (UTF-8)")
      ->type_name("TEXT");
  command
      ->add_option("--dense-layers", args->dense_layers,
                   "With --out FILE.json: trivial rows written before the MoE layers, so that rows "
                   "equal the model's hidden layers, for an input of MoE layers only (DeepSeek-V3: "
                   "3 on 58 rows; SGLang's own logical_count files already have the 61)")
      ->capture_default_str()
      ->check(whole_number(0))
      ->type_name("K");
  command
      ->add_option("--cross-node-budget", args->cross_node_budget,
                   "balanced-relaxed (required there): replicas per layer allowed off their "
                   "expert group's node")
      ->check(whole_number(0))
      ->type_name("N");
  command
      ->add_option("--threads", args->threads,
                   "Threads to split layers across (the plan does not depend on it)")
      ->capture_default_str()
      ->check(whole_number(1, 256))
      ->type_name("N");
  auto* affinity =
      command->add_flag("--affinity", args->affinity,
                        "With --stats: keep experts that tokens pick together on one node (fewer "
                        "nodes touched per token), within --min-balance of the balance-only plan; "
                        "any algorithm");
  command
      ->add_option("--min-balance", args->min_balance,
                   "--affinity: keep balancedness >= this x that of the balance-only plan")
      ->capture_default_str()
      ->check(real_number(0.01, 1.0))
      ->needs(affinity)
      ->type_name("X");
  command->add_flag("--report,--json", args->report,
                    "Print a JSON report (metrics per layer and in total, planning time)");
  command->callback([args] { run_plan(*args); });
}

void add_demo_command(CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  auto* command = app.add_subcommand(
      "demo", "Plan an embedded DeepSeek-V3-shaped workload with every algorithm and compare");
  command->add_option("--seed", args->seed, "Seed of the synthetic workload")
      ->capture_default_str()
      ->check(whole_number(0, std::numeric_limits<std::int64_t>::max()))
      ->type_name("S");
  command->add_flag("--json", args->json, "Print JSON instead of a table");
  command->callback([args] { run_demo(*args); });
}

void add_algorithms_command(CLI::App& app) {
  auto args = std::make_shared<AlgorithmsArgs>();
  auto* command = app.add_subcommand("algorithms", "List the placement algorithms");
  command->add_flag("--json", args->json, "Print JSON instead of a table");
  command->callback([args] { run_algorithms(*args); });
}

void add_inspect_command(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  auto* command = app.add_subcommand(
      "inspect",
      "Show what an .eplb snapshot holds: shape, topology, algorithm, provenance, "
      "metrics and per-GPU loads under its stored statistics");
  command->add_option("file", args->file, "The snapshot (.eplb)")->required()->type_name("FILE");
  command
      ->add_option("--layer", args->layer,
                   "Show the GPU loads of this layer (0-based) instead of the sum over layers")
      ->check(whole_number(0))
      ->type_name("N");
  auto* json = command->add_flag("--json", args->json, "Print one JSON document instead of text");
  command
      ->add_flag("--pairs", args->pairs,
                 "With --json: every layer's co-activation counts (packed upper triangle, "
                 "pair (a, b) at a*(2E-a-1)/2 + b-a-1) under statistics.coactivation")
      ->needs(json);
  command->callback([args] { run_inspect(*args); });
}

void add_convert_command(CLI::App& app) {
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

void add_plot_command(CLI::App& app) {
  auto args = std::make_shared<PlotArgs>();
  auto* command = app.add_subcommand(
      "plot", "Draw an SVG of per-GPU load: heat maps (layers x GPUs) and bars, before and after");
  command->footer(
      "FILE is a snapshot written with its load statistics (eplb plan --out x.eplb), or any "
      "placement file plus --counts. 'Before' is the layout without balancing: every expert once, "
      "in contiguous blocks per GPU.");
  command->add_option("FILE", args->file, "Placement file (.eplb, SGLang or vLLM-Ascend JSON)")
      ->required();
  command->add_option("--out", args->out, "SVG file to write")->required()->type_name("x.svg");
  command
      ->add_option("--layer", args->layer,
                   "Bars for this MoE layer (default: summed over layers); marked in the heat "
                   "maps")
      ->check(whole_number(0))
      ->type_name("N");
  command
      ->add_option("--counts", args->counts,
                   "Load file (SGLang's logical_count JSON) if FILE carries no statistics")
      ->type_name("FILE");
  command->add_option("--gpus", args->topology.gpus, "GPUs (to read SGLang's map)")
      ->check(whole_number(1))
      ->type_name("G");
  command->add_option("--nodes", args->topology.nodes, "Nodes (to read a JSON map; default 1)")
      ->check(whole_number(1))
      ->type_name("N");
  command
      ->add_option("--experts", args->topology.experts,
                   "Logical experts (to read a JSON map; default: largest id + 1)")
      ->check(whole_number(1))
      ->type_name("E");
  command
      ->add_option("--dense-layers", args->topology.dense_layers,
                   "Dense rows of SGLang's map (and of the load file) before the MoE layers")
      ->check(whole_number(0))
      ->type_name("K");
  command->callback([args] { run_plot(*args); });
}

void add_record_command(CLI::App& app) {
  auto args = std::make_shared<RecordArgs>();
  auto* command = app.add_subcommand(
      "record",
      "Record expert load and co-activation statistics from top-k routing traces (JSON lines) "
      "into a statistics snapshot (.eplb) for 'eplb plan --stats'");
  command
      ->add_option("--trace", args->traces,
                   "Trace file: JSON lines, one object per token and layer with \"layer\" and "
                   "\"experts\" (a list of expert ids, -1 = masked); other keys are ignored. "
                   "Repeat or list several files")
      ->required()
      ->take_all()
      ->type_name("FILE...");
  command->add_option("--experts", args->experts, "Logical experts per layer (E)")
      ->required()
      ->check(whole_number(1))
      ->type_name("E");
  command
      ->add_option("--layers", args->layers,
                   "MoE layers (default: the largest layer in the traces + 1); a larger layer "
                   "is an error")
      ->check(whole_number(1))
      ->type_name("L");
  command
      ->add_option("--top-k", args->top_k,
                   "Slots per token (default: the widest row seen; shorter rows are padded "
                   "with -1)")
      ->check(whole_number(1, 1024))
      ->type_name("K");
  command
      ->add_option("--window", args->window,
                   "What the statistics remember: cumulative (everything), sliding (the last "
                   "--window-batches batches) or decay (older batches weigh --decay less each)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cumulative", "sliding", "decay"}).description(""))
      ->type_name("KIND");
  auto* window_batches =
      command
          ->add_option("--window-batches", args->window_batches, "sliding: batches kept per layer")
          ->capture_default_str()
          ->check(whole_number(1, 1 << 20))
          ->type_name("W");
  auto* decay =
      command->add_option("--decay", args->decay, "decay: weight factor per batch, in (0, 1]")
          ->capture_default_str()
          ->check(real_number(0, 1))
          ->type_name("D");
  command
      ->add_option("--batch-tokens", args->batch_tokens,
                   "Rows of a layer per batch (what windows count), in file order")
      ->capture_default_str()
      ->check(whole_number(1, 1 << 30))
      ->type_name("N");
  command->add_option("--samples", args->samples, "Sampled top-k rows kept per layer (0 = none)")
      ->capture_default_str()
      ->check(whole_number(0))
      ->type_name("N");
  command->add_option("--seed", args->seed, "Seed of the row sampler")
      ->capture_default_str()
      ->check(whole_number(0, std::numeric_limits<std::int64_t>::max()))
      ->type_name("S");
  command->add_option("--out", args->out, "The statistics snapshot to write (.eplb)")
      ->required()
      ->type_name("FILE");
  command->add_option("--label", args->label, "A label stored in the snapshot (UTF-8)")
      ->type_name("TEXT");
  command->add_flag("--json", args->json, "Print a JSON summary instead of text");
  command->callback([args, window_batches, decay] {
    args->window_batches_given = window_batches->count() > 0;
    args->decay_given = decay->count() > 0;
    run_record(*args);
  });
}

}  // namespace

void add_commands(CLI::App& app) {
  add_plan_command(app);
  add_demo_command(app);
  add_algorithms_command(app);
  add_inspect_command(app);
  add_convert_command(app);
  add_plot_command(app);
  add_record_command(app);
}

}  // namespace eplb_cli
