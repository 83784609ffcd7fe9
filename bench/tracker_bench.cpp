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
// --baseline LIB times another build's libeplb.so (dlopen'ed beside this one, e.g. one built from
// an older commit) in the same run: the two record alternately, in blocks of 25 calls, so that a
// shared machine's noise falls on both alike, and the table adds the baseline's median and the
// ratio this build / baseline.
//
// Usage: eplb_bench_tracker [--samples N] [--baseline path/to/libeplb.so]
#include <dlfcn.h>

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

// The C functions a timed record uses: this build's, or a baseline library's.
struct TrackerApi {
  decltype(&eplb_placement_create_from_phy2log) placement_create = nullptr;
  decltype(&eplb_placement_destroy) placement_destroy = nullptr;
  decltype(&eplb_tracker_options_init) options_init = nullptr;
  decltype(&eplb_tracker_create) create = nullptr;
  decltype(&eplb_tracker_destroy) destroy = nullptr;
  decltype(&eplb_tracker_record) record = nullptr;
  decltype(&eplb_tracker_record_physical) record_physical = nullptr;
  decltype(&eplb_last_error_message) last_error = nullptr;
};

TrackerApi this_build() {
  return {eplb_placement_create_from_phy2log,
          eplb_placement_destroy,
          eplb_tracker_options_init,
          eplb_tracker_create,
          eplb_tracker_destroy,
          eplb_tracker_record,
          eplb_tracker_record_physical,
          eplb_last_error_message};
}

// Another libeplb.so, loaded with its own symbols (RTLD_LOCAL). Exits with a message if it cannot.
TrackerApi load_baseline(const std::string& path) {
  void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    std::cerr << "--baseline " << path << ": " << dlerror() << "\n";
    std::exit(2);
  }
  const auto find = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(library, name));
    if (fn == nullptr) {
      std::cerr << "--baseline " << path << ": no " << name << " (not a libeplb.so?)\n";
      std::exit(2);
    }
  };
  TrackerApi api;
  find(api.placement_create, "eplb_placement_create_from_phy2log");
  find(api.placement_destroy, "eplb_placement_destroy");
  find(api.options_init, "eplb_tracker_options_init");
  find(api.create, "eplb_tracker_create");
  find(api.destroy, "eplb_tracker_destroy");
  find(api.record, "eplb_tracker_record");
  find(api.record_physical, "eplb_tracker_record_physical");
  find(api.last_error, "eplb_last_error_message");
  return api;  // (the library stays loaded until exit)
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
// on another node), so physical ids need folding. Made by `api`'s library.
eplb_placement* make_placement(const TrackerApi& api) {
  std::vector<std::int32_t> phy2log(kSlots);
  for (std::uint32_t s = 0; s < kSlots; ++s) phy2log[s] = static_cast<std::int32_t>(s % kExperts);
  eplb_placement* raw = nullptr;
  check(api.placement_create(1, kExperts, kSlots, kNodes, kGpus, phy2log.data(), phy2log.size(),
                             &raw),
        "placement");
  return raw;
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

// With --baseline: the calls of each library's turn, and how many of them are not timed.
constexpr int kTurnCalls = 25, kTurnUntimed = 5;

// One library's tracker and placement, recording the shared batches.
class TimedTracker {
 public:
  TimedTracker(const TrackerApi& api, std::uint32_t window, std::uint32_t reservoir)
      : api_(api), placement_(make_placement(api)) {
    eplb_tracker_options o;
    api.options_init(&o);
    o.num_layers = 1;
    o.num_logical_experts = kExperts;
    o.top_k = kTopK;
    o.window = window;
    o.window_batches = 64;
    o.decay = 0.99;
    o.reservoir_capacity = reservoir;
    check(api.create(&o, &tracker_), "tracker");
  }
  TimedTracker(const TimedTracker&) = delete;
  TimedTracker& operator=(const TimedTracker&) = delete;
  ~TimedTracker() {
    api_.destroy(tracker_);
    api_.placement_destroy(placement_);
  }

  // Records one batch; returns the microseconds it took.
  double record(const std::vector<std::int32_t>& batch, std::size_t tokens, bool physical) {
    const auto start = Clock::now();
    const eplb_status status =
        physical ? api_.record_physical(tracker_, placement_, 0, batch.data(), tokens, kTopK)
                 : api_.record(tracker_, 0, batch.data(), tokens, kTopK);
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    if (status != EPLB_OK) {
      std::cerr << "record: " << api_.last_error() << "\n";
      std::exit(1);
    }
    return us;
  }

 private:
  TrackerApi api_;
  eplb_placement* placement_;
  eplb_tracker* tracker_ = nullptr;
};

// Median microseconds per record call for each library in `apis` (this build first), after a
// warm-up of one window. With several, they take turns in blocks of calls (each block's first
// few calls, while the caches refill with that tracker's counts, are not timed).
std::vector<double> time_record(const std::vector<TrackerApi>& apis, std::uint32_t window,
                                bool physical, std::size_t tokens, std::uint32_t reservoir,
                                int samples) {
  auto batches = make_batches(tokens, 1);
  if (physical) batches = to_physical(batches);
  std::vector<std::unique_ptr<TimedTracker>> trackers;
  for (const TrackerApi& api : apis) {
    trackers.push_back(std::make_unique<TimedTracker>(api, window, reservoir));
  }
  const auto batch = [&](int i) -> const std::vector<std::int32_t>& {
    return batches[static_cast<std::size_t>(i) % batches.size()];
  };
  for (auto& t : trackers) {
    for (int i = 0; i < 64; ++i) t->record(batch(i), tokens, physical);
  }
  const int block = apis.size() > 1 ? kTurnCalls : samples;
  const int untimed = apis.size() > 1 ? kTurnUntimed : 0;
  std::vector<std::vector<double>> us(apis.size());
  for (int done = 0; done < samples;) {
    const int timed = std::min(block - untimed, samples - done);
    for (std::size_t a = 0; a < trackers.size(); ++a) {
      for (int i = 0; i < untimed; ++i) trackers[a]->record(batch(done + i), tokens, physical);
      for (int i = 0; i < timed; ++i) {
        us[a].push_back(trackers[a]->record(batch(done + i), tokens, physical));
      }
    }
    done += timed;
  }
  std::vector<double> medians;
  for (auto& u : us) medians.push_back(median(std::move(u)));
  return medians;
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
  std::string baseline;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--samples" && i + 1 < argc) {
      samples = std::atoi(argv[++i]);
    } else if (arg == "--baseline" && i + 1 < argc) {
      baseline = argv[++i];
    } else {
      std::cerr << "usage: eplb_bench_tracker [--samples N] [--baseline path/to/libeplb.so]\n";
      return 2;
    }
  }
  if (samples < 1) {
    std::cerr << "--samples " << samples << ": must be at least 1\n";
    return 2;
  }
  std::vector<TrackerApi> apis = {this_build()};
  if (!baseline.empty()) apis.push_back(load_baseline(baseline));
  std::cout << "libeplb " << eplb_version_string() << ": tracker record, 1 layer x " << kExperts
            << " experts, top-" << kTopK << ", median of " << samples << " calls";
  if (!baseline.empty()) {
    std::cout << ", against " << baseline << " (turns of " << kTurnCalls - kTurnUntimed
              << " timed calls each)";
  }
  std::cout << "\n\n";
  std::vector<std::string> columns = {"tokens",    "ids",      "window",          "reservoir",
                                      "median us", "ns/token", "target <= 100 us"};
  if (!baseline.empty()) columns.insert(columns.end(), {"baseline us", "this / baseline"});
  eplb_cli::Table table(columns);
  const char* window_names[] = {"cumulative", "sliding W=64", "decay 0.99"};
  const auto add_row = [&](std::size_t tokens, bool physical, std::uint32_t window,
                           std::uint32_t reservoir) {
    const std::vector<double> us = time_record(apis, window, physical, tokens, reservoir, samples);
    std::vector<std::string> row = {std::to_string(tokens),
                                    physical ? "physical" : "logical",
                                    window_names[window],
                                    std::to_string(reservoir),
                                    fixed(us[0], 1),
                                    fixed(us[0] * 1000.0 / static_cast<double>(tokens), 1),
                                    tokens == 8192 ? (us[0] <= 100.0 ? "met" : "MISSED") : "-"};
    if (us.size() > 1) row.insert(row.end(), {fixed(us[1], 1), fixed(us[0] / us[1], 3)});
    table.add_row(row);
  };
  for (const std::size_t tokens : {std::size_t{8192}, std::size_t{128}}) {
    for (const bool physical : {false, true}) {
      for (std::uint32_t window = 0; window < 3; ++window) add_row(tokens, physical, window, 4096);
    }
    add_row(tokens, false, 0, 0);
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
  const std::unique_ptr<eplb_placement, PlacementDeleter> placement(make_placement(this_build()));
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
