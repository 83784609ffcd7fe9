// eplb_bench_tracker: what the co-activation tracker costs per batch, and the nodes-touched
// metric, through the public C API (the inputs come from the core's workload simulator, linked
// statically for generation only; nothing timed runs outside libeplb.so).
//
// Shape: one MoE layer of 256 experts, top-8 (DeepSeek-V3), 8192 tokens per batch (a prefill
// chunk) and 128 (a decode step); windows cumulative, sliding (W = 64) and decay (0.99); reservoir
// 4096 rows; logical ids, and physical ids of a 288-slot placement on 4 nodes x 8 GPUs. Each time
// is the median over --samples single calls, cycling through 16 pre-generated batches; the
// tracker is warmed up with one full window first. Then the memory a sliding window of W = 64
// batches holds per layer, for each batch size (core::Tracker, the code libeplb.so runs).
//
// Usage: eplb_bench_tracker [--samples N]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "eplb/eplb.h"
#include "eplb/table.hpp"
#include "tracker.hpp"
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

void check(eplb_status status, const char* what) {
  if (status != EPLB_OK) {
    std::cerr << what << ": " << eplb_status_string(status) << ": " << eplb_last_error_message()
              << "\n";
    std::exit(1);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

constexpr std::uint32_t kExperts = 256, kTopK = 8, kSlots = 288, kNodes = 4, kGpus = 32;

std::vector<std::vector<std::int32_t>> make_batches(std::size_t tokens, std::uint64_t seed) {
  eplb::WorkloadParams p;
  p.num_layers = 1;
  p.num_experts = kExperts;
  p.top_k = kTopK;
  p.num_groups = 8;
  p.topk_groups = 4;
  p.seed = seed;
  eplb::WorkloadSimulator sim(p);
  std::vector<std::vector<std::int32_t>> batches;
  for (int i = 0; i < 16; ++i) batches.push_back(sim.next_batch(tokens));
  return batches;
}

// A placement of kSlots slots: slot s holds s % 256 (the first 32 experts get a second replica,
// on another node), so physical ids need folding.
std::unique_ptr<eplb_placement, PlacementDeleter> make_placement() {
  std::vector<std::int32_t> phy2log(kSlots);
  for (std::uint32_t s = 0; s < kSlots; ++s) phy2log[s] = static_cast<std::int32_t>(s % kExperts);
  eplb_placement* raw = nullptr;
  check(eplb_placement_create_from_phy2log(1, kExperts, kSlots, kNodes, kGpus, phy2log.data(),
                                           phy2log.size(), &raw),
        "placement");
  return std::unique_ptr<eplb_placement, PlacementDeleter>(raw);
}

// Physical ids: each logical id goes to its first slot, or to its replica for odd tokens.
std::vector<std::vector<std::int32_t>> to_physical(
    const std::vector<std::vector<std::int32_t>>& batches) {
  auto out = batches;
  for (auto& b : out) {
    for (std::size_t i = 0; i < b.size(); ++i) {
      if (b[i] < static_cast<std::int32_t>(kSlots - kExperts) && (i / kTopK) % 2 == 1) {
        b[i] += static_cast<std::int32_t>(kExperts);
      }
    }
  }
  return out;
}

double time_record(std::uint32_t window, bool physical, std::size_t tokens, std::uint32_t reservoir,
                   int samples, const eplb_placement* placement) {
  eplb_tracker_options o;
  eplb_tracker_options_init(&o);
  o.num_layers = 1;
  o.num_logical_experts = kExperts;
  o.top_k = kTopK;
  o.window = window;
  o.window_batches = 64;
  o.decay = 0.99;
  o.reservoir_capacity = reservoir;
  eplb_tracker* raw = nullptr;
  check(eplb_tracker_create(&o, &raw), "tracker");
  std::unique_ptr<eplb_tracker, TrackerDeleter> tracker(raw);
  auto batches = make_batches(tokens, 1);
  if (physical) batches = to_physical(batches);
  auto record = [&](const std::vector<std::int32_t>& b) {
    if (physical) {
      check(eplb_tracker_record_physical(tracker.get(), placement, 0, b.data(), tokens, kTopK),
            "record_physical");
    } else {
      check(eplb_tracker_record(tracker.get(), 0, b.data(), tokens, kTopK), "record");
    }
  };
  for (int i = 0; i < 64; ++i) record(batches[static_cast<std::size_t>(i) % batches.size()]);
  std::vector<double> us;
  for (int i = 0; i < samples; ++i) {
    const auto& b = batches[static_cast<std::size_t>(i) % batches.size()];
    const auto start = Clock::now();
    record(b);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  return median(us);
}

// Bytes of one layer's sliding window (W = 64) after a full window of `tokens`-token batches.
std::size_t window_bytes(std::size_t tokens) {
  eplb::TrackerOptions o;
  o.num_layers = 1;
  o.num_experts = kExperts;
  o.top_k = kTopK;
  o.window = eplb::TrackerWindow::sliding;
  o.window_batches = 64;
  eplb::Tracker tracker(o);
  const auto batches = make_batches(tokens, 3);
  for (std::size_t i = 0; i < o.window_batches; ++i) {
    tracker.record(0, batches[i % batches.size()], tokens, kTopK);
  }
  return tracker.window_bytes();
}

}  // namespace

int main(int argc, char** argv) {
  int samples = 200;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--samples" && i + 1 < argc) samples = std::atoi(argv[++i]);
  }
  const auto placement = make_placement();
  std::cout << "libeplb " << eplb_version_string() << ": tracker record, 1 layer x " << kExperts
            << " experts, top-" << kTopK << ", median of " << samples << " calls\n\n";
  eplb_cli::Table table(
      {"tokens", "ids", "window", "reservoir", "median us", "ns/token", "target <= 100 us"});
  const char* window_names[] = {"cumulative", "sliding W=64", "decay 0.99"};
  for (const std::size_t tokens : {std::size_t{8192}, std::size_t{128}}) {
    for (const bool physical : {false, true}) {
      for (std::uint32_t window = 0; window < 3; ++window) {
        const double us = time_record(window, physical, tokens, 4096, samples, placement.get());
        table.add_row({std::to_string(tokens), physical ? "physical" : "logical",
                       window_names[window], "4096", fixed(us, 1),
                       fixed(us * 1000.0 / static_cast<double>(tokens), 1),
                       tokens == 8192 ? (us <= 100.0 ? "met" : "MISSED") : "-"});
      }
    }
    const double us = time_record(0, false, tokens, 0, samples, placement.get());
    table.add_row({std::to_string(tokens), "logical", window_names[0], "0", fixed(us, 1),
                   fixed(us * 1000.0 / static_cast<double>(tokens), 1),
                   tokens == 8192 ? (us <= 100.0 ? "met" : "MISSED") : "-"});
  }
  table.print(std::cout);

  std::cout << "\nsliding window W=64, memory per layer after 64 batches\n";
  eplb_cli::Table memory({"tokens", "window KB", "if dense KB", "share"});
  const double dense = 64.0 * (kExperts + kExperts * (kExperts - 1) / 2) * 4;
  for (const std::size_t tokens : {std::size_t{32}, std::size_t{128}, std::size_t{512},
                                   std::size_t{1024}, std::size_t{8192}}) {
    const auto bytes = static_cast<double>(window_bytes(tokens));
    memory.add_row({std::to_string(tokens), fixed(bytes / 1024, 0), fixed(dense / 1024, 0),
                    fixed(bytes / dense, 2)});
  }
  memory.print(std::cout);

  // The nodes-touched metric over a full reservoir (4096 rows) of one layer.
  const auto rows = make_batches(4096, 2)[0];
  std::vector<double> us;
  double mean = 0;
  for (int i = 0; i < std::max(samples / 10, 5); ++i) {
    const auto start = Clock::now();
    check(eplb_metrics_nodes_touched(placement.get(), 0, rows.data(), 4096, kTopK, &mean),
          "nodes_touched");
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  std::cout << "\n";
  eplb_cli::Table metric({"metric", "rows", "nodes", "median us", "ns/row", "mean nodes/token"});
  metric.add_row({"nodes touched", "4096", std::to_string(kNodes), fixed(median(us), 1),
                  fixed(median(us) * 1000.0 / 4096, 1), fixed(mean, 3)});
  metric.print(std::cout);
  return 0;
}
