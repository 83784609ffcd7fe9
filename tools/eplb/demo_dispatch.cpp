#include "eplb/demo_dispatch.hpp"

#include <algorithm>
#include <memory>
#include <numeric>

#include "eplb/library.hpp"
#include "eplb/tracker_handle.hpp"

namespace eplb_cli {

namespace {

constexpr std::uint32_t kExperts = 256, kTopK = 8, kGroups = 8;
constexpr std::uint32_t kNodes = 4, kGpus = 32, kSlots = 288;
constexpr std::uint32_t kLayers = 4, kTokens = 1024, kBatches = 4;

struct WorkloadDeleter {
  void operator()(eplb_workload* w) const { eplb_workload_destroy(w); }
};
struct TablesDeleter {
  void operator()(eplb_device_tables* t) const { eplb_device_tables_destroy(t); }
};
struct SplitDeleter {
  void operator()(eplb_split_workspace* w) const { eplb_split_workspace_destroy(w); }
};
using TablesPtr = std::unique_ptr<eplb_device_tables, TablesDeleter>;

struct Mode {
  const char* name;
  std::uint32_t id;
};
constexpr Mode kModes[] = {{"static (own GPU, then own node)", EPLB_MAP_STATIC},
                           {"round-robin (vLLM)", EPLB_MAP_ROUND_ROBIN},
                           {"hash", EPLB_MAP_HASH},
                           {"node-aware (fewest nodes)", EPLB_MAP_NODE_AWARE},
                           {"quota (eplb_split_solve, per-GPU shares)", EPLB_MAP_QUOTA}};

double max_over_mean(const std::vector<std::int64_t>& slot_counts) {
  std::vector<double> gpu(kGpus, 0.0);
  for (std::uint32_t s = 0; s < kSlots; ++s) {
    gpu[s / (kSlots / kGpus)] += static_cast<double>(slot_counts[s]);
  }
  const double total = std::accumulate(gpu.begin(), gpu.end(), 0.0);
  return total > 0 ? *std::max_element(gpu.begin(), gpu.end()) / (total / kGpus) : 1.0;
}

double nodes_per_token(const std::vector<std::int32_t>& physical) {
  constexpr std::uint32_t per_node = kSlots / kNodes;
  double sum = 0;
  for (std::size_t t = 0; t < physical.size() / kTopK; ++t) {
    std::uint32_t mask = 0;
    for (std::uint32_t j = 0; j < kTopK; ++j) {
      const std::int32_t s = physical[t * kTopK + j];
      if (s >= 0) mask |= 1U << (static_cast<std::uint32_t>(s) / per_node);
    }
    sum += __builtin_popcount(mask);
  }
  return sum / static_cast<double>(physical.size() / kTopK);
}

}  // namespace

DispatchDemo run_dispatch_demo(std::uint64_t seed) {
  eplb_workload_options wo;
  eplb_workload_options_init(&wo);
  wo.num_layers = kLayers;
  wo.num_experts = kExperts;
  wo.top_k = kTopK;
  wo.num_groups = kGroups;
  wo.topk_groups = 4;
  wo.seed = seed + 100;
  eplb_workload* raw_workload = nullptr;
  check(eplb_workload_create(&wo, &raw_workload), "demo: ");
  const std::unique_ptr<eplb_workload, WorkloadDeleter> workload(raw_workload);

  // Plan on earlier traffic (the tracker's loads), dispatch later batches.
  eplb_tracker_options to;
  eplb_tracker_options_init(&to);
  to.num_layers = kLayers;
  to.num_logical_experts = kExperts;
  to.top_k = kTopK;
  eplb_tracker* raw_tracker = nullptr;
  check(eplb_tracker_create(&to, &raw_tracker), "demo: ");
  const TrackerPtr tracker(raw_tracker);
  std::vector<std::int32_t> ids(std::size_t{kLayers} * kTokens * kTopK);
  for (int batch = 0; batch < 4; ++batch) {
    check(eplb_workload_next_batch(workload.get(), kTokens, ids.data(), ids.size()), "demo: ");
    for (std::uint32_t l = 0; l < kLayers; ++l) {
      check(eplb_tracker_record(tracker.get(), l, ids.data() + std::size_t{l} * kTokens * kTopK,
                                kTokens, kTopK),
            "demo: ");
    }
  }
  eplb_planner_options options;
  eplb_planner_options_init(&options);
  options.algorithm = EPLB_ALGORITHM_BALANCED;
  options.num_layers = kLayers;
  options.num_logical_experts = kExperts;
  options.num_physical_experts = kSlots;
  options.num_groups = kGroups;
  options.num_nodes = kNodes;
  options.num_gpus = kGpus;
  const auto planner = make_planner(options, "demo: ");
  const PlacementPtr placement = plan(planner.get(), tracker_loads(tracker.get()), "demo: ");

  // Host-only lookup tables of every rank: what the GPU kernels read, for the CPU references.
  std::vector<TablesPtr> tables;
  for (std::uint32_t g = 0; g < kGpus; ++g) {
    eplb_device_tables* raw = nullptr;
    check(eplb_device_tables_create(placement.get(), g, 0, EPLB_DEVICE_TABLES_HOST_ONLY, nullptr,
                                    &raw),
          "demo: ");
    tables.emplace_back(raw);
  }
  eplb_split_workspace* raw_split = nullptr;
  check(eplb_split_workspace_create(&raw_split), "demo: ");
  const std::unique_ptr<eplb_split_workspace, SplitDeleter> split(raw_split);

  DispatchDemo demo{kLayers, kTokens, kBatches, {}};
  for (const Mode& mode : kModes) demo.rows.push_back({mode.name, 0, 0});
  std::vector<std::int32_t> rank_ids, rank_physical, physical(std::size_t{kTokens} * kTopK);
  std::vector<std::int64_t> counts(std::size_t{kLayers} * kSlots);
  for (std::uint32_t batch = 0; batch < kBatches; ++batch) {
    check(eplb_workload_next_batch(workload.get(), kTokens, ids.data(), ids.size()), "demo: ");
    for (std::uint32_t l = 0; l < kLayers; ++l) {
      const std::int32_t* layer_ids = ids.data() + std::size_t{l} * kTokens * kTopK;
      std::vector<std::int32_t> expert_counts(kExperts, 0);
      for (std::size_t i = 0; i < std::size_t{kTokens} * kTopK; ++i) {
        if (layer_ids[i] >= 0) ++expert_counts[static_cast<std::size_t>(layer_ids[i])];
      }
      std::vector<std::int32_t> quotas(kSlots);
      check(eplb_split_solve(split.get(), placement.get(), l, expert_counts.data(), kExperts,
                             nullptr, nullptr, 0, quotas.data(), kSlots, nullptr),
            "demo: ");
      // Each GPU's entries per expert (what an all-gather of the recorders' counts gives).
      std::vector<std::int32_t> rank_counts(std::size_t{kGpus} * kExperts, 0);
      for (std::size_t i = 0; i < std::size_t{kTokens} * kTopK; ++i) {
        if (layer_ids[i] >= 0) {
          ++rank_counts[(i / kTopK) % kGpus * kExperts + static_cast<std::size_t>(layer_ids[i])];
        }
      }
      for (std::size_t m = 0; m < std::size(kModes); ++m) {
        std::fill(counts.begin(), counts.end(), 0);
        // Each GPU maps its own tokens (token t comes from GPU t % 32) with its own tables; in
        // quota mode with its share of the batch-wide split.
        for (std::uint32_t g = 0; g < kGpus; ++g) {
          rank_ids.clear();
          for (std::uint32_t t = g; t < kTokens; t += kGpus) {
            rank_ids.insert(rank_ids.end(), layer_ids + std::size_t{t} * kTopK,
                            layer_ids + std::size_t{t + 1} * kTopK);
          }
          std::vector<std::int32_t> rank_quotas(kSlots);
          if (kModes[m].id == EPLB_MAP_QUOTA) {
            check(eplb_split_rank_quotas(placement.get(), l, quotas.data(), kSlots,
                                         rank_counts.data(), rank_counts.size(), kGpus, g,
                                         rank_quotas.data(), kSlots),
                  "demo: ");
          }
          rank_physical.resize(rank_ids.size());
          check(eplb_kernel_map_record_cpu(tables[g].get(), l, kModes[m].id, seed,
                                           rank_quotas.data(), rank_ids.data(), EPLB_IDS_INT32,
                                           rank_ids.size() / kTopK, kTopK, nullptr, counts.data(),
                                           rank_physical.data(), nullptr),
                "demo: ");
          for (std::size_t i = 0; i < rank_ids.size() / kTopK; ++i) {
            std::copy_n(rank_physical.begin() + static_cast<std::ptrdiff_t>(i * kTopK), kTopK,
                        physical.begin() + static_cast<std::ptrdiff_t>((g + i * kGpus) * kTopK));
          }
        }
        const std::vector<std::int64_t> layer_counts(
            counts.begin() + static_cast<std::ptrdiff_t>(l) * kSlots,
            counts.begin() + static_cast<std::ptrdiff_t>(l + 1) * kSlots);
        demo.rows[m].max_over_mean += max_over_mean(layer_counts) / (kLayers * kBatches);
        demo.rows[m].nodes_touched += nodes_per_token(physical) / (kLayers * kBatches);
      }
    }
  }
  return demo;
}

}  // namespace eplb_cli
