// Every `eplb` command's options and help text: the one translation unit (with main.cpp) that
// includes CLI11, whose header alone costs seconds of compile time per file.
#include "eplb/command_line.hpp"

#include <sched.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "eplb/cli_checks.hpp"
#include "eplb/commands.hpp"
#include "eplb/library.hpp"

namespace eplb_cli {

namespace {

// The cores this process may run on (its CPU affinity, as taskset and container runtimes set it),
// or the machine's when that cannot be read.
unsigned usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    return static_cast<unsigned>(CPU_COUNT(&set));
  }
  return std::thread::hardware_concurrency();
}

// A usage error found once the command line is parsed: main() reports it as it does CLI11's own
// (exit status 2, with the command's --help), before the command reads any file.
[[noreturn]] void usage_error(const std::string& message) { throw CLI::ValidationError(message); }

// A file name: not empty (an empty --out is not "no --out"), and for an option not an option's
// name (a file named like one is passed as ./--x), so that `--out --json` does not write a file
// "--json". An argument (IN, OUT) may start with dashes: it can only follow "--".
CLI::Validator file_name(bool is_argument = false) {
  return CLI::Validator(
      [is_argument](const std::string& text) -> std::string {
        if (text.empty()) return "the FILE name is empty";
        if (!is_argument && text.rfind("--", 0) == 0) {
          return "'" + text + "' looks like an option, not a FILE (write ./" + text +
                 " for a file of that name)";
        }
        return "";
      },
      "", "file name");
}

// A number in (0, 1].
CLI::Validator fraction() {
  return CLI::Validator(
      [](const std::string& text) -> std::string {
        double value = 0;
        const char* end = text.data() + text.size();
        const auto [stop, error] = std::from_chars(text.data(), end, value);
        if (error != std::errc() || stop != end || text.empty() || !(value == value)) {
          return "'" + text + "' is not a number";
        }
        if (!(value > 0 && value <= 1)) return text + " is outside (0, 1]";
        return "";
      },
      "", "number");
}

// An option taking one or more files, after one flag or over repeated ones (--counts a b
// --counts c). With CLI11's default of at least one value it would take the next word whatever
// it is (`--counts --gpus 8` read a file named "--gpus"); with no minimum it takes only words
// that are not options, and require_files() then reports a flag given no file.
CLI::Option* add_files_option(CLI::App& command, const std::string& name,
                              std::vector<std::string>& files, const std::string& description) {
  return command.add_option(name, files, description)
      ->expected(0, -1)
      ->take_all()
      ->allow_extra_args(true)
      ->check(file_name())
      ->type_name("FILE");
}

void require_files(const CLI::Option& option) {
  for (const std::string& result : option.results()) {
    if (result.empty()) usage_error(option.get_name() + " needs at least one FILE");
  }
}

// An input or output file given as an argument (IN, OUT): named so in --help and in "IN is
// required", with no type name after it.
CLI::Option* add_file_argument(CLI::App& command, const std::string& name, std::string& file,
                               const std::string& description) {
  return command.add_option(name, file, description)
      ->required()
      ->check(file_name(/*is_argument=*/true))
      ->type_name("");
}

// The snapshot format's limit, checked before any file is read.
void check_label(const std::string& label) {
  if (label.size() > 255) {
    usage_error("--label is " + std::to_string(label.size()) +
                " bytes long; at most 255 are allowed");
  }
}

// Checks of plan's options among themselves, which the library would otherwise report in its
// own terms (num_physical_experts, num_gpus) after reading the load files.
void check_plan_args(const PlanArgs& args) {
  if (args.replicas % args.gpus != 0) {
    usage_error("--replicas (" + std::to_string(args.replicas) +
                ") must be a multiple of --gpus (" + std::to_string(args.gpus) +
                "), so that every GPU holds the same number of slots");
  }
  if (args.gpus % args.nodes != 0) {
    usage_error("--gpus (" + std::to_string(args.gpus) + ") must be a multiple of --nodes (" +
                std::to_string(args.nodes) + "), so that every node holds the same number of GPUs");
  }
  check_label(args.label);
  // An unknown --algorithm is run_plan's to report (with the known names).
  std::uint32_t algorithm = 0;
  if (eplb_algorithm_from_name(args.algorithm.c_str(), &algorithm) != EPLB_OK) return;
  if (algorithm == EPLB_ALGORITHM_DEFAULT) algorithm = default_algorithm();
  if (algorithm == EPLB_ALGORITHM_BALANCED_RELAXED && args.cross_node_budget == 0) {
    usage_error(
        "balanced-relaxed needs --cross-node-budget N > 0, the replicas per layer it may place "
        "off their expert group's node (with 0 it is balanced-hierarchical)");
  }
  if (algorithm != EPLB_ALGORITHM_BALANCED_RELAXED && args.cross_node_budget > 0) {
    usage_error("--cross-node-budget applies to balanced-relaxed only (--algorithm is " +
                algorithm_name(algorithm) + ")");
  }
}

void add_plan_command(CLI::App& app) {
  auto args = std::make_shared<PlanArgs>();
  auto* command = app.add_subcommand(
      "plan",
      "Plan a placement from expert loads: SGLang's logical_count JSON (--counts) or a "
      "statistics snapshot of 'eplb record' (--stats)");
  auto* counts = add_files_option(
      *command, "--counts", args->counts,
      "Load file: JSON object with logical_count as [layers][experts] or [steps][layers][experts], "
      "or an .eplb snapshot's stored loads; list or repeat for several files. Steps and files are "
      "summed, or are the windows of --robust");
  command
      ->add_option("--stats", args->stats,
                   "Plan from the loads of a statistics snapshot (.eplb, 'eplb record') instead "
                   "of --counts; an .eplb --out keeps its co-activation statistics")
      ->check(file_name())
      ->type_name("FILE");
  command->add_flag("--robust", args->robust,
                    "Plan for the mean over windows (steps, files) of each window's busiest GPU "
                    "instead of the busiest GPU of their sum (balanced algorithms)");
  command
      ->add_option("--replicas", args->replicas,
                   "Physical expert slots per layer, a multiple of --gpus and at least the "
                   "number of experts")
      ->required()
      ->transform(whole_number(1))
      ->type_name("R");
  command
      ->add_option("--gpus", args->gpus, "GPUs in the expert-parallel group, a multiple of --nodes")
      ->required()
      ->transform(whole_number(1))
      ->type_name("G");
  command->add_option("--nodes", args->nodes, "Nodes (GPUs are split evenly)")
      ->capture_default_str()
      ->transform(whole_number(1))
      ->type_name("N");
  command->add_option("--groups", args->groups, "Expert groups (DeepSeek-V3: 8)")
      ->capture_default_str()
      ->transform(whole_number(1))
      ->type_name("K");
  command->add_option("--algorithm", args->algorithm, "Placement algorithm (see 'eplb algorithms')")
      ->default_str(default_algorithm_name())
      ->type_name("NAME");
  command
      ->add_option("--out", args->out,
                   "Write the placement: x.json = SGLang's physical_to_logical_map, x.eplb = a "
                   "libeplb snapshot with the load statistics (see 'eplb inspect')")
      ->check(file_name())
      ->type_name("FILE");
  command
      ->add_option("--label", args->label,
                   "A label stored in an .eplb snapshot (UTF-8, at most 255 bytes)")
      ->type_name("TEXT");
  command
      ->add_option("--dense-layers", args->dense_layers,
                   "With --out FILE.json: trivial rows written before the MoE layers, so that rows "
                   "equal the model's hidden layers, for an input of MoE layers only (DeepSeek-V3: "
                   "3 on 58 rows; SGLang's own logical_count files already have the 61)")
      ->capture_default_str()
      ->transform(whole_number(0))
      ->type_name("K");
  command
      ->add_option("--cross-node-budget", args->cross_node_budget,
                   "balanced-relaxed only, and required there: replicas per layer allowed off "
                   "their expert group's node")
      ->capture_default_str()
      ->transform(whole_number(0))
      ->type_name("N");
  // The plan does not depend on the thread count, so every core this process may use is the
  // default.
  args->threads = std::clamp(usable_cores(), 1U, 256U);
  command
      ->add_option("--threads", args->threads,
                   "Threads to split layers across, at most 256; default: this machine's cores "
                   "(the plan does not depend on it)")
      ->transform(whole_number(1, 256))  // no default in --help: the man page must not vary by host
      ->type_name("N");
  command->add_flag("--affinity", args->affinity,
                    "With --stats: keep experts that tokens pick together on one node (fewer "
                    "nodes touched per token), within --min-balance of the balance-only plan; "
                    "any algorithm");
  // Checked in the callback rather than with needs(), whose "Needs: --affinity" in --help pushes
  // the description out of its column.
  command
      ->add_option("--near", args->near,
                   "Re-plan near this placement, the one the GPUs hold now (.eplb snapshot or "
                   "SGLang/vLLM-Ascend .json map): keep or rebalance each layer, moving few "
                   "experts, within --min-balance of a fresh plan; prints the experts moved "
                   "either way")
      ->check(file_name())
      ->type_name("FILE");
  auto* min_balance =
      command
          ->add_option("--min-balance", args->min_balance,
                       "With --affinity: keep balancedness >= this x that of the balance-only "
                       "plan (default 0.99); with --near: >= this x that of a fresh plan, per "
                       "layer (default 0.998). In [0.01, 1]")
          ->check(real_number(0.01, 1.0))
          ->type_name("X");
  command->add_flag("--report,--json", args->report,
                    "Print a JSON report (metrics per layer and in total, planning time)");
  command->callback([args, counts, min_balance] {
    require_files(*counts);
    if (min_balance->count() > 0 && !args->affinity && args->near.empty())
      usage_error("--min-balance requires --affinity or --near");
    if (args->affinity && !args->near.empty())
      usage_error("--near and --affinity are exclusive: a plan near a placement keeps its layout");
    if (args->robust && !args->near.empty())
      usage_error("--near and --robust are exclusive: a plan near a placement uses one load");
    check_plan_args(*args);
    run_plan(*args);
  });
}

void add_demo_command(CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  auto* command = app.add_subcommand(
      "demo", "Plan an embedded DeepSeek-V3-shaped workload with every algorithm and compare");
  command->add_option("--seed", args->seed, "Seed of the synthetic workload")
      ->capture_default_str()
      ->transform(whole_number(0, std::numeric_limits<std::int64_t>::max()))
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
  add_file_argument(*command, "FILE", args->file, "The snapshot file to show (.eplb)");
  command
      ->add_option("--layer", args->layer,
                   "Show the GPU loads of this layer, 0-based (default: summed over layers)")
      ->transform(whole_number(0))
      ->type_name("N");
  command->add_flag("--json", args->json, "Print one JSON document instead of text");
  auto* pairs = command->add_flag(
      "--pairs", args->pairs,
      "With --json: every layer's co-activation counts (packed upper triangle, pair (a, b) at "
      "a*(2E-a-1)/2 + b-a-1) under statistics.coactivation");
  command->callback([args, pairs] {
    if (pairs->count() > 0 && !args->json) usage_error("--pairs requires --json");
    run_inspect(*args);
  });
}

// The topology options of commands that read placement files (JSON maps do not record it);
// `dense_help` says what --dense-layers does for the command.
// Returns --dense-layers.
CLI::Option* add_topology_options(CLI::App& command, TopologyArgs& topology,
                                  const std::string& dense_help) {
  command
      .add_option("--gpus", topology.gpus,
                  "GPUs the slots are split over (default: from the file; required to read "
                  "SGLang's map)")
      ->transform(whole_number(1))
      ->type_name("G");
  command
      .add_option("--nodes", topology.nodes,
                  "Nodes (default: from a snapshot; 1 for JSON maps, which do not record it)")
      ->transform(whole_number(1))
      ->type_name("N");
  command
      .add_option("--experts", topology.experts,
                  "Logical experts (default: from a snapshot; for JSON maps one more than the "
                  "largest id)")
      ->transform(whole_number(1))
      ->type_name("E");
  return command.add_option("--dense-layers", topology.dense_layers, dense_help)
      ->capture_default_str()
      ->transform(whole_number(0))
      ->type_name("K");
}

void add_convert_command(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  auto* command = app.add_subcommand(
      "convert", "Convert a placement between .eplb snapshots, SGLang's map and vLLM-Ascend's map");
  command->footer(
      "Input formats are recognised by content: an .eplb snapshot, or JSON with "
      "physical_to_logical_map (SGLang) or layer_list (vLLM-Ascend). The output format is --to, "
      "or the extension (.eplb = snapshot, .json = SGLang). The topology options must agree with "
      "a snapshot; JSON maps need them.");
  add_file_argument(*command, "IN", args->in,
                    "The placement file to read (.eplb, SGLang or vLLM-Ascend JSON)");
  add_file_argument(*command, "OUT", args->out, "The file to write (atomically)");
  command
      ->add_option("--to", args->to,
                   "Output format: eplb, sglang or vllm-ascend (default: from OUT's extension)")
      ->check(CLI::IsMember({"eplb", "sglang", "vllm-ascend"}).description(""))
      ->type_name("FORMAT");
  auto* dense = add_topology_options(
      *command, args->topology,
      "SGLang rows before the first MoE layer: skipped when reading, written as trivial rows "
      "(DeepSeek-V3: 3, for a placement of its 58 MoE layers; one planned from SGLang's 61-row "
      "load file already has them). Writing vLLM-Ascend's map (MoE layers only) from such a "
      "plan: its first K layers, which must have no load, are left out (needed when the first "
      "layers look dense: no load, or the trivial placement; 0 keeps them). With --counts: a load "
      "file with K more rows has them dropped");
  command
      ->add_option("--counts", args->counts,
                   "Store this load file (SGLang's logical_count, or an .eplb snapshot's stored "
                   "loads) in the .eplb snapshot")
      ->check(file_name())
      ->type_name("FILE");
  command
      ->add_option("--label", args->label,
                   "Label of the .eplb snapshot (UTF-8, at most 255 bytes; default: IN's)")
      ->type_name("TEXT");
  command->add_flag("--json", args->json, "Print a JSON summary instead of text");
  command->callback([args, dense] {
    check_label(args->label);
    args->dense_layers_given = dense->count() > 0;
    run_convert(*args);
  });
}

void add_plot_command(CLI::App& app) {
  auto args = std::make_shared<PlotArgs>();
  auto* command = app.add_subcommand(
      "plot", "Draw an SVG of per-GPU load: heat maps (layers x GPUs) and bars, before and after");
  command->footer(
      "FILE is a snapshot written with its load statistics (eplb plan --out x.eplb), or any "
      "placement file plus --counts. 'Before' is the layout without balancing: every expert once, "
      "in contiguous blocks per GPU.");
  add_file_argument(*command, "FILE", args->file,
                    "The placement file to draw (.eplb, SGLang or vLLM-Ascend JSON)");
  command->add_option("--out", args->out, "The SVG file to write (.svg)")
      ->required()
      ->check(file_name())
      ->type_name("FILE");
  command
      ->add_option("--layer", args->layer,
                   "Bars for this layer (0-based, counting every layer of the placement), marked "
                   "in the heat maps, and its balancedness in the summary next to the means over "
                   "the layers (default: bars summed over layers)")
      ->transform(whole_number(0))
      ->type_name("N");
  command
      ->add_option("--counts", args->counts,
                   "Load file (SGLang's logical_count JSON, or an .eplb snapshot's stored loads) "
                   "if FILE carries no statistics")
      ->check(file_name())
      ->type_name("FILE");
  add_topology_options(*command, args->topology,
                       "Dense rows of SGLang's map (and of the load file) before the MoE layers");
  command->add_flag("--json", args->json, "Print a JSON summary instead of text");
  command->callback([args] { run_plot(*args); });
}

void add_migrate_command(CLI::App& app) {
  auto args = std::make_shared<MigrateArgs>();
  auto* command = app.add_subcommand(
      "migrate",
      "Plan the weight migration from one placement to another: what moves (experts, bytes, "
      "within and across nodes), in how many steps, the balance gained, whether it is worth it, "
      "and the placement to serve afterwards");
  command->footer(
      "The new plan is relabeled (nodes, GPUs and slots trade places) so that experts stay where "
      "they are: the GPUs then hold --out's placement, not NEW's. Loads (for the gain and the "
      "order of the steps) come from --counts, else NEW's or OLD's snapshot statistics. SIZE is " +
      std::string(kSizeGrammar) + "; a fraction must come to whole bytes.");
  add_file_argument(*command, "OLD", args->old_file,
                    "What the GPUs hold now (.eplb, SGLang or vLLM-Ascend JSON)");
  add_file_argument(*command, "NEW", args->new_file, "The new plan (same formats)");
  command
      ->add_option("--counts", args->counts,
                   "Load file (SGLang's logical_count JSON, or an .eplb snapshot's stored loads) "
                   "to predict the gain with")
      ->check(file_name())
      ->type_name("FILE");
  add_topology_options(*command, args->topology,
                       "Dense rows of SGLang's maps (and of the load file) before the MoE layers");
  auto* bytes_per_expert =
      command
          ->add_option("--bytes-per-expert", args->bytes_per_expert,
                       "Bytes of one expert's weights, e.g. 44MB (DeepSeek-V3 in FP8; default: "
                       "count experts only)")
          ->transform(byte_size())
          ->type_name("SIZE");
  command
      ->add_option("--relabel", args->relabel,
                   "How the new plan may be relabeled: nodes-and-gpus (the default), "
                   "gpus-in-node, none (vLLM's rule) or repack-in-node (also trades replicas "
                   "between GPUs of a node when loads are known)")
      ->check(CLI::IsMember({"nodes-and-gpus", "gpus-in-node", "none", "repack-in-node"})
                  .description(""))
      ->type_name("MODE");
  auto* per_step = command
                       ->add_option("--max-bytes-per-step", args->max_bytes_per_step,
                                    "Bytes one step may move, all GPUs together (default: no "
                                    "limit; a step holds at least one expert or swap cycle)")
                       ->transform(byte_size())
                       ->type_name("SIZE");
  auto* total = command
                    ->add_option("--max-total-bytes", args->max_total_bytes,
                                 "Bytes the whole migration may move (default: no limit): the "
                                 "most useful changes first, ending at a partial placement")
                    ->transform(byte_size())
                    ->type_name("SIZE");
  command
      ->add_option("--max-layers-per-step", args->max_layers_per_step,
                   "Layers one step may touch (default: no limit)")
      ->transform(whole_number(1))
      ->type_name("N");
  auto* min_gain =
      command
          ->add_option("--min-gain", args->min_gain,
                       "Worth it when the predicted balancedness gain is at least this")
          ->capture_default_str()
          ->check(real_number(0, 1))
          ->type_name("X");
  command
      ->add_option("--out", args->out,
                   "Write the placement the GPUs hold afterwards (.eplb, or .json for SGLang's "
                   "map), atomically")
      ->check(file_name())
      ->type_name("FILE");
  command->add_flag("--steps", args->steps, "Also print one row per step");
  command->add_flag("--json", args->json, "Print JSON instead of text");
  command->callback([args, bytes_per_expert, per_step, total, min_gain] {
    args->min_gain_given = min_gain->count() > 0;
    for (auto* budget : {per_step, total}) {
      if (budget->count() > 0 && bytes_per_expert->count() == 0) {
        usage_error(budget->get_name() + " needs --bytes-per-expert (the size of one expert)");
      }
    }
    if (bytes_per_expert->count() > 0 && args->bytes_per_expert == 0) {
      usage_error("--bytes-per-expert must be above 0");
    }
    for (auto* budget : {per_step, total}) {
      if (budget->count() > 0 && budget->as<std::uint64_t>() == 0) {
        usage_error(budget->get_name() + " must be above 0 (leave it out for no limit)");
      }
    }
    run_migrate(*args);
  });
}

void add_record_command(CLI::App& app) {
  auto args = std::make_shared<RecordArgs>();
  auto* command = app.add_subcommand(
      "record",
      "Record expert load and co-activation statistics from top-k routing traces (JSON lines) "
      "into a statistics snapshot (.eplb) for 'eplb plan --stats'");
  auto* traces = add_files_option(
      *command, "--trace", args->traces,
      "Trace file: JSON lines, one object per token and layer with \"layer\" and \"experts\" (a "
      "list of expert ids, -1 = masked; an id listed twice counts twice as load, its pairs once); "
      "other keys are ignored. List or repeat for several files");
  traces->required();
  command->add_option("--experts", args->experts, "Logical experts per layer")
      ->required()
      ->transform(whole_number(1))
      ->type_name("E");
  command
      ->add_option("--layers", args->layers,
                   "MoE layers (default: the largest layer in the traces + 1); a larger layer "
                   "is an error")
      ->transform(whole_number(1))
      ->type_name("L");
  command
      ->add_option("--top-k", args->top_k,
                   "Slots per token, at most 1024 (default: the widest row seen; shorter rows are "
                   "padded with -1)")
      ->transform(whole_number(1, 1024))
      ->type_name("K");
  command
      ->add_option("--window", args->window,
                   "What the statistics remember: cumulative (everything), sliding (the last "
                   "--window-batches batches) or decay (older batches weigh --decay less each)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cumulative", "sliding", "decay"}).description(""))
      ->type_name("KIND");
  auto* window_batches = command
                             ->add_option("--window-batches", args->window_batches,
                                          "sliding: batches kept per layer, at most 1048576 (2^20)")
                             ->capture_default_str()
                             ->transform(whole_number(1, 1 << 20))
                             ->type_name("W");
  auto* decay =
      command->add_option("--decay", args->decay, "decay: weight factor per batch, in (0, 1]")
          ->capture_default_str()
          ->check(fraction())
          ->type_name("D");
  command
      ->add_option("--batch-tokens", args->batch_tokens,
                   "Rows of a layer per batch (what windows count), in file order, at most "
                   "1073741824 (2^30)")
      ->capture_default_str()
      ->transform(whole_number(1, 1 << 30))
      ->type_name("N");
  command->add_option("--samples", args->samples, "Sampled top-k rows kept per layer (0 = none)")
      ->capture_default_str()
      ->transform(whole_number(0))
      ->type_name("N");
  command->add_option("--seed", args->seed, "Seed of the row sampler")
      ->capture_default_str()
      ->transform(whole_number(0, std::numeric_limits<std::int64_t>::max()))
      ->type_name("S");
  command->add_option("--out", args->out, "The statistics snapshot to write (.eplb)")
      ->required()
      ->check(file_name())
      ->type_name("FILE");
  command
      ->add_option("--label", args->label,
                   "A label stored in the snapshot (UTF-8, at most 255 bytes)")
      ->type_name("TEXT");
  command->add_flag("--json", args->json, "Print a JSON summary instead of text");
  command->callback([args, traces, window_batches, decay] {
    require_files(*traces);
    check_label(args->label);
    // Options of another window are usage errors (before any trace is read).
    if (window_batches->count() > 0 && args->window != "sliding") {
      usage_error("--window-batches applies to --window sliding (--window is " + args->window +
                  ")");
    }
    if (decay->count() > 0 && args->window != "decay") {
      usage_error("--decay applies to --window decay (--window is " + args->window + ")");
    }
    run_record(*args);
  });
}

}  // namespace

std::string arguments_hint(const std::string& command) {
  if (command == "plan") {
    return "plan takes its inputs as options: --counts FILE... or --stats FILE";
  }
  if (command == "record") {
    return "record takes its inputs as options: --trace FILE... (and writes --out FILE)";
  }
  if (command == "inspect") return "inspect takes one argument, the snapshot FILE";
  if (command == "convert") return "convert takes two arguments, IN and OUT";
  if (command == "plot") return "plot takes one argument, FILE; the SVG is --out FILE";
  if (command == "migrate") {
    return "migrate takes two arguments, OLD and NEW; the placement to serve afterwards is "
           "--out FILE, a load file --counts FILE";
  }
  return command + " takes no arguments";  // demo, algorithms
}

void add_commands(CLI::App& app) {
  add_plan_command(app);
  add_demo_command(app);
  add_algorithms_command(app);
  add_inspect_command(app);
  add_convert_command(app);
  add_plot_command(app);
  add_migrate_command(app);
  add_record_command(app);
}

}  // namespace eplb_cli
