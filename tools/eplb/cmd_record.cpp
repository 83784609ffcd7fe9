// eplb record: co-activation statistics from top-k routing traces (JSON lines, one object per
// token and layer with `layer` and `experts`, as in the Mixtral traces; other keys ignored) into
// a statistics snapshot, through the tracker of the C API.

#include <cstdint>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eplb/cli_error.hpp"
#include "eplb/commands.hpp"
#include "eplb/input_file.hpp"
#include "eplb/json_output.hpp"
#include "eplb/library.hpp"
#include "eplb/progress.hpp"
#include "eplb/table.hpp"
#include "eplb/tracker_handle.hpp"

namespace eplb_cli {

namespace {

// Every row of every file, in file order.
struct Rows {
  std::vector<std::uint32_t> layer;   // [rows]
  std::vector<std::size_t> begin{0};  // [rows + 1] into ids
  std::vector<std::int32_t> ids;
  std::uint32_t widest = 0;
  std::uint32_t max_layer = 0;
};

std::string where(const std::string& path, std::size_t line) {
  return path + ":" + std::to_string(line) + ": ";
}

void read_trace(const std::string& path, const RecordArgs& args, Rows& rows, Progress& progress) {
  std::ifstream in = open_input(path, "--trace: ");
  std::string text;
  std::size_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    // Sniffed from the first line itself, so that a pipe is read once.
    if (line == 1 && starts_like_snapshot(text)) {
      throw InputError("--trace " + path + " is an .eplb snapshot, not a JSON-lines trace");
    }
    if ((line & 0xfff) == 0)
      progress.show("reading " + path + ": " + std::to_string(line) + " lines");
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& error) {
      // parse_error, and out_of_range for a number too large for a double (1e400).
      throw InputError(where(path, line) + "not valid JSON (" + json_error_text(error) + ")");
    }
    if (!object.is_object()) throw InputError(where(path, line) + "not a JSON object");
    const auto layer = object.find("layer");
    if (layer == object.end()) throw InputError(where(path, line) + "no \"layer\" key");
    if (!layer->is_number_integer() || layer->get<std::int64_t>() < 0 ||
        layer->get<std::int64_t>() > 0x7fffffff) {
      throw InputError(where(path, line) + "\"layer\" is " + layer->dump() +
                       ", not an integer in 0..2147483647");
    }
    const auto l = layer->get<std::uint32_t>();
    if (args.layers != 0 && l >= args.layers) {
      throw InputError(where(path, line) + "unknown layer " + std::to_string(l) + " (--layers " +
                       std::to_string(args.layers) + ": 0.." + std::to_string(args.layers - 1) +
                       ")");
    }
    const auto experts = object.find("experts");
    if (experts == object.end()) throw InputError(where(path, line) + "no \"experts\" key");
    if (!experts->is_array()) {
      throw InputError(where(path, line) + "\"experts\" is " + experts->dump() + ", not a list");
    }
    if (args.top_k != 0 && experts->size() > args.top_k) {
      throw InputError(where(path, line) + "\"experts\" lists " + std::to_string(experts->size()) +
                       " ids, more than --top-k " + std::to_string(args.top_k));
    }
    if (experts->size() > 1024) {
      throw InputError(where(path, line) + "\"experts\" lists " + std::to_string(experts->size()) +
                       " ids; at most 1024 are supported");
    }
    for (std::size_t s = 0; s < experts->size(); ++s) {
      const auto& id = (*experts)[s];
      if (!id.is_number_integer()) {
        throw InputError(where(path, line) + "expert id " + id.dump() + " (slot " +
                         std::to_string(s) + ") is not an integer");
      }
      if (id.get<std::int64_t>() < -1 ||
          id.get<std::int64_t>() >= static_cast<std::int64_t>(args.experts)) {
        throw InputError(where(path, line) + "expert id " + id.dump() + " (slot " +
                         std::to_string(s) + ") is outside 0.." + std::to_string(args.experts - 1) +
                         " (--experts " + std::to_string(args.experts) + "; -1 = masked)");
      }
      rows.ids.push_back(id.get<std::int32_t>());
    }
    rows.layer.push_back(l);
    rows.begin.push_back(rows.ids.size());
    rows.widest = std::max(rows.widest, static_cast<std::uint32_t>(experts->size()));
    rows.max_layer = std::max(rows.max_layer, l);
  }
  if (in.bad()) throw Failure("--trace " + path + ": read error");
}

std::uint32_t window_of(const std::string& name) {
  if (name == "cumulative") return EPLB_WINDOW_CUMULATIVE;
  if (name == "sliding") return EPLB_WINDOW_SLIDING;
  if (name == "decay") return EPLB_WINDOW_DECAY;
  throw InputError("--window " + name + ": unknown (use cumulative, sliding or decay)");
}

}  // namespace

void run_record(const RecordArgs& args) {
  const std::uint32_t window = window_of(args.window);
  // (--window-batches and --decay against --window: checked with the arguments.)
  if (!has_extension(args.out, ".eplb")) {
    throw InputError("--out " + args.out +
                     ": record writes a statistics snapshot; name it FILE.eplb");
  }
  Rows rows;
  Progress progress;
  for (std::size_t f = 0; f < args.traces.size(); ++f) {
    for (std::size_t g = 0; g < f; ++g) {
      if (args.traces[g] == args.traces[f]) {
        throw InputError("--trace " + args.traces[f] +
                         " is given twice (its rows would be counted twice)");
      }
    }
    read_trace(args.traces[f], args, rows, progress);
  }
  progress.finish();
  if (rows.layer.empty()) {
    throw InputError("--trace: no rows in " + std::to_string(args.traces.size()) +
                     " file(s): nothing to record");
  }
  eplb_tracker_options options;
  eplb_tracker_options_init(&options);
  options.num_layers = args.layers != 0 ? args.layers : rows.max_layer + 1;
  options.num_logical_experts = args.experts;
  options.top_k = args.top_k != 0 ? args.top_k : std::max<std::uint32_t>(rows.widest, 1);
  options.window = window;
  options.window_batches = args.window_batches;
  options.decay = args.decay;
  options.reservoir_capacity = args.samples;
  options.seed = args.seed;
  eplb_tracker* raw = nullptr;
  check(eplb_tracker_create(&options, &raw), "cannot create the tracker: ");
  const TrackerPtr tracker(raw);

  // Rows of each layer, in file order, recorded in batches of --batch-tokens (padded with -1).
  const std::uint32_t k = options.top_k;
  std::vector<std::vector<std::int32_t>> pending(options.num_layers);
  std::vector<std::uint64_t> tokens(options.num_layers, 0);
  std::size_t padded = 0;
  auto flush = [&](std::uint32_t layer) {
    auto& batch = pending[layer];
    // (The library's messages name the layer.)
    check(eplb_tracker_record(tracker.get(), layer, batch.data(), batch.size() / k, k), "");
    batch.clear();
  };
  for (std::size_t r = 0; r < rows.layer.size(); ++r) {
    const std::uint32_t layer = rows.layer[r];
    auto& batch = pending[layer];
    const std::size_t width = rows.begin[r + 1] - rows.begin[r];
    batch.insert(batch.end(), rows.ids.begin() + static_cast<std::ptrdiff_t>(rows.begin[r]),
                 rows.ids.begin() + static_cast<std::ptrdiff_t>(rows.begin[r + 1]));
    batch.insert(batch.end(), k - width, -1);
    padded += width < k ? 1 : 0;
    ++tokens[layer];
    if (batch.size() / k >= args.batch_tokens) flush(layer);
  }
  for (std::uint32_t layer = 0; layer < options.num_layers; ++layer) {
    if (!pending[layer].empty()) flush(layer);
  }

  eplb_snapshot_options save;
  eplb_snapshot_options_init(&save);
  save.label = args.label.empty() ? nullptr : args.label.c_str();
  check(eplb_snapshot_save_statistics(tracker.get(), &save, args.out.c_str()), "");

  std::uint64_t total = 0;
  for (auto t : tokens) total += t;
  if (args.json) {
    nlohmann::json document = {
        {"traces", args.traces},
        {"out", args.out},
        {"rows", total},
        {"padded_rows", padded},
        {"num_layers", options.num_layers},
        {"num_experts", options.num_logical_experts},
        {"top_k", options.top_k},
        {"window", window_text(options.window)},
        {"window_batches", options.window == EPLB_WINDOW_SLIDING ? options.window_batches : 0},
        {"decay", options.window == EPLB_WINDOW_DECAY ? options.decay : 1.0},
        {"batch_tokens", args.batch_tokens},
        {"reservoir_capacity", options.reservoir_capacity},
        {"rows_per_layer", tokens},
    };
    print_json(document);
  } else {
    std::cout << "Recorded " << counted(total, "row") << " from "
              << counted(args.traces.size(), "file") << ": " << counted(options.num_layers, "layer")
              << " x " << counted(options.num_logical_experts, "expert") << ", top-" << k << " ("
              << counted(padded, "row") << " padded with -1), window " << window_text(window)
              << ", up to " << options.reservoir_capacity << " sampled rows per layer\nWrote "
              << args.out << '\n';
  }
}

}  // namespace eplb_cli
