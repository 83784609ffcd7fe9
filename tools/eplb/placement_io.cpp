#include "eplb/placement_io.hpp"

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>

#include "eplb/atomic_file.hpp"
#include "eplb/cli_error.hpp"
#include "eplb/input_file.hpp"
#include "eplb/load_file.hpp"
#include "eplb/placement_json.hpp"
#include "eplb/table.hpp"

namespace eplb_cli {

namespace {

// Bad input files end the command with exit status 2; only allocation failures and library bugs
// are failures of the tool itself.
void check_input(eplb_status status, const std::string& path) {
  if (status == EPLB_OK) return;
  const std::string message = path + ": " + eplb_last_error_message();
  if (status == EPLB_ERR_OUT_OF_MEMORY || status == EPLB_ERR_INTERNAL) {
    throw Failure(message + " [" + eplb_status_string(status) + "]");
  }
  throw InputError(message);
}

void require_agrees(std::uint32_t given, std::uint32_t stored, const char* option,
                    const std::string& path, const char* what) {
  if (given != 0 && given != stored) {
    throw InputError(std::string(option) + " " + std::to_string(given) + " disagrees with '" +
                     path + "', which has " + std::to_string(stored) + " " + what + " (pass " +
                     option + " " + std::to_string(stored) + ")");
  }
}

// `bytes`: the content of `path`.
PlacementFile read_snapshot(const std::string& path, const std::string& bytes,
                            const TopologyArgs& args) {
  eplb_snapshot_info info{};
  const SnapshotPtr snapshot = decode_snapshot(path, bytes, info);
  // (A statistics snapshot says it holds no placement before its zero GPUs disagree with
  // anything.)
  PlacementFile file;
  file.format = PlacementFormat::snapshot;
  eplb_placement* placement = nullptr;
  check(eplb_snapshot_get_placement(snapshot.get(), &placement), path + ": ");
  file.placement.reset(placement);
  require_agrees(args.gpus, info.num_gpus, "--gpus", path, "GPUs");
  require_agrees(args.nodes, info.num_nodes, "--nodes", path, "nodes");
  require_agrees(args.experts, info.num_logical_experts, "--experts", path, "logical experts");
  if (info.has_loads != 0) {
    file.loads.resize(static_cast<std::size_t>(info.num_layers) * info.num_logical_experts);
    check(eplb_snapshot_get_loads(snapshot.get(), file.loads.data(), file.loads.size()),
          path + ": ");
  }
  file.label = info.label;
  if (info.has_coactivation != 0) {
    eplb_tracker* tracker = nullptr;
    check(eplb_snapshot_get_tracker(snapshot.get(), &tracker), path + ": ");
    file.tracker.reset(tracker);
  }
  return file;
}

std::string keys_of(const nlohmann::json& document) {
  std::string keys;
  for (const auto& item : document.items()) {
    keys += (keys.empty() ? "" : ", ") + item.key();
    if (keys.size() > 120) return keys + ", ...";
  }
  return keys.empty() ? "none" : keys;
}

// `text`: the content of `path`.
PlacementFile read_json_map(const std::string& path, const std::string& text,
                            const TopologyArgs& args) {
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& error) {
    throw InputError(path +
                     ": neither an .eplb snapshot nor valid JSON: " + json_error_text(error));
  }
  const bool object = document.is_object();
  PlacementFile file;
  eplb_placement* placement = nullptr;
  const std::uint32_t nodes = args.nodes == 0 ? 1 : args.nodes;
  if (object && document.contains("physical_to_logical_map")) {
    if (args.gpus == 0) {
      throw InputError(path +
                       " is an SGLang map, which does not record how its slots are split over "
                       "GPUs: pass --gpus G (and --nodes N, --dense-layers K)");
    }
    file.format = PlacementFormat::sglang;
    check_input(eplb_placement_from_sglang_json(text.data(), text.size(), args.experts, nodes,
                                                args.gpus, args.dense_layers, &placement),
                path);
  } else if (object && (document.contains("layer_list") || document.contains("moe_layer_count"))) {
    file.format = PlacementFormat::vllm_ascend;
    check_input(eplb_placement_from_vllm_ascend_json(text.data(), text.size(), args.experts, nodes,
                                                     &placement),
                path);
  } else if (object && document.contains("logical_count")) {
    throw InputError(path + " is an SGLang load file (logical_count), not a placement: plan one " +
                     "with 'eplb plan --counts " + path + "'");
  } else {
    throw InputError(
        path +
        ": not a placement file: expected an .eplb snapshot, SGLang's map "
        "(physical_to_logical_map) or vLLM-Ascend's map (layer_list); found " +
        (object ? "an object with keys: " + keys_of(document) : std::string(document.type_name())));
  }
  file.placement.reset(placement);
  if (file.format == PlacementFormat::vllm_ascend) {
    require_agrees(args.gpus, info_of(placement).num_gpus, "--gpus", path, "devices");
  }
  return file;
}

// phy2log of every layer: [layers][slots].
std::vector<std::int32_t> phy2log_of(const eplb_placement* placement, const std::string& path) {
  const auto info = info_of(placement);
  std::vector<std::int32_t> phy2log(std::size_t{info.num_layers} * info.num_physical_experts);
  check(eplb_placement_get_phy2log(placement, phy2log.data(), phy2log.size()), path + ": ");
  return phy2log;
}

// The first slot of `layer` that does not hold the trivial placement of a dense layer (slot s
// holds expert s mod E, what a plan gives a layer without load), or `slots` if none.
std::size_t first_nontrivial_slot(const std::vector<std::int32_t>& phy2log, std::size_t layer,
                                  std::size_t slots, std::size_t experts) {
  for (std::size_t slot = 0; slot < slots; ++slot) {
    if (static_cast<std::size_t>(phy2log[layer * slots + slot]) != slot % experts) return slot;
  }
  return slots;
}

}  // namespace

const char* describe(PlacementFormat format) {
  switch (format) {
    case PlacementFormat::snapshot:
      return "eplb snapshot";
    case PlacementFormat::sglang:
      return "SGLang map";
    case PlacementFormat::vllm_ascend:
      return "vLLM-Ascend map";
  }
  return "?";
}

PlacementFile read_placement_file(const std::string& path, const TopologyArgs& args) {
  const std::string bytes = read_input(path, "");
  // By content: a JSON map written under an .eplb name (convert --to sglang) reads as one; a
  // damaged .eplb file that is not JSON gets the snapshot reader's diagnosis.
  if (starts_like_snapshot(bytes) || (has_extension(path, ".eplb") && !starts_like_json(bytes))) {
    return read_snapshot(path, bytes, args);
  }
  return read_json_map(path, bytes, args);
}

PlacementFormat output_format(const std::string& path, const std::string& to) {
  if (to == "eplb") return PlacementFormat::snapshot;
  if (to == "sglang") return PlacementFormat::sglang;
  if (to == "vllm-ascend") return PlacementFormat::vllm_ascend;
  if (!to.empty()) {
    throw InputError("--to " + to + ": unknown format (known: eplb, sglang, vllm-ascend)");
  }
  if (has_extension(path, ".eplb")) return PlacementFormat::snapshot;
  if (has_extension(path, ".json")) return PlacementFormat::sglang;
  throw InputError("cannot tell the output format from '" + path +
                   "': name it .eplb (snapshot) or .json (SGLang's map), or pass --to "
                   "eplb|sglang|vllm-ascend");
}

void write_placement_file(const std::string& path, PlacementFormat format,
                          const eplb_placement* placement, const std::vector<double>& loads,
                          const std::string& label, const eplb_tracker* tracker,
                          std::uint32_t dense_layers) {
  switch (format) {
    case PlacementFormat::snapshot: {
      eplb_snapshot_options options;
      eplb_snapshot_options_init(&options);
      options.loads = loads.empty() ? nullptr : loads.data();
      options.loads_len = loads.size();
      options.label = label.empty() ? nullptr : label.c_str();
      options.tracker = tracker;
      check(eplb_snapshot_save(placement, &options, path.c_str()), "");
      return;
    }
    case PlacementFormat::sglang:
      write_file_atomically(path, sglang_placement_json(placement, dense_layers));
      return;
    case PlacementFormat::vllm_ascend:
      write_file_atomically(path, vllm_ascend_placement_json(placement));
      return;
  }
}

Loads read_sglang_loads(const std::string& path) {
  const std::string text = read_input(path, "");
  if (starts_like_snapshot(text)) {
    LoadMatrix stored = read_snapshot_loads(path, text);
    return {stored.num_layers, stored.num_experts, std::move(stored.loads)};
  }
  double* values = nullptr;
  Loads loads;
  check_input(eplb_loads_from_sglang_json(text.data(), text.size(), &values, &loads.num_layers,
                                          &loads.num_experts),
              path);
  const std::unique_ptr<double, LibraryBufferFree> owned(values);
  loads.values.assign(values,
                      values + static_cast<std::size_t>(loads.num_layers) * loads.num_experts);
  return loads;
}

PlacementPtr drop_dense_layers(const eplb_placement* placement, std::vector<double>& loads,
                               std::uint32_t dense_layers, const std::string& path) {
  const auto info = info_of(placement);
  if (dense_layers >= info.num_layers) {
    throw InputError("--dense-layers " + std::to_string(dense_layers) + ": " + path + " has " +
                     counted(info.num_layers, "layer") + ", so no MoE layer would be left");
  }
  const std::size_t experts = info.num_logical_experts;
  const std::size_t slots = info.num_physical_experts;
  const std::size_t dropped = std::size_t{dense_layers} * experts;
  if (!loads.empty()) {
    for (std::size_t i = 0; i < dropped; ++i) {
      if (loads[i] != 0) {
        throw InputError("--dense-layers " + std::to_string(dense_layers) + ": layer " +
                         std::to_string(i / experts) + " of " + path + " has load (expert " +
                         std::to_string(i % experts) + "), so it is not a dense layer");
      }
    }
    loads.erase(loads.begin(), loads.begin() + static_cast<std::ptrdiff_t>(dropped));
  }
  const std::vector<std::int32_t> phy2log = phy2log_of(placement, path);
  if (loads.empty()) {  // no loads to tell: a dense layer has the trivial placement
    for (std::size_t layer = 0; layer < dense_layers; ++layer) {
      const std::size_t slot = first_nontrivial_slot(phy2log, layer, slots, experts);
      if (slot == slots) continue;
      throw InputError("--dense-layers " + std::to_string(dense_layers) + ": layer " +
                       std::to_string(layer) + " of " + path +
                       " is not the trivial placement of a dense layer (slot " +
                       std::to_string(slot) + " holds expert " +
                       std::to_string(phy2log[layer * slots + slot]) + ")");
    }
  }
  eplb_placement* kept = nullptr;
  const std::size_t first = std::size_t{dense_layers} * slots;
  check(eplb_placement_create_from_phy2log(info.num_layers - dense_layers, info.num_logical_experts,
                                           info.num_physical_experts, info.num_nodes, info.num_gpus,
                                           phy2log.data() + first, phy2log.size() - first, &kept),
        path + ": ");
  return PlacementPtr(kept);
}

std::string dense_rows_text(const std::string& path, std::uint32_t layers, bool by_load) {
  const std::string first =
      layers == 1 ? "the first layer has" : "the first " + std::to_string(layers) + " layers have";
  return path + ": " + first +
         (by_load ? " no load" : " the trivial placement (slot s holds expert s mod E)") +
         ", like the dense layers' rows of a plan from SGLang's logical_count";
}

void require_no_dense_rows_in(const eplb_placement* placement, const std::vector<double>& loads,
                              std::uint32_t dense_layers, const std::string& path) {
  if (!loads.empty()) {
    require_no_dense_rows(loads, info_of(placement).num_logical_experts, dense_layers, path);
  } else if (const std::uint32_t rows = leading_dense_layers(placement, {}, path); rows > 0) {
    throw InputError(dense_rows_text(path, rows, false) +
                     ": the input already has them, so --dense-layers " +
                     std::to_string(dense_layers) + " would add " + std::to_string(dense_layers) +
                     " more; leave it out");
  }
}

std::uint32_t leading_dense_layers(const eplb_placement* placement,
                                   const std::vector<double>& loads, const std::string& path) {
  const auto info = info_of(placement);
  const std::size_t experts = info.num_logical_experts;
  const std::size_t slots = info.num_physical_experts;
  std::vector<std::int32_t> phy2log;
  if (loads.empty()) phy2log = phy2log_of(placement, path);
  const auto looks_dense = [&](std::size_t layer) {
    if (loads.empty()) return first_nontrivial_slot(phy2log, layer, slots, experts) == slots;
    const auto row = loads.begin() + static_cast<std::ptrdiff_t>(layer * experts);
    return std::all_of(row, row + static_cast<std::ptrdiff_t>(experts),
                       [](double load) { return load == 0; });
  };
  std::uint32_t layer = 0;
  while (layer < info.num_layers && looks_dense(layer)) ++layer;
  return layer == info.num_layers ? 0 : layer;
}

std::vector<double> loads_for_placement(Loads counts, const eplb_placement_info& placement,
                                        std::uint32_t dense_layers, const std::string& counts_path,
                                        const std::string& placement_path,
                                        bool suggest_dense_layers) {
  const std::uint32_t layers = placement.num_layers;
  if (counts.num_experts != placement.num_logical_experts ||
      (counts.num_layers != layers && counts.num_layers != layers + dense_layers)) {
    throw InputError(
        counts_path + ": " + std::to_string(counts.num_layers) + " layers x " +
        std::to_string(counts.num_experts) + " experts, but " + placement_path + " has " +
        std::to_string(layers) + " x " + std::to_string(placement.num_logical_experts) +
        (dense_layers == 0
             ? std::string()
             : " (and --dense-layers " + std::to_string(dense_layers) + " rows before them)") +
        // SGLang's files have a row per layer, dense ones included (DeepSeek-V3: 3 of 61).
        (suggest_dense_layers && dense_layers == 0 &&
                 counts.num_experts == placement.num_logical_experts && counts.num_layers > layers
             ? (counts.num_layers - layers == 1
                    ? std::string(": if its first row is a dense layer")
                    : ": if its first " + std::to_string(counts.num_layers - layers) +
                          " rows are dense layers") +
                   ", pass --dense-layers " + std::to_string(counts.num_layers - layers)
             : std::string()));
  }
  if (counts.num_layers == layers) return std::move(counts.values);
  const std::size_t dropped = std::size_t{dense_layers} * counts.num_experts;
  for (std::size_t i = 0; i < dropped; ++i) {
    if (counts.values[i] != 0) {
      throw InputError(counts_path + ": row " + std::to_string(i / counts.num_experts) +
                       " has load, but --dense-layers " + std::to_string(dense_layers) +
                       " says the first rows are dense layers");
    }
  }
  counts.values.erase(counts.values.begin(),
                      counts.values.begin() + static_cast<std::ptrdiff_t>(dropped));
  return std::move(counts.values);
}

std::string shape_text(const eplb_placement_info& info) {
  return counted(info.num_layers, "layer") + " x " + counted(info.num_logical_experts, "expert") +
         ", " + counted(info.num_physical_experts, "slot") + " on " +
         counted(info.num_gpus, "GPU") + " in " + counted(info.num_nodes, "node");
}

}  // namespace eplb_cli
