// Per-batch balancing on the real DeepSeek-V3 recordings (issue #9), CPU only: batches of 128,
// 1024 and 8192 tokens sampled per MoE layer from one recording, dispatched over a placement
// planned on a *different* recording (DeepSeek-V3 shape: 256 experts, 8 groups, 288 slots, 32
// GPUs on 4 nodes). Reports per batch the busiest GPU's load over the mean (routed tokens plus
// one shared-expert token per token) for:
//   static      SGLang's static table: a replica on the token's GPU, else on its node, else a
//               fixed "fair" replica per source GPU; shared expert on the source GPU
//   round-robin vLLM: replica = flattened (token, slot) position mod replica count
//   hash        replica = hash(token, expert) mod replica count
//   split       eplb_split_solve's exact quotas, realised in token order
//   waterfill   static dispatch, shared expert by eplb_shared_expert_waterfill (visited GPUs)
//   split+wf    split, then waterfill on its loads
//   waterfill-par / split+wf-par
//               the same with eplb_kernel_shared_waterfill_cpu, the parallel deterministic rule
//               of the GPU kernel (bit-identical to it), next to the sequential greedy
// The GPU solver's CPU reference (eplb_kernel_split_solve_cpu, the kernel's algorithm) must reach
// eplb_split_solve's max load on every batch; both are timed.
// plus a fractional lower bound (fixed loads, and the water level of the replicated tokens over
// all GPUs, ignoring where replicas are) and an independent exact optimum (Edmonds-Karp max flow
// and bisection written in this file) that the solver's max load must equal.
//
// Usage: eplb_bench_split [--pairs N] [--batches B] [--seed S]; EPLB_SHARED overrides the shared
// directory. Uses the public C API only (plus the CLI's load-file reader and table printer).
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "deepseek_recordings.hpp"
#include "eplb/eplb.h"
#include "eplb/table.hpp"

namespace {

constexpr std::uint32_t kLayers = eplb_bench::kDeepSeekMoeLayers;
constexpr std::uint32_t kExperts = eplb_bench::kDeepSeekExperts;
constexpr std::uint32_t kGroups = eplb_bench::kDeepSeekGroups;
constexpr std::uint32_t kGpus = 32;
constexpr std::uint32_t kNodes = 4;
constexpr std::uint32_t kSlots = 288;
constexpr std::uint32_t kPerGpu = kSlots / kGpus;
constexpr std::uint32_t kTopK = 8;
const std::vector<std::uint32_t> kBatchSizes{128, 1024, 8192};
const std::vector<std::string> kPolicies{
    "static",   "round-robin",      "hash",          "split",       "waterfill",
    "split+wf", "fractional bound", "waterfill-par", "split+wf-par"};
// Rows of the main table, in this order (the bound last).
const std::vector<std::size_t> kPolicyOrder{0, 1, 2, 3, 4, 7, 5, 8, 6};

void check(eplb_status status, const char* what) {
  if (status != EPLB_OK) {
    throw std::runtime_error(std::string(what) + ": " + eplb_last_error_message());
  }
}

std::uint64_t mix(std::uint64_t x) {  // splitmix64
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

std::uint32_t gpu_of(std::int32_t slot) { return static_cast<std::uint32_t>(slot) / kPerGpu; }

struct Layout {                        // one layer of a placement
  std::vector<std::int32_t> replicas;  // [E] replica counts
  std::vector<std::int32_t> log2phy;   // [E][width]
  std::uint32_t width = 0;
  std::vector<std::int32_t> static_table;  // [G][E] slot
  [[nodiscard]] std::int32_t slot(std::uint32_t e, std::uint32_t r) const {
    return log2phy[e * width + r];
  }
};

void build_static_table(Layout& l) {
  l.static_table.assign(kGpus * kExperts, -1);
  for (std::uint32_t g = 0; g < kGpus; ++g) {
    const std::uint32_t node = g / (kGpus / kNodes);
    for (std::uint32_t e = 0; e < kExperts; ++e) {
      const auto count = static_cast<std::uint32_t>(l.replicas[e]);
      std::int32_t pick = -1;
      std::vector<std::int32_t> same_node;
      for (std::uint32_t r = 0; r < count; ++r) {
        const std::int32_t s = l.slot(e, r);
        if (gpu_of(s) == g && pick < 0) pick = s;
        if (gpu_of(s) / (kGpus / kNodes) == node) same_node.push_back(s);
      }
      if (pick < 0 && !same_node.empty()) pick = same_node[g % same_node.size()];
      if (pick < 0) pick = l.slot(e, g % count);
      l.static_table[g * kExperts + e] = pick;
    }
  }
}

// An independent exact optimum for the split (unit weights, integral loads): the smallest
// integral T for which an Edmonds-Karp max flow source -> expert (count) -> any GPU holding a
// replica -> sink (T - fixed load of the GPU) carries every replicated token. Written separately
// from the library's solver so the bench checks it rather than trusts it.
std::int64_t exact_optimum(const Layout& l, const std::vector<std::int32_t>& counts,
                           const std::vector<double>& fixed, std::int64_t lo, std::int64_t hi) {
  std::vector<std::uint32_t> experts;
  for (std::uint32_t e = 0; e < kExperts; ++e) {
    if (l.replicas[e] > 1 && counts[e] > 0) experts.push_back(e);
  }
  const std::size_t n = experts.size();
  const std::size_t nodes = n + kGpus + 2;
  const std::size_t sink = nodes - 1;
  auto feasible = [&](std::int64_t t) {
    // Dense residual capacities (small graph).
    std::vector<std::int64_t> cap(nodes * nodes, 0);
    std::int64_t need = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t e = experts[i];
      cap[0 * nodes + 1 + i] = counts[e];
      need += counts[e];
      for (std::uint32_t r = 0; r < static_cast<std::uint32_t>(l.replicas[e]); ++r) {
        cap[(1 + i) * nodes + 1 + n + gpu_of(l.slot(e, r))] = need + (std::int64_t{1} << 40);
      }
    }
    for (std::uint32_t g = 0; g < kGpus; ++g) {
      const std::int64_t room = t - static_cast<std::int64_t>(fixed[g]);
      if (room < 0) return false;
      cap[(1 + n + g) * nodes + sink] = room;
    }
    std::int64_t flow = 0;
    std::vector<std::int64_t> parent(nodes);
    while (true) {
      std::fill(parent.begin(), parent.end(), -1);
      parent[0] = 0;
      std::vector<std::size_t> queue{0};
      for (std::size_t qi = 0; qi < queue.size() && parent[sink] < 0; ++qi) {
        const std::size_t u = queue[qi];
        for (std::size_t v = 0; v < nodes; ++v) {
          if (parent[v] < 0 && cap[u * nodes + v] > 0) {
            parent[v] = static_cast<std::int64_t>(u);
            queue.push_back(v);
          }
        }
      }
      if (parent[sink] < 0) break;
      std::int64_t push = std::int64_t{1} << 60;
      for (std::size_t v = sink; v != 0; v = static_cast<std::size_t>(parent[v])) {
        push = std::min(push, cap[static_cast<std::size_t>(parent[v]) * nodes + v]);
      }
      for (std::size_t v = sink; v != 0; v = static_cast<std::size_t>(parent[v])) {
        const auto u = static_cast<std::size_t>(parent[v]);
        cap[u * nodes + v] -= push;
        cap[v * nodes + u] += push;
      }
      flow += push;
    }
    return flow == need;
  };
  while (lo < hi) {  // hi is feasible
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (feasible(mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return hi;
}

struct Batch {
  std::vector<std::int32_t> experts;  // [N][K] logical
  std::vector<std::int32_t> counts;   // [E]
};

Batch sample(std::mt19937_64& rng, const std::vector<double>& cumulative, std::uint32_t tokens) {
  Batch b;
  b.experts.resize(std::size_t{tokens} * kTopK);
  b.counts.assign(kExperts, 0);
  std::uniform_real_distribution<double> u(0.0, cumulative.back());
  for (std::uint32_t t = 0; t < tokens; ++t) {
    std::int32_t* row = b.experts.data() + std::size_t{t} * kTopK;
    for (std::uint32_t j = 0; j < kTopK;) {
      const auto e = static_cast<std::int32_t>(
          std::upper_bound(cumulative.begin(), cumulative.end(), u(rng)) - cumulative.begin());
      if (e >= static_cast<std::int32_t>(kExperts) || std::find(row, row + j, e) != row + j) {
        continue;
      }
      row[j++] = e;
      ++b.counts[static_cast<std::size_t>(e)];
    }
  }
  return b;
}

double max_over_mean(const std::vector<double>& loads) {
  const double total = std::accumulate(loads.begin(), loads.end(), 0.0);
  return *std::max_element(loads.begin(), loads.end()) /
         (total / static_cast<double>(loads.size()));
}

struct Stats {
  std::vector<double> values;
  [[nodiscard]] double mean() const {
    return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  }
  [[nodiscard]] double quantile(double q) const {
    std::vector<double> v = values;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
  }
};

}  // namespace

int main(int argc, char** argv) try {
  std::uint32_t pairs = 12;
  std::uint32_t batches = 2;
  std::uint64_t seed = 9;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const auto value = std::stoull(argv[i + 1]);
    if (flag == "--pairs") pairs = static_cast<std::uint32_t>(value);
    if (flag == "--batches") batches = static_cast<std::uint32_t>(value);
    if (flag == "--seed") seed = value;
  }
  const auto files = eplb_bench::deepseek_recording_files();
  if (files.empty()) {
    std::cerr << "eplb_bench_split: " << eplb_bench::deepseek_recordings_dir().string()
              << " not found (set EPLB_SHARED)\n";
    return 0;
  }
  std::vector<std::vector<double>> loads;
  for (const auto& f : files) loads.push_back(eplb_bench::deepseek_moe_rows(f));
  pairs = std::min<std::uint32_t>(pairs, static_cast<std::uint32_t>(files.size()));

  eplb_planner_options options;
  eplb_planner_options_init(&options);
  options.num_layers = kLayers;
  options.num_logical_experts = kExperts;
  options.num_physical_experts = kSlots;
  options.num_groups = kGroups;
  options.num_nodes = kNodes;
  options.num_gpus = kGpus;
  eplb_planner* planner = nullptr;
  check(eplb_planner_create(&options, &planner), "eplb_planner_create");
  eplb_split_workspace* ws = nullptr;
  check(eplb_split_workspace_create(&ws), "eplb_split_workspace_create");

  // [batch size][policy] -> max/mean per batch
  std::vector<std::vector<Stats>> stats(kBatchSizes.size(), std::vector<Stats>(kPolicies.size()));
  std::vector<Stats> solve_us(kBatchSizes.size());
  std::vector<Stats> kernel_cpu_us(kBatchSizes.size());  // eplb_kernel_split_solve_cpu
  std::vector<Stats> wf_seq_us(kBatchSizes.size());
  std::vector<Stats> wf_par_us(kBatchSizes.size());
  std::vector<Stats> wf_par_over_seq(kBatchSizes.size());  // max load, static dispatch
  std::size_t kernel_mismatches = 0;
  // Share of routed entries served off their token's node: static, split, split by node.
  std::vector<std::array<Stats, 3>> cross_share(kBatchSizes.size());
  std::vector<Stats> by_node_us(kBatchSizes.size());
  std::size_t by_node_mismatches = 0;  // by-node max load != the plain optimum (slack 0)
  std::vector<Stats> split_over_bound(kBatchSizes.size());
  std::vector<Stats> split_over_exact(kBatchSizes.size());
  std::size_t mismatches = 0;
  std::size_t not_optimal = 0;
  std::mt19937_64 rng(seed);

  for (std::uint32_t pair = 0; pair < pairs; ++pair) {
    const auto& plan_loads = loads[pair];
    const auto& batch_loads = loads[(pair + 1) % loads.size()];
    eplb_placement* placement = nullptr;
    check(eplb_planner_plan(planner, plan_loads.data(), plan_loads.size(), &placement),
          "eplb_planner_plan");
    eplb_placement_info info{};
    info.struct_size = sizeof(info);
    check(eplb_placement_get_info(placement, &info), "eplb_placement_get_info");
    std::vector<std::int32_t> replicas(std::size_t{kLayers} * kExperts);
    std::vector<std::int32_t> log2phy(std::size_t{kLayers} * kExperts * info.log2phy_width);
    check(eplb_placement_get_replica_counts(placement, replicas.data(), replicas.size()), "counts");
    check(eplb_placement_get_log2phy(placement, log2phy.data(), log2phy.size()), "log2phy");
    eplb_split_tables* tables = nullptr;
    check(eplb_split_tables_create(placement, 0, 0, EPLB_SPLIT_TABLES_HOST_ONLY, nullptr, &tables),
          "eplb_split_tables_create");
    std::size_t tables_ws_bytes = 0;
    check(eplb_kernel_split_solve_workspace_size(tables, &tables_ws_bytes), "workspace size");
    std::vector<std::uint64_t> tables_ws(tables_ws_bytes / 8 + 1);

    for (std::uint32_t layer = 0; layer < kLayers; ++layer) {
      Layout l;
      l.width = info.log2phy_width;
      l.replicas.assign(replicas.begin() + std::ptrdiff_t{layer} * kExperts,
                        replicas.begin() + std::ptrdiff_t{layer + 1} * kExperts);
      const std::size_t row = std::size_t{kExperts} * l.width;
      l.log2phy.assign(log2phy.begin() + static_cast<std::ptrdiff_t>(layer * row),
                       log2phy.begin() + static_cast<std::ptrdiff_t>((layer + 1) * row));
      build_static_table(l);
      std::vector<double> cumulative(kExperts);
      std::partial_sum(batch_loads.begin() + std::ptrdiff_t{layer} * kExperts,
                       batch_loads.begin() + std::ptrdiff_t{layer + 1} * kExperts,
                       cumulative.begin());
      if (cumulative.back() <= 0) continue;

      for (std::size_t bi = 0; bi < kBatchSizes.size(); ++bi) {
        const std::uint32_t n = kBatchSizes[bi];
        for (std::uint32_t rep = 0; rep < batches; ++rep) {
          const Batch b = sample(rng, cumulative, n);
          std::vector<double> shared_local(kGpus, 0.0);
          for (std::uint32_t t = 0; t < n; ++t) shared_local[t % kGpus] += 1.0;

          // Routed slots of every policy, [N][K].
          auto route = [&](auto&& choose) {
            std::vector<std::int32_t> slots(b.experts.size());
            for (std::uint32_t t = 0; t < n; ++t) {
              for (std::uint32_t j = 0; j < kTopK; ++j) {
                const auto e = static_cast<std::uint32_t>(b.experts[t * kTopK + j]);
                slots[t * kTopK + j] = choose(t, j, e);
              }
            }
            return slots;
          };
          auto gpu_loads = [&](const std::vector<std::int32_t>& slots) {
            std::vector<double> g = shared_local;
            for (const std::int32_t s : slots) g[gpu_of(s)] += 1.0;
            return g;
          };
          const auto static_slots = route([&](std::uint32_t t, std::uint32_t, std::uint32_t e) {
            return l.static_table[(t % kGpus) * kExperts + e];
          });
          const auto rr_slots = route([&](std::uint32_t t, std::uint32_t j, std::uint32_t e) {
            return l.slot(e, (t * kTopK + j) % static_cast<std::uint32_t>(l.replicas[e]));
          });
          const auto hash_slots = route([&](std::uint32_t t, std::uint32_t, std::uint32_t e) {
            const std::uint64_t h = mix((std::uint64_t{t} << 32) ^ e ^ (seed << 48));
            return l.slot(
                e, static_cast<std::uint32_t>(h % static_cast<std::uint64_t>(l.replicas[e])));
          });

          // Split: exact quotas (with the locally computed shared expert as extra load),
          // realised in token order.
          std::vector<std::int32_t> quotas(kSlots);
          double solved = 0.0;
          const auto start = std::chrono::steady_clock::now();
          check(eplb_split_solve(ws, placement, layer, b.counts.data(), kExperts, nullptr,
                                 shared_local.data(), kGpus, quotas.data(), kSlots, &solved),
                "eplb_split_solve");
          solve_us[bi].values.push_back(
              std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                  .count());
          std::vector<std::uint32_t> cursor(kExperts, 0);
          std::vector<std::int32_t> left = quotas;
          const auto split_slots = route([&](std::uint32_t, std::uint32_t, std::uint32_t e) {
            while (true) {
              const std::int32_t s = l.slot(e, cursor[e]);
              if (left[static_cast<std::size_t>(s)] > 0) {
                --left[static_cast<std::size_t>(s)];
                return s;
              }
              ++cursor[e];
            }
          });
          const auto split_loads = gpu_loads(split_slots);
          if (*std::max_element(split_loads.begin(), split_loads.end()) != solved) ++mismatches;

          // The GPU solver's algorithm on the CPU: the same optimum.
          std::vector<std::int32_t> kernel_quotas(kSlots);
          double kernel_max = 0.0;
          const auto kernel_start = std::chrono::steady_clock::now();
          check(eplb_kernel_split_solve_cpu(tables, layer, b.counts.data(), nullptr,
                                            shared_local.data(), kernel_quotas.data(), &kernel_max,
                                            tables_ws.data(), tables_ws_bytes, nullptr),
                "eplb_kernel_split_solve_cpu");
          kernel_cpu_us[bi].values.push_back(std::chrono::duration<double, std::micro>(
                                                 std::chrono::steady_clock::now() - kernel_start)
                                                 .count());
          if (kernel_max != solved) ++kernel_mismatches;

          // The per-node term: the same optimum (slack 0), then the fewest entries off their
          // token's node; quotas per (slot, source node), realised in token order per node.
          const auto node_of_gpu = [](std::uint32_t g) { return g / (kGpus / kNodes); };
          std::vector<std::int32_t> by_node(std::size_t{kExperts} * kNodes, 0);
          for (std::uint32_t t = 0; t < n; ++t) {
            for (std::uint32_t j = 0; j < kTopK; ++j) {
              const auto e = static_cast<std::size_t>(b.experts[t * kTopK + j]);
              ++by_node[e * kNodes + node_of_gpu(t % kGpus)];
            }
          }
          std::vector<std::int32_t> node_quotas(std::size_t{kSlots} * kNodes);
          double by_node_max = 0.0;
          std::int64_t by_node_cross = 0;
          const auto by_node_start = std::chrono::steady_clock::now();
          check(
              eplb_split_solve_by_node(ws, placement, layer, by_node.data(), by_node.size(),
                                       nullptr, shared_local.data(), kGpus, 0.0, node_quotas.data(),
                                       node_quotas.size(), &by_node_max, &by_node_cross),
              "eplb_split_solve_by_node");
          by_node_us[bi].values.push_back(std::chrono::duration<double, std::micro>(
                                              std::chrono::steady_clock::now() - by_node_start)
                                              .count());
          if (by_node_max != solved) ++by_node_mismatches;
          const auto cross_of = [&](const std::vector<std::int32_t>& slots) {
            std::size_t off = 0;
            for (std::size_t i = 0; i < slots.size(); ++i) {
              const auto source_node = node_of_gpu(static_cast<std::uint32_t>(i / kTopK) % kGpus);
              off += node_of_gpu(gpu_of(slots[i])) != source_node ? 1 : 0;
            }
            return static_cast<double>(off) / static_cast<double>(slots.size());
          };
          cross_share[bi][0].values.push_back(cross_of(static_slots));
          cross_share[bi][1].values.push_back(cross_of(split_slots));
          cross_share[bi][2].values.push_back(static_cast<double>(by_node_cross) /
                                              static_cast<double>(b.experts.size()));

          // Waterfill over the routed loads (shared expert not yet placed anywhere).
          std::vector<std::int32_t> source(n);
          for (std::uint32_t t = 0; t < n; ++t) source[t] = static_cast<std::int32_t>(t % kGpus);
          auto waterfill = [&](const std::vector<std::int32_t>& slots, bool parallel, Stats* us) {
            std::vector<double> g(kGpus, 0.0);
            for (const std::int32_t s : slots) g[gpu_of(s)] += 1.0;
            std::vector<std::int32_t> out(std::size_t{n} * (kTopK + 1));
            std::size_t wf_bytes = 0;
            check(eplb_kernel_shared_waterfill_workspace_size(placement, n, &wf_bytes),
                  "eplb_kernel_shared_waterfill_workspace_size");
            std::vector<std::uint64_t> wf_ws(wf_bytes / 8 + 1);
            const auto wf_start = std::chrono::steady_clock::now();
            if (parallel) {
              check(eplb_kernel_shared_waterfill_cpu(
                        placement, slots.data(), n, kTopK, source.data(), nullptr, g.data(), 0,
                        out.data(), g.data(), wf_ws.data(), wf_bytes, nullptr),
                    "eplb_kernel_shared_waterfill_cpu");
            } else {
              check(
                  eplb_shared_expert_waterfill(placement, slots.data(), n, kTopK, source.data(),
                                               nullptr, g.data(), kGpus, 0, out.data(), out.size()),
                  "eplb_shared_expert_waterfill");
            }
            if (us != nullptr) {
              us->values.push_back(std::chrono::duration<double, std::micro>(
                                       std::chrono::steady_clock::now() - wf_start)
                                       .count());
            }
            return g;
          };

          // Lower bound: fixed loads (single-replica experts + local shared) and the fractional
          // level of the replicated tokens over all GPUs.
          std::vector<double> fixed = shared_local;
          double replicated = 0.0;
          for (std::uint32_t e = 0; e < kExperts; ++e) {
            if (l.replicas[e] == 1) {
              fixed[gpu_of(l.slot(e, 0))] += b.counts[e];
            } else {
              replicated += b.counts[e];
            }
          }
          std::vector<double> sorted = fixed;
          std::sort(sorted.begin(), sorted.end());
          double level = sorted.back();
          double sum = 0.0;
          for (std::size_t j = 0; j < sorted.size(); ++j) {
            sum += sorted[j];
            const double candidate = (replicated + sum) / static_cast<double>(j + 1);
            if (j + 1 == sorted.size() || candidate <= sorted[j + 1]) {
              level = std::max(sorted.back(), candidate);
              break;
            }
          }
          const double mean = (static_cast<double>(n) * (kTopK + 1)) / kGpus;

          auto& s = stats[bi];
          s[0].values.push_back(max_over_mean(gpu_loads(static_slots)));
          s[1].values.push_back(max_over_mean(gpu_loads(rr_slots)));
          s[2].values.push_back(max_over_mean(gpu_loads(hash_slots)));
          s[3].values.push_back(solved / mean);
          const double wf_seq = max_over_mean(waterfill(static_slots, false, &wf_seq_us[bi]));
          const double wf_par = max_over_mean(waterfill(static_slots, true, &wf_par_us[bi]));
          s[4].values.push_back(wf_seq);
          s[5].values.push_back(max_over_mean(waterfill(split_slots, false, nullptr)));
          s[6].values.push_back(level / mean);
          s[7].values.push_back(wf_par);
          s[8].values.push_back(max_over_mean(waterfill(split_slots, true, nullptr)));
          wf_par_over_seq[bi].values.push_back(wf_par / wf_seq);
          split_over_bound[bi].values.push_back(solved / level);
          // The independent exact optimum: search [ceil(bound), solved]; the solver must reach
          // it and no integral T below it may be feasible (checked at solved - 1).
          const auto solved_int = static_cast<std::int64_t>(solved);
          const std::int64_t exact = exact_optimum(
              l, b.counts, fixed, static_cast<std::int64_t>(std::ceil(level)), solved_int);
          split_over_exact[bi].values.push_back(solved / static_cast<double>(exact));
          if (exact != solved_int) ++not_optimal;
        }
      }
    }
    eplb_split_tables_destroy(tables);
    eplb_placement_destroy(placement);
    std::cerr << "\rpair " << pair + 1 << "/" << pairs << std::flush;
  }
  std::cerr << "\n";

  std::cout << "Per-batch balancing on SGLang's DeepSeek-V3 recordings: " << pairs
            << " (plan, batch) recording pairs, " << kLayers << " MoE layers, " << batches
            << " batches per layer and size; 288 slots on 32 GPUs / 4 nodes, top-8 + 1 shared "
               "expert.\nBusiest GPU / mean GPU load per batch (1.000 = perfect):\n\n";
  std::vector<std::string> headers{"policy"};
  for (const auto n : kBatchSizes) {
    headers.push_back(std::to_string(n) + " mean");
    headers.push_back(std::to_string(n) + " p99");
  }
  eplb_cli::Table table(headers);
  for (const std::size_t p : kPolicyOrder) {
    std::vector<std::string> row{kPolicies[p]};
    for (std::size_t bi = 0; bi < kBatchSizes.size(); ++bi) {
      row.push_back(eplb_cli::fixed(stats[bi][p].mean(), 3));
      row.push_back(eplb_cli::fixed(stats[bi][p].quantile(0.99), 3));
    }
    table.add_row(row);
  }
  table.print(std::cout);

  std::cout << "\nsplit solver against the lower bound and the static / round-robin dispatch "
               "(means over batches), and its time per layer solve (median, this machine):\n\n";
  eplb_cli::Table gains({"batch", "split / exact", "split / bound", "worst split / bound",
                         "static / split", "round-robin / split", "split+wf / static",
                         "solve us (median)"});
  for (std::size_t bi = 0; bi < kBatchSizes.size(); ++bi) {
    auto ratio = [&](std::size_t a, std::size_t b) {
      return stats[bi][a].mean() / stats[bi][b].mean();
    };
    gains.add_row({std::to_string(kBatchSizes[bi]), eplb_cli::fixed(split_over_exact[bi].mean(), 4),
                   eplb_cli::fixed(split_over_bound[bi].mean(), 4),
                   eplb_cli::fixed(split_over_bound[bi].quantile(1.0), 4),
                   eplb_cli::fixed(ratio(0, 3), 3), eplb_cli::fixed(ratio(1, 3), 3),
                   eplb_cli::fixed(ratio(5, 0), 3),
                   eplb_cli::fixed(solve_us[bi].quantile(0.5), 1)});
  }
  gains.print(std::cout);
  std::cout << "\nGPU algorithms on the CPU (medians, this machine): the split kernel's reference "
               "against eplb_split_solve, and the parallel waterfill rule against the sequential "
               "greedy (static dispatch, visited GPUs + source):\n\n";
  eplb_cli::Table kernels({"batch", "split us", "split kernel cpu us", "wf seq us", "wf par us",
                           "wf par/seq max (mean)", "wf par/seq max (worst)"});
  for (std::size_t bi = 0; bi < kBatchSizes.size(); ++bi) {
    kernels.add_row({std::to_string(kBatchSizes[bi]),
                     eplb_cli::fixed(solve_us[bi].quantile(0.5), 1),
                     eplb_cli::fixed(kernel_cpu_us[bi].quantile(0.5), 1),
                     eplb_cli::fixed(wf_seq_us[bi].quantile(0.5), 1),
                     eplb_cli::fixed(wf_par_us[bi].quantile(0.5), 1),
                     eplb_cli::fixed(wf_par_over_seq[bi].mean(), 4),
                     eplb_cli::fixed(wf_par_over_seq[bi].quantile(1.0), 4)});
  }
  kernels.print(std::cout);
  std::cout << "\nThe per-node term (eplb_split_solve_by_node, slack 0: the same busiest GPU as "
               "the split): share of routed entries served on another node than their token's "
               "(mean over batches), and its time per layer solve (median, this machine):\n\n";
  eplb_cli::Table nodes(
      {"batch", "static", "split", "split by node", "by node / split", "by-node us (median)"});
  for (std::size_t bi = 0; bi < kBatchSizes.size(); ++bi) {
    const auto& c = cross_share[bi];
    nodes.add_row({std::to_string(kBatchSizes[bi]), eplb_cli::fixed(c[0].mean(), 4),
                   eplb_cli::fixed(c[1].mean(), 4), eplb_cli::fixed(c[2].mean(), 4),
                   eplb_cli::fixed(c[2].mean() / c[1].mean(), 3),
                   eplb_cli::fixed(by_node_us[bi].quantile(0.5), 1)});
  }
  nodes.print(std::cout);
  std::cout << "\nby-node max != split max: " << by_node_mismatches << " batches";
  std::cout << "\nsplit kernel reference max != eplb_split_solve max: " << kernel_mismatches
            << " batches";
  std::cout << "\nrealised split max != solver's reported max: " << mismatches
            << " batches; solver above the independent exact optimum: " << not_optimal
            << " batches\n";
  eplb_split_workspace_destroy(ws);
  eplb_planner_destroy(planner);
  return mismatches == 0 && not_optimal == 0 && kernel_mismatches == 0 && by_node_mismatches == 0
             ? 0
             : 1;
} catch (const std::exception& e) {
  std::cerr << "eplb_bench_split: " << e.what() << "\n";
  return 1;
}
