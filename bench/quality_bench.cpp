// eplb_bench_quality: how good the balanced planners' placements are, judged against DeepSeek's
// EPLB (EPLB_ALGORITHM_DEEPSEEK, the reference reproduced exactly) through the public C API only.
//
//   1. Per-layer quality on the DeepSeek-V3 shape (58 MoE layers x 256 experts, 8 groups) for four
//      layouts, on SGLang's 12 real recordings (rows 3..60 of each file) and five synthetic load
//      sets: mean and worst layer balancedness, max/mean, duplicates, off-node replicas, how close
//      the GPUs are to the node ceiling, on how many layers a libeplb planner is below DeepSeek,
//      and the planning time.
//   1b. The relaxed policy against its ceiling on the real recordings: eplb_metrics_relaxed_bound
//      (no plan with the budget can beat it) next to the plan for budgets 8..128, and the
//      smallest budget whose bound reaches the global target.
//   2. Two slots per GPU (Mixtral-like, 8 experts, 16 slots, 8 GPUs): the plans against the exact
//      optimum found by brute force over every replica-count vector (which also checks the
//      library's eplb_metrics_exact_optimum).
//   3. Cross-workload robustness: plan on one recording, evaluate on another, for DeepSeek, the
//      balanced planner and eplb_planner_plan_windows on sub-samples or on other recordings.
//
// Usage: eplb_bench_quality [--json]   (--json prints one JSON document instead of the tables)
// The real recordings are read from $EPLB_SHARED/data/real/sglang-deepseek-v3-ep-stats (default
// <source>/../shared); without them only the synthetic parts run. Progress goes to stderr only
// when stderr is a terminal.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "deepseek_recordings.hpp"
#include "eplb/eplb.h"
#include "eplb/library.hpp"
#include "eplb/synthetic_workload.hpp"
#include "eplb/table.hpp"

namespace {

using eplb_cli::fixed;
using nlohmann::json;

constexpr std::uint32_t kLayers = eplb_bench::kDeepSeekMoeLayers;
constexpr std::uint32_t kExperts = eplb_bench::kDeepSeekExperts;
constexpr std::uint32_t kGroups = eplb_bench::kDeepSeekGroups;
// DeepSeek-V3 has 61 layers; the first three are dense and recorded as all-zero rows.
constexpr std::uint32_t kFirstMoeRow = eplb_bench::kDeepSeekFirstMoeRow;
// A libeplb layer counts as "below DeepSeek" when its busiest GPU is heavier by more than this
// relative amount (the two plans may sum the same loads in a different order).
constexpr double kTolerance = 1e-9;

// The stated targets (mean balancedness over the 58 layers, for every real recording).
constexpr double kTargetGlobal32 = 0.999;
constexpr double kTargetGlobal64 = 0.998;

bool g_progress = false;

void progress(const std::string& text) {
  if (g_progress) std::cerr << "\r\033[K" << text << std::flush;
}

void progress_done() {
  if (g_progress) std::cerr << "\r\033[K" << std::flush;
}

// ------------------------------------------------------------------------------------------------
// Load sets
// ------------------------------------------------------------------------------------------------

struct LoadSet {
  std::string name;
  bool real = false;
  std::vector<double> loads;  // [kLayers][kExperts]
};

// Every recording in the shared directory, sorted by name; empty (with a message) when absent.
std::vector<LoadSet> real_sets() {
  const auto dir = eplb_bench::deepseek_recordings_dir();
  std::vector<LoadSet> sets;
  if (!std::filesystem::is_directory(dir)) {
    std::cerr << "eplb_bench_quality: " << dir.string()
              << " not found (set EPLB_SHARED to the shared directory); running the synthetic "
                 "load sets only\n";
    return sets;
  }
  for (const auto& file : eplb_bench::deepseek_recording_files()) {
    sets.push_back({file.stem().string(), true, eplb_bench::deepseek_moe_rows(file)});
  }
  return sets;
}

// Token counts with p proportional to 1/rank^exponent over a random permutation of the experts,
// tokens x top_k independent picks per layer (a multinomial draw; picks of one token are not
// forced to be distinct, as in ../shared/research/eplb-anchors.md §5.1).
std::vector<double> zipf_loads(std::uint32_t layers, std::uint32_t experts, std::uint64_t tokens,
                               std::uint32_t top_k, double exponent, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> loads(std::size_t{layers} * experts);
  std::vector<std::uint32_t> permutation(experts);
  std::vector<double> p(experts);
  for (std::uint32_t layer = 0; layer < layers; ++layer) {
    std::iota(permutation.begin(), permutation.end(), 0U);
    std::shuffle(permutation.begin(), permutation.end(), rng);
    for (std::uint32_t rank = 0; rank < experts; ++rank) {
      p[permutation[rank]] = 1.0 / std::pow(static_cast<double>(rank + 1), exponent);
    }
    double p_left = std::accumulate(p.begin(), p.end(), 0.0);
    auto picks_left = static_cast<std::int64_t>(tokens * top_k);
    for (std::uint32_t e = 0; e < experts; ++e) {
      std::int64_t count = picks_left;
      if (e + 1 < experts) {
        std::binomial_distribution<std::int64_t> draw(picks_left, std::min(1.0, p[e] / p_left));
        count = draw(rng);
      }
      loads[std::size_t{layer} * experts + e] = static_cast<double>(count);
      picks_left -= count;
      p_left -= p[e];
    }
  }
  return loads;
}

std::vector<LoadSet> synthetic_sets() {
  std::vector<LoadSet> sets;
  const auto lognormal = [](double sigma, std::uint64_t seed) {
    eplb_cli::WorkloadSpec spec;
    spec.num_layers = kLayers;
    spec.num_experts = kExperts;
    spec.num_groups = kGroups;
    spec.sigma_min = sigma;
    spec.sigma_max = sigma;
    spec.group_sigma = 0;
    spec.seed = seed;
    return eplb_cli::synthetic_loads(spec);
  };
  sets.push_back({"lognormal s=0.5", false, lognormal(0.5, 11)});
  sets.push_back({"lognormal s=0.75", false, lognormal(0.75, 12)});
  sets.push_back({"lognormal s=1.0", false, lognormal(1.0, 13)});
  sets.push_back({"zipf 1.0", false, zipf_loads(kLayers, kExperts, 65536, 8, 1.0, 14)});
  eplb_cli::WorkloadSpec grouped;  // the default per-layer sigma 0.5..0.8, strong group skew
  grouped.num_layers = kLayers;
  grouped.num_experts = kExperts;
  grouped.num_groups = kGroups;
  grouped.group_sigma = 0.5;
  grouped.seed = 15;
  sets.push_back({"group-skewed g=0.5", false, eplb_cli::synthetic_loads(grouped)});
  return sets;
}

// ------------------------------------------------------------------------------------------------
// Planning and measuring
// ------------------------------------------------------------------------------------------------

struct Config {
  const char* name;
  std::uint32_t replicas;
  std::uint32_t gpus;
  std::uint32_t nodes;
  std::uint32_t groups;
  bool hierarchical;
};

constexpr Config kConfigs[] = {
    {"global_32_R288", 288, 32, 4, 1, false},
    {"global_64_R320", 320, 64, 8, 1, false},
    {"hier_4x8_R288", 288, 32, 4, kGroups, true},
    {"hier_8x8_R320", 320, 64, 8, kGroups, true},
};

struct Variant {
  std::string label;  // as printed
  std::string short_label;
  std::uint32_t algorithm;
  std::uint32_t budget;  // cross_node_budget (balanced-relaxed only)
};

std::vector<Variant> variants_of(const Config& config) {
  std::vector<Variant> variants{{"deepseek", "deepseek", EPLB_ALGORITHM_DEEPSEEK, 0}};
  if (config.hierarchical) {
    variants.push_back(
        {"balanced-hierarchical", "bal-hier", EPLB_ALGORITHM_BALANCED_HIERARCHICAL, 0});
    for (std::uint32_t budget : {8U, 16U, 32U}) {
      variants.push_back({"balanced-relaxed b=" + std::to_string(budget),
                          "relax-" + std::to_string(budget), EPLB_ALGORITHM_BALANCED_RELAXED,
                          budget});
    }
  }
  variants.push_back({config.hierarchical ? "balanced (global)" : "balanced", "balanced",
                      EPLB_ALGORITHM_BALANCED, 0});
  return variants;
}

eplb_planner_options options_for(std::uint32_t algorithm, std::uint32_t layers,
                                 std::uint32_t experts, std::uint32_t replicas, std::uint32_t gpus,
                                 std::uint32_t nodes, std::uint32_t groups, std::uint32_t budget) {
  eplb_planner_options options;
  eplb_planner_options_init(&options);
  options.algorithm = algorithm;
  options.num_layers = layers;
  options.num_logical_experts = experts;
  options.num_physical_experts = replicas;
  options.num_groups = groups;
  options.num_nodes = nodes;
  options.num_gpus = gpus;
  options.cross_node_budget = budget;
  return options;
}

eplb_planner_options options_for(const Config& config, const Variant& variant) {
  return options_for(variant.algorithm, kLayers, kExperts, config.replicas, config.gpus,
                     config.nodes, config.groups, variant.budget);
}

std::vector<eplb_layer_metrics> layer_metrics(const eplb_placement* placement,
                                              const std::vector<double>& loads,
                                              std::uint32_t layers, std::uint32_t experts) {
  std::vector<eplb_layer_metrics> out(layers);
  for (std::uint32_t layer = 0; layer < layers; ++layer) {
    out[layer].struct_size = sizeof(eplb_layer_metrics);
    eplb_cli::check(
        eplb_metrics_compute_layer(placement, layer, loads.data() + std::size_t{layer} * experts,
                                   experts, &out[layer]),
        "eplb_metrics_compute_layer: ");
  }
  return out;
}

std::vector<std::int32_t> replica_counts_of(const eplb_placement* placement) {
  const auto info = eplb_cli::info_of(placement);
  std::vector<std::int32_t> counts(std::size_t{info.num_layers} * info.num_logical_experts);
  eplb_cli::check(eplb_placement_get_replica_counts(placement, counts.data(), counts.size()),
                  "eplb_placement_get_replica_counts: ");
  return counts;
}

// ------------------------------------------------------------------------------------------------
// Section 1: per-layer quality against DeepSeek
// ------------------------------------------------------------------------------------------------

struct Run {
  eplb_metrics summary{};
  double plan_seconds = 0;
  std::vector<eplb_layer_metrics> layers;
  // Against DeepSeek in the same config (not for DeepSeek itself).
  int layers_below = 0;
  double min_difference = 0;  // min over layers of (ours - DeepSeek) layer balancedness
  std::uint32_t min_difference_layer = 0;
};

struct SetResult {
  const LoadSet* set;
  std::vector<Run> runs;  // one per variant
};

struct ConfigResult {
  const Config* config;
  std::vector<Variant> variants;
  std::vector<SetResult> sets;
};

std::vector<std::string> g_findings;  // suspected bugs, reported at the end
std::vector<std::string> g_notes;     // surprises that are not bugs by the documented contract

std::string layer_note(std::uint32_t layer, double ours, double other) {
  return "layer " + std::to_string(layer) + " (" + fixed(ours, 1) + " vs " + fixed(other, 1) +
         ", +" + fixed((ours / other - 1) * 100, 2) + "%)";
}

// One note per (config, load set, algorithm, kind) listing the layers concerned (MoE layer
// indices; the real files' rows are 3 higher).
void add_note(const std::string& prefix, const std::string& what,
              const std::vector<std::string>& layers) {
  if (layers.empty()) return;
  std::string text = prefix + what + " on " + std::to_string(layers.size()) + " layer(s): ";
  const std::size_t shown = std::min<std::size_t>(layers.size(), 6);
  for (std::size_t i = 0; i < shown; ++i) text += (i ? "; " : "") + layers[i];
  if (shown < layers.size()) text += "; ...";
  g_notes.push_back(text);
}

std::string layer_name(std::uint32_t layer, bool real) {
  std::string text = "MoE layer " + std::to_string(layer);
  if (real) text += " (file row " + std::to_string(layer + kFirstMoeRow) + ")";
  return text;
}

ConfigResult run_config(const Config& config, const std::vector<LoadSet>& sets) {
  ConfigResult result{&config, variants_of(config), {}};
  const std::uint32_t gpus_per_node = config.gpus / config.nodes;
  std::vector<eplb_cli::PlannerPtr> planners;
  for (const Variant& variant : result.variants) {
    planners.push_back(eplb_cli::make_planner(options_for(config, variant),
                                              "eplb_planner_create (" + variant.label + "): "));
  }
  for (const LoadSet& set : sets) {
    progress(std::string("section 1: ") + config.name + " / " + set.name);
    SetResult set_result{&set, {}};
    for (std::size_t v = 0; v < result.variants.size(); ++v) {
      const Variant& variant = result.variants[v];
      const auto placement = eplb_cli::plan(planners[v].get(), set.loads,
                                            "eplb_planner_plan (" + variant.label + "): ");
      Run run;
      run.summary = eplb_cli::metrics_of(placement.get(), set.loads);
      run.plan_seconds = eplb_cli::info_of(placement.get()).plan_seconds;
      run.layers = layer_metrics(placement.get(), set.loads, kLayers, kExperts);
      set_result.runs.push_back(std::move(run));
    }
    const Run& deepseek = set_result.runs.front();
    const std::size_t hier_index = 1;  // balanced-hierarchical, when the config is hierarchical
    for (std::size_t v = 1; v < result.variants.size(); ++v) {
      Run& run = set_result.runs[v];
      const Variant& variant = result.variants[v];
      run.min_difference = std::numeric_limits<double>::infinity();
      std::vector<std::string> worse_than_hier;
      std::vector<std::string> worse_than_smaller;
      std::vector<std::string> other_duplicates;
      for (std::uint32_t layer = 0; layer < kLayers; ++layer) {
        const auto& ours = run.layers[layer];
        const auto& theirs = deepseek.layers[layer];
        const double difference = ours.balancedness - theirs.balancedness;
        if (difference < run.min_difference) {
          run.min_difference = difference;
          run.min_difference_layer = layer;
        }
        const std::string where = std::string(config.name) + " / " + set.name + " / " +
                                  variant.label + " / " + layer_name(layer, set.real);
        if (ours.max_gpu_load > theirs.max_gpu_load * (1 + kTolerance)) {
          ++run.layers_below;
          std::ostringstream text;
          text << where << ": max GPU load " << fixed(ours.max_gpu_load, 2) << " > deepseek "
               << fixed(theirs.max_gpu_load, 2) << " (balancedness " << fixed(ours.balancedness, 5)
               << " vs " << fixed(theirs.balancedness, 5) << ")";
          // The header promises this for every balanced planner against DeepSeek under the same
          // policy; balanced (global) in a hierarchical config is measured against DeepSeek's
          // hierarchical plan, which it should beat, but nothing promises it.
          const bool promised =
              !(config.hierarchical && variant.algorithm == EPLB_ALGORITHM_BALANCED);
          (promised ? g_findings : g_notes).push_back(text.str());
        }
        // Relaxed is hierarchical plus a budget: not expected to be busier than
        // balanced-hierarchical, nor than itself with a smaller budget, on the same layer.
        if (config.hierarchical && variant.algorithm == EPLB_ALGORITHM_BALANCED_RELAXED) {
          const auto& hier = set_result.runs[hier_index].layers[layer];
          if (ours.max_gpu_load > hier.max_gpu_load * (1 + kTolerance)) {
            worse_than_hier.push_back(layer_note(layer, ours.max_gpu_load, hier.max_gpu_load));
          }
          const Variant& before = result.variants[v - 1];
          if (before.algorithm == EPLB_ALGORITHM_BALANCED_RELAXED) {
            const auto& smaller = set_result.runs[v - 1].layers[layer];
            if (ours.max_gpu_load > smaller.max_gpu_load * (1 + kTolerance)) {
              worse_than_smaller.push_back(
                  layer_note(layer, ours.max_gpu_load, smaller.max_gpu_load));
            }
          }
        }
        // A duplicate (two replicas of one expert on a GPU) is avoidable by counts alone when no
        // expert has more replicas than the GPUs it may use (its node's under locality: each
        // node's replicas can then be dealt round-robin over its GPUs).
        const std::uint32_t spread =
            config.hierarchical && variant.algorithm != EPLB_ALGORITHM_BALANCED ? gpus_per_node
                                                                                : config.gpus;
        if (ours.duplicate_gpus > 0) {
          std::ostringstream text;
          text << "layer " << layer << ": " << ours.duplicate_gpus << " dup, max replicas "
               << ours.max_replicas;
          // The planners keep an avoidable duplicate only where DeepSeek's layer has one and
          // moving it apart would leave the plan busier than DeepSeek's (documented in eplb.h):
          // that is a note, anything else a finding.
          const bool matches_deepseek_duplicate =
              theirs.duplicate_gpus > 0 &&
              ours.max_gpu_load <= theirs.max_gpu_load * (1 + kTolerance);
          if (ours.max_replicas <= spread && matches_deepseek_duplicate) {
            g_notes.push_back(where + ": " + std::to_string(ours.duplicate_gpus) +
                              " GPU(s) keep two replicas of one expert, as DeepSeek's plan does "
                              "(" +
                              std::to_string(theirs.duplicate_gpus) +
                              " GPUs); without them the layer would be busier than DeepSeek's");
          } else if (ours.max_replicas <= spread) {
            g_findings.push_back(where + ": " + std::to_string(ours.duplicate_gpus) +
                                 " GPU(s) hold two replicas of one expert although no expert "
                                 "has more than " +
                                 std::to_string(ours.max_replicas) +
                                 " replicas (<= " + std::to_string(spread) + " GPUs available)");
          } else {
            other_duplicates.push_back(text.str());
          }
        }
      }
      const std::string prefix =
          std::string(config.name) + " / " + set.name + " / " + variant.label + ": ";
      add_note(prefix, "busier than balanced-hierarchical", worse_than_hier);
      add_note(prefix, "busier than with budget " + std::to_string(result.variants[v - 1].budget),
               worse_than_smaller);
      add_note(prefix,
               config.hierarchical && variant.algorithm != EPLB_ALGORITHM_BALANCED
                   ? "duplicates where some expert has more replicas than the " +
                         std::to_string(gpus_per_node) + " GPUs of a node"
                   : "duplicates where some expert has more replicas than the " +
                         std::to_string(config.gpus) + " GPUs",
               other_duplicates);
    }
    result.sets.push_back(std::move(set_result));
  }
  return result;
}

std::string ms(double seconds) { return fixed(seconds * 1000, 1); }

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::string signed_fixed(double value, int decimals) {
  std::string text = fixed(value, decimals);
  if (text.front() != '-') text.insert(text.begin(), '+');
  return text;
}

// Aggregate over the real recordings of one variant.
struct RealAggregate {
  std::size_t files = 0;
  double mean = 0;        // mean over files of the mean layer balancedness
  double worst_file = 1;  // smallest per-file mean
  std::string worst_file_name;
  double best_file = 0;  // largest per-file mean
  double worst_layer = 1;
  double max_over_mean = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t cross_node = 0;
  double over_node_bound = 0;
  int layers_below = 0;
  double min_difference = std::numeric_limits<double>::infinity();
  double plan_median = 0;
};

RealAggregate aggregate_real(const ConfigResult& result, std::size_t v) {
  RealAggregate a;
  std::vector<double> times;
  for (const SetResult& set : result.sets) {
    if (!set.set->real) continue;
    const Run& run = set.runs[v];
    ++a.files;
    a.mean += run.summary.balancedness;
    if (run.summary.balancedness < a.worst_file) {
      a.worst_file = run.summary.balancedness;
      a.worst_file_name = set.set->name;
    }
    a.best_file = std::max(a.best_file, run.summary.balancedness);
    a.worst_layer = std::min(a.worst_layer, run.summary.min_balancedness);
    a.max_over_mean += run.summary.max_over_mean;
    a.duplicates += run.summary.duplicate_pairs;
    a.cross_node += run.summary.cross_node_replicas;
    a.over_node_bound += run.summary.max_load_over_node_bound;
    a.layers_below += run.layers_below;
    a.min_difference = std::min(a.min_difference, run.min_difference);
    times.push_back(run.plan_seconds);
  }
  if (a.files > 0) {
    const auto n = static_cast<double>(a.files);
    a.mean /= n;
    a.max_over_mean /= n;
    a.over_node_bound /= n;
  }
  a.plan_median = median(times);
  return a;
}

void print_section1(const std::vector<ConfigResult>& results, std::ostream& out) {
  out << "## 1. Per-layer quality against DeepSeek (58 MoE layers x 256 experts)\n\n"
      << "Columns: bal = mean over layers of mean GPU load / max GPU load (eplb_metrics."
         "balancedness);\n"
      << "worst file = the smallest per-file mean (real rows only); worst layer = the worst "
         "layer;\n"
      << "max/mean = mean over layers of max / mean GPU load; dup = (layer, GPU) pairs holding "
         "two replicas\n"
      << "of one expert; off-node = replicas not on their expert's main node; max/node = mean "
         "over layers of\n"
      << "max GPU load / node ceiling; < DS = layers whose busiest GPU is heavier than "
         "DeepSeek's (same\n"
      << "config, relative tolerance 1e-9); min diff = smallest (ours - DeepSeek) layer "
         "balancedness\n"
      << "(-0.00000: below by a rounding-level amount, inside the tolerance);\n"
      << "plan ms = eplb_placement_info.plan_seconds for 58 layers (median over files for "
         "the real row).\n"
      << "real (N files) aggregates SGLang's recordings, rows 3..60 of each: bal is the mean "
         "over files,\n"
      << "< DS and dup are summed over files (58 layers each).\n\n";
  for (const ConfigResult& result : results) {
    const Config& config = *result.config;
    out << "### " << config.name << " (" << config.nodes << " nodes x "
        << config.gpus / config.nodes << " GPUs, R = " << config.replicas << ", groups "
        << config.groups << ", "
        << (config.hierarchical ? "hierarchical" : "global: groups 1 makes DeepSeek global")
        << ")\n\n";
    eplb_cli::Table table({"load set", "algorithm", "bal", "worst file", "worst layer", "max/mean",
                           "dup", "off-node", "max/node", "< DS", "min diff", "plan ms"});
    std::size_t real_files = 0;
    for (const SetResult& set : result.sets) real_files += set.set->real ? 1 : 0;
    if (real_files > 0) {
      const std::string name = "real (" + std::to_string(real_files) + " files)";
      for (std::size_t v = 0; v < result.variants.size(); ++v) {
        const RealAggregate a = aggregate_real(result, v);
        const bool ds = v == 0;
        table.add_row(
            {name, result.variants[v].label, fixed(a.mean, 4), fixed(a.worst_file, 4),
             fixed(a.worst_layer, 4), fixed(a.max_over_mean, 4), std::to_string(a.duplicates),
             std::to_string(a.cross_node), fixed(a.over_node_bound, 4),
             ds ? "-" : std::to_string(a.layers_below) + "/" + std::to_string(a.files * kLayers),
             ds ? "-" : signed_fixed(a.min_difference, 5), ms(a.plan_median)});
      }
    }
    for (const SetResult& set : result.sets) {
      if (set.set->real) continue;
      for (std::size_t v = 0; v < result.variants.size(); ++v) {
        const Run& run = set.runs[v];
        const bool ds = v == 0;
        table.add_row({set.set->name, result.variants[v].label, fixed(run.summary.balancedness, 4),
                       "-", fixed(run.summary.min_balancedness, 4),
                       fixed(run.summary.max_over_mean, 4),
                       std::to_string(run.summary.duplicate_pairs),
                       std::to_string(run.summary.cross_node_replicas),
                       fixed(run.summary.max_load_over_node_bound, 4),
                       ds ? "-" : std::to_string(run.layers_below) + "/" + std::to_string(kLayers),
                       ds ? "-" : signed_fixed(run.min_difference, 5), ms(run.plan_seconds)});
      }
    }
    table.print(out);
    out << '\n';

    if (real_files == 0) continue;
    out << config.name << ", per real recording: mean balancedness, then layers below DeepSeek "
        << "(of 58)\n\n";
    std::vector<std::string> headers{"file"};
    for (const Variant& variant : result.variants) headers.push_back(variant.short_label);
    for (std::size_t v = 1; v < result.variants.size(); ++v) {
      headers.push_back("<DS " + result.variants[v].short_label);
    }
    eplb_cli::Table detail(headers);
    for (const SetResult& set : result.sets) {
      if (!set.set->real) continue;
      std::vector<std::string> row{set.set->name};
      for (const Run& run : set.runs) row.push_back(fixed(run.summary.balancedness, 4));
      for (std::size_t v = 1; v < set.runs.size(); ++v) {
        row.push_back(std::to_string(set.runs[v].layers_below));
      }
      detail.add_row(std::move(row));
    }
    detail.print(out);
    out << '\n';
  }
}

const ConfigResult* find_config(const std::vector<ConfigResult>& results, std::string_view name) {
  for (const ConfigResult& result : results) {
    if (result.config->name == name) return &result;
  }
  return nullptr;
}

std::size_t find_variant(const ConfigResult& result, std::string_view label) {
  for (std::size_t v = 0; v < result.variants.size(); ++v) {
    if (result.variants[v].label == label) return v;
  }
  return result.variants.size();
}

double ceiling_balancedness(const eplb_placement* placement, const std::vector<double>& loads,
                            std::uint32_t budget);

// The targets, with the measured figures and MET / MISSED.
json check_targets(const std::vector<ConfigResult>& results, std::ostream& out, bool print) {
  json targets = json::array();
  const auto line = [&](const std::string& text) {
    if (print) out << "- " << text << '\n';
  };
  if (print) out << "### Targets (real recordings, mean balancedness over the 58 layers)\n\n";
  const auto global_target = [&](const char* config_name, double target) {
    const ConfigResult* result = find_config(results, config_name);
    if (result == nullptr) return;
    const RealAggregate ours = aggregate_real(*result, find_variant(*result, "balanced"));
    const RealAggregate ds = aggregate_real(*result, 0);
    if (ours.files == 0) return;
    const bool met = ours.worst_file >= target;
    std::ostringstream text;
    text << config_name << ", balanced >= " << fixed(target, 3)
         << " on every file: " << (met ? "MET" : "MISSED") << " (balanced "
         << fixed(ours.worst_file, 4) << ".." << fixed(ours.best_file, 4) << ", worst "
         << ours.worst_file_name << "; deepseek " << fixed(ds.worst_file, 4) << ".."
         << fixed(ds.best_file, 4) << ")";
    line(text.str());
    targets.push_back({{"target", std::string(config_name) + " balanced >= " + fixed(target, 3)},
                       {"met", met},
                       {"balanced_min_file", ours.worst_file},
                       {"balanced_max_file", ours.best_file},
                       {"deepseek_min_file", ds.worst_file},
                       {"deepseek_max_file", ds.best_file}});
  };
  global_target("global_32_R288", kTargetGlobal32);
  global_target("global_64_R320", kTargetGlobal64);

  const auto relaxed_target = [&](const char* config_name, double target, bool stated) {
    const ConfigResult* result = find_config(results, config_name);
    if (result == nullptr) return;
    const RealAggregate ds = aggregate_real(*result, 0);
    const RealAggregate hier = aggregate_real(*result, 1);
    const RealAggregate global =
        aggregate_real(*result, find_variant(*result, "balanced (global)"));
    if (ds.files == 0) return;
    std::ostringstream text;
    text << config_name << ": deepseek (hierarchical) " << fixed(ds.worst_file, 4) << ".."
         << fixed(ds.best_file, 4) << ", balanced-hierarchical " << fixed(hier.worst_file, 4)
         << ".." << fixed(hier.best_file, 4) << ", balanced (global) "
         << fixed(global.worst_file, 4) << ".." << fixed(global.best_file, 4) << "; relaxed";
    std::optional<std::uint32_t> smallest;
    json budgets = json::array();
    for (std::size_t v = 0; v < result->variants.size(); ++v) {
      const Variant& variant = result->variants[v];
      if (variant.algorithm != EPLB_ALGORITHM_BALANCED_RELAXED) continue;
      const RealAggregate relaxed = aggregate_real(*result, v);
      text << " b=" << variant.budget << " " << fixed(relaxed.worst_file, 4) << ".."
           << fixed(relaxed.best_file, 4) << " (off-node "
           << fixed(static_cast<double>(relaxed.cross_node) /
                        static_cast<double>(relaxed.files * kLayers),
                    1)
           << "/layer)";
      if (relaxed.worst_file >= target && !smallest) smallest = variant.budget;
      budgets.push_back({{"budget", variant.budget},
                         {"min_file", relaxed.worst_file},
                         {"max_file", relaxed.best_file}});
    }
    text << ". " << (stated ? "Target" : "Reference (not a stated target)")
         << ": relaxed reaches the global figure " << fixed(target, 3)
         << " on every file with a budget of at most 32: ";
    if (smallest) {
      text << (stated ? "MET" : "yes") << " from b=" << *smallest;
    } else {
      text << (stated ? "MISSED" : "no");
    }
    // What any plan could reach with b=32 (section 1b): the relaxed bound per file.
    const auto planner = eplb_cli::make_planner(options_for(*result->config, result->variants[0]),
                                                "eplb_planner_create: ");
    double best_ceiling = 0;
    std::size_t below = 0;
    std::size_t files = 0;
    for (const SetResult& set : result->sets) {
      if (!set.set->real) continue;
      const auto placement = eplb_cli::plan(planner.get(), set.set->loads, "eplb_planner_plan: ");
      const double ceiling = ceiling_balancedness(placement.get(), set.set->loads, 32);
      best_ceiling = std::max(best_ceiling, ceiling);
      below += ceiling < target ? 1 : 0;
      ++files;
    }
    text << "; the relaxed bound with b=32 is below " << fixed(target, 3) << " on " << below
         << " of " << files << " files (at most " << fixed(best_ceiling, 4)
         << "), so no plan can reach it on those files";
    line(text.str());
    targets.push_back({{"target", std::string(config_name) + " relaxed >= " + fixed(target, 3)},
                       {"stated", stated},
                       {"met", smallest.has_value()},
                       {"smallest_budget", smallest ? json(*smallest) : json(nullptr)},
                       {"deepseek_min_file", ds.worst_file},
                       {"deepseek_max_file", ds.best_file},
                       {"relaxed", budgets}});
  };
  relaxed_target("hier_8x8_R320", kTargetGlobal64, true);
  relaxed_target("hier_4x8_R288", kTargetGlobal32, false);
  if (print) out << '\n';
  return targets;
}

// ------------------------------------------------------------------------------------------------
// Section 1b: the relaxed policy against its own ceiling
// ------------------------------------------------------------------------------------------------

constexpr std::uint32_t kCeilingBudgets[] = {8, 16, 32, 64, 128};

// Mean over layers of the most balancedness any relaxed plan with `budget` can reach:
// min(1, mean GPU load / eplb_metrics_relaxed_bound).
double ceiling_balancedness(const eplb_placement* placement, const std::vector<double>& loads,
                            std::uint32_t budget) {
  double sum = 0;
  for (std::uint32_t layer = 0; layer < kLayers; ++layer) {
    const double* row = loads.data() + std::size_t{layer} * kExperts;
    double bound = 0;
    eplb_cli::check(eplb_metrics_relaxed_bound(placement, row, kExperts, budget, &bound),
                    "eplb_metrics_relaxed_bound: ");
    const double total = std::accumulate(row, row + kExperts, 0.0);
    const auto info = eplb_cli::info_of(placement);
    sum += bound > 0 ? std::min(1.0, total / info.num_gpus / bound) : 1.0;
  }
  return sum / kLayers;
}

json run_section_ceiling(const std::vector<ConfigResult>& results, const std::vector<LoadSet>& real,
                         std::ostream& out, bool print) {
  json rows = json::array();
  if (real.empty()) return rows;
  if (print) {
    out << "## 1b. The relaxed policy against its ceiling (real recordings)\n\n"
        << "bound b=B = mean over layers of min(1, mean GPU load / eplb_metrics_relaxed_bound): "
           "the most\nbalancedness any plan keeping whole groups per node, every expert with a "
           "replica on its\ngroup's node and at most B replicas per layer off their group's node "
           "can reach (a relaxation:\nslot limits and the load remote replicas add are ignored, "
           "so it is optimistic). plan b=B =\nbalanced-relaxed with budget B. need = the smallest "
           "budget whose bound reaches the target\n(no plan can reach it with less); plan need = "
           "the smallest budget above at which the planner\nreaches it (> 128: none); never = "
           "no budget can (the bound caps the budget at R - E).\n\n";
  }
  for (const char* name : {"hier_8x8_R320", "hier_4x8_R288"}) {
    const ConfigResult* result = find_config(results, name);
    if (result == nullptr) continue;
    const Config& config = *result->config;
    const double target = config.gpus == 64 ? kTargetGlobal64 : kTargetGlobal32;
    std::vector<eplb_cli::PlannerPtr> planners;
    for (std::uint32_t budget : kCeilingBudgets) {
      planners.push_back(eplb_cli::make_planner(
          options_for(EPLB_ALGORITHM_BALANCED_RELAXED, kLayers, kExperts, config.replicas,
                      config.gpus, config.nodes, config.groups, budget),
          "eplb_planner_create (relaxed): "));
    }
    std::vector<std::string> header = {"file"};
    for (std::uint32_t budget : kCeilingBudgets) {
      header.push_back("bound b=" + std::to_string(budget));
      header.push_back("plan b=" + std::to_string(budget));
    }
    header.emplace_back("need");
    header.emplace_back("plan need");
    eplb_cli::Table table(header);
    std::uint32_t most_needed = 0;
    std::size_t unreachable_at_32 = 0;
    std::size_t never_files = 0;
    for (const LoadSet& set : real) {
      progress(std::string("section 1b: ") + name + " / " + set.name);
      std::vector<std::string> cells = {set.name};
      json row = {{"config", name}, {"file", set.name}, {"target", target}};
      json budgets = json::array();
      std::optional<std::uint32_t> plan_need;
      eplb_cli::PlacementPtr any;
      for (std::size_t b = 0; b < std::size(kCeilingBudgets); ++b) {
        const std::uint32_t budget = kCeilingBudgets[b];
        auto placement = eplb_cli::plan(planners[b].get(), set.loads, "eplb_planner_plan: ");
        const eplb_metrics m = eplb_cli::metrics_of(placement.get(), set.loads);
        const double ceiling = ceiling_balancedness(placement.get(), set.loads, budget);
        cells.push_back(fixed(ceiling, 4));
        cells.push_back(fixed(m.balancedness, 4));
        if (m.balancedness >= target && !plan_need) plan_need = budget;
        if (budget == 32 && ceiling < target) ++unreachable_at_32;
        budgets.push_back({{"budget", budget},
                           {"bound_balancedness", ceiling},
                           {"balancedness", m.balancedness},
                           {"cross_node_replicas", m.cross_node_replicas}});
        any = std::move(placement);
      }
      // The smallest budget whose ceiling reaches the target (the ceiling grows with the budget).
      std::uint32_t lo = 0;
      std::uint32_t hi = config.replicas;
      if (ceiling_balancedness(any.get(), set.loads, hi) < target) {
        lo = hi;
      } else {
        while (lo < hi) {
          const std::uint32_t mid = (lo + hi) / 2;
          if (ceiling_balancedness(any.get(), set.loads, mid) >= target) {
            hi = mid;
          } else {
            lo = mid + 1;
          }
        }
      }
      // Past R - E the bound stops growing: no budget reaches the target.
      const bool never = lo >= config.replicas;
      if (!never) most_needed = std::max(most_needed, lo);
      never_files += never ? 1 : 0;
      cells.push_back(never ? std::string("never") : std::to_string(lo));
      cells.push_back(plan_need ? std::to_string(*plan_need) : std::string("> 128"));
      table.add_row(cells);
      row["budgets"] = budgets;
      row["budget_needed_by_bound"] = never ? json(nullptr) : json(lo);
      row["budget_needed_by_plan"] = plan_need ? json(*plan_need) : json(nullptr);
      rows.push_back(std::move(row));
    }
    if (print) {
      out << "### " << name << ", target " << fixed(target, 3) << "\n\n";
      table.print(out);
      out << "\nThe bound proves " << unreachable_at_32 << " of " << real.size()
          << " files cannot reach " << fixed(target, 3) << " with b=32 and " << never_files
          << " with any budget (at most R - E = " << config.replicas - kExperts
          << " slots can hold remote replicas)";
      if (never_files < real.size()) {
        out << "; the others need up to " << most_needed << " replicas per layer";
      }
      out << ".\n\n";
    }
  }
  return rows;
}

json section1_json(const std::vector<ConfigResult>& results) {
  json rows = json::array();
  for (const ConfigResult& result : results) {
    for (const SetResult& set : result.sets) {
      for (std::size_t v = 0; v < result.variants.size(); ++v) {
        const Run& run = set.runs[v];
        json row = {{"config", result.config->name},
                    {"load_set", set.set->name},
                    {"real", set.set->real},
                    {"algorithm", eplb_cli::algorithm_name(result.variants[v].algorithm)},
                    {"cross_node_budget", result.variants[v].budget},
                    {"balancedness", run.summary.balancedness},
                    {"min_balancedness", run.summary.min_balancedness},
                    {"max_over_mean", run.summary.max_over_mean},
                    {"duplicate_pairs", run.summary.duplicate_pairs},
                    {"cross_node_replicas", run.summary.cross_node_replicas},
                    {"max_load_over_node_bound", run.summary.max_load_over_node_bound},
                    {"plan_seconds", run.plan_seconds}};
        if (v > 0) {
          row["layers_below_deepseek"] = run.layers_below;
          row["min_difference_vs_deepseek"] = run.min_difference;
          row["min_difference_layer"] = run.min_difference_layer;
        }
        rows.push_back(std::move(row));
      }
    }
  }
  return rows;
}

// ------------------------------------------------------------------------------------------------
// Section 2: two slots per GPU against the exact optimum
// ------------------------------------------------------------------------------------------------

constexpr std::uint32_t kSmallExperts = 8;
constexpr std::uint32_t kSmallSlots = 16;
constexpr std::uint32_t kSmallGpus = 8;

struct Optimum {
  double unconstrained = 0;  // best max GPU load over all counts and pairings
  double twin_free = 0;      // the same without two replicas of one expert on a GPU
  std::array<int, kSmallExperts> twin_free_counts{};
  std::size_t pairings_solved = 0;  // compositions that needed the subset DP
};

// The best pairing of 16 replicas into 8 GPUs, no GPU holding two replicas of one expert:
// dynamic programming over subsets, always pairing the lowest unpaired replica.
double best_twin_free_pairing(const std::array<double, kSmallSlots>& load,
                              const std::array<int, kSmallSlots>& expert, std::vector<double>& dp) {
  constexpr std::uint32_t full = (1U << kSmallSlots) - 1;
  const double inf = std::numeric_limits<double>::infinity();
  std::fill(dp.begin(), dp.end(), inf);
  dp[0] = 0;
  for (std::uint32_t mask = 0; mask < full; ++mask) {
    const double here = dp[mask];
    if (here == inf) continue;
    const auto i = static_cast<std::uint32_t>(std::countr_one(mask));
    for (std::uint32_t j = i + 1; j < kSmallSlots; ++j) {
      if ((mask >> j) & 1U || expert[j] == expert[i]) continue;
      const std::uint32_t next = mask | (1U << i) | (1U << j);
      const double value = std::max(here, load[i] + load[j]);
      if (value < dp[next]) dp[next] = value;
    }
  }
  return dp[full];
}

Optimum exact_two_slot_optimum(const double* loads) {
  struct Candidate {
    double unconstrained;
    std::array<int, kSmallExperts> counts;
  };
  std::vector<Candidate> candidates;
  std::array<int, kSmallExperts> counts{};
  // Every vector of counts in 1..8 summing to 16 (the compositions of 16 into 8 parts).
  const auto recurse = [&](auto&& self, std::uint32_t e, int left) -> void {
    if (e + 1 == kSmallExperts) {
      if (left < 1 || left > static_cast<int>(kSmallGpus)) return;
      counts[e] = left;
      std::array<double, kSmallSlots> replica{};
      std::size_t n = 0;
      for (std::uint32_t x = 0; x < kSmallExperts; ++x) {
        for (int r = 0; r < counts[x]; ++r) replica[n++] = loads[x] / counts[x];
      }
      std::sort(replica.begin(), replica.end());
      double worst = 0;
      for (std::size_t k = 0; k < kSmallSlots / 2; ++k) {
        worst = std::max(worst, replica[k] + replica[kSmallSlots - 1 - k]);
      }
      candidates.push_back({worst, counts});
      return;
    }
    const int remaining_experts = static_cast<int>(kSmallExperts - e - 1);
    for (int c = 1; c <= static_cast<int>(kSmallGpus) && left - c >= remaining_experts; ++c) {
      counts[e] = c;
      self(self, e + 1, left - c);
    }
  };
  recurse(recurse, 0, static_cast<int>(kSmallSlots));
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.unconstrained < b.unconstrained;
  });

  Optimum best;
  best.unconstrained = candidates.front().unconstrained;
  best.twin_free = std::numeric_limits<double>::infinity();
  std::vector<double> dp(std::size_t{1} << kSmallSlots);
  for (const Candidate& candidate : candidates) {
    // A twin-free pairing is never better than the unconstrained one of the same counts.
    if (candidate.unconstrained >= best.twin_free) break;
    std::array<double, kSmallSlots> load{};
    std::array<int, kSmallSlots> expert{};
    std::size_t n = 0;
    for (std::uint32_t x = 0; x < kSmallExperts; ++x) {
      for (int r = 0; r < candidate.counts[x]; ++r) {
        load[n] = loads[x] / candidate.counts[x];
        expert[n++] = static_cast<int>(x);
      }
    }
    ++best.pairings_solved;
    const double value = best_twin_free_pairing(load, expert, dp);
    if (value < best.twin_free) {
      best.twin_free = value;
      best.twin_free_counts = candidate.counts;
    }
  }
  return best;
}

struct SmallStats {
  std::string set;
  std::string algorithm;
  std::uint32_t layers = 0;
  double mean_tf = 0, worst_tf = 0, mean_un = 0, worst_un = 0;
  std::uint32_t at_optimum = 0;  // layers within 1e-9 of the twin-free optimum
  std::uint64_t duplicates = 0;
  double balancedness = 0, optimum_balancedness = 0;
  std::vector<double> max_loads;
  std::vector<std::int32_t> counts;
};

std::string join_counts(const std::int32_t* counts, std::size_t n) {
  std::string text = "[";
  for (std::size_t i = 0; i < n; ++i) text += (i ? "," : "") + std::to_string(counts[i]);
  return text + "]";
}

json run_section2(std::ostream& out, bool print) {
  struct SmallSet {
    std::string name;
    std::uint32_t layers;
    std::vector<double> loads;
  };
  std::vector<SmallSet> sets;
  {
    eplb_cli::WorkloadSpec spec;
    spec.num_layers = 32;
    spec.num_experts = kSmallExperts;
    spec.num_groups = 1;
    spec.sigma_min = 1.0;
    spec.sigma_max = 1.0;
    spec.group_sigma = 0;
    spec.tokens = 16384;
    spec.top_k = 2;
    spec.seed = 21;
    sets.push_back({"lognormal s=1.0 (32 layers)", 32, eplb_cli::synthetic_loads(spec)});
  }
  sets.push_back({"FlashLB example", 1, {600, 560, 120, 120, 20, 10, 10, 10}});

  json rows = json::array();
  std::vector<SmallStats> stats;
  std::vector<std::string> optimum_lines;
  for (const SmallSet& set : sets) {
    std::vector<Optimum> optimum(set.layers);
    for (std::uint32_t layer = 0; layer < set.layers; ++layer) {
      progress("section 2: " + set.name + " layer " + std::to_string(layer));
      optimum[layer] =
          exact_two_slot_optimum(set.loads.data() + std::size_t{layer} * kSmallExperts);
    }
    for (std::uint32_t algorithm : {static_cast<std::uint32_t>(EPLB_ALGORITHM_DEEPSEEK),
                                    static_cast<std::uint32_t>(EPLB_ALGORITHM_BALANCED)}) {
      const auto planner = eplb_cli::make_planner(
          options_for(algorithm, set.layers, kSmallExperts, kSmallSlots, kSmallGpus, 1, 1, 0),
          "eplb_planner_create: ");
      const auto placement = eplb_cli::plan(planner.get(), set.loads, "eplb_planner_plan: ");
      const auto layers = layer_metrics(placement.get(), set.loads, set.layers, kSmallExperts);
      if (algorithm == EPLB_ALGORITHM_BALANCED) {
        // Cross-check the brute force with the library's own exact optimum.
        std::uint32_t agree = 0;
        for (std::uint32_t layer = 0; layer < set.layers; ++layer) {
          double library = 0;
          eplb_cli::check(
              eplb_metrics_exact_optimum(placement.get(),
                                         set.loads.data() + std::size_t{layer} * kSmallExperts,
                                         kSmallExperts, &library),
              "eplb_metrics_exact_optimum: ");
          const double ours = optimum[layer].twin_free;
          if (std::abs(library - ours) <= kTolerance * ours) {
            ++agree;
          } else {
            g_findings.push_back("section 2 / " + set.name + " / layer " + std::to_string(layer) +
                                 ": eplb_metrics_exact_optimum " + fixed(library, 3) +
                                 " != brute-force twin-free optimum " + fixed(ours, 3));
          }
        }
        optimum_lines.push_back(set.name +
                                ": eplb_metrics_exact_optimum agrees with the brute "
                                "force on " +
                                std::to_string(agree) + "/" + std::to_string(set.layers) +
                                " layers");
      }
      SmallStats s;
      s.set = set.name;
      s.algorithm = eplb_cli::algorithm_name(algorithm);
      s.layers = set.layers;
      s.counts = replica_counts_of(placement.get());
      for (std::uint32_t layer = 0; layer < set.layers; ++layer) {
        const double max_load = layers[layer].max_gpu_load;
        const double tf = max_load / optimum[layer].twin_free;
        const double un = max_load / optimum[layer].unconstrained;
        s.mean_tf += tf / set.layers;
        s.mean_un += un / set.layers;
        s.worst_tf = std::max(s.worst_tf, tf);
        s.worst_un = std::max(s.worst_un, un);
        s.at_optimum += tf <= 1 + kTolerance ? 1 : 0;
        if (algorithm == EPLB_ALGORITHM_BALANCED && tf > 1 + kTolerance) {
          const auto& o = optimum[layer];
          std::vector<std::int32_t> c(o.twin_free_counts.begin(), o.twin_free_counts.end());
          g_notes.push_back(
              "section 2 / " + set.name + " / balanced / layer " + std::to_string(layer) +
              ": max " + fixed(max_load, 2) + " vs twin-free optimum " + fixed(o.twin_free, 2) +
              " (+" + fixed((tf - 1) * 100, 2) + "%), planner counts " +
              join_counts(s.counts.data() + std::size_t{layer} * kSmallExperts, kSmallExperts) +
              ", optimal counts " + join_counts(c.data(), c.size()) + ", loads " + [&] {
                std::string text = "[";
                for (std::uint32_t e = 0; e < kSmallExperts; ++e) {
                  text +=
                      (e ? "," : "") + fixed(set.loads[std::size_t{layer} * kSmallExperts + e], 0);
                }
                return text + "]";
              }());
        }
        s.duplicates += layers[layer].duplicate_gpus;
        s.balancedness += layers[layer].balancedness / set.layers;
        s.optimum_balancedness +=
            layers[layer].mean_gpu_load / optimum[layer].twin_free / set.layers;
        s.max_loads.push_back(max_load);
        if (tf < 1 - kTolerance) {
          std::ostringstream text;
          text << "section 2 / " << set.name << " / " << s.algorithm << " / layer " << layer
               << ": max " << fixed(max_load, 3) << " is below the twin-free optimum "
               << fixed(optimum[layer].twin_free, 3)
               << " (it must hold a duplicate: " << layers[layer].duplicate_gpus << ")";
          (algorithm == EPLB_ALGORITHM_BALANCED ? g_findings : g_notes).push_back(text.str());
        }
        if (algorithm == EPLB_ALGORITHM_BALANCED && layers[layer].duplicate_gpus > 0) {
          g_findings.push_back("section 2 / " + set.name + " / balanced / layer " +
                               std::to_string(layer) + ": " +
                               std::to_string(layers[layer].duplicate_gpus) +
                               " duplicate GPU(s) with 2 slots per GPU and <= 8 replicas");
        }
      }
      rows.push_back({{"load_set", set.name},
                      {"algorithm", s.algorithm},
                      {"layers", set.layers},
                      {"mean_max_over_twin_free_optimum", s.mean_tf},
                      {"worst_max_over_twin_free_optimum", s.worst_tf},
                      {"mean_max_over_unconstrained_optimum", s.mean_un},
                      {"worst_max_over_unconstrained_optimum", s.worst_un},
                      {"layers_at_twin_free_optimum", s.at_optimum},
                      {"duplicate_pairs", s.duplicates},
                      {"balancedness", s.balancedness},
                      {"twin_free_optimum_balancedness", s.optimum_balancedness}});
      stats.push_back(std::move(s));
    }
    if (set.layers == 1) {
      const Optimum& o = optimum[0];
      std::vector<std::int32_t> c(o.twin_free_counts.begin(), o.twin_free_counts.end());
      optimum_lines.push_back(set.name + ": optimum max " + fixed(o.twin_free, 2) +
                              " twin-free (counts " + join_counts(c.data(), c.size()) + "), " +
                              fixed(o.unconstrained, 2) + " unconstrained");
    } else {
      std::size_t solved = 0;
      double gap = 0;
      for (const Optimum& o : optimum) {
        solved += o.pairings_solved;
        gap = std::max(gap, o.twin_free / o.unconstrained);
      }
      optimum_lines.push_back(set.name + ": twin-free optimum / unconstrained optimum up to " +
                              fixed(gap, 4) + "; subset DP run for " + std::to_string(solved) +
                              " of " + std::to_string(optimum.size()) + " x 6427 compositions");
    }
  }
  progress_done();
  if (print) {
    out << "## 2. Two slots per GPU against the exact optimum (8 experts, 16 slots, 8 GPUs, 1 "
           "node)\n\n"
        << "Exact optimum by brute force: every vector of replica counts in 1..8 summing to 16 "
           "(6427), each\n"
        << "paired largest-with-smallest (the best pairing with no other rule) and, where that "
           "could beat\n"
        << "the best so far, paired exactly with no two replicas of one expert on a GPU (DP over "
           "subsets).\n"
        << "max/opt = the plan's max GPU load / the optimum's, per layer (1.0000 = optimal). "
           "twin-free is the\n"
        << "planner's rule; unconstrained allows duplicates. at opt = layers at the twin-free "
           "optimum.\n"
        << "bal = mean balancedness; opt bal = the twin-free optimum's.\n\n";
    eplb_cli::Table table({"load set", "algorithm", "max/opt twin-free mean", "worst",
                           "max/opt unconstrained mean", "worst", "at opt", "dup", "bal",
                           "opt bal"});
    for (const SmallStats& s : stats) {
      table.add_row({s.set, s.algorithm, fixed(s.mean_tf, 4), fixed(s.worst_tf, 4),
                     fixed(s.mean_un, 4), fixed(s.worst_un, 4),
                     std::to_string(s.at_optimum) + "/" + std::to_string(s.layers),
                     std::to_string(s.duplicates), fixed(s.balancedness, 4),
                     fixed(s.optimum_balancedness, 4)});
    }
    table.print(out);
    out << '\n';
    for (const std::string& text : optimum_lines) out << "- " << text << '\n';
    for (const SmallStats& s : stats) {
      if (s.layers != 1) continue;
      out << "- " << s.set << ": " << s.algorithm << " max " << fixed(s.max_loads[0], 2)
          << ", counts " << join_counts(s.counts.data(), s.counts.size()) << '\n';
    }
    out << '\n';
  }
  return rows;
}

// ------------------------------------------------------------------------------------------------
// Section 3: cross-workload robustness
// ------------------------------------------------------------------------------------------------

constexpr std::uint32_t kThinWindows = 4;

// Splits every token count into `windows` parts by binomial draws (a multinomial with equal
// shares): `windows` sub-samples of the recording that sum back to it.
std::vector<double> thinned_windows(const std::vector<double>& loads, std::uint32_t windows,
                                    std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> out(loads.size() * windows);
  for (std::size_t i = 0; i < loads.size(); ++i) {
    auto left = static_cast<std::int64_t>(std::llround(loads[i]));
    for (std::uint32_t w = 0; w + 1 < windows; ++w) {
      std::binomial_distribution<std::int64_t> draw(left, 1.0 / (windows - w));
      const std::int64_t part = draw(rng);
      out[w * loads.size() + i] = static_cast<double>(part);
      left -= part;
    }
    out[(windows - 1) * loads.size() + i] = static_cast<double>(left);
  }
  return out;
}

double total_of(const std::vector<double>& loads) {
  return std::accumulate(loads.begin(), loads.end(), 0.0);
}

json run_section3(const std::vector<LoadSet>& real, std::ostream& out, bool print) {
  json rows = json::array();
  if (real.empty()) {
    if (print) out << "## 3. Cross-workload robustness\n\nSkipped: no real recordings.\n\n";
    return rows;
  }
  const auto find = [&](const std::string& name) -> const LoadSet* {
    for (const LoadSet& set : real) {
      if (set.name == name) return &set;
    }
    return nullptr;
  };
  const std::pair<const char*, const char*> pairs[] = {
      {"prefill_in1024", "prefill_in4096"},
      {"prefill_in512", "prefill_in2048"},
      {"prefill_in2000out100", "decode_in2000out100"},
      {"prefill_in1024", "decode_in1000out1000"},
      {"decode_in500out1500", "decode_in2000out100"},
  };
  const Config* configs[] = {&kConfigs[0], &kConfigs[2]};  // global_32_R288, hier_4x8_R288
  if (print) {
    out << "## 3. Cross-workload robustness (plan on one recording, evaluate on another)\n\n"
        << "Numbers: mean over the 58 layers of max / mean GPU load on the evaluation recording "
           "(lower is\n"
        << "better; 1.0 is perfect); ratio = column / deepseek. oracle = ours planned on the "
           "evaluation\n"
        << "recording itself (the floor for that policy).\n\n"
        << "(a) Planning on the one planning recording. deepseek and ours plan on it; robust "
           "4-thin =\n"
        << "eplb_planner_plan_windows on 4 windows made by binomial thinning of it (each count "
           "split 4 ways\n"
        << "by seeded binomial draws: 4 sub-samples that sum to the recording).\n\n"
        << "(b) Planning on several recordings, clearly a different experiment: the windows are "
           "every\n"
        << "prefill_* recording EXCEPT the evaluation one (`win` of them, each scaled to the same "
           "total, so\n"
        << "they weigh the same). deepseek (sum) and ours (sum) plan on the sum of the windows; "
           "robust =\n"
        << "eplb_planner_plan_windows on the windows (mean over windows of the per-window "
           "peak).\n\n";
  }
  for (const Config* config : configs) {
    const std::uint32_t ours_algorithm =
        config->hierarchical ? EPLB_ALGORITHM_BALANCED_HIERARCHICAL : EPLB_ALGORITHM_BALANCED;
    const std::string ours_name = eplb_cli::algorithm_name(ours_algorithm);
    const auto deepseek = eplb_cli::make_planner(
        options_for(EPLB_ALGORITHM_DEEPSEEK, kLayers, kExperts, config->replicas, config->gpus,
                    config->nodes, config->groups, 0),
        "eplb_planner_create: ");
    const auto ours =
        eplb_cli::make_planner(options_for(ours_algorithm, kLayers, kExperts, config->replicas,
                                           config->gpus, config->nodes, config->groups, 0),
                               "eplb_planner_create: ");
    const auto evaluate = [](const eplb_placement* placement, const LoadSet& eval) {
      return eplb_cli::metrics_of(placement, eval.loads).max_over_mean;
    };
    const auto windows_plan = [&](const std::vector<double>& windows, std::size_t count,
                                  const LoadSet& eval) -> std::optional<double> {
      eplb_placement* placement = nullptr;
      const eplb_status status =
          eplb_planner_plan_windows(ours.get(), windows.data(), count, windows.size(), &placement);
      if (status != EPLB_OK) {
        g_notes.push_back(std::string("section 3: eplb_planner_plan_windows failed: ") +
                          eplb_status_string(status) + ": " + eplb_last_error_message());
        return std::nullopt;
      }
      const eplb_cli::PlacementPtr owned(placement);
      return evaluate(owned.get(), eval);
    };
    const auto cell = [](std::optional<double> value) {
      return value ? fixed(*value, 4) : std::string("n/a");
    };
    const auto ratio = [](std::optional<double> value, double base) {
      return value ? fixed(*value / base, 3) : std::string("n/a");
    };
    const auto opt = [](std::optional<double> value) { return value ? json(*value) : json(); };

    eplb_cli::Table single({"plan -> eval", "deepseek", ours_name, "robust 4-thin", "oracle",
                            ours_name + "/ds", "4-thin/ds"});
    for (const auto& [plan_name, eval_name] : pairs) {
      progress(std::string("section 3: ") + config->name + " " + plan_name + " -> " + eval_name);
      const LoadSet* plan_set = find(plan_name);
      const LoadSet* eval_set = find(eval_name);
      if (plan_set == nullptr || eval_set == nullptr) {
        single.add_row({std::string(plan_name) + " -> " + eval_name + " (missing)"});
        continue;
      }
      const double ds = evaluate(eplb_cli::plan(deepseek.get(), plan_set->loads).get(), *eval_set);
      const double balanced =
          evaluate(eplb_cli::plan(ours.get(), plan_set->loads).get(), *eval_set);
      const double oracle = evaluate(eplb_cli::plan(ours.get(), eval_set->loads).get(), *eval_set);
      const auto thin =
          windows_plan(thinned_windows(plan_set->loads, kThinWindows, 31), kThinWindows, *eval_set);
      single.add_row({std::string(plan_name) + " -> " + eval_name, fixed(ds, 4), fixed(balanced, 4),
                      cell(thin), fixed(oracle, 4), fixed(balanced / ds, 3), ratio(thin, ds)});
      rows.push_back({{"config", config->name},
                      {"planning", plan_name},
                      {"eval", eval_name},
                      {"deepseek", ds},
                      {ours_name, balanced},
                      {"robust_thinned_4", opt(thin)},
                      {"oracle", oracle}});
    }

    eplb_cli::Table several({"windows -> eval", "win", "deepseek (sum)", ours_name + " (sum)",
                             "robust", "oracle", "robust/ds(sum)",
                             "robust/" + ours_name + "(sum)"});
    std::vector<std::string> evals;
    for (const auto& pair : pairs) {
      if (std::find(evals.begin(), evals.end(), pair.second) == evals.end()) {
        evals.emplace_back(pair.second);
      }
    }
    for (const std::string& eval_name : evals) {
      progress(std::string("section 3: ") + config->name + " prefill windows -> " + eval_name);
      const LoadSet* eval_set = find(eval_name);
      if (eval_set == nullptr) continue;
      std::vector<const LoadSet*> windows;
      for (const LoadSet& set : real) {
        if (set.name.starts_with("prefill_") && set.name != eval_name) windows.push_back(&set);
      }
      if (windows.empty()) continue;
      double target = 0;
      for (const LoadSet* set : windows) target += total_of(set->loads);
      target /= static_cast<double>(windows.size());
      std::vector<double> stacked;
      std::vector<double> summed(std::size_t{kLayers} * kExperts, 0.0);
      for (const LoadSet* set : windows) {
        const double scale = target / total_of(set->loads);
        for (std::size_t i = 0; i < set->loads.size(); ++i) {
          const double load = std::round(set->loads[i] * scale);
          stacked.push_back(load);
          summed[i] += load;
        }
      }
      const double ds = evaluate(eplb_cli::plan(deepseek.get(), summed).get(), *eval_set);
      const double balanced = evaluate(eplb_cli::plan(ours.get(), summed).get(), *eval_set);
      const double oracle = evaluate(eplb_cli::plan(ours.get(), eval_set->loads).get(), *eval_set);
      const auto robust = windows_plan(stacked, windows.size(), *eval_set);
      several.add_row({"prefill_* except eval -> " + eval_name, std::to_string(windows.size()),
                       fixed(ds, 4), fixed(balanced, 4), cell(robust), fixed(oracle, 4),
                       ratio(robust, ds), ratio(robust, balanced)});
      rows.push_back({{"config", config->name},
                      {"planning", "prefill_* except eval"},
                      {"windows", windows.size()},
                      {"eval", eval_name},
                      {"deepseek_on_sum", ds},
                      {ours_name + "_on_sum", balanced},
                      {"robust_windows", opt(robust)},
                      {"oracle", oracle}});
    }
    if (print) {
      out << "### " << config->name << " (ours = " << ours_name << ")\n\n(a) one planning "
          << "recording\n\n";
      single.print(out);
      out << "\n(b) several planning recordings (every prefill_* except the evaluation one)\n\n";
      several.print(out);
      out << '\n';
    }
  }
  progress_done();
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  bool as_json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--json") {
      as_json = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << "usage: eplb_bench_quality [--json]\n"
                   "Planner quality against DeepSeek's EPLB; --json prints one JSON document "
                   "instead of the tables.\nReal recordings: "
                << eplb_bench::deepseek_recordings_dir().string()
                << " (the shared directory is $EPLB_SHARED when set)\n";
      return 0;
    } else {
      std::cerr << "eplb_bench_quality: unknown argument '" << arg << "' (try --help)\n";
      return eplb_cli::kExitUsage;
    }
  }
  g_progress = isatty(STDERR_FILENO) != 0;
  std::ostream& out = std::cout;
  const bool print = !as_json;
  try {
    const std::vector<LoadSet> real = real_sets();
    std::vector<LoadSet> sets = real;
    for (LoadSet& set : synthetic_sets()) sets.push_back(std::move(set));

    if (print) {
      out << "eplb_bench_quality, libeplb " << eplb_version_string() << ": " << real.size()
          << " real recordings, " << sets.size() - real.size() << " synthetic load sets\n\n";
    }
    std::vector<ConfigResult> results;
    for (const Config& config : kConfigs) results.push_back(run_config(config, sets));
    progress_done();
    if (print) print_section1(results, out);
    const json targets = check_targets(results, out, print);
    const json ceiling = run_section_ceiling(results, real, out, print);
    const json small = run_section2(out, print);
    const json robust = run_section3(real, out, print);

    if (print) {
      out << "## Findings\n\n"
          << "Layers are MoE layer indices 0..57 (a real recording's row is 3 higher).\n\n";
      if (g_findings.empty()) {
        out << "No layer where a balanced planner is busier than DeepSeek, and no duplicate that "
               "the replica counts made avoidable.\n";
      } else {
        out << "Suspected bugs (" << g_findings.size() << "):\n";
        for (const std::string& text : g_findings) out << "- " << text << '\n';
      }
      if (!g_notes.empty()) {
        out << "\nNotes (" << g_notes.size() << "):\n";
        for (const std::string& text : g_notes) out << "- " << text << '\n';
      }
    } else {
      const json document = {{"libeplb", eplb_version_string()},
                             {"real_files", real.size()},
                             {"per_layer_quality", section1_json(results)},
                             {"targets", targets},
                             {"relaxed_ceiling", ceiling},
                             {"two_slots_per_gpu", small},
                             {"cross_workload", robust},
                             {"findings", g_findings},
                             {"notes", g_notes}};
      out << document.dump(2) << '\n';
    }
  } catch (const eplb_cli::InputError& error) {
    progress_done();
    std::cerr << "eplb_bench_quality: " << error.what() << '\n';
    return eplb_cli::kExitUsage;
  } catch (const std::exception& error) {
    progress_done();
    std::cerr << "eplb_bench_quality: " << error.what() << '\n';
    return eplb_cli::kExitFailure;
  }
  return eplb_cli::kExitOk;
}
