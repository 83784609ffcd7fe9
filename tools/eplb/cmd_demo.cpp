// eplb demo: every algorithm on an embedded DeepSeek-V3-shaped workload, side by side with the
// no-replication baseline. Needs no input.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eplb/commands.hpp"
#include "eplb/demo_dispatch.hpp"
#include "eplb/json_output.hpp"
#include "eplb/library.hpp"
#include "eplb/progress.hpp"
#include "eplb/report.hpp"
#include "eplb/synthetic_workload.hpp"
#include "eplb/table.hpp"
#include "eplb/tracker_handle.hpp"

namespace eplb_cli {

namespace {

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

// Traffic: routing from the workload simulator (DeepSeek-V3 shape: 256 experts, top-8, 8 groups,
// group-limited routing to 4 groups, latent topics), recorded into a tracker; each policy's
// balance-only plan next to its affinity-aware plan, nodes touched per token measured on tokens
// the planner did not see.
constexpr std::uint32_t kTrafficLayers = 8;
constexpr std::size_t kTrafficTokens = 4096;

struct TrafficRow {
  std::string algorithm;
  double nodes_base = 0, nodes_affinity = 0;
  double bal_base = 0, bal_affinity = 0;
  double ms_base = 0, ms_affinity = 0;
};

struct WorkloadDeleter {
  void operator()(eplb_workload* w) const { eplb_workload_destroy(w); }
};

double mean_nodes_touched(const eplb_placement* placement, const std::vector<std::int32_t>& ids,
                          std::size_t tokens, std::uint32_t top_k) {
  double sum = 0;
  for (std::uint32_t l = 0; l < kTrafficLayers; ++l) {
    double mean = 0;
    check(eplb_metrics_nodes_touched(placement, l, ids.data() + l * tokens * top_k, tokens, top_k,
                                     &mean),
          "demo: ");
    sum += mean;
  }
  return sum / kTrafficLayers;
}

std::vector<TrafficRow> run_traffic(std::uint64_t seed) {
  constexpr std::uint32_t kTopK = 8;
  eplb_workload_options wo;
  eplb_workload_options_init(&wo);
  wo.num_layers = kTrafficLayers;
  wo.num_experts = 256;
  wo.top_k = kTopK;
  wo.num_groups = 8;
  wo.topk_groups = 4;
  wo.seed = seed;
  eplb_workload* raw_workload = nullptr;
  check(eplb_workload_create(&wo, &raw_workload), "demo: ");
  const std::unique_ptr<eplb_workload, WorkloadDeleter> workload(raw_workload);
  eplb_tracker_options to;
  eplb_tracker_options_init(&to);
  to.num_layers = kTrafficLayers;
  to.num_logical_experts = 256;
  to.top_k = kTopK;
  to.reservoir_capacity = 4096;
  to.seed = seed;
  eplb_tracker* raw_tracker = nullptr;
  check(eplb_tracker_create(&to, &raw_tracker), "demo: ");
  const TrackerPtr tracker(raw_tracker);
  std::vector<std::int32_t> ids(std::size_t{kTrafficLayers} * kTrafficTokens * kTopK);
  for (int batch = 0; batch < 2; ++batch) {
    check(eplb_workload_next_batch(workload.get(), kTrafficTokens, ids.data(), ids.size()),
          "demo: ");
    for (std::uint32_t l = 0; l < kTrafficLayers; ++l) {
      check(eplb_tracker_record(tracker.get(), l, ids.data() + l * kTrafficTokens * kTopK,
                                kTrafficTokens, kTopK),
            "demo: ");
    }
  }
  // Held-out tokens to measure on.
  check(eplb_workload_next_batch(workload.get(), kTrafficTokens, ids.data(), ids.size()), "demo: ");
  const std::vector<double> loads = tracker_loads(tracker.get());

  std::vector<TrafficRow> rows;
  for (const std::uint32_t id : {EPLB_ALGORITHM_BALANCED, EPLB_ALGORITHM_BALANCED_HIERARCHICAL,
                                 EPLB_ALGORITHM_BALANCED_RELAXED}) {
    TrafficRow row;
    row.algorithm = algorithm_name(id);
    const std::uint32_t budget = id == EPLB_ALGORITHM_BALANCED_RELAXED ? kCrossNodeBudget : 0;
    if (budget > 0) row.algorithm += " b=" + std::to_string(budget);
    for (const std::uint32_t affinity : {0U, 1U}) {
      eplb_planner_options options;
      eplb_planner_options_init(&options);
      options.algorithm = id;
      options.num_layers = kTrafficLayers;
      options.num_logical_experts = 256;
      options.num_physical_experts = kReplicas;
      options.num_groups = 8;
      options.num_nodes = kNodes;
      options.num_gpus = kGpus;
      options.cross_node_budget = budget;
      options.affinity = affinity;
      const auto planner = make_planner(options, "demo: ");
      eplb_placement* raw = nullptr;
      check(eplb_planner_plan_tracked(planner.get(), nullptr, 0, tracker.get(), &raw), "demo: ");
      const PlacementPtr placement(raw);
      const double nodes = mean_nodes_touched(placement.get(), ids, kTrafficTokens, kTopK);
      const double bal = metrics_of(placement.get(), loads).balancedness;
      const double ms = info_of(placement.get()).plan_seconds * 1e3;
      (affinity == 0 ? row.nodes_base : row.nodes_affinity) = nodes;
      (affinity == 0 ? row.bal_base : row.bal_affinity) = bal;
      (affinity == 0 ? row.ms_base : row.ms_affinity) = ms;
    }
    rows.push_back(row);
  }
  return rows;
}

}  // namespace

void run_demo(const DemoArgs& args) {
  WorkloadSpec spec;
  spec.seed = args.seed;
  const std::vector<double> loads = synthetic_loads(spec);

  Progress progress;
  std::vector<Row> rows;
  rows.push_back(run("no replication", EPLB_ALGORITHM_TRIVIAL, spec.num_experts, spec.num_groups,
                     spec, loads));
  for (std::uint32_t id = 1; id <= eplb_algorithm_count(); ++id) {
    progress.show("demo: planning with " + algorithm_name(id));
    const std::uint32_t budget = id == EPLB_ALGORITHM_BALANCED_RELAXED ? kCrossNodeBudget : 0;
    rows.push_back(run(algorithm_name(id), id, kReplicas, spec.num_groups, spec, loads, budget));
    // DeepSeek's global policy has no separate name (balanced's is `balanced`): show it too.
    if (id == EPLB_ALGORITHM_DEEPSEEK) {
      rows.push_back(run(algorithm_name(id), id, kReplicas, 1, spec, loads));
    }
  }

  progress.show("demo: affinity-aware plans and cross-node traffic");
  const std::vector<TrafficRow> traffic = run_traffic(args.seed);
  progress.show("demo: per-batch dispatch");
  const DispatchDemo dispatch = run_dispatch_demo(args.seed);
  progress.finish();

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
    for (const TrafficRow& row : traffic) {
      out["traffic"].push_back(
          {{"algorithm", row.algorithm},
           {"nodes_touched", {{"balance_only", row.nodes_base}, {"affinity", row.nodes_affinity}}},
           {"balancedness", {{"balance_only", row.bal_base}, {"affinity", row.bal_affinity}}},
           {"plan_ms", {{"balance_only", row.ms_base}, {"affinity", row.ms_affinity}}}});
    }
    for (const DispatchRow& row : dispatch.rows) {
      out["dispatch"].push_back({{"mode", row.mode},
                                 {"max_over_mean", row.max_over_mean},
                                 {"nodes_touched", row.nodes_touched}});
    }
    print_json(out);
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

  std::cout << "\nTraffic: nodes touched per token (a token is sent once to every node holding "
               "one of its experts;\nlower bound 1). Routing from the workload simulator, "
            << kTrafficLayers
            << " layers, top-8 with group-limited routing and co-activating "
               "topics;\nplanned from a tracker, measured on "
            << kTrafficTokens
            << " tokens the planner did not see. --affinity keeps "
               "balancedness >= 0.99 x the balance-only plan's.\n\n";
  Table traffic_table({"algorithm", "nodes/token", "with --affinity", "change", "balancedness",
                       "with --affinity", "plan ms", "with --affinity"});
  for (const TrafficRow& row : traffic) {
    const double change = (row.nodes_affinity / row.nodes_base - 1) * 100;
    traffic_table.add_row({row.algorithm, fixed(row.nodes_base, 3), fixed(row.nodes_affinity, 3),
                           (change <= 0 ? "-" : "+") + fixed(std::abs(change), 1) + "%",
                           fixed(row.bal_base, 4), fixed(row.bal_affinity, 4),
                           fixed(row.ms_base, 1), fixed(row.ms_affinity, 1)});
  }
  traffic_table.print(std::cout);
  std::cout << "\nbalanced-hierarchical may only trade whole groups between nodes, and these "
               "tokens pick 4 of the 8 groups\nwith little preference between groups: little to "
               "gain. The global policy moves single replicas and gains most.\n";

  std::cout << "\nPer-batch dispatch: which replica each token uses, on " << dispatch.batches
            << " batches of " << dispatch.tokens << " tokens x " << dispatch.layers
            << " layers the balanced plan did not see\n(token t comes from GPU t % 32; the CPU "
               "references of the GPU mapping kernel, eplb_kernel_map_record_cpu).\n\n";
  Table dispatch_table({"replica choice", "busiest GPU / mean", "nodes/token"});
  for (const DispatchRow& row : dispatch.rows) {
    dispatch_table.add_row({row.mode, fixed(row.max_over_mean, 3), fixed(row.nodes_touched, 3)});
  }
  dispatch_table.print(std::cout);
  std::cout << "\nquota: eplb_split_solve gives each replica an exact share of this batch's "
               "tokens of its expert,\nminimising the busiest GPU, and eplb_split_rank_quotas cuts "
               "it into each GPU's share of its own tokens;\nnode-aware sends each token to the "
               "fewest nodes (the traffic metric's rule).\n";
}

}  // namespace eplb_cli
