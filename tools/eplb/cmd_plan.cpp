// eplb plan: a placement from SGLang's expert load file.
#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "eplb/atomic_file.hpp"
#include "eplb/commands.hpp"
#include "eplb/input_file.hpp"
#include "eplb/json_output.hpp"
#include "eplb/library.hpp"
#include "eplb/load_file.hpp"
#include "eplb/placement_io.hpp"
#include "eplb/placement_json.hpp"
#include "eplb/progress.hpp"
#include "eplb/report.hpp"
#include "eplb/table.hpp"
#include "eplb/tracker_handle.hpp"

namespace eplb_cli {

namespace {

// Nodes touched per token over a tracker's sampled rows (all layers, weighted by rows).
struct Traffic {
  double nodes_touched = 0;
  double balance_only = 0;  // the same algorithm without --affinity (when --affinity is on)
  std::size_t rows = 0;
};

double sampled_nodes_touched(const eplb_placement* placement, const eplb_tracker* tracker,
                             std::size_t* out_rows) {
  const auto o = tracker_options_of(tracker);
  double sum = 0;
  std::size_t total = 0;
  std::vector<std::int32_t> rows;  // sized by the rows a layer holds, not reservoir_capacity
  for (std::uint32_t layer = 0; layer < o.num_layers; ++layer) {
    std::size_t n = 0;
    check(eplb_tracker_get_samples(tracker, layer, nullptr, 0, &n), "");
    if (n == 0) continue;
    rows.resize(n * o.top_k);
    check(eplb_tracker_get_samples(tracker, layer, rows.data(), rows.size(), &n), "");
    double mean = 0;
    check(eplb_metrics_nodes_touched(placement, layer, rows.data(), n, o.top_k, &mean), "");
    sum += mean * static_cast<double>(n);
    total += n;
  }
  *out_rows = total;
  return total == 0 ? 0.0 : sum / static_cast<double>(total);
}

// `from`: where the loads came from and how they were combined.
void print_summary(const eplb_placement* placement, const std::vector<double>& loads,
                   const PlanArgs& args, const Traffic* traffic, const std::string& from) {
  const auto info = info_of(placement);
  const auto m = metrics_of(placement, loads);
  std::cout << "Loads from " << from << "\n";
  std::cout << "Planned " << counted(info.num_layers, "layer") << " x "
            << counted(info.num_logical_experts, "expert") << " onto "
            << counted(info.num_physical_experts, "slot") << " per layer ("
            << counted(info.num_gpus, "GPU") << " in " << counted(info.num_nodes, "node") << ", "
            << info.slots_per_gpu << " per GPU) with " << algorithm_name(info.algorithm) << " ("
            << (info.hierarchical != 0 ? "hierarchical" : "global") << ") in "
            << fixed(info.plan_seconds * 1e3, 3) << " ms\n\n";
  const std::string name = algorithm_name(info.algorithm);
  const bool keeps_groups_on_nodes =
      name == "deepseek" || name == "balanced-hierarchical" || name == "balanced-relaxed";
  if (keeps_groups_on_nodes && info.hierarchical == 0 && info.num_nodes > 1) {
    // Asked for locality and did not get it: say why rather than leave it to "(global)".
    std::cout << "Planned globally: " << name
              << " keeps whole expert groups on a node, which needs --groups to be a multiple "
                 "of --nodes (here "
              << info.num_groups << " and " << info.num_nodes << ")\n\n";
  }
  Table table = metrics_table(m);
  if (traffic != nullptr && traffic->rows > 0) {
    table.add_row(
        {"nodes touched per token (sampled rows; bound 1)", fixed(traffic->nodes_touched, 4)});
    if (args.affinity) {
      table.add_row({"  the same without --affinity", fixed(traffic->balance_only, 4)});
    }
  }
  table.print(std::cout);
  if (!args.out.empty()) std::cout << "\nWrote " << args.out << '\n';
}

// --near: the placement the GPUs hold, what plan_near did, and what moving to it costs.
struct Near {
  PlacementPtr current;  // read from args.near
  eplb_plan_near_report report{};
  double min_balance = 0;
  std::uint64_t moved_experts = 0;        // the migration from current to the near plan
  std::uint64_t fresh_moved_experts = 0;  // ... and to a fresh plan of the same loads
  double fresh_balancedness = 0;

  // Experts eplb_migration_plan moves from `current` to `target` (default relabeling).
  [[nodiscard]] std::uint64_t moved_to(const eplb_placement* target,
                                       const std::vector<double>& loads) const {
    eplb_migration* raw = nullptr;
    check(eplb_migration_plan(current.get(), target, loads.data(), loads.size(), nullptr, &raw),
          "--near: ");
    eplb_migration_summary summary{};
    summary.struct_size = sizeof(summary);
    const eplb_status status = eplb_migration_get_summary(raw, &summary);
    eplb_migration_destroy(raw);
    check(status, "--near: ");
    return summary.moved_experts;
  }

  // Fills the moved experts and the fresh plan's balancedness.
  void measure(eplb_planner* planner, const eplb_placement* near_plan,
               const std::vector<double>& loads) {
    const PlacementPtr fresh = plan(planner, loads, "--near: ");
    fresh_balancedness = metrics_of(fresh.get(), loads).balancedness;
    moved_experts = moved_to(near_plan, loads);
    fresh_moved_experts = moved_to(fresh.get(), loads);
  }
};

PlacementPtr plan_near(eplb_planner* planner, const std::vector<double>& loads, Near& near,
                       const PlanArgs& args) {
  eplb_plan_near_options options;
  eplb_plan_near_options_init(&options);
  if (args.min_balance > 0) options.min_balance = args.min_balance;
  near.min_balance = options.min_balance;
  near.report.struct_size = sizeof(near.report);
  eplb_placement* raw = nullptr;
  check(eplb_planner_plan_near(planner, loads.data(), loads.size(), near.current.get(), &options,
                               &raw, &near.report),
        "--near " + args.near + ": ");
  return PlacementPtr(raw);
}

void print_near(const Near& near, const eplb_placement* placement, const std::vector<double>& loads,
                const std::string& path) {
  const auto& r = near.report;
  std::cout << "\nNear " << path << " (--min-balance " << near.min_balance
            << "), layers kept: " << r.layers_kept << ", rebalanced: " << r.layers_rebalanced
            << ", partly re-planned: " << r.layers_partly_replanned
            << ", re-planned: " << r.layers_replanned << "\n";
  Table table({"", "this plan", "a fresh plan"});
  table.add_row({"experts moved from it", std::to_string(near.moved_experts),
                 std::to_string(near.fresh_moved_experts)});
  table.add_row({"balancedness", fixed(metrics_of(placement, loads).balancedness, 4),
                 fixed(near.fresh_balancedness, 4)});
  table.print(std::cout);
}

bool is_snapshot_path(const std::string& path) { return has_extension(path, ".eplb"); }

// A snapshot with the loads the plan was judged on (summed over windows and files).
void write_snapshot(const std::string& path, const eplb_placement* placement,
                    const std::vector<double>& loads, const std::string& label,
                    const eplb_tracker* tracker) {
  eplb_snapshot_options options;
  eplb_snapshot_options_init(&options);
  options.tracker = tracker;  // --stats: the co-activation statistics go along
  options.loads = loads.data();
  options.loads_len = loads.size();
  options.label = label.empty() ? nullptr : label.c_str();
  const eplb_status status = eplb_snapshot_save(placement, &options, path.c_str());
  check(status, status == EPLB_ERR_INVALID_ARGUMENT ? "--label: " : "");
}

// Options that only some algorithms use are errors with the others, rather than ignored.
void check_algorithm_options(const PlanArgs& args, uint32_t algorithm, std::size_t num_windows) {
  const std::string name = eplb_algorithm_name(algorithm);
  const bool balanced = algorithm == EPLB_ALGORITHM_BALANCED ||
                        algorithm == EPLB_ALGORITHM_BALANCED_HIERARCHICAL ||
                        algorithm == EPLB_ALGORITHM_BALANCED_RELAXED;
  // (--cross-node-budget against the algorithm is checked with the arguments, command_line.cpp.)
  if (args.robust && !balanced) {
    throw InputError("--robust applies to balanced, balanced-hierarchical and balanced-relaxed (" +
                     name + " would plan on the sum of the windows)");
  }
  if (args.robust && num_windows < 2) {
    throw InputError(
        "--robust needs several windows (a [steps][layers][experts] file or several --counts "
        "files); the input has one");
  }
}

}  // namespace

void run_plan(const PlanArgs& args) {
  if (!args.out.empty()) {
    if (!has_extension(args.out, ".json") && !has_extension(args.out, ".eplb")) {
      throw InputError("--out " + args.out +
                       ": unsupported output format (use a .json file for SGLang's "
                       "physical_to_logical_map or an .eplb file for a libeplb snapshot)");
    }
  }
  if (!args.label.empty() && !is_snapshot_path(args.out)) {
    throw InputError("--label applies to snapshots only: write one with --out FILE.eplb");
  }
  if (args.counts.empty() == args.stats.empty()) {
    throw InputError(args.stats.empty()
                         ? "--counts FILE or --stats FILE.eplb is required (the loads to plan from)"
                         : "--counts and --stats are exclusive: plan from one of them");
  }
  if (args.dense_layers > 0 && (args.out.empty() || is_snapshot_path(args.out))) {
    throw InputError("--dense-layers applies to SGLang's map: write one with --out FILE.json");
  }
  if (!args.stats.empty() && args.robust) {
    throw InputError("--robust needs several windows (--counts files or steps); --stats gives one");
  }
  // --stats: the statistics of `eplb record` (or of a snapshot saved with a tracker). The
  // tracker stays available to the planning code below (e.g. co-activation for --affinity).
  TrackerPtr stats_tracker;
  std::vector<LoadMatrix> files;
  if (!args.stats.empty()) {
    stats_tracker = load_tracker_from_snapshot(args.stats, "--stats");
    files.push_back(load_matrix_of(stats_tracker.get()));
  }
  // Every file's steps are windows of one recording; the plan is judged on their sum.
  for (const auto& path : args.counts) files.push_back(read_logical_count_file(path));
  LoadMatrix matrix = files.front();
  std::vector<double> windows = matrix.steps;
  std::size_t num_windows = matrix.num_steps;
  for (std::size_t f = 1; f < files.size(); ++f) {
    const LoadMatrix& other = files[f];
    if (other.num_layers != matrix.num_layers || other.num_experts != matrix.num_experts) {
      throw InputError(args.counts[f] + ": " + std::to_string(other.num_layers) + " layers x " +
                       std::to_string(other.num_experts) + " experts, but " + args.counts[0] +
                       " has " + std::to_string(matrix.num_layers) + " x " +
                       std::to_string(matrix.num_experts));
    }
    for (std::size_t i = 0; i < matrix.loads.size(); ++i) matrix.loads[i] += other.loads[i];
    windows.insert(windows.end(), other.steps.begin(), other.steps.end());
    num_windows += other.num_steps;
  }
  const std::string sources = !args.stats.empty() ? args.stats
                              : files.size() == 1 ? args.counts[0]
                                                  : std::to_string(files.size()) + " load files";
  uint32_t algorithm = 0;
  check(eplb_algorithm_from_name(args.algorithm.c_str(), &algorithm), "--algorithm: ");
  if (algorithm == EPLB_ALGORITHM_DEFAULT) algorithm = default_algorithm();
  check_algorithm_options(args, algorithm, num_windows);
  if (args.dense_layers > 0) {
    require_no_dense_rows(matrix.loads, matrix.num_experts, args.dense_layers, sources);
  }

  eplb_planner_options options;
  eplb_planner_options_init(&options);
  options.algorithm = algorithm;
  options.num_layers = matrix.num_layers;
  options.num_logical_experts = matrix.num_experts;
  options.num_physical_experts = args.replicas;
  options.num_groups = args.groups;
  options.num_nodes = args.nodes;
  options.num_gpus = args.gpus;
  options.cross_node_budget = args.cross_node_budget;
  options.num_threads = args.threads;
  // (Also the context of the plan's own errors: running out of memory names the options that
  // sized it, not only the input file.)
  const std::string plan_context =
      "cannot plan " + counted(matrix.num_layers, "layer") + " of " +
      std::to_string(matrix.num_experts) + " experts from " + sources + " with --replicas " +
      std::to_string(args.replicas) + " --gpus " + std::to_string(args.gpus) + " --nodes " +
      std::to_string(args.nodes) + " --groups " + std::to_string(args.groups) + ": ";
  const auto planner = make_planner(options, plan_context);
  if (args.affinity && !stats_tracker) {
    throw InputError(
        "--affinity needs co-activation statistics: plan from --stats FILE.eplb "
        "(written by 'eplb record')");
  }
  if (args.affinity && tracker_options_of(stats_tracker.get()).reservoir_capacity == 0) {
    throw InputError("--affinity needs sampled token rows, but " + args.stats +
                     " was recorded without them (eplb record --samples 0): record again with "
                     "--samples N > 0");
  }
  PlacementPtr placement;
  Traffic traffic;
  // Affinity-aware plans of a whole model take seconds: say so on a terminal, with how many of
  // the layers are planned.
  const PlanControlPtr control = make_plan_control();
  check(eplb_planner_set_control(planner.get(), control.get()), "");
  std::optional<ProgressWhile> planning(
      std::in_place,
      "planning " + counted(matrix.num_layers, "layer") +
          (args.affinity ? " with --affinity" : "") + " on " +
          counted(std::min(args.threads, matrix.num_layers), "thread") + ":",
      [&control] { return percent_done(control.get()); });
  Near near;
  if (!args.near.empty()) {
    TopologyArgs topology;
    topology.nodes = args.nodes;
    topology.gpus = args.gpus;
    topology.experts = matrix.num_experts;
    topology.dense_layers = args.dense_layers;  // a map written with --dense-layers has them
    near.current = read_placement_file(args.near, topology).placement;
  }
  if (stats_tracker && !near.current) {
    // Plan with the statistics (affinity needs their sampled rows) and measure the traffic.
    const auto plan_tracked = [&](eplb_planner* p) {
      eplb_placement* raw = nullptr;
      check(eplb_planner_plan_tracked(p, matrix.loads.data(), matrix.loads.size(),
                                      stats_tracker.get(), &raw),
            plan_context);
      return PlacementPtr(raw);
    };
    if (args.affinity) {
      options.affinity = 1;
      options.affinity_min_balance = args.min_balance > 0 ? args.min_balance : 0.99;
      const auto affinity_planner = make_planner(options, "--affinity: ");
      // The progress is the affinity plan's; the balance-only plan after it takes milliseconds.
      check(eplb_planner_set_control(affinity_planner.get(), control.get()), "");
      check(eplb_planner_set_control(planner.get(), nullptr), "");
      placement = plan_tracked(affinity_planner.get());
      const auto balance_only = plan_tracked(planner.get());
      std::size_t rows = 0;
      traffic.balance_only = sampled_nodes_touched(balance_only.get(), stats_tracker.get(), &rows);
    } else {
      placement = plan_tracked(planner.get());
    }
    traffic.nodes_touched =
        sampled_nodes_touched(placement.get(), stats_tracker.get(), &traffic.rows);
  } else if (near.current) {
    placement = plan_near(planner.get(), matrix.loads, near, args);
    if (stats_tracker) {
      traffic.nodes_touched =
          sampled_nodes_touched(placement.get(), stats_tracker.get(), &traffic.rows);
    }
  } else {
    placement = args.robust ? plan_windows(planner.get(), windows, num_windows, plan_context)
                            : plan(planner.get(), matrix.loads, plan_context);
  }
  planning.reset();
  if (near.current) near.measure(planner.get(), placement.get(), matrix.loads);

  if (is_snapshot_path(args.out)) {
    write_snapshot(args.out, placement.get(), matrix.loads, args.label, stats_tracker.get());
  } else if (!args.out.empty()) {
    write_file_atomically(args.out, sglang_placement_json(placement.get(), args.dense_layers));
  }
  if (args.report) {
    auto report = plan_report(placement.get(), matrix.loads);
    report["inputs"] = !args.stats.empty() ? std::vector<std::string>{args.stats} : args.counts;
    report["out"] = args.out.empty() ? nlohmann::json(nullptr) : nlohmann::json(args.out);
    report["windows"] = num_windows;
    report["robust"] = args.robust;
    if (stats_tracker) {
      report["traffic"] = {{"nodes_touched_per_token", traffic.nodes_touched},
                           {"sampled_rows", traffic.rows},
                           {"lower_bound", 1.0},
                           {"affinity", args.affinity}};
      if (args.affinity) report["traffic"]["balance_only_nodes_touched"] = traffic.balance_only;
    }
    if (near.current) {
      const auto& r = near.report;
      report["near"] = {{"file", args.near},
                        {"min_balance", near.min_balance},
                        {"layers_kept", r.layers_kept},
                        {"layers_rebalanced", r.layers_rebalanced},
                        {"layers_partly_replanned", r.layers_partly_replanned},
                        {"layers_replanned", r.layers_replanned},
                        {"moved_experts", near.moved_experts},
                        {"fresh_plan_moved_experts", near.fresh_moved_experts},
                        {"fresh_plan_balancedness", near.fresh_balancedness}};
    }
    print_json(report);
  } else {
    std::string from = sources;
    if (args.robust) {
      from += ", planned for the mean over " + counted(num_windows, "window") +
              " of each one's busiest GPU (--robust); the metrics below are for their sum";
    } else if (files.size() > 1) {
      from += " (" + args.counts.front() + " ...), summed";
    }
    print_summary(placement.get(), matrix.loads, args, stats_tracker ? &traffic : nullptr, from);
    if (near.current) print_near(near, placement.get(), matrix.loads, args.near);
  }
}

}  // namespace eplb_cli
