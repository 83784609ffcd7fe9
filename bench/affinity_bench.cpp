// eplb_bench_affinity: how much affinity-aware planning lowers the nodes touched per token, next
// to the balance-only plan of the same policy and to a re-implementation of the seed's leader-swap
// method (antgroup/sglang PR #2; ../shared/research/kernels-anchors.md §4), all through the
// public C API.
//
// Workloads: simulated DeepSeek-V3-shaped routing (256 experts, top-8, 8 groups, group-limited
// routing to 4 groups, the core's workload simulator with latent topics) on 4 x 8 GPUs R = 288
// and 8 x 8 GPUs R = 320; and the real Mixtral-8x7B traces (8 experts, top-2, 32 layers) on 8 GPUs
// with 16 slots in 2 and 4 nodes, when ../shared is present. Plans are made from a tracker fed
// with one part of the tokens (its loads and its reservoir of sampled rows) and evaluated on
// tokens the planner did not see (simulator: the next batches; Mixtral: every other token).
//
// The leader-swap baseline is the seed's method with its defects fixed: the co-activation matrix
// counts every sampled token (not one per pass) over logical ids, the gain has the right sign,
// and blocks are one GPU's slots, so swapping two blocks keeps every GPU's load and every replica
// rank (the seed's blocks of num_experts / num_groups slots can straddle GPUs). Kept from the seed:
// a block is represented by its first slot's expert (the leader), and up to 20 greedy iterations
// apply the best block swap between two nodes while its gain is positive.
//
// With --stress it times affinity planning instead on shapes the real workloads do not reach:
// routing without co-activation structure (each token's 8 distinct experts drawn independently,
// Zipf(1.2) popularity), one layer, on few large nodes, many small GPUs, or dozens of replicas per
// expert: the search finds little to gain there and must give up quickly.
//
// Usage: eplb_bench_affinity [--stress] [--json]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deepseek_recordings.hpp"
#include "eplb/eplb.h"
#include "eplb/table.hpp"
#include "workload_simulator.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using eplb_cli::fixed;

struct TrackerDeleter {
  void operator()(eplb_tracker* t) const { eplb_tracker_destroy(t); }
};
struct PlacementDeleter {
  void operator()(eplb_placement* p) const { eplb_placement_destroy(p); }
};
struct PlannerDeleter {
  void operator()(eplb_planner* p) const { eplb_planner_destroy(p); }
};
using TrackerPtr = std::unique_ptr<eplb_tracker, TrackerDeleter>;
using PlacementPtr = std::unique_ptr<eplb_placement, PlacementDeleter>;
using PlannerPtr = std::unique_ptr<eplb_planner, PlannerDeleter>;

void check(eplb_status status, const char* what) {
  if (status != EPLB_OK) {
    std::cerr << what << ": " << eplb_status_string(status) << ": " << eplb_last_error_message()
              << "\n";
    std::exit(1);
  }
}

// A workload: rows to plan from (recorded into a tracker) and rows to evaluate on, per layer.
struct Workload {
  std::string name;
  std::uint32_t layers = 0, experts = 0, top_k = 0, groups = 1;
  std::vector<std::vector<std::int32_t>> plan_rows, eval_rows;  // [layer][rows * top_k]
};

struct Layout {
  std::string name;
  std::uint32_t nodes, gpus, slots;
};

Workload simulated(std::uint32_t layers, std::uint64_t seed) {
  eplb::WorkloadParams p;
  p.num_layers = layers;
  p.num_experts = 256;
  p.top_k = 8;
  p.num_groups = 8;
  p.topk_groups = 4;
  p.seed = seed;
  eplb::WorkloadSimulator sim(p);
  Workload w{
      "simulated DeepSeek-V3 (seed " + std::to_string(seed) + ")", layers, 256, 8, 8, {}, {}};
  w.plan_rows.resize(layers);
  w.eval_rows.resize(layers);
  constexpr std::size_t kTokens = 2048;
  for (int batch = 0; batch < 6; ++batch) {
    const auto ids = sim.next_batch(kTokens);
    for (std::uint32_t l = 0; l < layers; ++l) {
      auto& dst = batch < 4 ? w.plan_rows[l] : w.eval_rows[l];
      const auto begin = ids.begin() + static_cast<std::ptrdiff_t>(l * kTokens * 8);
      dst.insert(dst.end(), begin, begin + static_cast<std::ptrdiff_t>(kTokens * 8));
    }
  }
  return w;
}

// One layer of 256 experts, top-8: tokens pick 8 distinct experts independently, with Zipf(1.2)
// popularity (no co-activation structure); 8192 tokens plan, 4096 evaluate.
Workload uncorrelated_zipf() {
  constexpr std::uint32_t kExperts = 256, kTopK = 8;
  Workload w{"uncorrelated Zipf(1.2)", 1, kExperts, kTopK, 1, {}, {}};
  std::vector<double> weight(kExperts);
  for (std::uint32_t e = 0; e < kExperts; ++e) weight[e] = 1.0 / std::pow(e + 1.0, 1.2);
  std::mt19937_64 rng(5);
  std::discrete_distribution<std::int32_t> pick(weight.begin(), weight.end());
  const auto tokens = [&](std::size_t n) {
    std::vector<std::int32_t> rows;
    for (std::size_t t = 0; t < n; ++t) {
      const std::size_t begin = rows.size();
      while (rows.size() - begin < kTopK) {
        const std::int32_t e = pick(rng);
        if (std::find(rows.begin() + static_cast<std::ptrdiff_t>(begin), rows.end(), e) ==
            rows.end()) {
          rows.push_back(e);
        }
      }
    }
    return rows;
  };
  w.plan_rows = {tokens(8192)};
  w.eval_rows = {tokens(4096)};
  return w;
}

bool mixtral(const std::filesystem::path& dir, Workload& w) {
  const std::vector<std::string> files = {"gsm8k_2_routing.jsonl", "humaneval_2_routing.jsonl",
                                          "routing_raw_prefill_and_decode.jsonl"};
  if (!std::filesystem::exists(dir / files[0])) return false;
  w = Workload{"Mixtral-8x7B traces", 32, 8, 2, 1, {}, {}};
  w.plan_rows.resize(32);
  w.eval_rows.resize(32);
  std::vector<std::size_t> seen(32, 0);
  for (const auto& name : files) {
    std::ifstream in(dir / name);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto j = nlohmann::json::parse(line);
      const auto layer = j.at("layer").get<std::size_t>();
      const auto experts = j.at("experts").get<std::vector<std::int32_t>>();
      auto& dst = (seen[layer]++ % 2 == 0) ? w.plan_rows[layer] : w.eval_rows[layer];
      dst.insert(dst.end(), experts.begin(), experts.end());
    }
  }
  return true;
}

TrackerPtr record(const Workload& w) {
  eplb_tracker_options o;
  eplb_tracker_options_init(&o);
  o.num_layers = w.layers;
  o.num_logical_experts = w.experts;
  o.top_k = w.top_k;
  o.reservoir_capacity = 8192;
  o.seed = 1;
  eplb_tracker* t = nullptr;
  check(eplb_tracker_create(&o, &t), "eplb_tracker_create");
  TrackerPtr tracker(t);
  for (std::uint32_t l = 0; l < w.layers; ++l) {
    const auto& rows = w.plan_rows[l];
    check(eplb_tracker_record(t, l, rows.data(), rows.size() / w.top_k, w.top_k),
          "eplb_tracker_record");
  }
  return tracker;
}

// Mean nodes touched over the evaluation rows of every layer (weighted by rows).
double nodes_touched(const eplb_placement* placement, const Workload& w) {
  double sum = 0;
  std::size_t rows = 0;
  for (std::uint32_t l = 0; l < w.layers; ++l) {
    const auto& r = w.eval_rows[l];
    const std::size_t n = r.size() / w.top_k;
    double mean = 0;
    check(eplb_metrics_nodes_touched(placement, l, r.data(), n, w.top_k, &mean),
          "eplb_metrics_nodes_touched");
    sum += mean * static_cast<double>(n);
    rows += n;
  }
  return rows == 0 ? 0.0 : sum / static_cast<double>(rows);
}

double balancedness(const eplb_placement* placement, const std::vector<double>& loads) {
  eplb_metrics m{};
  m.struct_size = sizeof(m);
  check(eplb_metrics_compute(placement, loads.data(), loads.size(), &m), "eplb_metrics_compute");
  return m.balancedness;
}

std::vector<std::int32_t> phy2log_of(const eplb_placement* placement, std::size_t size) {
  std::vector<std::int32_t> map(size);
  check(eplb_placement_get_phy2log(placement, map.data(), map.size()), "get_phy2log");
  return map;
}

// The seed's leader-swap method (fixed as described at the top) on a copy of the plan.
PlacementPtr leader_swap(const eplb_placement* base, const Workload& w, const Layout& layout) {
  const std::uint32_t per_gpu = layout.slots / layout.gpus;
  const std::uint32_t gpus_per_node = layout.gpus / layout.nodes;
  auto map = phy2log_of(base, std::size_t{w.layers} * layout.slots);
  std::vector<double> c(std::size_t{w.experts} * w.experts);
  for (std::uint32_t l = 0; l < w.layers; ++l) {
    std::fill(c.begin(), c.end(), 0.0);
    const auto& rows = w.plan_rows[l];
    for (std::size_t r = 0; r + w.top_k <= rows.size(); r += w.top_k) {
      for (std::uint32_t i = 0; i < w.top_k; ++i) {
        for (std::uint32_t j = i + 1; j < w.top_k; ++j) {
          const std::int32_t a = rows[r + i], b = rows[r + j];
          if (a < 0 || b < 0 || a == b) continue;
          c[static_cast<std::size_t>(a) * w.experts + static_cast<std::size_t>(b)] += 1;
          c[static_cast<std::size_t>(b) * w.experts + static_cast<std::size_t>(a)] += 1;
        }
      }
    }
    std::int32_t* layer = map.data() + std::size_t{l} * layout.slots;
    std::vector<std::uint32_t> node_of_block(layout.gpus);
    for (std::uint32_t g = 0; g < layout.gpus; ++g) node_of_block[g] = g / gpus_per_node;
    const auto leader = [&](std::uint32_t g) {
      return static_cast<std::size_t>(layer[std::size_t{g} * per_gpu]);
    };
    const auto affinity = [&](std::uint32_t g, std::uint32_t node, std::uint32_t skip) {
      double sum = 0;
      for (std::uint32_t o = 0; o < layout.gpus; ++o) {
        if (o != g && o != skip && node_of_block[o] == node) {
          sum += c[leader(g) * w.experts + leader(o)];
        }
      }
      return sum;
    };
    for (int iteration = 0; iteration < 20; ++iteration) {
      double best = 0;
      std::uint32_t best_a = 0, best_b = 0;
      for (std::uint32_t a = 0; a < layout.gpus; ++a) {
        for (std::uint32_t b = a + 1; b < layout.gpus; ++b) {
          const std::uint32_t na = node_of_block[a], nb = node_of_block[b];
          if (na == nb) continue;
          // Intra-node affinity after the swap minus before (the seed's sign, corrected).
          const double gain =
              affinity(a, nb, b) + affinity(b, na, a) - affinity(a, na, b) - affinity(b, nb, a);
          if (gain > best) {
            best = gain;
            best_a = a;
            best_b = b;
          }
        }
      }
      if (best <= 0) break;
      std::swap_ranges(layer + std::size_t{best_a} * per_gpu,
                       layer + std::size_t{best_a + 1} * per_gpu,
                       layer + std::size_t{best_b} * per_gpu);
    }
  }
  eplb_placement* p = nullptr;
  check(eplb_placement_create_from_phy2log(w.layers, w.experts, layout.slots, layout.nodes,
                                           layout.gpus, map.data(), map.size(), &p),
        "create_from_phy2log");
  return PlacementPtr(p);
}

struct Row {
  std::string workload, layout, algorithm;
  double base_nodes = 0, affinity_nodes = 0, seed_nodes = 0;
  double base_bal = 0, affinity_bal = 0, seed_bal = 0;
  double base_ms, affinity_ms;
};

Row run(const Workload& w, const Layout& layout, std::uint32_t algorithm, std::uint32_t budget,
        const eplb_tracker* tracker, const std::vector<double>& loads, bool leader_swap_too) {
  eplb_planner_options o;
  eplb_planner_options_init(&o);
  o.algorithm = algorithm;
  o.num_layers = w.layers;
  o.num_logical_experts = w.experts;
  o.num_physical_experts = layout.slots;
  o.num_groups = w.groups;
  o.num_nodes = layout.nodes;
  o.num_gpus = layout.gpus;
  o.cross_node_budget = budget;
  const auto plan = [&](std::uint32_t affinity, double& ms) {
    o.affinity = affinity;
    eplb_planner* raw = nullptr;
    check(eplb_planner_create(&o, &raw), "eplb_planner_create");
    PlannerPtr planner(raw);
    eplb_placement* p = nullptr;
    const auto start = Clock::now();
    check(eplb_planner_plan_tracked(raw, nullptr, 0, tracker, &p), "eplb_planner_plan_tracked");
    ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    return PlacementPtr(p);
  };
  Row row;
  row.workload = w.name;
  row.layout = layout.name;
  row.algorithm = eplb_algorithm_name(algorithm);
  if (budget > 0) row.algorithm += " b=" + std::to_string(budget);
  const auto base = plan(0, row.base_ms);
  const auto improved = plan(1, row.affinity_ms);
  row.base_nodes = nodes_touched(base.get(), w);
  row.affinity_nodes = nodes_touched(improved.get(), w);
  row.base_bal = balancedness(base.get(), loads);
  row.affinity_bal = balancedness(improved.get(), loads);
  if (leader_swap_too) {
    const auto seed = leader_swap(base.get(), w, layout);
    row.seed_nodes = nodes_touched(seed.get(), w);
    row.seed_bal = balancedness(seed.get(), loads);
  }
  return row;
}

std::string percent(double now, double before) {
  return (now <= before ? "-" : "+") + fixed(std::abs(now / before - 1) * 100, 1) + "%";
}

}  // namespace

// The --stress table: planning time per layer, then the nodes touched and balancedness.
int stress(bool json) {
  const Workload w = uncorrelated_zipf();
  const TrackerPtr tracker = record(w);
  std::vector<double> loads(w.experts);
  check(eplb_tracker_get_loads(tracker.get(), loads.data(), loads.size()), "get_loads");
  // nodes x GPUs per node, slots
  const std::vector<Layout> layouts = {{"2x16 R=288", 2, 32, 288},  {"2x64 R=512", 2, 128, 512},
                                       {"4x32 R=768", 4, 128, 768}, {"8x16 R=1536", 8, 128, 1536},
                                       {"2x2 R=4352", 2, 4, 4352},  {"8x4 R=9216", 8, 32, 9216}};
  std::vector<Row> rows;
  for (const Layout& layout : layouts) {
    rows.push_back(run(w, layout, EPLB_ALGORITHM_BALANCED, 0, tracker.get(), loads, false));
    if (!json) std::cerr << "." << std::flush;
  }
  if (!json) std::cerr << "\n";
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Row& r : rows) {
      out.push_back(
          {{"workload", r.workload},
           {"layout", r.layout},
           {"algorithm", r.algorithm},
           {"plan_ms", {{"balance_only", r.base_ms}, {"affinity", r.affinity_ms}}},
           {"nodes_touched", {{"balance_only", r.base_nodes}, {"affinity", r.affinity_nodes}}},
           {"balancedness", {{"balance_only", r.base_bal}, {"affinity", r.affinity_bal}}}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << "eplb_bench_affinity --stress, libeplb " << eplb_version_string()
            << ": affinity planning time on one layer of " << w.name << " routing,\n"
            << "256 experts, top-8, planned from 8192 tokens (balanced, min balance 0.99)\n\n";
  eplb_cli::Table table({"layout", "ms base", "ms affinity", "nodes base", "nodes affinity",
                         "change", "bal base", "bal affinity"});
  for (const Row& r : rows) {
    table.add_row({r.layout, fixed(r.base_ms, 1), fixed(r.affinity_ms, 1), fixed(r.base_nodes, 3),
                   fixed(r.affinity_nodes, 3), percent(r.affinity_nodes, r.base_nodes),
                   fixed(r.base_bal, 4), fixed(r.affinity_bal, 4)});
  }
  table.print(std::cout);
  return 0;
}

int main(int argc, char** argv) {
  bool json = false, stress_shapes = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      json = true;
    } else if (arg == "--stress") {
      stress_shapes = true;
    } else {
      std::cerr << "usage: eplb_bench_affinity [--stress] [--json]\n";
      return arg == "--help" || arg == "-h" ? 0 : 2;
    }
  }
  if (stress_shapes) return stress(json);
  std::vector<std::pair<Workload, std::vector<Layout>>> cases;
  const std::vector<Layout> deepseek_layouts = {{"4x8 R=288", 4, 32, 288},
                                                {"8x8 R=320", 8, 64, 320}};
  cases.emplace_back(simulated(16, 7), deepseek_layouts);
  const std::filesystem::path dir =
      eplb_bench::shared_dir() / "data/real/mixtral-8x7b-routing-traces";
  Workload mix;
  if (mixtral(dir, mix)) {
    cases.emplace_back(std::move(mix),
                       std::vector<Layout>{{"2x4 R=16", 2, 8, 16}, {"4x2 R=16", 4, 8, 16}});
  } else {
    std::cerr << "note: Mixtral traces not found under " << dir << "; skipped\n";
  }

  std::vector<Row> rows;
  for (const auto& [w, layouts] : cases) {
    const TrackerPtr tracker = record(w);
    std::vector<double> loads(std::size_t{w.layers} * w.experts);
    check(eplb_tracker_get_loads(tracker.get(), loads.data(), loads.size()), "get_loads");
    for (const Layout& layout : layouts) {
      std::vector<std::pair<std::uint32_t, std::uint32_t>> algorithms = {
          {EPLB_ALGORITHM_BALANCED, 0}, {EPLB_ALGORITHM_DEEPSEEK, 0}};
      if (w.groups % layout.nodes == 0) {
        algorithms.emplace_back(EPLB_ALGORITHM_BALANCED_HIERARCHICAL, 0);
        algorithms.emplace_back(EPLB_ALGORITHM_BALANCED_RELAXED, 16);
      }
      for (const auto& [algorithm, budget] : algorithms) {
        rows.push_back(run(w, layout, algorithm, budget, tracker.get(), loads, true));
        if (!json) std::cerr << "." << std::flush;
      }
    }
  }
  if (!json) std::cerr << "\n";

  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Row& r : rows) {
      out.push_back({{"workload", r.workload},
                     {"layout", r.layout},
                     {"algorithm", r.algorithm},
                     {"nodes_touched",
                      {{"balance_only", r.base_nodes},
                       {"affinity", r.affinity_nodes},
                       {"leader_swap", r.seed_nodes}}},
                     {"balancedness",
                      {{"balance_only", r.base_bal},
                       {"affinity", r.affinity_bal},
                       {"leader_swap", r.seed_bal}}},
                     {"plan_ms", {{"balance_only", r.base_ms}, {"affinity", r.affinity_ms}}}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << "eplb_bench_affinity, libeplb " << eplb_version_string()
            << ": nodes touched per token on held-out tokens (lower bound 1)\n\n"
            << "Columns: nodes = mean nodes touched per token for the balance-only plan, the\n"
            << "affinity-aware plan (--affinity, min balance 0.99) and the leader-swap baseline "
               "applied to\nthe balance-only plan; change = against the balance-only plan; bal "
               "= balancedness on the\nplanning loads; ms = planning time (all layers).\n\n";
  eplb_cli::Table table({"workload", "layout", "algorithm", "nodes base", "nodes affinity",
                         "change", "nodes leader-swap", "change", "bal base", "bal affinity",
                         "bal leader-swap", "ms base", "ms affinity"});
  for (const Row& r : rows) {
    table.add_row({r.workload, r.layout, r.algorithm, fixed(r.base_nodes, 3),
                   fixed(r.affinity_nodes, 3), percent(r.affinity_nodes, r.base_nodes),
                   fixed(r.seed_nodes, 3), percent(r.seed_nodes, r.base_nodes),
                   fixed(r.base_bal, 4), fixed(r.affinity_bal, 4), fixed(r.seed_bal, 4),
                   fixed(r.base_ms, 1), fixed(r.affinity_ms, 1)});
  }
  table.print(std::cout);
  return 0;
}
