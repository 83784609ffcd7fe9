// eplb migrate: what moving the GPUs' expert weights from one placement to another costs (experts
// and bytes, within a GPU, a node or across nodes, next to a full reload and to keeping only what
// stays on its GPU), in how many steps, what it gains in balance, whether it is worth it, and the
// placement the GPUs hold afterwards (--out).
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eplb/commands.hpp"
#include "eplb/input_file.hpp"
#include "eplb/json_output.hpp"
#include "eplb/library.hpp"
#include "eplb/load_file.hpp"
#include "eplb/placement_io.hpp"
#include "eplb/table.hpp"

namespace eplb_cli {

namespace {

struct MigrationDeleter {
  void operator()(eplb_migration* m) const { eplb_migration_destroy(m); }
};
using MigrationPtr = std::unique_ptr<eplb_migration, MigrationDeleter>;

// What one step moves.
struct StepTotals {
  std::uint64_t experts = 0, same_gpu = 0, intra_node = 0, cross_node = 0;
  std::vector<std::uint32_t> layers;  // distinct, ascending
};

// Transfers come ordered by step, then layer (eplb_migration_get_transfers), so each step's
// layers arrive ascending and a repeat is always the last one seen.

std::vector<StepTotals> step_totals(const eplb_migration* migration, std::uint32_t num_steps) {
  eplb_migration_transfer* raw = nullptr;
  std::size_t count = 0;
  check(eplb_migration_copy_transfers(migration, EPLB_MIGRATION_ALL_STEPS, &raw, &count), "");
  const std::unique_ptr<eplb_migration_transfer, LibraryBufferFree> owned(raw);
  std::vector<StepTotals> steps(num_steps);
  for (std::size_t i = 0; i < count; ++i) {
    const eplb_migration_transfer& t = raw[i];
    StepTotals& s = steps.at(t.step);
    ++s.experts;
    s.same_gpu += t.kind == EPLB_TRANSFER_SAME_GPU ? 1 : 0;
    s.intra_node += t.kind == EPLB_TRANSFER_INTRA_NODE ? 1 : 0;
    s.cross_node += t.kind == EPLB_TRANSFER_CROSS_NODE ? 1 : 0;
    if (s.layers.empty() || s.layers.back() != t.layer) s.layers.push_back(t.layer);
  }
  return steps;
}

std::uint32_t relabel_id(const std::string& name) {
  static const std::map<std::string, std::uint32_t> kIds = {
      {"nodes-and-gpus", EPLB_MIGRATION_RELABEL_NODES_AND_GPUS},
      {"gpus-in-node", EPLB_MIGRATION_RELABEL_GPUS_IN_NODE},
      {"none", EPLB_MIGRATION_RELABEL_NONE},
      {"repack-in-node", EPLB_MIGRATION_RELABEL_REPACK_IN_NODE}};
  return kIds.at(name);
}

// "12.5 %" of `part` in `whole` (whole > 0).
std::string percent(std::uint64_t part, std::uint64_t whole) {
  return fixed(100.0 * static_cast<double>(part) / static_cast<double>(whole), 1) + " %";
}

// "0-3", "5", "0-1, 4": layer numbers as ranges.
std::string layer_ranges(const std::vector<std::uint32_t>& layers) {
  std::string text;
  for (std::size_t i = 0; i < layers.size();) {
    std::size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
    text += (text.empty() ? "" : ", ") + std::to_string(layers[i]);
    if (j > i) text += "-" + std::to_string(layers[j]);
    i = j + 1;
  }
  return text.empty() ? "-" : text;
}

// The summary as JSON; the byte fields only when the bytes of an expert are known.
nlohmann::json summary_json(const eplb_migration_summary& s, bool with_bytes) {
  nlohmann::json j = {
      {"num_steps", s.num_steps},
      {"complete", s.complete != 0},
      {"worth_it", s.worth_it != 0},
      {"has_loads", s.has_loads != 0},
      {"max_staging_experts", s.max_staging_experts},
      {"moved_experts", s.moved_experts},
      {"same_gpu_experts", s.same_gpu_experts},
      {"intra_node_experts", s.intra_node_experts},
      {"cross_node_experts", s.cross_node_experts},
      {"full_migration_experts", s.full_migration_experts},
      {"same_gpu_rule_experts", s.same_gpu_rule_experts},
      {"naive_experts", s.naive_experts},
  };
  if (with_bytes) {
    j["moved_bytes"] = s.moved_bytes;
    j["same_gpu_bytes"] = s.same_gpu_bytes;
    j["intra_node_bytes"] = s.intra_node_bytes;
    j["cross_node_bytes"] = s.cross_node_bytes;
    j["max_step_bytes"] = s.max_step_bytes;
  } else {
    j["max_step_experts"] = s.max_step_bytes;  // bytes_per_expert 1: bytes count experts
  }
  if (s.has_loads != 0) {
    j["old_balancedness"] = s.old_balancedness;
    j["target_balancedness"] = s.target_balancedness;
    j["new_balancedness"] = s.new_balancedness;
    j["gain"] = s.gain;
  }
  return j;
}

// --out's format, from its extension: an .eplb snapshot or SGLang's map.
PlacementFormat out_format(const std::string& path) {
  if (has_extension(path, ".eplb")) return PlacementFormat::snapshot;
  if (has_extension(path, ".json")) return PlacementFormat::sglang;
  throw InputError("--out " + path +
                   ": name it .eplb (a snapshot, with the loads) or .json (SGLang's map); "
                   "'eplb convert' turns either into vLLM-Ascend's map");
}

}  // namespace

void run_migrate(const MigrateArgs& args) {
  const bool has_out = !args.out.empty();
  const PlacementFormat target_format = has_out ? out_format(args.out) : PlacementFormat::snapshot;
  PlacementFile old_file = read_placement_file(args.old_file, args.topology);
  PlacementFile new_file = read_placement_file(args.new_file, args.topology);
  const auto info = info_of(new_file.placement.get());
  const std::uint32_t dense = args.topology.dense_layers;
  const bool json_input =
      old_file.format != PlacementFormat::snapshot || new_file.format != PlacementFormat::snapshot;
  const bool sglang_in =
      old_file.format == PlacementFormat::sglang || new_file.format == PlacementFormat::sglang;
  const bool sglang_out = has_out && target_format == PlacementFormat::sglang;
  if (dense != 0 && !sglang_in && !sglang_out && args.counts.empty()) {
    throw InputError(
        "--dense-layers applies to SGLang maps (read, or written with --out x.json) and to a "
        "--counts file with the dense layers' rows; nothing here uses it");
  }

  // The measured load: --counts, else the new plan's statistics, else the old placement's.
  std::vector<double> loads;
  std::string loads_from;
  if (!args.counts.empty()) {
    // (--dense-layers also drops rows of SGLang maps, so it fixes the counts only without one.)
    loads = loads_for_placement(read_sglang_loads(args.counts), info, dense, args.counts,
                                args.new_file, !sglang_in);
    loads_from = args.counts;
  } else if (!new_file.loads.empty()) {
    loads = std::move(new_file.loads);
    loads_from = args.new_file + " (its statistics)";
  } else if (!old_file.loads.empty()) {
    loads = std::move(old_file.loads);
    loads_from = args.old_file + " (its statistics)";
  }
  if (loads.empty() && args.min_gain_given) {
    throw InputError(
        "--min-gain needs loads to predict the gain: pass --counts FILE (or snapshots that "
        "store statistics)");
  }
  // Writing SGLang's map adds `dense` trivial rows: refuse plans that already have them, judged
  // by the loads or, without loads, by trivial leading layers (as eplb convert does).
  if (sglang_out && dense != 0 && !sglang_in) {
    require_no_dense_rows_in(new_file.placement.get(), loads, dense, args.new_file);
  }

  eplb_migration_options options;
  eplb_migration_options_init(&options);
  options.relabel = relabel_id(args.relabel);
  options.bytes_per_expert = args.bytes_per_expert == 0 ? 1 : args.bytes_per_expert;
  options.max_bytes_per_step = args.max_bytes_per_step;
  options.max_total_bytes = args.max_total_bytes;
  options.max_layers_per_step = args.max_layers_per_step;
  options.min_gain = args.min_gain;
  eplb_migration* raw = nullptr;
  const eplb_status status =
      eplb_migration_plan(old_file.placement.get(), new_file.placement.get(),
                          loads.empty() ? nullptr : loads.data(), loads.size(), &options, &raw);
  if (status == EPLB_ERR_INVALID_ARGUMENT) {
    const std::string message = eplb_last_error_message();
    std::string hint;
    if (json_input && message.find("num_nodes") != std::string::npos) {
      hint = " (JSON maps do not record their nodes: pass --nodes)";
    } else if (message.find("num_layers") != std::string::npos) {
      hint = " (one side has the dense layers' rows? SGLang's maps: --dense-layers K)";
    }
    throw InputError(args.old_file + " -> " + args.new_file + ": " + message + hint);
  }
  check(status, args.old_file + " -> " + args.new_file + ": ");
  const MigrationPtr migration(raw);
  eplb_migration_summary s{};
  s.struct_size = sizeof(s);
  check(eplb_migration_get_summary(migration.get(), &s), "");
  const std::vector<StepTotals> steps = step_totals(migration.get(), s.num_steps);
  // Layers without load (the dense layers' rows of SGLang's files): nothing moves there, yet a
  // full reload counts them.
  const std::uint32_t idle_layers =
      loads.empty() ? 0
                    : info.num_layers - metrics_of(new_file.placement.get(), loads).loaded_layers;

  if (has_out) {
    eplb_placement* placement = nullptr;
    check(eplb_migration_get_target(migration.get(), &placement), "");
    const PlacementPtr target(placement);
    write_placement_file(args.out, target_format, target.get(), loads, new_file.label, nullptr,
                         dense);
  }

  const bool with_bytes = args.bytes_per_expert != 0;
  const bool repack_ignored =
      options.relabel == EPLB_MIGRATION_RELABEL_REPACK_IN_NODE && loads.empty();
  if (args.json) {
    nlohmann::json step_list = nlohmann::json::array();
    for (std::size_t i = 0; i < steps.size(); ++i) {
      nlohmann::json step = {{"step", i},
                             {"layers", steps[i].layers},
                             {"moved_experts", steps[i].experts},
                             {"same_gpu_experts", steps[i].same_gpu},
                             {"intra_node_experts", steps[i].intra_node},
                             {"cross_node_experts", steps[i].cross_node}};
      if (with_bytes) step["moved_bytes"] = steps[i].experts * args.bytes_per_expert;
      step_list.push_back(step);
    }
    const nlohmann::json document = {
        {"old", args.old_file},
        {"new", args.new_file},
        {"loads_from", loads.empty() ? nlohmann::json(nullptr) : nlohmann::json(loads_from)},
        {"num_layers", info.num_layers},
        {"layers_without_load", idle_layers},
        {"num_gpus", info.num_gpus},
        {"num_nodes", info.num_nodes},
        {"bytes_per_expert", with_bytes ? nlohmann::json(args.bytes_per_expert) : nullptr},
        {"relabel", repack_ignored ? "nodes-and-gpus" : args.relabel},
        {"summary", summary_json(s, with_bytes)},
        {"steps", step_list},
        {"out", args.out.empty() ? nlohmann::json(nullptr) : nlohmann::json(args.out)},
    };
    print_json(document);
    return;
  }

  std::cout << "Migration " << args.old_file << " -> " << args.new_file << " (" << shape_text(info)
            << ")\n";
  std::cout << "Loads from "
            << (loads.empty() ? "nowhere (no --counts, no statistics)" : loads_from) << "; "
            << (with_bytes ? byte_size_text(args.bytes_per_expert) + " per expert"
                           : std::string("experts counted (no --bytes-per-expert)"))
            << "; relabel " << args.relabel
            << (repack_ignored ? " (without loads: as nodes-and-gpus)" : "") << "\n\n";
  const auto bytes = [&](std::uint64_t experts) {
    return with_bytes ? byte_size_text(experts * args.bytes_per_expert) : std::string("-");
  };
  Table table({"transfers", "experts", "bytes", "of a full reload"});
  table.add_row({"this migration", std::to_string(s.moved_experts), bytes(s.moved_experts),
                 percent(s.moved_experts, s.naive_experts)});
  table.add_row(
      {"  within a GPU", std::to_string(s.same_gpu_experts), bytes(s.same_gpu_experts), ""});
  table.add_row(
      {"  within a node", std::to_string(s.intra_node_experts), bytes(s.intra_node_experts), ""});
  table.add_row(
      {"  across nodes", std::to_string(s.cross_node_experts), bytes(s.cross_node_experts), ""});
  if (s.complete == 0) {
    table.add_row({"the whole re-plan", std::to_string(s.full_migration_experts),
                   bytes(s.full_migration_experts),
                   percent(s.full_migration_experts, s.naive_experts)});
  }
  table.add_row({"keep-on-same-GPU rule (vLLM)", std::to_string(s.same_gpu_rule_experts),
                 bytes(s.same_gpu_rule_experts),
                 percent(s.same_gpu_rule_experts, s.naive_experts)});
  table.add_row(
      {"full reload", std::to_string(s.naive_experts), bytes(s.naive_experts), "100.0 %"});
  table.print(std::cout);
  if (idle_layers > 0) {
    std::cout << "(" << counted(idle_layers, "layer") << " without load, e.g. dense layers' rows: "
              << "nothing moves there, yet the full reload counts "
              << (idle_layers == 1 ? "it" : "them") << ")\n";
  }

  std::cout << "\n";
  if (s.moved_experts == 0) {
    std::cout << (s.complete != 0
                      ? "Nothing moves: every expert is already where the new plan wants it\n"
                      : "Nothing moves: --max-total-bytes is below the smallest change (one "
                        "expert, or a cycle of experts swapping places)\n");
  } else {
    std::cout << counted(s.num_steps, "step") << " (the largest: "
              << (with_bytes ? byte_size_text(s.max_step_bytes)
                             : counted(s.max_step_bytes, "expert"))
              << "); staging buffer: " << counted(s.max_staging_experts, "expert");
    if (with_bytes) {
      std::cout << " ("
                << byte_size_text(std::uint64_t{s.max_staging_experts} * args.bytes_per_expert)
                << ")";
    }
    std::cout << " per GPU and step\n";
    if (args.max_bytes_per_step != 0 && s.max_step_bytes > args.max_bytes_per_step) {
      std::cout << "Some steps exceed --max-bytes-per-step: a step holds at least one expert, "
                   "and experts swapping places along a cycle move together\n";
    }
    if (s.complete == 0) {
      std::cout << "--max-total-bytes cut the schedule: it ends at a partial placement, not at "
                << args.new_file << "\n";
    }
  }
  if (s.has_loads != 0) {
    std::cout << "Balancedness " << fixed(s.old_balancedness, 4) << " -> "
              << fixed(s.target_balancedness, 4)
              << " (the new plan: " << fixed(s.new_balancedness, 4) << "), gain "
              << (s.gain >= 0 ? "+" : "") << fixed(s.gain, 4) << "\n";
    std::cout << "Worth it: " << (s.worth_it != 0 ? "yes" : "no") << " (predicted gain "
              << fixed(s.gain, 4) << ", --min-gain " << fixed(args.min_gain, 4) << ")\n";
  } else {
    std::cout << "Worth it: " << (s.worth_it != 0 ? "yes" : "no")
              << " (without loads the gain is not predicted: pass --counts FILE)\n";
  }

  if (args.steps && s.num_steps > 0) {
    std::cout << "\n";
    Table step_table(
        {"step", "layers", "experts", "within GPU", "within node", "across nodes", "bytes"});
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const StepTotals& t = steps[i];
      step_table.add_row({std::to_string(i), layer_ranges(t.layers), std::to_string(t.experts),
                          std::to_string(t.same_gpu), std::to_string(t.intra_node),
                          std::to_string(t.cross_node), bytes(t.experts)});
    }
    step_table.print(std::cout);
  }
  if (!args.out.empty()) {
    std::cout << "\nWrote " << args.out;
    if (s.moved_experts == 0 && s.complete == 0) {
      std::cout << ": the placement the GPUs hold now (nothing fits the budget)\n";
    } else if (s.complete == 0) {
      std::cout << ": the partial placement the GPUs hold after this migration; serve and save "
                   "it\n";
    } else {
      std::cout << ": the placement the GPUs hold after the migration. Serve and save it, not "
                << args.new_file
                << " (the migration relabels the new plan's nodes, GPUs and slots so that "
                   "experts stay in place)\n";
    }
  }
}

}  // namespace eplb_cli
