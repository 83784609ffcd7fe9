// eplb inspect: what an .eplb snapshot holds — shape, topology, algorithm, provenance, metrics
// and per-GPU loads under its stored statistics — as text or JSON. The whole snapshot is loaded,
// so every checksum and the placement's consistency are verified on the way.
#include <algorithm>
#include <ctime>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "eplb/commands.hpp"
#include "eplb/input_file.hpp"
#include "eplb/json_output.hpp"
#include "eplb/library.hpp"
#include "eplb/report.hpp"
#include "eplb/table.hpp"
#include "eplb/tracker_handle.hpp"

namespace eplb_cli {

namespace {

struct Loaded {
  eplb_snapshot_info info{};
  PlacementPtr placement;
  eplb_placement_info placement_info{};
  std::vector<double> loads;  // empty without statistics
  TrackerPtr tracker;         // co-activation statistics, if stored
};

// When `bytes` (the content of `path`, no snapshot) is one of the JSON files the other commands
// read: says which, and the command that makes a snapshot of it.
void refuse_json(const std::string& path, const std::string& bytes) {
  if (!starts_like_json(bytes)) return;
  const nlohmann::json document = nlohmann::json::parse(bytes, nullptr, false);
  if (!document.is_object()) return;
  const std::string head = path + " is not an .eplb snapshot (inspect shows snapshots) but ";
  if (document.contains("logical_count")) {
    throw InputError(head +
                     "an SGLang load file: plan a snapshot from it with 'eplb plan --counts " +
                     path + " --replicas R --gpus G --out OUT.eplb'");
  }
  if (document.contains("physical_to_logical_map")) {
    throw InputError(head + "an SGLang placement map: make a snapshot of it with 'eplb convert " +
                     path + " OUT.eplb --gpus G' (its GPU count is not in the map)");
  }
  if (document.contains("layer_list") || document.contains("moe_layer_count")) {
    throw InputError(head + "a vLLM-Ascend expert map: make a snapshot of it with 'eplb convert " +
                     path + " OUT.eplb'");
  }
}

// The file is read once (a pipe or a FIFO works). A damaged or unreadable file is bad input
// (exit 2); only the library failing is exit 1.
Loaded load(const std::string& path) {
  const std::string bytes = read_input(path, "");
  if (!starts_like_snapshot(bytes)) refuse_json(path, bytes);
  Loaded loaded;
  const SnapshotPtr snapshot = decode_snapshot(path, bytes, loaded.info);
  if (loaded.info.has_coactivation != 0) {
    eplb_tracker* tracker = nullptr;
    check(eplb_snapshot_get_tracker(snapshot.get(), &tracker), "");
    loaded.tracker.reset(tracker);
  }
  if (loaded.info.num_physical_experts == 0) return loaded;  // a statistics snapshot
  eplb_placement* placement = nullptr;
  check(eplb_snapshot_get_placement(snapshot.get(), &placement), "");
  loaded.placement.reset(placement);
  loaded.placement_info = info_of(placement);
  if (loaded.info.has_loads != 0) {
    loaded.loads.resize(std::size_t{loaded.info.num_layers} * loaded.info.num_logical_experts);
    check(eplb_snapshot_get_loads(snapshot.get(), loaded.loads.data(), loaded.loads.size()), "");
  }
  return loaded;
}

std::string utc_time(std::uint64_t seconds) {
  const auto time = static_cast<std::time_t>(seconds);
  std::tm parts{};
  if (::gmtime_r(&time, &parts) == nullptr) return std::to_string(seconds) + " (unix time)";
  char text[64];
  const std::size_t length = std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &parts);
  return length == 0 ? std::to_string(seconds) + " (unix time)" : std::string(text, length);
}

std::string iso_time(std::uint64_t seconds) {
  const auto time = static_cast<std::time_t>(seconds);
  std::tm parts{};
  char text[64];
  if (::gmtime_r(&time, &parts) == nullptr) return "";
  const std::size_t length = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return std::string(text, length);
}

std::string algorithm_text(std::uint32_t id) {
  if (id == 0) return "imported";
  const char* name = eplb_algorithm_name(id);
  return name == nullptr ? "unknown (id " + std::to_string(id) + ")" : name;
}

// Per-GPU loads of one layer, or summed over layers.
std::vector<double> gpu_loads(const Loaded& s, std::optional<std::uint32_t> layer) {
  const std::uint32_t gpus = s.info.num_gpus;
  std::vector<double> all(std::size_t{s.info.num_layers} * gpus);
  check(eplb_metrics_gpu_loads(s.placement.get(), s.loads.data(), s.loads.size(), all.data(),
                               all.size()),
        "");
  if (layer) {
    const auto* begin = all.data() + std::size_t{*layer} * gpus;
    return {begin, begin + gpus};
  }
  std::vector<double> sum(gpus, 0.0);
  for (std::size_t l = 0; l < s.info.num_layers; ++l) {
    for (std::size_t g = 0; g < gpus; ++g) sum[g] += all[l * gpus + g];
  }
  return sum;
}

// The co-activation statistics: options, tokens per layer, the most frequent pairs.
struct StatisticsSummary {
  eplb_tracker_options options{};
  std::vector<std::uint64_t> tokens, batches;
  std::vector<std::size_t> sampled_rows;
  std::vector<std::vector<double>> pairs;  // [layers][E*(E-1)/2]
};

StatisticsSummary summarise(const eplb_tracker* tracker) {
  StatisticsSummary s;
  s.options = tracker_options_of(tracker);
  const std::uint32_t e = s.options.num_logical_experts;
  for (std::uint32_t l = 0; l < s.options.num_layers; ++l) {
    std::uint64_t batches = 0;
    std::uint64_t tokens = 0;
    check(eplb_tracker_get_layer_counts(tracker, l, &batches, &tokens), "");
    s.batches.push_back(batches);
    s.tokens.push_back(tokens);
    std::size_t rows = 0;
    check(eplb_tracker_get_samples(tracker, l, nullptr, 0, &rows), "");
    s.sampled_rows.push_back(rows);
    std::vector<double> pairs(std::size_t{e} * (e - 1) / 2);
    if (!pairs.empty()) {
      check(eplb_tracker_get_coactivation(tracker, l, pairs.data(), pairs.size()), "");
    }
    s.pairs.push_back(std::move(pairs));
  }
  return s;
}

// The `count` most frequent pairs summed over layers: (a, b, count).
std::vector<std::tuple<std::uint32_t, std::uint32_t, double>> top_pairs(const StatisticsSummary& s,
                                                                        std::size_t count) {
  const std::uint32_t e = s.options.num_logical_experts;
  std::vector<std::tuple<std::uint32_t, std::uint32_t, double>> all;
  std::size_t index = 0;
  for (std::uint32_t a = 0; a < e; ++a) {
    for (std::uint32_t b = a + 1; b < e; ++b, ++index) {
      double sum = 0;
      for (const auto& layer : s.pairs) sum += layer[index];
      if (sum > 0) all.emplace_back(a, b, sum);
    }
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const auto& x, const auto& y) { return std::get<2>(x) > std::get<2>(y); });
  if (all.size() > count) all.resize(count);
  return all;
}

void print_statistics_text(const StatisticsSummary& s) {
  const auto& o = s.options;
  std::uint64_t total = 0;
  std::uint64_t least = s.tokens.empty() ? 0 : s.tokens.front();
  std::uint64_t most = 0;
  for (auto t : s.tokens) {
    total += t;
    least = std::min(least, t);
    most = std::max(most, t);
  }
  std::cout << "\nCo-activation statistics: " << o.num_layers << " layers x "
            << o.num_logical_experts << " experts, top-" << o.top_k << ", window "
            << window_text(o.window);
  if (o.window == EPLB_WINDOW_SLIDING) std::cout << " (" << o.window_batches << " batches)";
  if (o.window == EPLB_WINDOW_DECAY) std::cout << " (factor " << o.decay << " per batch)";
  std::cout << "\n  tokens seen: " << total << " (per layer " << least << " to " << most
            << "), up to " << o.reservoir_capacity << " sampled rows per layer\n";
  const auto top = top_pairs(s, 5);
  if (!top.empty()) {
    std::cout << "  most frequent pairs (summed over layers):";
    for (const auto& [a, b, n] : top) std::cout << " (" << a << ", " << b << ") " << fixed(n, 0);
    std::cout << "\n";
  }
}

nlohmann::json statistics_json(const StatisticsSummary& s, const Loaded& loaded, bool pairs) {
  const auto& o = s.options;
  nlohmann::json top = nlohmann::json::array();
  for (const auto& [a, b, n] : top_pairs(s, 10)) top.push_back({{"a", a}, {"b", b}, {"count", n}});
  std::vector<double> loads = tracker_loads(loaded.tracker.get());
  nlohmann::json layer_loads = nlohmann::json::array();
  for (std::uint32_t l = 0; l < o.num_layers; ++l) {
    const auto* begin = loads.data() + std::size_t{l} * o.num_logical_experts;
    layer_loads.push_back(std::vector<double>(begin, begin + o.num_logical_experts));
  }
  nlohmann::json document = {
      {"num_layers", o.num_layers},
      {"num_experts", o.num_logical_experts},
      {"top_k", o.top_k},
      {"window", window_text(o.window)},
      {"window_batches", o.window_batches},
      {"decay", o.decay},
      {"reservoir_capacity", o.reservoir_capacity},
      {"tokens_per_layer", s.tokens},
      {"batches_per_layer", s.batches},
      {"sampled_rows_per_layer", s.sampled_rows},
      {"loads", layer_loads},
      {"top_pairs", top},
  };
  if (pairs) document["coactivation"] = s.pairs;
  return document;
}

void print_text(const std::string& path, const Loaded& s, std::optional<std::uint32_t> layer) {
  const eplb_snapshot_info& i = s.info;
  std::cout << "Snapshot " << path << ": format " << i.format_major << "." << i.format_minor << ", "
            << i.file_size << " bytes\n";
  std::cout << "  written by libeplb " << i.library_version << " at "
            << utc_time(i.created_unix_seconds);
  if (i.label[0] != '\0') std::cout << ", label " << quoted(i.label);
  std::cout << "\n";
  if (!s.placement) {
    std::cout << "Statistics snapshot (no placement; plan from it with 'eplb plan --stats')\n";
    print_statistics_text(summarise(s.tracker.get()));
    return;
  }
  std::cout << "Shape:      " << counted(i.num_layers, "layer") << " x "
            << counted(i.num_logical_experts, "logical expert") << ", "
            << counted(i.num_physical_experts, "slot") << " per layer\n";
  std::cout << "Topology:   " << counted(i.num_gpus, "GPU") << " in "
            << counted(i.num_nodes, "node") << " ("
            << counted(s.placement_info.slots_per_gpu, "slot") << " per GPU), "
            << counted(i.num_groups, "expert group") << "\n";
  if (i.algorithm == 0) {  // converted from a JSON map: nothing was planned here
    std::cout << "Algorithm:  none (imported map); at most ";
  } else {
    std::cout << "Algorithm:  " << algorithm_text(i.algorithm) << " ("
              << (s.placement_info.hierarchical != 0 ? "hierarchical" : "global")
              << "), planned in " << fixed(i.plan_seconds * 1e3, 3) << " ms; at most ";
  }
  std::cout << s.placement_info.log2phy_width << " replicas of one expert in a layer\n";
  std::cout << "Statistics: "
            << (i.has_loads != 0 ? "load statistics stored" : "no load statistics") << "; "
            << (i.has_coactivation != 0 ? "co-activation statistics stored"
                                        : "no co-activation statistics")
            << "\n";
  if (s.tracker) print_statistics_text(summarise(s.tracker.get()));
  if (i.has_loads == 0) {
    std::cout << "\nNo metrics or GPU loads: the snapshot holds no load statistics.\n";
    return;
  }
  const auto m = metrics_of(s.placement.get(), s.loads);
  std::cout << "\nMetrics under the stored loads:\n";
  Table metrics = metrics_table(m);
  metrics.print(std::cout);

  const auto loads = gpu_loads(s, layer);
  double total = 0;
  for (double load : loads) total += load;
  const double mean = total / static_cast<double>(loads.size());
  std::cout << "\nGPU loads ("
            << (layer ? "layer " + std::to_string(*layer)
                      : "summed over the " + std::to_string(i.num_layers) + " layers")
            << "):\n";
  Table table({"gpu", "node", "load", "load / mean"});
  const std::uint32_t gpus_per_node = i.num_gpus / i.num_nodes;
  for (std::size_t g = 0; g < loads.size(); ++g) {
    table.add_row({std::to_string(g), std::to_string(g / gpus_per_node), fixed(loads[g], 1),
                   mean > 0 ? fixed(loads[g] / mean, 4) : "-"});
  }
  table.print(std::cout);
}

void print_snapshot_json(const std::string& path, const Loaded& s,
                         std::optional<std::uint32_t> layer, bool pairs) {
  const eplb_snapshot_info& i = s.info;
  const nlohmann::json statistics =
      s.tracker ? statistics_json(summarise(s.tracker.get()), s, pairs) : nlohmann::json(nullptr);
  if (!s.placement) {
    const nlohmann::json document = {
        {"file", path},
        {"format_major", i.format_major},
        {"format_minor", i.format_minor},
        {"file_size", i.file_size},
        {"library_version", i.library_version},
        {"created_unix_seconds", i.created_unix_seconds},
        {"created_utc", iso_time(i.created_unix_seconds)},
        {"label", i.label},
        {"has_placement", false},
        {"num_layers", i.num_layers},
        {"num_logical_experts", i.num_logical_experts},
        {"has_loads", false},
        {"has_coactivation", true},
        {"statistics", statistics},
    };
    print_json(document);
    return;
  }
  nlohmann::json document = {
      {"file", path},
      {"format_major", i.format_major},
      {"format_minor", i.format_minor},
      {"file_size", i.file_size},
      {"library_version", i.library_version},
      {"created_unix_seconds", i.created_unix_seconds},
      {"created_utc", iso_time(i.created_unix_seconds)},
      {"label", i.label},
      {"num_layers", i.num_layers},
      {"num_logical_experts", i.num_logical_experts},
      {"num_physical_experts", i.num_physical_experts},
      {"num_gpus", i.num_gpus},
      {"num_nodes", i.num_nodes},
      {"num_groups", i.num_groups},
      {"slots_per_gpu", s.placement_info.slots_per_gpu},
      {"log2phy_width", s.placement_info.log2phy_width},
      {"algorithm", algorithm_text(i.algorithm)},
      {"algorithm_id", i.algorithm},
      {"policy", s.placement_info.hierarchical != 0 ? "hierarchical" : "global"},
      {"plan_seconds", i.plan_seconds},
      {"has_loads", i.has_loads != 0},
      {"has_coactivation", i.has_coactivation != 0},
      {"has_placement", true},
      {"statistics", statistics},
      {"stored_balancedness", i.balancedness >= 0 ? nlohmann::json(i.balancedness) : nullptr},
      {"summary", nullptr},
      {"gpu_loads", nullptr},
  };
  if (i.has_loads != 0) {
    document["summary"] = metrics_json(metrics_of(s.placement.get(), s.loads));
    document["gpu_loads"] = {
        {"layer", layer ? nlohmann::json(*layer) : nlohmann::json(nullptr)},
        {"loads", gpu_loads(s, layer)},
    };
  }
  print_json(document);
}

}  // namespace

void run_inspect(const InspectArgs& args) {
  const Loaded snapshot = load(args.file);
  if (args.layer) {
    if (!snapshot.placement) {
      throw InputError("--layer " + std::to_string(*args.layer) + ": " + args.file +
                       " is a statistics snapshot (no placement, no GPU loads)");
    }
    if (snapshot.info.has_loads == 0) {
      throw InputError("--layer " + std::to_string(*args.layer) + ": " + args.file +
                       " holds no load statistics");
    }
    if (*args.layer >= snapshot.info.num_layers) {
      throw InputError("--layer " + std::to_string(*args.layer) + " is out of range: " + args.file +
                       " has " + std::to_string(snapshot.info.num_layers) + " layers (0.." +
                       std::to_string(snapshot.info.num_layers - 1) + ")");
    }
  }
  if (args.pairs && !snapshot.tracker) {
    throw InputError("--pairs: " + args.file +
                     " holds no co-activation statistics (write them with 'eplb record', or plan "
                     "with --stats into an .eplb snapshot)");
  }
  if (args.json) {
    print_snapshot_json(args.file, snapshot, args.layer, args.pairs);
  } else {
    print_text(args.file, snapshot, args.layer);
  }
}

}  // namespace eplb_cli
