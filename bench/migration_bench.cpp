// Weight migration after a re-plan, on SGLang's real DeepSeek-V3 recordings: for every ordered
// pair of workloads (A, B), the GPUs hold the plan made for A and the server re-plans for B's
// load. Experts and bytes moved (44 MB per expert, DeepSeek-V3 in FP8) by
//   - a naive full reload (every slot of every MoE layer),
//   - vLLM's rule: keep only experts that stay on the same GPU (no relabeling),
//   - libeplb's migration planner (relabel nodes, GPUs and slots, then move the rest),
// and a bounded-budget mode: the planner with max_total_bytes = 25 % of its full migration,
// moving the changes with most balancedness gain per byte first, against the full re-plan's gain.
//
// With --stress it times the planner instead on synthetic layouts the recordings do not reach:
// few experts with many replicas each (up to 64), where every change touches many GPUs, next to
// DeepSeek-V3's own layout for reference.
//
// Usage: eplb_bench_migration [--pairs] [--quick] [--stress]   (--pairs also prints one row per
// workload pair; --quick uses the first four recordings only)
// The recordings are read from $EPLB_SHARED/data/real/sglang-deepseek-v3-ep-stats (default
// <source>/../shared); without them the benchmark says so and exits 0.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "deepseek_recordings.hpp"
#include "eplb/eplb.h"
#include "eplb/library.hpp"
#include "eplb/table.hpp"

namespace {

using eplb_cli::fixed;

constexpr std::uint32_t kLayers = eplb_bench::kDeepSeekMoeLayers;
constexpr std::uint32_t kExperts = eplb_bench::kDeepSeekExperts;
constexpr std::uint32_t kGroups = eplb_bench::kDeepSeekGroups;
constexpr std::uint64_t kBytesPerExpert = 44'000'000;  // DeepSeek-V3 expert in FP8
constexpr double kBudgetFraction = 0.25;
// min_balance of the near rows (eplb_planner_plan_near); 0.998 is its default.
constexpr double kNearBalances[] = {0.995, 0.998, 0.999};

struct Workload {
  std::string name;
  std::vector<double> loads;  // [kLayers][kExperts]
};

struct Config {
  const char* name;
  std::uint32_t gpus, nodes, replicas;
};

struct MigrationDeleter {
  void operator()(eplb_migration* m) const { eplb_migration_destroy(m); }
};
using MigrationPtr = std::unique_ptr<eplb_migration, MigrationDeleter>;

std::vector<Workload> workloads() {
  std::vector<Workload> out;
  for (const auto& file : eplb_bench::deepseek_recording_files()) {
    out.push_back({file.stem().string(), eplb_bench::deepseek_moe_rows(file)});
  }
  return out;
}

struct Result {
  eplb_migration_summary full{}, bounded{};
  double plan_ms = 0, bounded_plan_ms = 0;
};

eplb_migration_summary summary_of(const eplb_migration* m) {
  eplb_migration_summary s{};
  s.struct_size = sizeof(s);
  eplb_cli::check(eplb_migration_get_summary(m, &s), "eplb_migration_get_summary: ");
  return s;
}

// The summary of the migration plan from `from` to `to` under `options`, and its time in ms.
eplb_migration_summary timed_plan(const eplb_placement* from, const eplb_placement* to,
                                  const std::vector<double>& loads,
                                  const eplb_migration_options& options, double& ms) {
  eplb_migration* raw = nullptr;
  const auto start = std::chrono::steady_clock::now();
  eplb_cli::check(eplb_migration_plan(from, to, loads.data(), loads.size(), &options, &raw),
                  "eplb_migration_plan: ");
  ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const MigrationPtr owned(raw);
  return summary_of(owned.get());
}

// The full migration, then the bounded one (kBudgetFraction of the full one's bytes).
Result migrate(const eplb_placement* from, const eplb_placement* to,
               const std::vector<double>& loads, std::uint32_t relabel,
               std::uint64_t bytes_per_expert) {
  Result result;
  eplb_migration_options options;
  eplb_migration_options_init(&options);
  options.bytes_per_expert = bytes_per_expert;
  options.relabel = relabel;
  result.full = timed_plan(from, to, loads, options, result.plan_ms);
  options.max_total_bytes =
      static_cast<std::uint64_t>(static_cast<double>(result.full.moved_bytes) * kBudgetFraction);
  if (options.max_total_bytes == 0) options.max_total_bytes = 1;
  result.bounded = timed_plan(from, to, loads, options, result.bounded_plan_ms);
  return result;
}

// A planner for `layers` layers of `experts` experts on `slots` slots.
eplb_cli::PlannerPtr make_planner_for(std::uint32_t algorithm, std::uint32_t layers,
                                      std::uint32_t experts, std::uint32_t slots,
                                      std::uint32_t groups, std::uint32_t nodes,
                                      std::uint32_t gpus) {
  eplb_planner_options options;
  eplb_planner_options_init(&options);
  options.algorithm = algorithm;
  options.num_layers = layers;
  options.num_logical_experts = experts;
  options.num_physical_experts = slots;
  options.num_groups = groups;
  options.num_nodes = nodes;
  options.num_gpus = gpus;
  return eplb_cli::make_planner(options, "eplb_planner_create: ");
}

// Slots of `to` whose expert is not already on the same GPU in `from` (vLLM's rule: no
// relabeling; the experts a GPU keeps are counted with multiplicity).
std::uint64_t same_gpu_rule_experts(const eplb_placement* from, const eplb_placement* to,
                                    std::uint32_t slots, std::uint32_t gpus) {
  const auto read = [&](const eplb_placement* p) {
    std::vector<std::int32_t> map(std::size_t{kLayers} * slots);
    eplb_cli::check(eplb_placement_get_phy2log(p, map.data(), map.size()),
                    "eplb_placement_get_phy2log: ");
    return map;
  };
  auto old_map = read(from), new_map = read(to);
  const std::uint32_t per_gpu = slots / gpus;
  std::uint64_t moved = 0;
  for (std::size_t gpu = 0; gpu < std::size_t{kLayers} * gpus; ++gpu) {
    const auto a = old_map.begin() + static_cast<std::ptrdiff_t>(gpu * per_gpu);
    const auto b = new_map.begin() + static_cast<std::ptrdiff_t>(gpu * per_gpu);
    std::sort(a, a + per_gpu);
    std::sort(b, b + per_gpu);
    std::vector<std::int32_t> kept;
    std::set_intersection(a, a + per_gpu, b, b + per_gpu, std::back_inserter(kept));
    moved += per_gpu - kept.size();
  }
  return moved;
}

// The placement eplb_planner_plan_near makes for `loads` from `current`; adds its report to
// `report`.
eplb_cli::PlacementPtr plan_near(eplb_planner* planner, const std::vector<double>& loads,
                                 const eplb_placement* current, double min_balance,
                                 eplb_plan_near_report& report) {
  eplb_plan_near_options options;
  eplb_plan_near_options_init(&options);
  options.min_balance = min_balance;
  eplb_plan_near_report one{};
  one.struct_size = sizeof(one);
  eplb_placement* placement = nullptr;
  eplb_cli::check(eplb_planner_plan_near(planner, loads.data(), loads.size(), current, &options,
                                         &placement, &one),
                  "eplb_planner_plan_near: ");
  report.layers_kept += one.layers_kept;
  report.layers_rebalanced += one.layers_rebalanced;
  report.layers_partly_replanned += one.layers_partly_replanned;
  report.layers_replanned += one.layers_replanned;
  return eplb_cli::PlacementPtr(placement);
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

std::string gb(double bytes) { return fixed(bytes / 1e9, 1); }

struct StressShape {
  const char* name;
  std::uint32_t algorithm, experts, slots, gpus, nodes, groups;
};

// Zipf(1.2) loads over a rotated expert order: `shift` makes another workload's hot experts.
std::vector<double> zipf_loads(std::uint32_t layers, std::uint32_t experts, std::uint32_t shift) {
  std::vector<double> loads(std::size_t{layers} * experts);
  for (std::uint32_t layer = 0; layer < layers; ++layer) {
    for (std::uint32_t e = 0; e < experts; ++e) {
      const std::uint32_t rank = (e * 7 + layer * 3 + shift) % experts;  // 7: coprime to the sizes
      loads[std::size_t{layer} * experts + e] = 1e6 / std::pow(rank + 1.0, 1.2);
    }
  }
  return loads;
}

// The --stress table: the plan made for one workload migrates to the plan for another (its
// experts' popularity shifted by a third), with and without a budget of 25 % of the bytes.
int stress() {
  constexpr std::uint32_t kStressLayers = 4;
  const StressShape shapes[] = {
      {"DeepSeek-V3 256 on 288, 4x8", EPLB_ALGORITHM_BALANCED, 256, 288, 32, 4, 8},
      {"256 on 1024, 1x32", EPLB_ALGORITHM_BALANCED, 256, 1024, 32, 1, 1},
      {"256 on 4096, 1x32", EPLB_ALGORITHM_BALANCED, 256, 4096, 32, 1, 1},
      {"32 on 1536, 1x128", EPLB_ALGORITHM_BALANCED, 32, 1536, 128, 1, 1},
      {"32 on 2048, 8x16", EPLB_ALGORITHM_BALANCED, 32, 2048, 128, 8, 1},
      {"8 on 512, 16x8", EPLB_ALGORITHM_BALANCED, 8, 512, 128, 16, 1}};
  eplb_cli::Table table({"layout (experts on slots, nodes x GPUs)", "replicas/expert",
                         "ms/layer full", "ms/layer budget", "moved", "full gain",
                         "budget gain/full gain", "near ms/layer", "near moved",
                         "near kept/rebal/partly/replan"});
  for (const StressShape& shape : shapes) {
    const auto planner = make_planner_for(shape.algorithm, kStressLayers, shape.experts,
                                          shape.slots, shape.groups, shape.nodes, shape.gpus);
    const auto old_loads = zipf_loads(kStressLayers, shape.experts, 0);
    const auto new_loads = zipf_loads(kStressLayers, shape.experts, shape.experts / 3);
    const auto from = eplb_cli::plan(planner.get(), old_loads);
    const auto to = eplb_cli::plan(planner.get(), new_loads);
    const Result r = migrate(from.get(), to.get(), new_loads, EPLB_MIGRATION_RELABEL_NODES_AND_GPUS,
                             /*bytes_per_expert=*/1);
    const auto& full = r.full;
    // plan_near from the old plan (its own fresh plan included in the time), then its migration.
    eplb_plan_near_report near_report{};
    const auto near_start = std::chrono::steady_clock::now();
    const auto near = plan_near(planner.get(), new_loads, from.get(), 0.998, near_report);
    const double near_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - near_start)
            .count();
    const Result to_near = migrate(from.get(), near.get(), new_loads,
                                   EPLB_MIGRATION_RELABEL_NODES_AND_GPUS, /*bytes_per_expert=*/1);
    table.add_row({shape.name, fixed(static_cast<double>(shape.slots) / shape.experts, 1),
                   fixed(r.plan_ms / kStressLayers, 1), fixed(r.bounded_plan_ms / kStressLayers, 1),
                   std::to_string(full.moved_experts), fixed(full.gain, 4),
                   full.gain > 1e-4 ? fixed(r.bounded.gain / full.gain, 3) : "-",
                   fixed(near_ms / kStressLayers, 1), std::to_string(to_near.full.moved_experts),
                   std::to_string(near_report.layers_kept) + "/" +
                       std::to_string(near_report.layers_rebalanced) + "/" +
                       std::to_string(near_report.layers_partly_replanned) + "/" +
                       std::to_string(near_report.layers_replanned)});
    std::cerr << "." << std::flush;
  }
  std::cerr << "\n";
  std::cout << "eplb_bench_migration --stress, libeplb " << eplb_version_string()
            << ": migration planning time, " << kStressLayers
            << " layers of synthetic Zipf(1.2) loads, the plan for one load to the plan for the "
               "load shifted by a third (with its loads); budget = 25 % of the full bytes\n\n";
  table.print(std::cout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bool print_pairs = false, quick = false;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--stress") return stress();
      if (arg != "--pairs" && arg != "--quick") {
        std::cerr << "usage: eplb_bench_migration [--pairs] [--quick] [--stress]\n";
        return 2;
      }
      print_pairs = print_pairs || arg == "--pairs";
      quick = quick || arg == "--quick";
    }
    auto sets = workloads();
    if (quick && sets.size() > 4) sets.resize(4);
    if (sets.size() < 2) {
      std::cout << "eplb_bench_migration: " << eplb_bench::deepseek_recordings_dir().string()
                << " not found or holds fewer than two recordings (set EPLB_SHARED); skipped\n";
      return 0;
    }
    const Config configs[] = {{"32 GPUs / 4 nodes, 288 slots", 32, 4, 288},
                              {"64 GPUs / 8 nodes, 320 slots", 64, 8, 320}};
    const std::uint32_t algorithms[] = {EPLB_ALGORITHM_DEEPSEEK, EPLB_ALGORITHM_BALANCED};
    // near: the GPUs' plan for A re-planned for B with eplb_planner_plan_near (min_balance
    // below), then migrated with the default relabeling; vLLM's rule still moves to B's fresh plan.
    struct Mode {
      std::uint32_t relabel;
      std::string name;
      double near_balance;  // 0: migrate to the fresh plan
    };
    std::vector<Mode> modes = {{EPLB_MIGRATION_RELABEL_NODES_AND_GPUS, "relabel", 0},
                               {EPLB_MIGRATION_RELABEL_REPACK_IN_NODE, "repack", 0}};
    for (const double balance : kNearBalances) {
      modes.push_back(
          {EPLB_MIGRATION_RELABEL_NODES_AND_GPUS, "near " + fixed(balance, 3), balance});
    }
    eplb_cli::Table summary({"config", "algorithm", "planner", "pairs", "naive GB", "vLLM rule GB",
                             "planner GB", "planner/vLLM", "intra-node GB", "cross-node GB",
                             "budget GB", "budget/full bytes", "old bal", "new bal", "budget bal",
                             "budget gain/full gain (mean)", "(min)", "plan ms (median)",
                             "near layers kept/rebal/partly/replan"});
    eplb_cli::Table pairs({"config", "algorithm", "planner", "from", "to", "naive", "vLLM rule",
                           "planner", "old bal", "new bal", "budget bal", "gain kept"});
    for (const Config& config : configs) {
      for (const std::uint32_t algorithm : algorithms) {
        const auto planner = make_planner_for(algorithm, kLayers, kExperts, config.replicas,
                                              kGroups, config.nodes, config.gpus);
        std::vector<eplb_cli::PlacementPtr> plans;
        for (const auto& set : sets) plans.push_back(eplb_cli::plan(planner.get(), set.loads));
        for (const Mode& mode : modes) {
          const std::string& mode_name = mode.name;
          eplb_plan_near_report near_report{};
          double naive = 0, vllm = 0, ours = 0, intra = 0, cross = 0, budget = 0;
          double gain_sum = 0, gain_min = 1e9, bytes_ratio_sum = 0;
          double old_bal = 0, new_bal = 0, budget_bal = 0;
          int gain_pairs = 0, count = 0;
          std::vector<double> times;
          for (std::size_t a = 0; a < sets.size(); ++a) {
            for (std::size_t b = 0; b < sets.size(); ++b) {
              if (a == b) continue;
              eplb_cli::PlacementPtr near;
              if (mode.near_balance > 0) {
                near = plan_near(planner.get(), sets[b].loads, plans[a].get(), mode.near_balance,
                                 near_report);
              }
              const eplb_placement* target = near ? near.get() : plans[b].get();
              const Result r =
                  migrate(plans[a].get(), target, sets[b].loads, mode.relabel, kBytesPerExpert);
              // vLLM's rule moves to B's fresh plan, whatever the planner's target.
              const std::uint64_t vllm_experts = same_gpu_rule_experts(
                  plans[a].get(), plans[b].get(), config.replicas, config.gpus);
              ++count;
              times.push_back(r.plan_ms);
              naive += static_cast<double>(r.full.naive_experts) * kBytesPerExpert;
              vllm += static_cast<double>(vllm_experts) * kBytesPerExpert;
              ours += static_cast<double>(r.full.moved_bytes);
              intra += static_cast<double>(r.full.intra_node_bytes + r.full.same_gpu_bytes);
              cross += static_cast<double>(r.full.cross_node_bytes);
              budget += static_cast<double>(r.bounded.moved_bytes);
              if (r.full.moved_bytes > 0) {
                bytes_ratio_sum += static_cast<double>(r.bounded.moved_bytes) /
                                   static_cast<double>(r.full.moved_bytes);
              }
              old_bal += r.full.old_balancedness;
              new_bal += r.full.new_balancedness;
              budget_bal += r.bounded.target_balancedness;
              const double full_gain = r.full.gain;
              double kept = 1;
              if (full_gain > 1e-4) {
                kept = r.bounded.gain / full_gain;
                gain_sum += kept;
                gain_min = std::min(gain_min, kept);
                ++gain_pairs;
              }
              if (print_pairs) {
                pairs.add_row({config.name, eplb_cli::algorithm_name(algorithm), mode_name,
                               sets[a].name, sets[b].name, std::to_string(r.full.naive_experts),
                               std::to_string(vllm_experts), std::to_string(r.full.moved_experts),
                               fixed(r.full.old_balancedness, 4), fixed(r.full.new_balancedness, 4),
                               fixed(r.bounded.target_balancedness, 4), fixed(kept, 3)});
              }
            }
          }
          const double n = count;
          summary.add_row(
              {config.name, eplb_cli::algorithm_name(algorithm), mode_name, std::to_string(count),
               gb(naive / n), gb(vllm / n), gb(ours / n), fixed(ours / vllm, 3), gb(intra / n),
               gb(cross / n), gb(budget / n), fixed(bytes_ratio_sum / n, 3), fixed(old_bal / n, 4),
               fixed(new_bal / n, 4), fixed(budget_bal / n, 4),
               gain_pairs ? fixed(gain_sum / gain_pairs, 3) : "-",
               gain_pairs ? fixed(gain_min, 3) : "-", fixed(median(times), 1),
               mode.near_balance > 0 ? std::to_string(near_report.layers_kept) + "/" +
                                           std::to_string(near_report.layers_rebalanced) + "/" +
                                           std::to_string(near_report.layers_partly_replanned) +
                                           "/" + std::to_string(near_report.layers_replanned)
                                     : "-"});
        }
      }
    }
    std::cout << "Re-plans between " << sets.size()
              << " real DeepSeek-V3 recordings (every ordered pair; 58 MoE layers x 256 experts, "
                 "44 MB per expert); means per re-plan; budget = 25 % of the planner's bytes\n\n";
    summary.print(std::cout);
    if (print_pairs) {
      std::cout << "\n";
      pairs.print(std::cout);
    }
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "eplb_bench_migration: " << error.what() << "\n";
    return 1;
  }
}
