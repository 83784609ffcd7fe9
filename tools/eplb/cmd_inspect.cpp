// eplb inspect: what an .eplb snapshot holds — shape, topology, algorithm, provenance, metrics
// and per-GPU loads under its stored statistics — as text or JSON. The whole snapshot is loaded,
// so every checksum and the placement's consistency are verified on the way.
#include <ctime>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "eplb/commands.hpp"
#include "eplb/library.hpp"
#include "eplb/report.hpp"
#include "eplb/table.hpp"

namespace eplb_cli {

namespace {

struct InspectArgs {
  std::string file;
  std::optional<std::uint32_t> layer;
  bool json = false;
};

struct SnapshotDeleter {
  void operator()(eplb_snapshot* s) const { eplb_snapshot_destroy(s); }
};

struct Loaded {
  eplb_snapshot_info info{};
  PlacementPtr placement;
  eplb_placement_info placement_info{};
  std::vector<double> loads;  // empty without statistics
};

// A damaged or unreadable file is bad input (exit 2); only the library failing is exit 1.
Loaded load(const std::string& path) {
  eplb_snapshot* raw = nullptr;
  const eplb_status status = eplb_snapshot_load(path.c_str(), &raw);
  if (status == EPLB_ERR_OUT_OF_MEMORY || status == EPLB_ERR_INTERNAL) check(status, "");
  if (status != EPLB_OK) {
    throw InputError(std::string(eplb_last_error_message()) + " [" + eplb_status_string(status) +
                     "]");
  }
  const std::unique_ptr<eplb_snapshot, SnapshotDeleter> snapshot(raw);
  Loaded loaded;
  loaded.info.struct_size = sizeof(loaded.info);
  check(eplb_snapshot_get_info(snapshot.get(), &loaded.info), "");
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

void print_text(const std::string& path, const Loaded& s, std::optional<std::uint32_t> layer) {
  const eplb_snapshot_info& i = s.info;
  std::cout << "Snapshot " << path << ": format " << i.format_major << "." << i.format_minor << ", "
            << i.file_size << " bytes\n";
  std::cout << "  written by libeplb " << i.library_version << " at "
            << utc_time(i.created_unix_seconds);
  if (i.label[0] != '\0') std::cout << ", label \"" << i.label << "\"";
  std::cout << "\n";
  std::cout << "Shape:      " << i.num_layers << " MoE layers x " << i.num_logical_experts
            << " logical experts, " << i.num_physical_experts << " slots per layer\n";
  std::cout << "Topology:   " << i.num_gpus << " GPUs in " << i.num_nodes << " nodes ("
            << s.placement_info.slots_per_gpu << " slots per GPU), " << i.num_groups
            << " expert groups\n";
  std::cout << "Algorithm:  " << algorithm_text(i.algorithm) << " ("
            << (s.placement_info.hierarchical != 0 ? "hierarchical" : "global") << "), planned in "
            << fixed(i.plan_seconds * 1e3, 3) << " ms; at most " << s.placement_info.log2phy_width
            << " replicas of one expert\n";
  std::cout << "Statistics: "
            << (i.has_loads != 0 ? "load statistics stored" : "no load statistics") << "; "
            << (i.has_coactivation != 0 ? "co-activation statistics stored"
                                        : "no co-activation statistics")
            << "\n";
  if (i.has_loads == 0) {
    std::cout << "\nNo metrics or GPU loads: the snapshot holds no load statistics.\n";
    return;
  }
  const auto m = metrics_of(s.placement.get(), s.loads);
  std::cout << "\nMetrics under the stored loads:\n";
  Table metrics({"metric", "value"});
  metrics.add_row({"GPU balancedness (mean/max, mean over layers)", fixed(m.balancedness, 4)});
  metrics.add_row({"worst layer balancedness", fixed(m.min_balancedness, 4)});
  metrics.add_row({"node balancedness", fixed(m.node_balancedness, 4)});
  metrics.add_row({"max / mean GPU load", fixed(m.max_over_mean, 4)});
  metrics.add_row({"max GPU load / lower bound", fixed(m.max_load_over_bound, 4)});
  metrics.add_row({"worst layer max / lower bound", fixed(m.worst_max_load_over_bound, 4)});
  metrics.add_row({"max GPU load / node ceiling", fixed(m.max_load_over_node_bound, 4)});
  metrics.add_row({"(layer, GPU) pairs with a duplicate", std::to_string(m.duplicate_pairs)});
  metrics.add_row({"replicas off their expert's main node", std::to_string(m.cross_node_replicas)});
  metrics.add_row({"most replicas of one expert", std::to_string(m.max_replicas)});
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

void print_json(const std::string& path, const Loaded& s, std::optional<std::uint32_t> layer) {
  const eplb_snapshot_info& i = s.info;
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
  // The label is checked UTF-8, but be safe: replace anything invalid rather than throw.
  std::cout << document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

void run_inspect(const InspectArgs& args) {
  const Loaded snapshot = load(args.file);
  if (args.layer) {
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
  if (args.json) {
    print_json(args.file, snapshot, args.layer);
  } else {
    print_text(args.file, snapshot, args.layer);
  }
}

}  // namespace

void register_inspect_command(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  auto* command = app.add_subcommand(
      "inspect",
      "Show what an .eplb snapshot holds: shape, topology, algorithm, provenance, "
      "metrics and per-GPU loads under its stored statistics");
  command->add_option("file", args->file, "The snapshot (.eplb)")->required()->option_text("FILE");
  command
      ->add_option("--layer", args->layer,
                   "Show the GPU loads of this layer (0-based) instead of the sum over layers")
      ->option_text("N");
  command->add_flag("--json", args->json, "Print one JSON document instead of text");
  command->callback([args] { run_inspect(*args); });
}

}  // namespace eplb_cli
