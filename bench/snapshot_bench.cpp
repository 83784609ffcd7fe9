// eplb_bench_snapshot: how big a DeepSeek-V3 placement snapshot is and how long it takes to
// save, load and inspect, through the public C API only.
//
// Shape: 58 MoE layers x 256 experts in 8 groups, 288 slots per layer on 4 nodes x 8 GPUs,
// planned with the default planner on the CLI's synthetic DeepSeek-V3-shaped loads (seed 1).
// Two files: the placement alone, and with its load statistics (plus the metrics). Each time is
// the median over samples of a batch of calls (the per-call time); saving to a file includes the
// fsync of the file and of its directory. For scale, the size of the same placement as SGLang's
// JSON map is printed too.
//
// Usage: eplb_bench_snapshot [--samples N] [--dir DIR]   (DIR: where files are written; default
// a fresh directory under the system's temporary directory, removed afterwards)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eplb/eplb.h"
#include "eplb/library.hpp"
#include "eplb/synthetic_workload.hpp"
#include "eplb/table.hpp"

namespace {

using eplb_cli::check;
using eplb_cli::fixed;
using Clock = std::chrono::steady_clock;

struct SnapshotDeleter {
  void operator()(eplb_snapshot* s) const { eplb_snapshot_destroy(s); }
};
using SnapshotPtr = std::unique_ptr<eplb_snapshot, SnapshotDeleter>;
struct BufferDeleter {
  void operator()(void* b) const { eplb_buffer_free(b); }
};

// Median over `samples` of the mean time of `batch` calls, in milliseconds.
template <typename Body>
double median_ms(int samples, int batch, Body&& body) {
  std::vector<double> times;
  times.reserve(static_cast<std::size_t>(samples));
  body();  // warm-up
  for (int s = 0; s < samples; ++s) {
    const auto start = Clock::now();
    for (int i = 0; i < batch; ++i) body();
    const std::chrono::duration<double, std::milli> elapsed = Clock::now() - start;
    times.push_back(elapsed.count() / batch);
  }
  std::nth_element(times.begin(), times.begin() + static_cast<long>(times.size() / 2), times.end());
  return times[times.size() / 2];
}

std::string ms(double value) { return fixed(value, value < 1 ? 3 : 2); }

struct Row {
  std::string name;
  std::size_t bytes = 0;
  double save_buffer = 0;
  double save_file = 0;
  double load_buffer = 0;
  double load_file = 0;
  double get_placement = 0;
  double inspect = 0;
};

Row measure(const std::string& name, const eplb_placement* placement,
            const eplb_snapshot_options& options, const std::string& path, int samples) {
  Row row;
  row.name = name;
  std::vector<unsigned char> bytes;
  {
    void* buffer = nullptr;
    std::size_t size = 0;
    check(eplb_snapshot_save_to_buffer(placement, &options, &buffer, &size), "save: ");
    const std::unique_ptr<void, BufferDeleter> owned(buffer);
    bytes.assign(static_cast<unsigned char*>(buffer), static_cast<unsigned char*>(buffer) + size);
  }
  row.bytes = bytes.size();
  row.save_buffer = median_ms(samples, 10, [&] {
    void* buffer = nullptr;
    std::size_t size = 0;
    check(eplb_snapshot_save_to_buffer(placement, &options, &buffer, &size), "save: ");
    eplb_buffer_free(buffer);
  });
  row.save_file = median_ms(
      samples, 2, [&] { check(eplb_snapshot_save(placement, &options, path.c_str()), "save: "); });
  row.load_buffer = median_ms(samples, 50, [&] {
    eplb_snapshot* snapshot = nullptr;
    check(eplb_snapshot_load_from_buffer(bytes.data(), bytes.size(), &snapshot), "load: ");
    eplb_snapshot_destroy(snapshot);
  });
  row.load_file = median_ms(samples, 50, [&] {
    eplb_snapshot* snapshot = nullptr;
    check(eplb_snapshot_load(path.c_str(), &snapshot), "load: ");
    eplb_snapshot_destroy(snapshot);
  });
  eplb_snapshot* raw = nullptr;
  check(eplb_snapshot_load_from_buffer(bytes.data(), bytes.size(), &raw), "load: ");
  const SnapshotPtr snapshot(raw);
  row.get_placement = median_ms(samples, 50, [&] {
    eplb_placement* copy = nullptr;
    check(eplb_snapshot_get_placement(snapshot.get(), &copy), "get_placement: ");
    eplb_placement_destroy(copy);
  });
  row.inspect = median_ms(samples, 50, [&] {
    eplb_snapshot_info info{};
    info.struct_size = sizeof(info);
    check(eplb_snapshot_inspect(path.c_str(), &info), "inspect: ");
  });
  return row;
}

int run(int samples, std::string dir) {
  bool remove_dir = false;
  if (dir.empty()) {
    dir = (std::filesystem::temp_directory_path() /
           ("eplb_bench_snapshot_" + std::to_string(::getpid())))
              .string();
    remove_dir = true;
  }
  std::filesystem::create_directories(dir);

  eplb_cli::WorkloadSpec spec;  // DeepSeek-V3: 58 x 256 in 8 groups, seed 1
  const std::vector<double> loads = eplb_cli::synthetic_loads(spec);
  eplb_planner_options options;
  eplb_planner_options_init(&options);
  options.num_layers = spec.num_layers;
  options.num_logical_experts = spec.num_experts;
  options.num_physical_experts = 288;
  options.num_groups = spec.num_groups;
  options.num_nodes = 4;
  options.num_gpus = 32;
  const auto planner = eplb_cli::make_planner(options, "planner: ");
  const auto placement = eplb_cli::plan(planner.get(), loads);
  const auto info = eplb_cli::info_of(placement.get());

  std::cout << "eplb_bench_snapshot, libeplb " << eplb_version_string() << ", snapshot format "
            << EPLB_SNAPSHOT_FORMAT_MAJOR << "." << EPLB_SNAPSHOT_FORMAT_MINOR << "\n"
            << "placement: " << info.num_layers << " layers x " << info.num_logical_experts
            << " experts, " << info.num_physical_experts << " slots on " << info.num_gpus
            << " GPUs in " << info.num_nodes << " nodes, "
            << eplb_cli::algorithm_name(info.algorithm) << ", log2phy width " << info.log2phy_width
            << "; zstd level 3; median of " << samples << " samples\n";
  const std::size_t raw_arrays =
      sizeof(int32_t) * info.num_layers *
      (info.num_physical_experts + info.num_logical_experts * (1 + info.log2phy_width));
  std::cout << "uncompressed arrays: phy2log + counts + log2phy " << raw_arrays << " bytes, loads "
            << sizeof(double) * loads.size() << " bytes\n";
  char* json = nullptr;
  std::size_t json_len = 0;
  if (eplb_placement_to_sglang_json(placement.get(), 0, &json, &json_len) == EPLB_OK) {
    std::cout << "SGLang JSON map of the same placement: " << json_len << " bytes\n";
    eplb_buffer_free(json);
  }
  std::cout << '\n';

  eplb_snapshot_options without;
  eplb_snapshot_options_init(&without);
  eplb_snapshot_options with = without;
  with.loads = loads.data();
  with.loads_len = loads.size();
  std::vector<Row> rows;
  rows.push_back(
      measure("placement only", placement.get(), without, dir + "/placement.eplb", samples));
  rows.push_back(
      measure("with statistics", placement.get(), with, dir + "/with_loads.eplb", samples));

  eplb_cli::Table table({"snapshot", "file bytes", "save buffer ms", "save file ms",
                         "load buffer ms", "load file ms", "get_placement ms", "inspect ms"});
  for (const Row& r : rows) {
    table.add_row({r.name, std::to_string(r.bytes), ms(r.save_buffer), ms(r.save_file),
                   ms(r.load_buffer), ms(r.load_file), ms(r.get_placement), ms(r.inspect)});
  }
  table.print(std::cout);
  if (remove_dir) std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int samples = 31;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--samples" && i + 1 < argc) {
      samples = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      std::cerr << "usage: eplb_bench_snapshot [--samples N] [--dir DIR]\n";
      return arg == "--help" || arg == "-h" ? 0 : 2;
    }
  }
  try {
    return run(samples, dir);
  } catch (const std::exception& error) {
    std::cerr << "eplb_bench_snapshot: " << error.what() << '\n';
    return 1;
  }
}
