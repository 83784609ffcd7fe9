// eplb demo: every algorithm on an embedded DeepSeek-V3-shaped workload, side by side with the
// no-replication baseline. Needs no input.
#include <algorithm>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eplb/commands.hpp"
#include "eplb/library.hpp"
#include "eplb/report.hpp"
#include "eplb/synthetic_workload.hpp"
#include "eplb/table.hpp"

namespace eplb_cli {

namespace {

struct DemoArgs {
  std::uint64_t seed = 1;
  bool json = false;
};

constexpr std::uint32_t kNodes = 4;
constexpr std::uint32_t kGpus = 32;
constexpr std::uint32_t kReplicas = 288;
constexpr int kTimingRuns = 5;
// Replicas per layer balanced-relaxed may place off their group's node in the demo.
constexpr std::uint32_t kCrossNodeBudget = 16;

struct Row {
  std::string label;
  std::string policy;
  std::uint32_t replicas = 0;
  eplb_metrics metrics{};
  double plan_ms = 0;  // median of kTimingRuns
};

Row run(const std::string& label, std::uint32_t algorithm, std::uint32_t replicas,
        std::uint32_t groups, const WorkloadSpec& spec, const std::vector<double>& loads,
        std::uint32_t cross_node_budget = 0) {
  eplb_planner_options options;
  eplb_planner_options_init(&options);
  options.algorithm = algorithm;
  options.num_layers = spec.num_layers;
  options.num_logical_experts = spec.num_experts;
  options.num_physical_experts = replicas;
  options.num_groups = groups;
  options.num_nodes = kNodes;
  options.num_gpus = kGpus;
  options.cross_node_budget = cross_node_budget;
  const auto planner = make_planner(options, "demo: ");
  std::vector<double> times;
  PlacementPtr placement;
  for (int i = 0; i < kTimingRuns; ++i) {
    placement = plan(planner.get(), loads);
    times.push_back(info_of(placement.get()).plan_seconds * 1e3);
  }
  std::nth_element(times.begin(), times.begin() + kTimingRuns / 2, times.end());
  const auto info = info_of(placement.get());
  Row row;
  row.label = label;
  row.policy = info.algorithm == EPLB_ALGORITHM_TRIVIAL ? "-"
               : info.hierarchical == 0                 ? "global"
               : cross_node_budget > 0 ? "relaxed, " + std::to_string(cross_node_budget) + "/layer"
                                       : "hierarchical";
  row.replicas = replicas;
  row.metrics = metrics_of(placement.get(), loads);
  row.plan_ms = times[kTimingRuns / 2];
  return row;
}

void run_demo(const DemoArgs& args) {
  WorkloadSpec spec;
  spec.seed = args.seed;
  const std::vector<double> loads = synthetic_loads(spec);

  std::vector<Row> rows;
  rows.push_back(run("no replication", EPLB_ALGORITHM_TRIVIAL, spec.num_experts, spec.num_groups,
                     spec, loads));
  for (std::uint32_t id = 1; id <= eplb_algorithm_count(); ++id) {
    const std::uint32_t budget = id == EPLB_ALGORITHM_BALANCED_RELAXED ? kCrossNodeBudget : 0;
    rows.push_back(run(algorithm_name(id), id, kReplicas, spec.num_groups, spec, loads, budget));
    // DeepSeek's global policy has no separate name (balanced's is `balanced`): show it too.
    if (id == EPLB_ALGORITHM_DEEPSEEK) {
      rows.push_back(run(algorithm_name(id), id, kReplicas, 1, spec, loads));
    }
  }

  if (args.json) {
    nlohmann::json out = {{"workload",
                           {{"num_layers", spec.num_layers},
                            {"num_experts", spec.num_experts},
                            {"num_groups", spec.num_groups},
                            {"seed", spec.seed}}},
                          {"num_nodes", kNodes},
                          {"num_gpus", kGpus}};
    for (const Row& row : rows) {
      nlohmann::json entry = metrics_json(row.metrics);
      entry["algorithm"] = row.label;
      entry["policy"] = row.policy;
      entry["num_physical_experts"] = row.replicas;
      entry["plan_ms"] = row.plan_ms;
      out["results"].push_back(std::move(entry));
    }
    std::cout << out.dump(2) << '\n';
    return;
  }

  std::cout << "libeplb " << eplb_version_string() << " demo\n"
            << "Workload: DeepSeek-V3-shaped, " << spec.num_layers << " MoE layers x "
            << spec.num_experts << " experts in " << spec.num_groups
            << " groups, lognormal popularity (sigma 0.5-0.8), seed " << spec.seed << "\n"
            << "Cluster:  " << kNodes << " nodes x " << kGpus / kNodes << " GPUs, " << kReplicas
            << " physical experts per layer (" << kReplicas - spec.num_experts << " redundant, "
            << kReplicas / kGpus << " per GPU)\n\n";
  Table table({"algorithm", "policy", "slots", "balancedness", "worst layer", "max/mean",
               "max/bound", "dup (layer,GPU)", "off-node", "max replicas", "plan ms"});
  for (const Row& row : rows) {
    table.add_row({row.label, row.policy, std::to_string(row.replicas),
                   fixed(row.metrics.balancedness, 4), fixed(row.metrics.min_balancedness, 4),
                   fixed(row.metrics.max_over_mean, 3), fixed(row.metrics.max_load_over_bound, 3),
                   std::to_string(row.metrics.duplicate_pairs),
                   std::to_string(row.metrics.cross_node_replicas),
                   std::to_string(row.metrics.max_replicas), fixed(row.plan_ms, 3)});
  }
  table.print(std::cout);
  std::cout << "\nbalancedness = mean GPU load / max GPU load per layer, averaged over layers "
               "(1 is perfect).\nmax/bound = max GPU load over a lower bound no placement can "
               "beat. dup = (layer, GPU) pairs holding two replicas of one expert.\noff-node = "
               "replicas placed off their expert's main node. plan ms = median of "
            << kTimingRuns << " runs, all layers.\n";
}

}  // namespace

void register_demo_command(CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  auto* command = app.add_subcommand(
      "demo", "Plan an embedded DeepSeek-V3-shaped workload with every algorithm and compare");
  command->add_option("--seed", args->seed, "Seed of the synthetic workload")
      ->capture_default_str();
  command->add_flag("--json", args->json, "Print JSON instead of a table");
  command->callback([args] { run_demo(*args); });
}

}  // namespace eplb_cli
