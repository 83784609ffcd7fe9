// Routing kernels on the GPU (issue #7 items 1-3): recorder + mapping per mode, the recorder
// alone, the fold and the co-activation counter (uniform and Zipf-skewed routing), for the
// DeepSeek-V3 shape: 256 experts, 288 slots, 32 ranks in 4 nodes, top-8, 8192 tokens (prefill)
// and 128 tokens (decode). Each kernel is timed two ways: 100 launches captured in one CUDA
// graph, replayed (per-launch time), and 100 launches issued from the stream; medians of 11
// repetitions, cudaEvent timing. Prints a table, or JSON with --json. Without a GPU it prints
// "skipped: no CUDA device" and exits 0.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "eplb/eplb.h"
#include "gpu_bench_support.hpp"

namespace {

constexpr uint32_t kExperts = 256, kSlots = 288, kGpus = 32, kNodes = 4, kTopK = 8;
constexpr int kLaunches = 100, kReps = 11;

using eplb_bench::Timing;
using eplb_bench::upload;

// Distinct top-k per token; Zipf(skew) popularity over a random expert order when skew > 0.
std::vector<int32_t> routing(size_t tokens, double skew, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> order(kExperts);
  for (uint32_t e = 0; e < kExperts; ++e) order[e] = static_cast<int32_t>(e);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<double> w(kExperts);
  for (uint32_t e = 0; e < kExperts; ++e) w[e] = skew > 0 ? 1.0 / std::pow(e + 1.0, skew) : 1.0;
  std::discrete_distribution<int> pick(w.begin(), w.end());
  std::vector<int32_t> ids(tokens * kTopK);
  for (size_t t = 0; t < tokens; ++t) {
    for (uint32_t j = 0; j < kTopK; ++j) {
      int32_t e;
      do {
        e = order[static_cast<size_t>(pick(rng))];
      } while (std::find(ids.begin() + static_cast<std::ptrdiff_t>(t * kTopK),
                         ids.begin() + static_cast<std::ptrdiff_t>(t * kTopK + j),
                         e) != ids.begin() + static_cast<std::ptrdiff_t>(t * kTopK + j));
      ids[t * kTopK + j] = e;
    }
  }
  return ids;
}

// Per-launch time of `op`: kLaunches launches in a CUDA graph and from the stream, median of kReps.
Timing time_op(cudaStream_t stream, const std::function<void(cudaStream_t)>& op) {
  return eplb_bench::time_op(stream, kLaunches, kReps, op);
}

}  // namespace

int main(int argc, char** argv) {
  const bool json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  int32_t devices = 0;
  if (eplb_device_count(&devices) != EPLB_OK) {
    std::printf("skipped: no CUDA device (%s)\n", eplb_last_error_message());
    return 0;
  }
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));

  // A balanced plan of Zipf loads: hot experts get the 32 extra replicas.
  eplb_planner_options o;
  eplb_planner_options_init(&o);
  o.num_layers = 1;
  o.num_logical_experts = kExperts;
  o.num_physical_experts = kSlots;
  o.num_gpus = kGpus;
  o.num_nodes = kNodes;
  eplb_planner* planner = nullptr;
  CHECK_EPLB(eplb_planner_create(&o, &planner));
  std::vector<double> loads(kExperts);
  for (uint32_t e = 0; e < kExperts; ++e) loads[e] = 1000.0 / std::pow(e + 1.0, 0.8);
  eplb_placement* placement = nullptr;
  CHECK_EPLB(eplb_planner_plan(planner, loads.data(), loads.size(), &placement));
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  eplb_device_tables* tables = nullptr;
  CHECK_EPLB(eplb_device_tables_create(placement, 5, 0, 0, stream, &tables));
  eplb_split_workspace* split = nullptr;
  CHECK_EPLB(eplb_split_workspace_create(&split));

  int32_t* flag = upload(std::vector<int32_t>{1});
  int64_t* phys_counts = upload(std::vector<int64_t>(kSlots, 0));
  int64_t* log_counts = upload(std::vector<int64_t>(kExperts, 0));
  int64_t* pairs = upload(std::vector<int64_t>(size_t{kExperts} * (kExperts - 1) / 2, 0));
  int32_t* samples = upload(std::vector<int32_t>(256 * kTopK, 0));

  struct Row {
    std::string op;
    size_t tokens;
    std::string routing;
    Timing t;
  };
  std::vector<Row> rows;
  const char* mode_names[] = {"static", "round-robin", "hash", "node-aware", "quota"};
  for (const size_t tokens : {size_t{8192}, size_t{128}}) {
    for (const double skew : {0.0, 1.2}) {
      const auto ids = routing(tokens, skew, 7);
      const char* rname = skew > 0 ? "zipf1.2" : "uniform";
      std::vector<int32_t> counts(kExperts, 0);
      for (const int32_t e : ids) ++counts[static_cast<size_t>(e)];
      std::vector<int32_t> quotas(kSlots);
      CHECK_EPLB(eplb_split_solve(split, placement, 0, counts.data(), counts.size(), nullptr,
                                  nullptr, 0, quotas.data(), quotas.size(), nullptr));
      int32_t* d_ids = upload(ids);
      int32_t* d_quotas = upload(quotas);
      int32_t* d_out = upload(std::vector<int32_t>(ids.size(), 0));
      for (uint32_t mode = 0; mode < 5; ++mode) {
        rows.push_back({std::string("map+record ") + mode_names[mode], tokens, rname,
                        time_op(stream, [&](cudaStream_t s) {
                          CHECK_EPLB(eplb_kernel_map_record(tables, 0, mode, 42, d_quotas, d_ids,
                                                            EPLB_IDS_INT32, tokens, kTopK, flag,
                                                            phys_counts, d_out, s));
                        })});
      }
      rows.push_back({"record_load", tokens, rname, time_op(stream, [&](cudaStream_t s) {
                        CHECK_EPLB(eplb_kernel_record_load(d_ids, EPLB_IDS_INT32, tokens, kTopK,
                                                           kExperts, 1, 0, flag, log_counts, s));
                      })});
      rows.push_back({"coactivation", tokens, rname, time_op(stream, [&](cudaStream_t s) {
                        CHECK_EPLB(eplb_kernel_coactivation(d_ids, EPLB_IDS_INT32, tokens, kTopK,
                                                            kExperts, 1, 0, flag, pairs, 0, 0, 0,
                                                            nullptr, s));
                      })});
      rows.push_back({"coactivation+samples", tokens, rname, time_op(stream, [&](cudaStream_t s) {
                        CHECK_EPLB(eplb_kernel_coactivation(d_ids, EPLB_IDS_INT32, tokens, kTopK,
                                                            kExperts, 1, 0, flag, pairs, 32, 0, 256,
                                                            samples, s));
                      })});
      cudaFree(d_ids);
      cudaFree(d_quotas);
      cudaFree(d_out);
    }
  }
  rows.push_back({"fold_counts", 0, "-", time_op(stream, [&](cudaStream_t s) {
                    CHECK_EPLB(eplb_kernel_fold_counts(tables, phys_counts, log_counts, s));
                  })});

  if (json) {
    std::printf("{\"device\": \"%s\", \"rows\": [", prop.name);
    for (size_t i = 0; i < rows.size(); ++i) {
      std::printf(
          "%s{\"op\": \"%s\", \"tokens\": %zu, \"routing\": \"%s\", \"graph_us\": %.3f, "
          "\"stream_us\": %.3f}",
          i ? ", " : "", rows[i].op.c_str(), rows[i].tokens, rows[i].routing.c_str(),
          rows[i].t.graph_us, rows[i].t.stream_us);
    }
    std::printf("]}\n");
  } else {
    std::printf(
        "routing kernels on %s: E=%u, %u slots, %u ranks in %u nodes, top-%u; per launch, "
        "median of %d x %d launches\n",
        prop.name, kExperts, kSlots, kGpus, kNodes, kTopK, kReps, kLaunches);
    std::printf("%-24s %7s %-8s %10s %10s\n", "kernel", "tokens", "routing", "graph us",
                "stream us");
    for (const Row& r : rows) {
      std::printf("%-24s %7zu %-8s %10.2f %10.2f\n", r.op.c_str(), r.tokens, r.routing.c_str(),
                  r.t.graph_us, r.t.stream_us);
    }
  }
  cudaFree(flag);
  cudaFree(phys_counts);
  cudaFree(log_counts);
  cudaFree(pairs);
  cudaFree(samples);
  eplb_split_workspace_destroy(split);
  eplb_device_tables_destroy(tables);
  eplb_placement_destroy(placement);
  eplb_planner_destroy(planner);
  cudaStreamDestroy(stream);
  return 0;
}
