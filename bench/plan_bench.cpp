// eplb_bench_plan: planning time of every registered algorithm on the DeepSeek-V3 shape (58 MoE
// layers x 256 experts, 8 groups) through the public C API, for four EP topologies:
//   hier_4x8_R288   hierarchical, 4 nodes x 8 GPUs, R = 288
//   global_32_R288  global, 32 GPUs (4 nodes, groups = 1), R = 288
//   hier_8x8_R320   hierarchical, 8 nodes x 8 GPUs, R = 320
//   global_64_R320  global, 64 GPUs (8 nodes, groups = 1), R = 320
// With groups = 1 and more than one node, num_groups % num_nodes != 0, so DeepSeek's algorithm
// falls back to its global policy, exactly as the reference does.
//
// Loads: the synthetic DeepSeek-V3-shaped workload (eplb_cli::synthetic_loads), and SGLang's real
// recording prefill_in1024.json (rows 3..60, the 58 MoE layers) when the shared data directory is
// there ($EPLB_SHARED, default <source>/../shared). Each benchmark reports the median over
// repetitions, and counters with the plan's quality under the loads it was planned on, so the
// table shows what the time buys. The `plan_1layer` benchmarks plan one layer per call, cycling
// through the 58 synthetic layers (planning the same layer over and over would flatter it: the
// branch predictor learns that one layer), to show the cost per layer and per call.
//
// The console shows only the median of each benchmark's repetitions, with counters in columns;
// pass --benchmark_format=console (or json, csv) for Google Benchmark's own reporter with every
// aggregate, or --benchmark_out=FILE to record them all. The `+control` benchmarks (hier_4x8_R288)
// repeat `plan` and `plan_1layer` with a plan control attached (eplb_planner_set_control), whose
// per-layer cancel check and step count must cost nothing measurable: compare each with the row
// above it. The `plan_windows` benchmarks time robust planning (eplb_planner_plan_windows) of 4
// synthetic layers over 4, 16 and 64 windows. --benchmark_min_time defaults to 0.2 s
// per repetition here (the library's 0.5 s makes a run take minutes).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "deepseek_recordings.hpp"
#include "eplb/eplb.h"
#include "eplb/library.hpp"
#include "eplb/synthetic_workload.hpp"

namespace {

constexpr std::uint32_t kLayers = eplb_bench::kDeepSeekMoeLayers;
constexpr std::uint32_t kExperts = eplb_bench::kDeepSeekExperts;
constexpr std::uint32_t kGroups = eplb_bench::kDeepSeekGroups;
constexpr int kRepetitions = 5;
constexpr const char* kDefaultMinTime = "--benchmark_min_time=0.2";
constexpr const char* kRealFile = "prefill_in1024.json";
// balanced-relaxed runs with this many off-node replicas per layer (named "balanced-relaxed-b32"):
// with the default budget 0 it would be balanced-hierarchical.
constexpr std::uint32_t kRelaxedBudget = 32;

// The benchmark name of an algorithm: its name, with the relaxed budget appended.
std::string bench_name(std::uint32_t algorithm) {
  std::string name = eplb_cli::algorithm_name(algorithm);
  if (algorithm == EPLB_ALGORITHM_BALANCED_RELAXED) name += "-b" + std::to_string(kRelaxedBudget);
  return name;
}

struct Config {
  const char* name;
  std::uint32_t replicas;
  std::uint32_t gpus;
  std::uint32_t nodes;
  std::uint32_t groups;
};

constexpr Config kConfigs[] = {
    {"hier_4x8_R288", 288, 32, 4, kGroups},
    {"global_32_R288", 288, 32, 4, 1},
    {"hier_8x8_R320", 320, 64, 8, kGroups},
    {"global_64_R320", 320, 64, 8, 1},
};

struct Workload {
  std::string name;
  std::uint32_t num_layers = 0;
  std::vector<double> loads;  // [num_layers][kExperts]
};

// The real recording's MoE rows, or nothing (with a message on stderr) when the file is absent.
std::unique_ptr<Workload> real_workload() {
  const std::filesystem::path path = eplb_bench::deepseek_recordings_dir() / kRealFile;
  if (!std::filesystem::exists(path)) {
    std::cerr << "eplb_bench_plan: " << path.string()
              << " not found (set EPLB_SHARED to the shared directory); skipping the real-data "
                 "benchmarks\n";
    return nullptr;
  }
  auto workload = std::make_unique<Workload>();
  workload->name = "real";
  workload->num_layers = kLayers;
  workload->loads = eplb_bench::deepseek_moe_rows(path);
  return workload;
}

// The console reporter, keeping only the median of each benchmark's repetitions (and any error).
class MedianConsoleReporter final : public benchmark::ConsoleReporter {
 public:
  MedianConsoleReporter() : ConsoleReporter(OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    std::vector<Run> medians;
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Aggregate || run.aggregate_name == "median") {
        medians.push_back(run);
      }
    }
    if (!medians.empty()) ConsoleReporter::ReportRuns(medians);
  }
};

bool flag_given(int argc, char** argv, std::string_view flag) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]).starts_with(flag)) return true;
  }
  return false;
}

// A planner of `layers` DeepSeek-V3 layers on `config`'s layout.
eplb_planner_options planner_options(const Config& config, std::uint32_t algorithm,
                                     std::uint32_t layers) {
  eplb_planner_options options;
  eplb_planner_options_init(&options);
  options.algorithm = algorithm;
  options.num_layers = layers;
  options.num_logical_experts = kExperts;
  options.num_physical_experts = config.replicas;
  options.num_groups = config.groups;
  options.num_nodes = config.nodes;
  options.num_gpus = config.gpus;
  if (algorithm == EPLB_ALGORITHM_BALANCED_RELAXED) options.cross_node_budget = kRelaxedBudget;
  return options;
}

// Plans `workload` in calls of `layers_per_call` layers: all of them at once, or one layer per
// call, moving to the next layer at each iteration. The counters give the quality of the plans
// over the whole workload, so both forms must show the same (layers are planned independently).
void bench_plan(benchmark::State& state, const Config& config, std::uint32_t algorithm,
                const Workload* workload_ptr, std::uint32_t layers_per_call, bool controlled) {
  const Workload& workload = *workload_ptr;
  try {
    const auto planner = eplb_cli::make_planner(planner_options(config, algorithm, layers_per_call),
                                                "eplb_planner_create: ");
    const auto control = eplb_cli::make_plan_control();
    if (controlled) {
      eplb_cli::check(eplb_planner_set_control(planner.get(), control.get()),
                      "eplb_planner_set_control: ");
    }

    const std::size_t call_len = std::size_t{layers_per_call} * kExperts;
    const std::size_t calls = workload.num_layers / layers_per_call;
    const auto plan_call = [&](std::size_t call, eplb_cli::PlacementPtr& out) {
      eplb_placement* placement = nullptr;
      eplb_cli::check(eplb_planner_plan(planner.get(), workload.loads.data() + call * call_len,
                                        call_len, &placement),
                      "eplb_planner_plan: ");
      out.reset(placement);  // frees the previous plan inside the loop: a re-plan's real cost
    };

    std::vector<eplb_cli::PlacementPtr> placements(calls);
    std::size_t call = 0;
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the library idiom
      plan_call(call, placements[call]);
      call = call + 1 == calls ? 0 : call + 1;
    }
    state.counters["layers/s"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * layers_per_call, benchmark::Counter::kIsRate);

    // Quality over the whole workload (layers the loop did not reach are planned now).
    double balancedness = 0;
    double worst = 1;
    double over_bound = 0;
    for (std::size_t c = 0; c < calls; ++c) {
      if (placements[c] == nullptr) plan_call(c, placements[c]);
      eplb_metrics metrics{};
      metrics.struct_size = sizeof(metrics);
      eplb_cli::check(
          eplb_metrics_compute(placements[c].get(), workload.loads.data() + c * call_len, call_len,
                               &metrics),
          "eplb_metrics_compute: ");
      balancedness += metrics.balancedness / static_cast<double>(calls);
      worst = std::min(worst, metrics.min_balancedness);
      over_bound += metrics.max_load_over_bound / static_cast<double>(calls);
    }
    state.counters["balancedness"] = balancedness;
    state.counters["worst_bal"] = worst;
    state.counters["max/bound"] = over_bound;
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
  }
}

// Robust planning (eplb_planner_plan_windows, balanced) of kWindowLayers synthetic layers over
// `windows` windows, each the synthetic workload of another seed: the time per call and the mean
// over windows of each one's busiest GPU, against the mean load (what robust planning lowers).
constexpr std::uint32_t kWindowLayers = 4;
void bench_plan_windows(benchmark::State& state, const Config& config, std::uint32_t windows) {
  try {
    eplb_cli::WorkloadSpec spec;
    spec.num_layers = kWindowLayers;
    spec.num_experts = kExperts;
    spec.num_groups = kGroups;  // the loads' group skew, as the other synthetic loads
    std::vector<double> loads;
    for (std::uint32_t w = 0; w < windows; ++w) {
      spec.seed = 1 + w;
      const std::vector<double> window = eplb_cli::synthetic_loads(spec);
      loads.insert(loads.end(), window.begin(), window.end());
    }
    const auto planner = eplb_cli::make_planner(
        planner_options(config, EPLB_ALGORITHM_BALANCED, kWindowLayers), "eplb_planner_create: ");
    eplb_cli::PlacementPtr placement;
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the library idiom
      eplb_placement* out = nullptr;
      eplb_cli::check(
          eplb_planner_plan_windows(planner.get(), loads.data(), windows, loads.size(), &out),
          "eplb_planner_plan_windows: ");
      placement.reset(out);
    }
    state.counters["layers/s"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * kWindowLayers, benchmark::Counter::kIsRate);
    // Mean over windows and layers of the busiest GPU's load over the mean GPU load.
    const std::size_t window_len = std::size_t{kWindowLayers} * kExperts;
    double peak = 0;
    for (std::uint32_t w = 0; w < windows; ++w) {
      eplb_metrics metrics{};
      metrics.struct_size = sizeof(metrics);
      eplb_cli::check(eplb_metrics_compute(placement.get(), loads.data() + w * window_len,
                                           window_len, &metrics),
                      "eplb_metrics_compute: ");
      peak += metrics.max_over_mean / windows;
    }
    state.counters["peak/mean"] = peak;
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
  }
}

void register_one(const std::string& name, const Config& config, std::uint32_t algorithm,
                  const Workload* workload, std::uint32_t layers_per_call,
                  benchmark::TimeUnit unit) {
  const bool with_control = config.name == std::string_view("hier_4x8_R288");
  for (const bool controlled : {false, true}) {
    if (controlled && !with_control) break;
    benchmark::RegisterBenchmark((name + (controlled ? "+control" : "")).c_str(), bench_plan,
                                 config, algorithm, workload, layers_per_call, controlled)
        ->Repetitions(kRepetitions)
        ->ReportAggregatesOnly(true)
        ->Unit(unit);
  }
}

void register_all(const std::vector<const Workload*>& workloads, const Workload& per_layer) {
  const std::uint32_t count = eplb_algorithm_count();
  for (const Workload* workload : workloads) {
    for (const Config& config : kConfigs) {
      for (std::uint32_t algorithm = 1; algorithm <= count; ++algorithm) {
        register_one("plan/" + workload->name + "/" + config.name + "/" + bench_name(algorithm),
                     config, algorithm, workload, workload->num_layers, benchmark::kMillisecond);
      }
    }
  }
  for (const Config& config : kConfigs) {
    for (std::uint32_t algorithm = 1; algorithm <= count; ++algorithm) {
      register_one(
          "plan_1layer/" + per_layer.name + "/" + config.name + "/" + bench_name(algorithm), config,
          algorithm, &per_layer, 1, benchmark::kMicrosecond);
    }
  }
  static constexpr Config kWindowConfigs[] = {{"global_32_R288", 288, 32, 4, 1},
                                              {"global_128_R1024", 1024, 128, 16, 1}};
  for (const Config& config : kWindowConfigs) {
    for (const std::uint32_t windows : {4U, 16U, 64U}) {
      benchmark::RegisterBenchmark(("plan_windows/synthetic/" + std::string(config.name) + "/W" +
                                    std::to_string(windows) + "/balanced")
                                       .c_str(),
                                   bench_plan_windows, config, windows)
          ->Repetitions(kRepetitions)
          ->ReportAggregatesOnly(true)
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool own_reporter = !flag_given(argc, argv, "--benchmark_format");
  std::vector<char*> args(argv, argv + argc);
  std::string min_time = kDefaultMinTime;
  if (!flag_given(argc, argv, "--benchmark_min_time")) args.push_back(min_time.data());
  int arg_count = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&arg_count, args.data());
  if (benchmark::ReportUnrecognizedArguments(arg_count, args.data())) return 1;

  // The workloads live until the benchmarks have run (the benchmarks hold pointers to them).
  Workload synthetic;
  std::unique_ptr<Workload> real;
  try {
    eplb_cli::WorkloadSpec spec;
    spec.num_layers = kLayers;
    spec.num_experts = kExperts;
    spec.num_groups = kGroups;
    synthetic = {"synthetic", kLayers, eplb_cli::synthetic_loads(spec)};
    real = real_workload();
  } catch (const std::exception& error) {
    std::cerr << "eplb_bench_plan: " << error.what() << '\n';
    return 1;
  }

  std::vector<const Workload*> workloads{&synthetic};
  if (real != nullptr) workloads.push_back(real.get());
  benchmark::AddCustomContext("libeplb", eplb_version_string());
  benchmark::AddCustomContext("loads", real != nullptr
                                           ? "synthetic (seed 1) and real (prefill_in1024.json "
                                             "rows 3..60), 58 x 256, groups 8"
                                           : "synthetic (seed 1), 58 x 256, groups 8");
  register_all(workloads, synthetic);

  if (own_reporter) {
    MedianConsoleReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
  } else {
    benchmark::RunSpecifiedBenchmarks();
  }
  benchmark::Shutdown();
  return 0;
}
