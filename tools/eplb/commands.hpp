// The `eplb` subcommands: what each takes from the command line (filled in by
// command_line.cpp, the one place that knows CLI11) and the function that runs it. A command
// throws InputError (exit 2) or Failure (exit 1) on problems.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eplb/placement_io.hpp"

namespace eplb_cli {

// eplb plan: a placement from expert loads.
struct PlanArgs {
  std::vector<std::string> counts;
  std::string stats;  // a snapshot with co-activation statistics (eplb record), instead of counts
  bool robust = false;
  std::uint32_t replicas = 0;
  std::uint32_t gpus = 0;
  std::uint32_t nodes = 1;
  std::uint32_t groups = 1;
  std::string algorithm = "default";
  std::string out;
  std::string label;               // stored in an .eplb --out
  std::uint32_t dense_layers = 0;  // SGLang rows before the MoE layers in --out
  std::uint32_t cross_node_budget = 0;
  std::uint32_t threads = 1;  // the command line sets this machine's cores as the default
  bool affinity = false;      // --stats only: lower nodes touched per token
  // --affinity: balancedness >= this x the balance-only plan's (default 0.99); --near: >= this x
  // a fresh plan's (default 0.998, the library's); 0 = the default of the mode.
  double min_balance = 0;
  std::string near;  // a placement file: re-plan near it (eplb_planner_plan_near)
  bool report = false;
};
void run_plan(const PlanArgs& args);

// eplb demo: every algorithm on an embedded DeepSeek-V3-shaped workload.
struct DemoArgs {
  std::uint64_t seed = 1;
  bool json = false;
};
void run_demo(const DemoArgs& args);

// eplb algorithms: the placement algorithms.
struct AlgorithmsArgs {
  bool json = false;
};
void run_algorithms(const AlgorithmsArgs& args);

// eplb inspect: what an .eplb snapshot holds.
struct InspectArgs {
  std::string file;
  std::optional<std::uint32_t> layer;
  bool json = false;
  bool pairs = false;  // --pairs: every layer's co-activation triangle in the JSON
};
void run_inspect(const InspectArgs& args);

// eplb convert: between placement formats.
struct ConvertArgs {
  std::string in;
  std::string out;
  std::string to;
  std::string counts;
  std::string label;
  TopologyArgs topology;
  bool dense_layers_given = false;  // --dense-layers on the command line, 0 included
  bool json = false;
};
void run_convert(const ConvertArgs& args);

// eplb plot: an SVG of per-GPU load.
struct PlotArgs {
  std::string file;
  std::string out;
  std::string counts;
  int layer = -1;
  TopologyArgs topology;
  bool json = false;
};
void run_plot(const PlotArgs& args);

// eplb migrate: the weight migration from one placement to another.
struct MigrateArgs {
  std::string old_file;  // what the GPUs hold now
  std::string new_file;  // the new plan
  std::string counts;    // loads (SGLang's logical_count), else a snapshot's statistics
  TopologyArgs topology;
  std::string relabel = "nodes-and-gpus";
  std::uint64_t bytes_per_expert = 0;  // 0: count experts
  std::uint64_t max_bytes_per_step = 0;
  std::uint64_t max_total_bytes = 0;
  std::uint32_t max_layers_per_step = 0;
  double min_gain = 0.005;
  bool min_gain_given = false;  // --min-gain was on the command line
  std::string out;              // the target placement
  bool steps = false;           // a table of the steps
  bool json = false;
};
void run_migrate(const MigrateArgs& args);

// eplb record: statistics from routing traces.
struct RecordArgs {
  std::vector<std::string> traces;
  std::uint32_t experts = 0;
  std::uint32_t layers = 0;  // 0: the largest layer seen + 1
  std::uint32_t top_k = 0;   // 0: the widest row seen
  std::string window = "cumulative";
  std::uint32_t window_batches = 64;
  double decay = 0.99;
  std::uint32_t batch_tokens = 256;
  std::uint32_t samples = 4096;
  std::uint64_t seed = 0;
  std::string out;
  std::string label;
  bool json = false;
};
void run_record(const RecordArgs& args);

}  // namespace eplb_cli
