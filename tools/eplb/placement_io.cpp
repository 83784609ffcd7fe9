#include "eplb/placement_io.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "eplb/atomic_file.hpp"
#include "eplb/cli_error.hpp"
#include "eplb/input_file.hpp"
#include "eplb/placement_json.hpp"
#include "eplb/table.hpp"

namespace eplb_cli {

namespace {

struct SnapshotClose {
  void operator()(eplb_snapshot* snapshot) const { eplb_snapshot_destroy(snapshot); }
};
using OwnedSnapshot = std::unique_ptr<eplb_snapshot, SnapshotClose>;

struct BufferFree {
  void operator()(double* buffer) const { eplb_buffer_free(buffer); }
};

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

std::string read_text(const std::string& path) {
  std::ifstream in = open_input(path, "");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw InputError("cannot read '" + path + "'");
  return text.str();
}

void require_agrees(std::uint32_t given, std::uint32_t stored, const char* option,
                    const std::string& path, const char* what) {
  if (given != 0 && given != stored) {
    throw InputError(std::string(option) + " " + std::to_string(given) + " disagrees with '" +
                     path + "', which has " + std::to_string(stored) + " " + what);
  }
}

PlacementFile read_snapshot(const std::string& path, const TopologyArgs& args) {
  eplb_snapshot* raw = nullptr;
  check_input(eplb_snapshot_load(path.c_str(), &raw), path);
  const OwnedSnapshot snapshot(raw);
  eplb_snapshot_info info{};
  info.struct_size = sizeof(info);
  check(eplb_snapshot_get_info(snapshot.get(), &info), path + ": ");
  require_agrees(args.nodes, info.num_nodes, "--nodes", path, "nodes");
  require_agrees(args.gpus, info.num_gpus, "--gpus", path, "GPUs");
  require_agrees(args.experts, info.num_logical_experts, "--experts", path, "logical experts");
  PlacementFile file;
  file.format = PlacementFormat::snapshot;
  eplb_placement* placement = nullptr;
  check(eplb_snapshot_get_placement(snapshot.get(), &placement), path + ": ");
  file.placement.reset(placement);
  if (info.has_loads != 0) {
    file.loads.resize(static_cast<std::size_t>(info.num_layers) * info.num_logical_experts);
    check(eplb_snapshot_get_loads(snapshot.get(), file.loads.data(), file.loads.size()),
          path + ": ");
  }
  file.label = info.label;
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

PlacementFile read_json_map(const std::string& path, const TopologyArgs& args) {
  const std::string text = read_text(path);
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
  if (has_extension(path, ".eplb") || starts_like_snapshot(path)) {
    return read_snapshot(path, args);
  }
  return read_json_map(path, args);
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
                          const std::string& label, std::uint32_t dense_layers) {
  switch (format) {
    case PlacementFormat::snapshot: {
      eplb_snapshot_options options;
      eplb_snapshot_options_init(&options);
      options.loads = loads.empty() ? nullptr : loads.data();
      options.loads_len = loads.size();
      options.label = label.empty() ? nullptr : label.c_str();
      check(eplb_snapshot_save(placement, &options, path.c_str()), "cannot write snapshot: ");
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
  const std::string text = read_text(path);
  double* values = nullptr;
  Loads loads;
  check_input(eplb_loads_from_sglang_json(text.data(), text.size(), &values, &loads.num_layers,
                                          &loads.num_experts),
              path);
  const std::unique_ptr<double, BufferFree> owned(values);
  loads.values.assign(values,
                      values + static_cast<std::size_t>(loads.num_layers) * loads.num_experts);
  return loads;
}

std::string shape_text(const eplb_placement_info& info) {
  return counted(info.num_layers, "MoE layer") + " x " +
         counted(info.num_logical_experts, "expert") + ", " +
         counted(info.num_physical_experts, "slot") + " on " + counted(info.num_gpus, "GPU") +
         " in " + counted(info.num_nodes, "node");
}

}  // namespace eplb_cli
