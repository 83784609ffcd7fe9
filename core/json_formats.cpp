#include "json_formats.hpp"

#include <charconv>
#include <cmath>
#include <cstddef>
#include <limits>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "error.hpp"

namespace eplb {

namespace {

using nlohmann::json;

constexpr const char* kMapKey = "physical_to_logical_map";
constexpr const char* kCountKey = "logical_count";
constexpr std::uint64_t kMaxCount =
    static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max());

template <typename... Parts>
[[noreturn]] void corrupt(Parts&&... parts) {
  fail(Errc::corrupt, std::forward<Parts>(parts)...);
}

// "an array", "a string": the JSON type of `value` with its article, for messages.
std::string a_type(const json& value) {
  switch (value.type()) {
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    default:
      return "a number";
  }
}

// A key from the document, quoted and cut short: messages must stay one readable line.
std::string quoted(const std::string& key) {
  constexpr std::size_t kLongest = 40;
  if (key.size() <= kLongest) return "'" + key + "'";
  return "'" + key.substr(0, kLongest) + "...'";
}

json parse(std::string_view text, const char* format) {
  // nlohmann's lexer ends the input at a NUL byte, so "{...}\0garbage" would parse: JSON text
  // has no NUL outside a string (and inside one it must be escaped), so any NUL is an error.
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    corrupt("not a valid JSON document (", format, "): a NUL byte at offset ", nul);
  }
  // A key twice in one object (RFC 8259 leaves its meaning open; nlohmann keeps the last) is
  // refused: which of two placement maps is meant cannot be guessed. The keys of each open object.
  std::vector<std::unordered_set<std::string>> open_objects;
  std::string duplicate;
  const json::parser_callback_t track_keys = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      open_objects.pop_back();
    } else if (event == json::parse_event_t::key && duplicate.empty() &&
               !open_objects.back().insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  try {
    json document = json::parse(text.data(), text.data() + text.size(), track_keys);
    if (!duplicate.empty()) {
      // (as_const: for a non-const string, ADL's std::quoted(std::string&) would win.)
      corrupt("not a valid JSON document (", format, "): the key ",
              quoted(std::as_const(duplicate)), " appears twice in one object");
    }
    return document;
  } catch (const json::exception& error) {
    // parse_error, and out_of_range for a number too large for a double (1e400). The library's
    // "[json.exception.parse_error.101] " tag means nothing to a caller: left out.
    std::string_view what = error.what();
    if (const auto tag_end = what.find("] ");
        what.rfind("[json.", 0) == 0 && tag_end != what.npos) {
      what.remove_prefix(tag_end + 2);
    }
    corrupt("not a valid JSON document (", format, "): ", what);
  }
}

// A non-negative integer that fits an int32 id. `where` builds the value's path, only when a
// message needs it.
template <typename Where>
std::int32_t read_id(const json& value, const Where& where) {
  // nlohmann's parser stores non-negative integers as unsigned, negative ones as signed.
  if (value.is_number_unsigned()) {
    const auto id = value.get<std::uint64_t>();
    if (id > kMaxCount) corrupt(where(), " = ", id, " is too large for an expert id");
    return static_cast<std::int32_t>(id);
  }
  if (value.is_number_integer()) {
    if (value.get<std::int64_t>() == 0) return 0;  // -0, a JSON integer equal to 0
    corrupt(where(), " = ", value.get<std::int64_t>(), " is negative, not an expert id");
  }
  if (value.is_number_float()) corrupt(where(), " = ", value.dump(), " is not an integer");
  corrupt(where(), " is ", a_type(value), ", expected an integer expert id");
}

// A non-negative count (moe_layer_count, device_count, layer_id, device_id).
template <typename Where>
std::uint64_t read_count(const json& value, const Where& where) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer()) {
    if (value.get<std::int64_t>() == 0) return 0;  // -0
    corrupt(where(), " = ", value.get<std::int64_t>(), " is negative");
  }
  if (value.is_number_float()) corrupt(where(), " = ", value.dump(), " is not an integer");
  corrupt(where(), " is ", a_type(value), ", expected an integer");
}

// The ids of a map, [rows][width], with the largest id and where it is (for inference).
struct IdTable {
  std::size_t rows = 0;
  std::size_t width = 0;
  std::vector<std::int32_t> ids;
};

// Checks every id against num_logical (or infers it as one more than the largest id of rows
// >= first_counted), then that every expert appears in every row >= first_counted.
// `where(row, column)` and `row_name(row)` build paths for messages. Returns num_logical.
template <typename Where, typename RowName>
std::uint32_t check_ids(const IdTable& table, std::size_t first_counted, std::uint32_t num_logical,
                        const Where& where, const RowName& row_name) {
  std::uint64_t experts = num_logical;
  if (num_logical == 0) {
    std::size_t largest_at = first_counted * table.width;
    for (std::size_t i = largest_at; i < table.ids.size(); ++i) {
      if (table.ids[i] > table.ids[largest_at]) largest_at = i;
    }
    experts = static_cast<std::uint64_t>(table.ids[largest_at]) + 1;
    if (experts > table.width) {
      // Some expert below the largest id cannot have a slot; say so before counting.
      corrupt(where(largest_at / table.width, largest_at % table.width), " = ",
              table.ids[largest_at], " implies at least ", experts,
              " logical experts, more than the ", table.width,
              " slots of a row: some expert has no slot");
    }
  } else if (num_logical > table.width) {
    fail_invalid("num_logical_experts (", num_logical, ") exceeds the ", table.width,
                 " slots of a row: some expert could not be placed");
  }
  for (std::size_t i = 0; i < table.ids.size(); ++i) {
    if (static_cast<std::uint64_t>(table.ids[i]) >= experts) {
      corrupt(where(i / table.width, i % table.width), " = ", table.ids[i],
              " is not a logical expert id in [0, ", experts, ")");
    }
  }
  std::vector<std::uint32_t> seen(experts, 0);
  for (std::size_t row = first_counted; row < table.rows; ++row) {
    const auto mark = static_cast<std::uint32_t>(row + 1);  // no reset between rows
    for (std::size_t column = 0; column < table.width; ++column) {
      seen[static_cast<std::size_t>(table.ids[row * table.width + column])] = mark;
    }
    for (std::size_t expert = 0; expert < experts; ++expert) {
      if (seen[expert] != mark) {
        corrupt(row_name(row), " has no slot for logical expert ", expert,
                " (every expert must be placed in every MoE layer)");
      }
    }
  }
  return static_cast<std::uint32_t>(experts);
}

void check_deployment(std::uint32_t num_nodes, std::uint32_t num_gpus) {
  if (num_nodes == 0) fail_invalid("num_nodes must be at least 1 (got 0)");
  if (num_gpus == 0) fail_invalid("num_gpus must be at least 1 (got 0)");
  if (num_gpus % num_nodes != 0) {
    fail_invalid("num_gpus (", num_gpus, ") must be a multiple of num_nodes (", num_nodes, ")");
  }
}

Placement make_placement(IdTable table, std::size_t first_row, std::uint32_t num_logical,
                         std::uint32_t num_nodes, std::uint32_t num_gpus) {
  Topology topology;
  topology.num_layers = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(table.rows - first_row, std::numeric_limits<std::uint32_t>::max()));
  topology.num_logical = num_logical;
  topology.num_physical = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(table.width, std::numeric_limits<std::uint32_t>::max()));
  topology.num_nodes = num_nodes;
  topology.num_gpus = num_gpus;
  topology.num_groups = 1;
  topology.validate();
  table.ids.erase(table.ids.begin(),
                  table.ids.begin() + static_cast<std::ptrdiff_t>(first_row * table.width));
  return Placement::from_phy2log(topology, std::move(table.ids));
}

void append_int(std::string& out, std::int64_t value) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof(digits), value).ptr;
  out.append(digits, end);
}

void append_ids(std::string& out, std::span<const std::int32_t> ids) {
  out += '[';
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i != 0) out += ", ";
    append_int(out, ids[i]);
  }
  out += ']';
}

// Room for rows x width ids, but never more than the document's bytes could hold (every id takes
// at least two characters): a ragged document must not reserve what its first row implies.
std::size_t reservation(std::size_t rows, std::size_t width, std::size_t text_size) {
  std::size_t ids = 0;
  if (__builtin_mul_overflow(rows, width, &ids)) return text_size / 2;
  return std::min(ids, text_size / 2 + 1);
}

// Characters a row of `width` ids below `experts` takes, for reserve().
std::size_t row_chars(std::size_t width, std::uint32_t experts) {
  std::size_t digits = 1;
  for (std::uint32_t v = experts; v >= 10; v /= 10) ++digits;
  return checked_mul(width, digits + 2, "JSON size") + 8;
}

}  // namespace

std::string to_sglang_json(const Placement& placement, std::uint32_t num_dense_layers) {
  const Topology& t = placement.topology();
  const std::uint64_t rows = std::uint64_t{t.num_layers} + num_dense_layers;
  if (rows > kMaxCount) {
    fail_invalid("num_dense_layers (", num_dense_layers, ") + num_layers (", t.num_layers,
                 ") exceeds INT32_MAX rows");
  }
  std::string out;
  out.reserve(checked_mul(static_cast<std::size_t>(rows), row_chars(t.num_physical, t.num_logical),
                          "JSON size"));
  out += "{\"";
  out += kMapKey;
  out += "\": [\n";
  std::vector<std::int32_t> dense(t.num_physical);
  for (std::uint32_t slot = 0; slot < t.num_physical; ++slot) {
    dense[slot] = static_cast<std::int32_t>(slot % t.num_logical);
  }
  for (std::uint64_t row = 0; row < rows; ++row) {
    out += "  ";
    append_ids(out, row < num_dense_layers ? std::span<const std::int32_t>(dense)
                                           : placement.phy2log_layer(
                                                 static_cast<std::size_t>(row - num_dense_layers)));
    out += row + 1 < rows ? ",\n" : "\n";
  }
  out += "]}\n";
  return out;
}

Placement from_sglang_json(std::string_view text, std::uint32_t num_logical,
                           std::uint32_t num_nodes, std::uint32_t num_gpus,
                           std::uint32_t num_dense_layers) {
  check_deployment(num_nodes, num_gpus);
  const json document = parse(text, "SGLang placement map");
  if (!document.is_object()) {
    corrupt("expected a JSON object with the single key physical_to_logical_map, found ",
            a_type(document));
  }
  for (const auto& item : document.items()) {
    if (item.key() != kMapKey) {
      corrupt("unexpected key ", quoted(item.key()),
              ": SGLang's placement file holds exactly one key, physical_to_logical_map");
    }
  }
  const auto found = document.find(kMapKey);
  if (found == document.end()) corrupt("no physical_to_logical_map key (the object is empty)");
  const json& rows = *found;
  if (!rows.is_array()) {
    corrupt("physical_to_logical_map is ", a_type(rows), ", expected a list of rows");
  }
  if (rows.empty()) corrupt("physical_to_logical_map is an empty list");
  if (rows.size() <= num_dense_layers) {
    fail_invalid("num_dense_layers (", num_dense_layers,
                 ") leaves no MoE layer: ", "physical_to_logical_map has ", rows.size(), " rows");
  }
  const auto row_name = [](std::size_t row) { return cat(kMapKey, "[", row, "]"); };
  const auto where = [](std::size_t row, std::size_t column) {
    return cat(kMapKey, "[", row, "][", column, "]");
  };
  IdTable table;
  table.rows = rows.size();
  for (std::size_t row = 0; row < rows.size(); ++row) {
    const json& entries = rows[row];
    if (!entries.is_array()) {
      corrupt(row_name(row), " is ", a_type(entries), ", expected a list of expert ids");
    }
    if (row == 0) {
      if (entries.empty()) corrupt(row_name(0), " is an empty list");
      table.width = entries.size();
      table.ids.reserve(reservation(table.rows, table.width, text.size()));
    } else if (entries.size() != table.width) {
      corrupt(row_name(row), " has ", entries.size(), " slots, expected ", table.width,
              " (as row 0)");
    }
    for (std::size_t column = 0; column < table.width; ++column) {
      table.ids.push_back(read_id(entries[column], [&] { return where(row, column); }));
    }
  }
  if (table.width % num_gpus != 0) {
    fail_invalid("the map's rows have ", table.width, " slots, not a multiple of num_gpus (",
                 num_gpus, ")");
  }
  const std::uint32_t experts = check_ids(table, num_dense_layers, num_logical, where, row_name);
  return make_placement(std::move(table), num_dense_layers, experts, num_nodes, num_gpus);
}

std::string to_vllm_ascend_json(const Placement& placement) {
  const Topology& t = placement.topology();
  const std::uint32_t per_gpu = t.slots_per_gpu();
  std::string out;
  out.reserve(checked_mul(t.num_layers,
                          checked_mul(t.num_gpus, row_chars(per_gpu, t.num_logical) + 64, "size"),
                          "JSON size"));
  out += "{\n    \"moe_layer_count\": ";
  append_int(out, t.num_layers);
  out += ",\n    \"layer_list\": [";
  for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
    out += layer == 0 ? "\n" : ",\n";
    out += "        {\n            \"layer_id\": ";
    append_int(out, layer);
    out += ",\n            \"device_count\": ";
    append_int(out, t.num_gpus);
    out += ",\n            \"device_list\": [";
    const auto row = placement.phy2log_layer(layer);
    for (std::uint32_t gpu = 0; gpu < t.num_gpus; ++gpu) {
      out += gpu == 0 ? "\n" : ",\n";
      out += "                {\"device_id\": ";
      append_int(out, gpu);
      out += ", \"device_expert\": ";
      append_ids(out, row.subspan(std::size_t{gpu} * per_gpu, per_gpu));
      out += '}';
    }
    out += "\n            ]\n        }";
  }
  out += "\n    ]\n}\n";
  return out;
}

Placement from_vllm_ascend_json(std::string_view text, std::uint32_t num_logical,
                                std::uint32_t num_nodes) {
  if (num_nodes == 0) fail_invalid("num_nodes must be at least 1 (got 0)");
  const json document = parse(text, "vLLM-Ascend expert map");
  if (!document.is_object()) {
    corrupt("expected a JSON object with moe_layer_count and layer_list, found ", a_type(document));
  }
  const auto count_found = document.find("moe_layer_count");
  if (count_found == document.end()) corrupt("no moe_layer_count key");
  const std::uint64_t layer_count = read_count(*count_found, [] { return "moe_layer_count"; });
  const auto list_found = document.find("layer_list");
  if (list_found == document.end()) corrupt("no layer_list key");
  const json& layers = *list_found;
  if (!layers.is_array()) corrupt("layer_list is ", a_type(layers), ", expected a list of layers");
  if (layers.empty()) corrupt("layer_list is an empty list");
  if (layers.size() != layer_count) {
    corrupt("layer_list has ", layers.size(), " layers but moe_layer_count is ", layer_count);
  }

  const auto layer_name = [](std::size_t layer) { return cat("layer_list[", layer, "]"); };
  const auto device_name = [&](std::size_t layer, std::size_t device) {
    return cat(layer_name(layer), ".device_list[", device, "]");
  };
  std::size_t num_gpus = 0;
  std::size_t per_gpu = 0;
  IdTable table;
  table.rows = layers.size();
  for (std::size_t layer = 0; layer < layers.size(); ++layer) {
    const json& entry = layers[layer];
    if (!entry.is_object())
      corrupt(layer_name(layer), " is ", a_type(entry), ", expected an object");
    if (const auto id = entry.find("layer_id"); id != entry.end()) {
      const std::uint64_t value = read_count(*id, [&] { return layer_name(layer) + ".layer_id"; });
      if (value != layer) {
        corrupt(layer_name(layer), ".layer_id = ", value, ", expected ", layer,
                " (layers are listed in order, MoE layer 0 first)");
      }
    }
    const auto devices_found = entry.find("device_list");
    if (devices_found == entry.end()) corrupt(layer_name(layer), " has no device_list key");
    const json& devices = *devices_found;
    if (!devices.is_array()) {
      corrupt(layer_name(layer), ".device_list is ", a_type(devices), ", expected a list");
    }
    if (devices.empty()) corrupt(layer_name(layer), ".device_list is an empty list");
    if (const auto count = entry.find("device_count"); count != entry.end()) {
      const std::uint64_t value =
          read_count(*count, [&] { return layer_name(layer) + ".device_count"; });
      if (value != devices.size()) {
        corrupt(layer_name(layer), ".device_count = ", value, " but its device_list has ",
                devices.size(), " devices");
      }
    }
    if (layer == 0) {
      num_gpus = devices.size();
    } else if (devices.size() != num_gpus) {
      corrupt(layer_name(layer), ".device_list has ", devices.size(), " devices, expected ",
              num_gpus, " (as layer 0)");
    }
    for (std::size_t device = 0; device < devices.size(); ++device) {
      const json& record = devices[device];
      if (!record.is_object()) {
        corrupt(device_name(layer, device), " is ", a_type(record), ", expected an object");
      }
      if (const auto id = record.find("device_id"); id != record.end()) {
        const std::uint64_t value =
            read_count(*id, [&] { return device_name(layer, device) + ".device_id"; });
        if (value != device) {
          corrupt(device_name(layer, device), ".device_id = ", value, ", expected ", device,
                  " (devices are listed in order, device 0 first)");
        }
      }
      const auto experts_found = record.find("device_expert");
      if (experts_found == record.end()) {
        corrupt(device_name(layer, device), " has no device_expert key");
      }
      const json& experts = *experts_found;
      const auto list_name = [&] { return device_name(layer, device) + ".device_expert"; };
      if (!experts.is_array()) {
        corrupt(list_name(), " is ", a_type(experts), ", expected a list of expert ids");
      }
      if (layer == 0 && device == 0) {
        if (experts.empty()) corrupt(list_name(), " is an empty list");
        per_gpu = experts.size();
        table.width = checked_mul(num_gpus, per_gpu, "map size");
        table.ids.reserve(reservation(table.rows, table.width, text.size()));
      } else if (experts.size() != per_gpu) {
        corrupt(list_name(), " has ", experts.size(), " experts, expected ", per_gpu,
                " (every device holds the same number)");
      }
      for (std::size_t k = 0; k < per_gpu; ++k) {
        table.ids.push_back(read_id(experts[k], [&] { return cat(list_name(), "[", k, "]"); }));
      }
    }
  }
  if (num_gpus > kMaxCount) corrupt("layer_list[0].device_list has too many devices");
  if (num_gpus % num_nodes != 0) {
    fail_invalid("the map's ", num_gpus, " devices are not a multiple of num_nodes (", num_nodes,
                 ")");
  }
  const auto where = [&](std::size_t row, std::size_t column) {
    return cat(device_name(row, column / per_gpu), ".device_expert[", column % per_gpu, "]");
  };
  const std::uint32_t experts = check_ids(table, 0, num_logical, where, layer_name);
  return make_placement(std::move(table), 0, experts, num_nodes,
                        static_cast<std::uint32_t>(num_gpus));
}

LoadMatrix loads_from_sglang_json(std::string_view text) {
  const json document = parse(text, "SGLang load file");
  if (!document.is_object()) {
    corrupt("expected a JSON object with a logical_count key, found ", a_type(document));
  }
  const auto found = document.find(kCountKey);
  if (found == document.end()) {
    std::string keys;
    for (const auto& item : document.items()) {
      if (keys.size() > 200) {
        keys += ", ...";
        break;
      }
      keys += (keys.empty() ? "" : ", ") + quoted(item.key());
    }
    corrupt("no logical_count key (keys present: ", keys.empty() ? "none" : keys, ")");
  }
  const auto path = [](std::initializer_list<std::size_t> indices) {
    std::string out = kCountKey;
    for (std::size_t i : indices) out += cat("[", i, "]");
    return out;
  };
  const auto require_list = [](const json& value, const auto& name) -> const json& {
    if (!value.is_array()) corrupt(name(), " is ", a_type(value), ", expected a list");
    if (value.empty()) corrupt(name(), " is an empty list");
    return value;
  };
  const json& root = require_list(*found, [&] { return path({}); });
  const json& first = require_list(root.front(), [&] { return path({0}); });
  // 3-D when the first element's first element is itself a list.
  const bool three_d = first.front().is_array();
  const std::size_t steps = three_d ? root.size() : 1;

  LoadMatrix matrix;
  std::size_t layers = 0;
  std::size_t experts = 0;
  for (std::size_t step = 0; step < steps; ++step) {
    const json& step_rows = three_d ? require_list(root[step], [&] { return path({step}); }) : root;
    if (step == 0) {
      layers = step_rows.size();
    } else if (step_rows.size() != layers) {
      corrupt(path({step}), " has ", step_rows.size(), " layers, expected ", layers,
              " (as step 0)");
    }
    for (std::size_t layer = 0; layer < layers; ++layer) {
      const auto row_path = [&] { return three_d ? path({step, layer}) : path({layer}); };
      const json& row = require_list(step_rows[layer], row_path);
      // The matrix grows with the rows actually read (step 0), never by a size the document
      // merely implies: a few bytes of ragged rows must not reserve gigabytes.
      if (experts == 0) {
        experts = row.size();
      } else if (row.size() != experts) {
        corrupt(row_path(), " has ", row.size(), " experts, expected ", experts,
                " (as the first row)");
      }
      for (std::size_t expert = 0; expert < experts; ++expert) {
        const json& value = row[expert];
        const auto value_path = [&] {
          return three_d ? path({step, layer, expert}) : path({layer, expert});
        };
        if (!value.is_number()) corrupt(value_path(), " is ", a_type(value), ", expected a number");
        const double load = value.get<double>();
        if (!std::isfinite(load)) corrupt(value_path(), " is not finite");
        if (load < 0) corrupt(value_path(), " = ", value.dump(), " is negative");
        if (step == 0) {
          matrix.loads.push_back(load);
          continue;
        }
        double& sum = matrix.loads[layer * experts + expert];
        sum += load;
        if (!std::isfinite(sum)) {
          corrupt(value_path(), ": the sum over steps of layer ", layer, ", expert ", expert,
                  " is not finite");
        }
      }
    }
  }
  if (steps > kMaxCount || layers > kMaxCount || experts > kMaxCount) {
    corrupt("logical_count is too large (", steps, " steps, ", layers, " layers, ", experts,
            " experts)");
  }
  matrix.num_steps = static_cast<std::uint32_t>(steps);
  matrix.num_layers = static_cast<std::uint32_t>(layers);
  matrix.num_experts = static_cast<std::uint32_t>(experts);
  return matrix;
}

}  // namespace eplb
