#include "eplb/load_file.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "eplb/cli_error.hpp"
#include "eplb/input_file.hpp"
#include "eplb/library.hpp"
#include "eplb/tracker_handle.hpp"

namespace eplb_cli {

namespace {

using nlohmann::json;

std::string index_path(const std::vector<std::size_t>& indices) {
  std::ostringstream path;
  path << "logical_count";
  for (std::size_t i : indices) path << '[' << i << ']';
  return path.str();
}

// "an array", "a number": the JSON type of `value` with its article.
std::string a_type(const json& value) {
  const std::string name = value.type_name();
  return (name == "array" || name == "object" ? "an " : "a ") + name;
}

[[noreturn]] void bad(const std::string& source, const std::string& what) {
  throw InputError(source + ": " + what);
}

const json& require_array(const json& value, const std::string& source,
                          const std::vector<std::size_t>& at) {
  if (!value.is_array()) {
    bad(source, index_path(at) + " is " + a_type(value) + ", expected a list");
  }
  if (value.empty()) bad(source, index_path(at) + " is an empty list");
  return value;
}

double require_load(const json& value, const std::string& source,
                    const std::vector<std::size_t>& at) {
  if (!value.is_number()) {
    bad(source, index_path(at) + " is " + a_type(value) + ", expected a number");
  }
  const double load = value.get<double>();
  if (!std::isfinite(load)) bad(source, index_path(at) + " is not finite");
  if (load < 0) {
    std::ostringstream text;
    text << index_path(at) << " = " << value.dump() << " is negative";
    bad(source, text.str());
  }
  return load;
}

std::uint32_t checked_count(std::size_t n, const std::string& source, const std::string& what) {
  if (n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    bad(source, what + " (" + std::to_string(n) + ") is too large");
  }
  return static_cast<std::uint32_t>(n);
}

}  // namespace

LoadMatrix parse_logical_count(const std::string& text, const std::string& source) {
  json document;
  try {
    document = json::parse(text);
  } catch (const json::exception& error) {
    // parse_error, and out_of_range for a number too large for a double (1e400).
    bad(source, "invalid JSON: " + json_error_text(error));
  }
  if (!document.is_object()) {
    bad(source, std::string("expected a JSON object with a 'logical_count' key, found ") +
                    a_type(document));
  }
  const auto found = document.find("logical_count");
  if (found == document.end()) {
    std::string keys;
    for (const auto& item : document.items()) keys += (keys.empty() ? "" : ", ") + item.key();
    bad(source, "no 'logical_count' key (keys present: " + (keys.empty() ? "none" : keys) + ")");
  }
  const json& root = require_array(*found, source, {});
  // 3-D when the first element's first element is itself a list.
  const json& first = require_array(root.front(), source, {0});
  const bool three_d = first.front().is_array();
  const std::size_t steps = three_d ? root.size() : 1;

  LoadMatrix matrix;
  matrix.num_steps = checked_count(steps, source, "number of steps");
  std::size_t layers = 0;
  std::size_t experts = 0;
  for (std::size_t step = 0; step < steps; ++step) {
    const json& step_rows = three_d ? require_array(root[step], source, {step}) : root;
    if (step == 0) {
      layers = step_rows.size();
    } else if (step_rows.size() != layers) {
      bad(source, index_path({step}) + " has " + std::to_string(step_rows.size()) +
                      " layers, expected " + std::to_string(layers) + " (as step 0)");
    }
    for (std::size_t layer = 0; layer < layers; ++layer) {
      std::vector<std::size_t> at =
          three_d ? std::vector<std::size_t>{step, layer} : std::vector<std::size_t>{layer};
      const json& row = require_array(step_rows[layer], source, at);
      if (experts == 0) {
        experts = row.size();
        matrix.loads.assign(layers * experts, 0.0);
        matrix.steps.assign(steps * layers * experts, 0.0);
      } else if (row.size() != experts) {
        bad(source, index_path(at) + " has " + std::to_string(row.size()) + " experts, expected " +
                        std::to_string(experts) + " (as the first row)");
      }
      for (std::size_t e = 0; e < experts; ++e) {
        at.push_back(e);
        const double load = require_load(row[e], source, at);
        matrix.loads[layer * experts + e] += load;
        matrix.steps[(step * layers + layer) * experts + e] = load;
        at.pop_back();
      }
    }
  }
  matrix.num_layers = checked_count(layers, source, "number of layers");
  matrix.num_experts = checked_count(experts, source, "number of experts");
  return matrix;
}

void require_no_dense_rows(const std::vector<double>& loads, std::uint32_t num_experts,
                           std::uint32_t dense_layers, const std::string& source) {
  const std::size_t rows = std::min<std::size_t>(dense_layers, loads.size() / num_experts);
  const auto end = loads.begin() + static_cast<std::ptrdiff_t>(rows * num_experts);
  if (rows > 0 && std::all_of(loads.begin(), end, [](double load) { return load == 0; })) {
    const std::string first =
        rows == 1 ? "the first layer has" : "the first " + std::to_string(rows) + " layers have";
    throw InputError(source + ": " + first +
                     " no load: the input already has the dense layers' rows (as "
                     "SGLang's logical_count files do), so --dense-layers " +
                     std::to_string(dense_layers) + " would add " + std::to_string(dense_layers) +
                     " more; leave it out");
  }
}

LoadMatrix load_matrix_of(const eplb_tracker* tracker) {
  const auto options = tracker_options_of(tracker);
  LoadMatrix matrix;
  matrix.num_layers = options.num_layers;
  matrix.num_experts = options.num_logical_experts;
  matrix.loads = tracker_loads(tracker);
  matrix.steps = matrix.loads;
  return matrix;
}

LoadMatrix read_snapshot_loads(const std::string& path, const std::string& bytes) {
  eplb_snapshot_info info{};
  const SnapshotPtr snapshot = decode_snapshot(path, bytes, info);
  LoadMatrix matrix;
  matrix.num_layers = info.num_layers;
  matrix.num_experts = info.num_logical_experts;
  matrix.loads.resize(std::size_t{info.num_layers} * info.num_logical_experts);
  if (info.has_loads != 0) {
    check(eplb_snapshot_get_loads(snapshot.get(), matrix.loads.data(), matrix.loads.size()),
          path + ": ");
  } else if (info.has_coactivation != 0) {
    eplb_tracker* tracker = nullptr;
    check(eplb_snapshot_get_tracker(snapshot.get(), &tracker), path + ": ");
    const TrackerPtr owned(tracker);
    return load_matrix_of(owned.get());
  } else {
    throw InputError(path +
                     " is an .eplb snapshot without load statistics (it was saved without "
                     "them): pass its load file instead");
  }
  matrix.steps = matrix.loads;
  return matrix;
}

LoadMatrix read_logical_count_file(const std::string& path) {
  const std::string text = read_input(path, "");
  if (starts_like_snapshot(text)) return read_snapshot_loads(path, text);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    throw InputError(path + " is empty: expected a JSON object with logical_count");
  }
  return parse_logical_count(text, path);
}

}  // namespace eplb_cli
