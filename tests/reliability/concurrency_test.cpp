// Concurrency through the C ABI, with exact expected results and no timing: many threads
// recording into their own trackers and merging them, planning on separate planners (one plan
// control watching and cancelling them all), reading one
// shared placement and snapshot, keeping their own last-error messages, and saving snapshots to
// one path while others load it (every load sees one complete version). scripts/test.sh runs
// this file under ThreadSanitizer as well, which reports any data race inside libeplb.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "eplb/eplb.h"

namespace {

constexpr unsigned kThreads = 8;

void expect_ok(eplb_status status) {
  ASSERT_EQ(status, EPLB_OK) << eplb_status_string(status) << ": " << eplb_last_error_message();
}

// Runs body(t) on kThreads threads started together and joins them.
template <typename Body>
void run_threads(unsigned threads, Body body) {
  std::atomic<unsigned> ready{0};
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      // Start together so the calls overlap (correctness does not depend on it).
      ready.fetch_add(1);
      while (ready.load() < threads) std::this_thread::yield();
      body(t);
    });
  }
  for (std::thread& thread : pool) thread.join();
}

// Deterministic top-k batches: ids in [-1, E) from a seeded generator.
std::vector<int32_t> batch_ids(uint64_t seed, size_t tokens, uint32_t top_k, uint32_t experts) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> id(-1, static_cast<int32_t>(experts) - 1);
  std::vector<int32_t> ids(tokens * top_k);
  for (int32_t& v : ids) v = id(rng);
  return ids;
}

TEST(Tracker, ThreadsRecordThenMergeToExactTotals) {
  constexpr uint32_t kLayers = 3;
  constexpr uint32_t kExperts = 16;
  constexpr uint32_t kTopK = 4;
  constexpr size_t kTokens = 64;
  constexpr unsigned kBatches = 40;
  eplb_tracker_options options;
  eplb_tracker_options_init(&options);
  options.num_layers = kLayers;
  options.num_logical_experts = kExperts;
  options.top_k = kTopK;
  options.reservoir_capacity = 32;

  // Oracle: loads and pair counts counted directly from every batch of every thread.
  std::vector<double> expected_loads(kLayers * kExperts, 0.0);
  std::vector<double> expected_pairs(kLayers * kExperts * kExperts, 0.0);  // dense [l][a][b]
  for (unsigned t = 0; t < kThreads; ++t) {
    for (unsigned b = 0; b < kBatches; ++b) {
      const uint32_t layer = b % kLayers;
      const auto ids = batch_ids(t * 1000003ULL + b, kTokens, kTopK, kExperts);
      for (size_t token = 0; token < kTokens; ++token) {
        std::vector<bool> seen(kExperts, false);
        for (uint32_t k = 0; k < kTopK; ++k) {
          const int32_t id = ids[token * kTopK + k];
          if (id < 0) continue;
          expected_loads[layer * kExperts + id] += 1;
          seen[id] = true;
        }
        for (uint32_t a = 0; a < kExperts; ++a) {
          for (uint32_t c = a + 1; c < kExperts; ++c) {
            if (seen[a] && seen[c]) expected_pairs[(layer * kExperts + a) * kExperts + c] += 1;
          }
        }
      }
    }
  }

  std::vector<eplb_tracker*> trackers(kThreads, nullptr);
  for (eplb_tracker*& tracker : trackers) expect_ok(eplb_tracker_create(&options, &tracker));
  std::atomic<unsigned> failures{0};
  run_threads(kThreads, [&](unsigned t) {
    for (unsigned b = 0; b < kBatches; ++b) {
      const auto ids = batch_ids(t * 1000003ULL + b, kTokens, kTopK, kExperts);
      if (eplb_tracker_record(trackers[t], b % kLayers, ids.data(), kTokens, kTopK) != EPLB_OK) {
        failures.fetch_add(1);
      }
    }
  });
  EXPECT_EQ(failures.load(), 0U);

  // A merge tree run in parallel: at each level, thread i merges tracker i + step into tracker i;
  // while dst i is written, src i + step is only read (as the header allows).
  for (unsigned step = 1; step < kThreads; step *= 2) {
    std::vector<unsigned> dsts;
    for (unsigned i = 0; i + step < kThreads; i += 2 * step) dsts.push_back(i);
    run_threads(static_cast<unsigned>(dsts.size()), [&](unsigned j) {
      const unsigned i = dsts[j];
      if (eplb_tracker_merge(trackers[i], trackers[i + step]) != EPLB_OK) failures.fetch_add(1);
    });
  }
  EXPECT_EQ(failures.load(), 0U);

  std::vector<double> loads(kLayers * kExperts);
  expect_ok(eplb_tracker_get_loads(trackers[0], loads.data(), loads.size()));
  EXPECT_EQ(loads, expected_loads);
  for (uint32_t layer = 0; layer < kLayers; ++layer) {
    std::vector<double> pairs(kExperts * (kExperts - 1) / 2);
    expect_ok(eplb_tracker_get_coactivation(trackers[0], layer, pairs.data(), pairs.size()));
    size_t index = 0;
    for (uint32_t a = 0; a < kExperts; ++a) {
      for (uint32_t c = a + 1; c < kExperts; ++c, ++index) {
        EXPECT_EQ(pairs[index], expected_pairs[(layer * kExperts + a) * kExperts + c])
            << "layer " << layer << " pair (" << a << ", " << c << ")";
      }
    }
  }
  for (eplb_tracker* tracker : trackers) eplb_tracker_destroy(tracker);
}

TEST(Tracker, ManyThreadsMergeOneSharedSource) {
  // Every thread merges the same (const) source into its own tracker at once.
  eplb_tracker_options options;
  eplb_tracker_options_init(&options);
  options.num_layers = 2;
  options.num_logical_experts = 8;
  options.top_k = 2;
  eplb_tracker* source = nullptr;
  expect_ok(eplb_tracker_create(&options, &source));
  const auto ids = batch_ids(7, 500, 2, 8);
  expect_ok(eplb_tracker_record(source, 1, ids.data(), 500, 2));
  std::vector<double> once(16);
  expect_ok(eplb_tracker_get_loads(source, once.data(), once.size()));

  std::vector<eplb_tracker*> trackers(kThreads, nullptr);
  for (eplb_tracker*& tracker : trackers) expect_ok(eplb_tracker_create(&options, &tracker));
  constexpr unsigned kMerges = 25;
  std::atomic<unsigned> failures{0};
  run_threads(kThreads, [&](unsigned t) {
    for (unsigned m = 0; m < kMerges; ++m) {
      if (eplb_tracker_merge(trackers[t], source) != EPLB_OK) failures.fetch_add(1);
      std::vector<double> read(16);  // concurrent const reads of the source too
      if (eplb_tracker_get_loads(source, read.data(), read.size()) != EPLB_OK || read != once) {
        failures.fetch_add(1);
      }
    }
  });
  EXPECT_EQ(failures.load(), 0U);
  for (eplb_tracker* tracker : trackers) {
    std::vector<double> loads(16);
    expect_ok(eplb_tracker_get_loads(tracker, loads.data(), loads.size()));
    for (size_t i = 0; i < loads.size(); ++i) EXPECT_EQ(loads[i], once[i] * kMerges) << i;
    eplb_tracker_destroy(tracker);
  }
  eplb_tracker_destroy(source);
}

eplb_planner_options planner_options(uint32_t algorithm, uint32_t threads) {
  eplb_planner_options o;
  eplb_planner_options_init(&o);
  o.algorithm = algorithm;
  o.num_layers = 4;
  o.num_logical_experts = 32;
  o.num_physical_experts = 48;
  o.num_groups = 4;
  o.num_nodes = 2;
  o.num_gpus = 8;
  o.num_threads = threads;
  return o;
}

std::vector<double> skewed_loads(uint64_t seed, size_t count) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> load(3.0, 1.2);
  std::vector<double> loads(count);
  for (double& v : loads) v = std::round(load(rng));
  return loads;
}

std::vector<int32_t> phy2log_of(const eplb_placement* placement, size_t size) {
  std::vector<int32_t> map(size);
  EXPECT_EQ(eplb_placement_get_phy2log(placement, map.data(), map.size()), EPLB_OK);
  return map;
}

// The oracle of the planner tests: the phy2log maps of `count` plans of skewed_loads(0..count-1)
// on one planner of planner_options(algorithm, 1), planned one after another.
std::vector<std::vector<int32_t>> serial_plans(uint32_t algorithm, unsigned count) {
  const eplb_planner_options o = planner_options(algorithm, 1);
  eplb_planner* planner = nullptr;
  expect_ok(eplb_planner_create(&o, &planner));
  std::vector<std::vector<int32_t>> maps;
  for (unsigned p = 0; p < count; ++p) {
    const auto loads = skewed_loads(p, 4 * 32);
    eplb_placement* placement = nullptr;
    expect_ok(eplb_planner_plan(planner, loads.data(), loads.size(), &placement));
    maps.push_back(phy2log_of(placement, 4 * 48));
    eplb_placement_destroy(placement);
  }
  eplb_planner_destroy(planner);
  return maps;
}

TEST(Planner, SeparatePlannersPerThreadMatchTheSerialPlans) {
  const std::vector<uint32_t> algorithms = {EPLB_ALGORITHM_DEEPSEEK, EPLB_ALGORITHM_BALANCED,
                                            EPLB_ALGORITHM_BALANCED_HIERARCHICAL};
  constexpr unsigned kPlans = 6;
  const size_t map_size = 4 * 48;
  // Serial oracle: one plan per (algorithm, load seed).
  std::vector<std::vector<int32_t>> expected;
  for (uint32_t algorithm : algorithms) {
    for (auto& map : serial_plans(algorithm, kPlans)) expected.push_back(std::move(map));
  }

  std::atomic<unsigned> plans{0};
  std::atomic<unsigned> mismatches{0};
  run_threads(kThreads, [&](unsigned t) {
    const size_t a = t % algorithms.size();
    // Half the threads also split layers over the planner's own worker threads.
    const eplb_planner_options o = planner_options(algorithms[a], t % 2 == 0 ? 1 : 3);
    eplb_planner* planner = nullptr;
    if (eplb_planner_create(&o, &planner) != EPLB_OK) {
      mismatches.fetch_add(1);
      return;
    }
    for (unsigned p = 0; p < kPlans; ++p) {
      const auto loads = skewed_loads(p, 4 * 32);
      eplb_placement* placement = nullptr;
      if (eplb_planner_plan(planner, loads.data(), loads.size(), &placement) != EPLB_OK) {
        mismatches.fetch_add(1);
        continue;
      }
      if (phy2log_of(placement, map_size) != expected[a * kPlans + p]) mismatches.fetch_add(1);
      plans.fetch_add(1);
      eplb_placement_destroy(placement);
    }
    eplb_planner_destroy(planner);
  });
  EXPECT_EQ(mismatches.load(), 0U);
  EXPECT_EQ(plans.load(), kThreads * kPlans);
}

// One plan control shared by planners on every thread (half of them splitting layers over
// worker threads too), watched by threads polling its progress and cancelled by one of them
// midway. No timing: every plan either returns the serial plan exactly or EPLB_ERR_CANCELLED,
// none succeeds once the cancel is seen, and progress never shows more steps done than announced
// nor goes back.
TEST(PlanControl, WatchersAndACancellerRacePlansOnManyThreads) {
  constexpr unsigned kPlans = 20;
  const size_t map_size = 4 * 48;
  const std::vector<std::vector<int32_t>> expected = serial_plans(EPLB_ALGORITHM_BALANCED, kPlans);
  eplb_plan_control* control = nullptr;
  expect_ok(eplb_plan_control_create(&control));
  constexpr unsigned kPlanners = kThreads - 2;  // and two watchers, one of which cancels
  std::atomic<unsigned> planners_done{0};
  std::atomic<unsigned> wrong{0};
  std::atomic<unsigned> cancelled{0};
  run_threads(kThreads, [&](unsigned t) {
    if (t >= kPlanners) {
      uint64_t last_done = 0;
      while (planners_done.load() < kPlanners) {
        eplb_plan_progress progress{};
        progress.struct_size = sizeof(progress);
        if (eplb_plan_control_get_progress(control, &progress) != EPLB_OK ||
            progress.steps_done > progress.steps_total || progress.steps_done < last_done) {
          wrong.fetch_add(1);
        }
        last_done = progress.steps_done;
        // Cancel once about a third of the plans' steps are done.
        if (t == kPlanners && progress.steps_done >= kPlanners * kPlans * 4 / 3 &&
            eplb_plan_control_cancel(control) != EPLB_OK) {
          wrong.fetch_add(1);
        }
        std::this_thread::yield();
      }
      return;
    }
    const eplb_planner_options o = planner_options(EPLB_ALGORITHM_BALANCED, t % 2 == 0 ? 1 : 3);
    eplb_planner* planner = nullptr;
    if (eplb_planner_create(&o, &planner) != EPLB_OK ||
        eplb_planner_set_control(planner, control) != EPLB_OK) {
      wrong.fetch_add(1);
    } else {
      const auto cancel_seen = [&] {
        eplb_plan_progress progress{};
        progress.struct_size = sizeof(progress);
        return eplb_plan_control_get_progress(control, &progress) == EPLB_OK &&
               progress.cancelled == 1;
      };
      for (unsigned p = 0; p < kPlans; ++p) {
        // Half way, wait for the cancel: it comes at a third of all steps, while other planners
        // are still in their first half, and every second half is then cancelled.
        if (p == kPlans / 2) {
          while (!cancel_seen()) std::this_thread::yield();
        }
        const auto loads = skewed_loads(p, 4 * 32);
        eplb_placement* placement = nullptr;
        const bool cancel_seen_before = cancel_seen();
        const eplb_status status =
            eplb_planner_plan(planner, loads.data(), loads.size(), &placement);
        if (status == EPLB_ERR_CANCELLED) {
          cancelled.fetch_add(1);
        } else if (status != EPLB_OK || cancel_seen_before ||
                   phy2log_of(placement, map_size) != expected[p]) {
          wrong.fetch_add(1);
        }
        eplb_placement_destroy(placement);
      }
    }
    eplb_planner_destroy(planner);
    planners_done.fetch_add(1);
  });
  EXPECT_EQ(wrong.load(), 0U);
  eplb_plan_progress progress{};
  progress.struct_size = sizeof(progress);
  expect_ok(eplb_plan_control_get_progress(control, &progress));
  EXPECT_EQ(progress.cancelled, 1U);
  EXPECT_GE(cancelled.load(), kPlanners * (kPlans - kPlans / 2));
  EXPECT_LE(progress.steps_done, progress.steps_total);
  eplb_plan_control_destroy(control);
}

TEST(Placement, ThreadsReadOneSharedPlacementAndSnapshot) {
  const eplb_planner_options o = planner_options(EPLB_ALGORITHM_BALANCED, 1);
  eplb_planner* planner = nullptr;
  expect_ok(eplb_planner_create(&o, &planner));
  const auto loads = skewed_loads(42, 4 * 32);
  eplb_placement* placement = nullptr;
  expect_ok(eplb_planner_plan(planner, loads.data(), loads.size(), &placement));
  eplb_planner_destroy(planner);
  eplb_snapshot_options so;
  eplb_snapshot_options_init(&so);
  so.loads = loads.data();
  so.loads_len = loads.size();
  void* buffer = nullptr;
  size_t size = 0;
  expect_ok(eplb_snapshot_save_to_buffer(placement, &so, &buffer, &size));
  eplb_snapshot* snapshot = nullptr;
  expect_ok(eplb_snapshot_load_from_buffer(buffer, size, &snapshot));

  // Serial oracle of everything the threads compute.
  const size_t map_size = 4 * 48;
  const auto map = phy2log_of(placement, map_size);
  eplb_metrics metrics{};
  metrics.struct_size = sizeof(metrics);
  expect_ok(eplb_metrics_compute(placement, loads.data(), loads.size(), &metrics));
  std::vector<double> gpu_loads(4 * 8);
  expect_ok(eplb_metrics_gpu_loads(placement, loads.data(), loads.size(), gpu_loads.data(),
                                   gpu_loads.size()));
  const auto rows = batch_ids(3, 200, 4, 32);
  double touched = 0;
  expect_ok(eplb_metrics_nodes_touched(placement, 1, rows.data(), 200, 4, &touched));
  char* json = nullptr;
  size_t json_len = 0;
  expect_ok(eplb_placement_to_sglang_json(placement, 3, &json, &json_len));
  const std::string sglang(json, json_len);
  eplb_buffer_free(json);

  constexpr unsigned kRounds = 20;
  std::atomic<unsigned> reads{0};
  std::atomic<unsigned> mismatches{0};
  run_threads(kThreads, [&](unsigned) {
    for (unsigned r = 0; r < kRounds; ++r) {
      bool same = phy2log_of(placement, map_size) == map;
      eplb_metrics m{};
      m.struct_size = sizeof(m);
      same = same && eplb_metrics_compute(placement, loads.data(), loads.size(), &m) == EPLB_OK &&
             m.balancedness == metrics.balancedness && m.duplicate_pairs == metrics.duplicate_pairs;
      std::vector<double> g(gpu_loads.size());
      same = same &&
             eplb_metrics_gpu_loads(placement, loads.data(), loads.size(), g.data(), g.size()) ==
                 EPLB_OK &&
             g == gpu_loads;
      double t = 0;
      same = same && eplb_metrics_nodes_touched(placement, 1, rows.data(), 200, 4, &t) == EPLB_OK &&
             t == touched;
      char* text = nullptr;
      size_t len = 0;
      same = same && eplb_placement_to_sglang_json(placement, 3, &text, &len) == EPLB_OK &&
             std::string(text, len) == sglang;
      eplb_buffer_free(text);
      eplb_placement* stored = nullptr;
      same = same && eplb_snapshot_get_placement(snapshot, &stored) == EPLB_OK &&
             phy2log_of(stored, map_size) == map;
      eplb_placement_destroy(stored);
      std::vector<double> l(loads.size());
      same = same && eplb_snapshot_get_loads(snapshot, l.data(), l.size()) == EPLB_OK && l == loads;
      if (!same) mismatches.fetch_add(1);
      reads.fetch_add(1);
    }
  });
  EXPECT_EQ(mismatches.load(), 0U);
  EXPECT_EQ(reads.load(), kThreads * kRounds);
  eplb_snapshot_destroy(snapshot);
  eplb_buffer_free(buffer);
  eplb_placement_destroy(placement);
}

TEST(Errors, EachThreadKeepsItsOwnLastErrorMessage) {
  constexpr unsigned kRounds = 200;
  std::atomic<unsigned> wrong{0};
  run_threads(kThreads, [&](unsigned t) {
    for (unsigned r = 0; r < kRounds; ++r) {
      // A failure whose message carries this thread's number, then a success that clears it.
      eplb_planner_options o = planner_options(EPLB_ALGORITHM_DEEPSEEK, 1);
      o.num_threads = 1000 + t;
      eplb_planner* planner = nullptr;
      if (eplb_planner_create(&o, &planner) != EPLB_ERR_INVALID_ARGUMENT) wrong.fetch_add(1);
      if (std::string(eplb_last_error_message()).find(std::to_string(1000 + t)) ==
          std::string::npos) {
        wrong.fetch_add(1);
      }
      uint32_t algorithm = 0;
      if (eplb_algorithm_from_name("deepseek", &algorithm) != EPLB_OK ||
          std::string(eplb_last_error_message()) != "") {
        wrong.fetch_add(1);
      }
    }
  });
  EXPECT_EQ(wrong.load(), 0U);
}

// Two versions of a placement that differ in every layer, told apart by label and phy2log.
struct Version {
  std::string label;
  std::vector<int32_t> phy2log;
  eplb_placement* placement = nullptr;
};

TEST(Snapshot, ConcurrentSavesToOnePathAlwaysLeaveOneCompleteVersion) {
  constexpr uint32_t kLayers = 8;
  constexpr uint32_t kSlots = 64;
  std::vector<Version> versions(kThreads);
  for (unsigned v = 0; v < kThreads; ++v) {
    versions[v].label = "version-" + std::to_string(v);
    versions[v].phy2log.resize(kLayers * kSlots);
    for (uint32_t i = 0; i < kLayers * kSlots; ++i) {
      versions[v].phy2log[i] = static_cast<int32_t>((i + v) % kSlots);
    }
    expect_ok(eplb_placement_create_from_phy2log(
        kLayers, kSlots, kSlots, 1, 8, versions[v].phy2log.data(), versions[v].phy2log.size(),
        &versions[v].placement));
  }
  std::string pattern = (std::filesystem::temp_directory_path() / "eplb-conc-XXXXXX").string();
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  const std::filesystem::path directory = pattern;
  const std::string path = (directory / "shared.eplb").string();
  expect_ok(eplb_snapshot_save(versions[0].placement, nullptr, path.c_str()));

  // Half the threads save (each its own version, repeatedly), half load and check.
  constexpr unsigned kSaves = 30;
  constexpr unsigned kLoads = 60;
  std::atomic<unsigned> saves{0};
  std::atomic<unsigned> loads{0};
  std::atomic<unsigned> bad{0};
  run_threads(kThreads, [&](unsigned t) {
    if (t % 2 == 0) {
      eplb_snapshot_options so;
      eplb_snapshot_options_init(&so);
      so.label = versions[t].label.c_str();
      so.compression_level = 1;
      for (unsigned s = 0; s < kSaves; ++s) {
        if (eplb_snapshot_save(versions[t].placement, &so, path.c_str()) == EPLB_OK) {
          saves.fetch_add(1);
        } else {
          bad.fetch_add(1);
        }
      }
      return;
    }
    for (unsigned l = 0; l < kLoads; ++l) {
      eplb_snapshot* snapshot = nullptr;
      if (eplb_snapshot_load(path.c_str(), &snapshot) != EPLB_OK) {
        bad.fetch_add(1);
        continue;
      }
      eplb_snapshot_info info{};
      info.struct_size = sizeof(info);
      eplb_placement* placement = nullptr;
      bool complete = eplb_snapshot_get_info(snapshot, &info) == EPLB_OK &&
                      eplb_snapshot_get_placement(snapshot, &placement) == EPLB_OK;
      if (complete) {
        const auto map = phy2log_of(placement, kLayers * kSlots);
        bool matched = false;
        for (const Version& version : versions) {
          // Version 0 was first saved without a label.
          const bool label_ok = version.label == info.label ||
                                (&version == &versions[0] && std::string(info.label).empty());
          matched = matched || (label_ok && map == version.phy2log);
        }
        complete = matched;
      }
      if (complete) loads.fetch_add(1);
      if (!complete) bad.fetch_add(1);
      eplb_placement_destroy(placement);
      eplb_snapshot_destroy(snapshot);
    }
  });
  EXPECT_EQ(bad.load(), 0U);
  EXPECT_EQ(saves.load(), (kThreads / 2) * kSaves);
  EXPECT_EQ(loads.load(), (kThreads / 2) * kLoads);
  // No temporary file is left behind by the saves that lost the race to rename.
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "shared.eplb") << "left behind: " << entry.path();
  }
  EXPECT_EQ(files, 1U);
  std::filesystem::remove_all(directory);
  for (Version& version : versions) eplb_placement_destroy(version.placement);
}

}  // namespace
