// The bad-input matrix: every exported entry point of libeplb.so, called with each bad input that
// applies to it (NULL handles and pointers, zero and inconsistent sizes, sizes whose products
// overflow size_t, negative / NaN / infinite loads, ids out of range, statistics that do not
// match the placement, a wrong options struct_size), must return the documented status with a
// message that names the problem, leave its outputs untouched, and leave the handles it was given
// usable (checked after the whole matrix ran: "use after a failed call").
//
// The matrix is one table, kMatrix below: one row per entry point. EveryExportedSymbolHasARow
// reads the dynamic symbol table of the libeplb.so this test is linked with (ELF parsing, no
// external tool) and fails, naming them, for exported symbols without a row. Adding an entry
// point therefore means adding a row: its bad inputs, or, for a total function (one without a
// failing input, such as eplb_version_number), a `total` check of what it does on odd input.
#include <elf.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "eplb/eplb.h"
#include "support/token_exchange_options.hpp"

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr size_t kSizeMax = std::numeric_limits<size_t>::max();

// A pointer value that is never dereferenced: outputs must still hold it after a failed call.
template <typename T>
T* sentinel() {
  static int anchor = 0;
  return reinterpret_cast<T*>(&anchor);
}

// Valid objects every bad call starts from: 2 layers, 4 experts, 8 slots on 4 GPUs in 2 nodes.
struct World {
  static constexpr uint32_t kLayers = 2;
  static constexpr uint32_t kExperts = 4;
  static constexpr uint32_t kSlots = 8;
  static constexpr uint32_t kNodes = 2;
  static constexpr uint32_t kGpus = 4;
  static constexpr uint32_t kTopK = 2;

  std::vector<int32_t> phy2log = {0, 1, 2, 3, 0, 1, 2, 3, 3, 2, 1, 0, 3, 2, 1, 0};
  std::vector<double> loads = {10, 20, 30, 40, 5, 6, 7, 8};
  std::vector<int32_t> topk = {0, 1, 2, 3, 1, -1};  // 3 tokens of top-2
  eplb_placement* placement = nullptr;
  eplb_placement* other_shape = nullptr;  // 1 layer, 8 experts, 8 slots, 1 node, 4 GPUs
  eplb_planner* planner = nullptr;
  eplb_tracker* tracker = nullptr;
  eplb_tracker* other_tracker = nullptr;      // top_k 3
  eplb_snapshot* snapshot = nullptr;          // with loads
  eplb_snapshot* bare_snapshot = nullptr;     // without loads
  eplb_planner* affinity_planner = nullptr;   // options.affinity = 1
  eplb_tracker* bare_tracker = nullptr;       // reservoir_capacity 0
  eplb_tracker* one_layer_tracker = nullptr;  // 1 layer of 4 experts
  eplb_snapshot* stats_snapshot = nullptr;    // a statistics snapshot of `tracker`
  eplb_placement* moved = nullptr;            // layer 0 regrouped: migrating to it moves experts
  eplb_migration* migration = nullptr;        // placement -> moved, with loads
  eplb_workload* workload = nullptr;          // 2 layers, 4 experts, top-2
  uint32_t migration_steps = 0;
  std::vector<unsigned char> snapshot_bytes;
  std::filesystem::path directory;
  std::string snapshot_path;
  std::string sglang_json;
  std::string vllm_json;
  std::string loads_json = R"({"logical_count": [[1, 2, 3, 4], [5, 6, 7, 8]]})";

  World();
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  [[nodiscard]] eplb_planner_options planner_options() const {
    eplb_planner_options o;
    eplb_planner_options_init(&o);
    o.num_layers = kLayers;
    o.num_logical_experts = kExperts;
    o.num_physical_experts = kSlots;
    o.num_nodes = kNodes;
    o.num_gpus = kGpus;
    return o;
  }
  [[nodiscard]] static eplb_tracker_options tracker_options(uint32_t top_k = kTopK) {
    eplb_tracker_options o;
    eplb_tracker_options_init(&o);
    o.num_layers = kLayers;
    o.num_logical_experts = kExperts;
    o.top_k = top_k;
    return o;
  }
  [[nodiscard]] eplb_snapshot_options snapshot_options() const {
    eplb_snapshot_options o;
    eplb_snapshot_options_init(&o);
    o.loads = loads.data();
    o.loads_len = loads.size();
    return o;
  }
  [[nodiscard]] static eplb_workload_options workload_options() {
    eplb_workload_options o;
    eplb_workload_options_init(&o);
    o.num_layers = kLayers;
    o.num_experts = kExperts;
    o.top_k = kTopK;
    o.num_topics = 2;
    return o;
  }
  [[nodiscard]] std::string missing_path() const { return (directory / "missing.eplb").string(); }
};

void require_ok(eplb_status status) {
  if (status != EPLB_OK) {
    ADD_FAILURE() << "setup failed: " << eplb_last_error_message();
    throw std::runtime_error("setup failed");
  }
}

World::World() {
  require_ok(eplb_placement_create_from_phy2log(kLayers, kExperts, kSlots, kNodes, kGpus,
                                                phy2log.data(), phy2log.size(), &placement));
  const std::vector<int32_t> other = {0, 1, 2, 3, 4, 5, 6, 7};
  require_ok(
      eplb_placement_create_from_phy2log(1, 8, 8, 1, 4, other.data(), other.size(), &other_shape));
  const eplb_planner_options po = planner_options();
  require_ok(eplb_planner_create(&po, &planner));
  const eplb_tracker_options to = tracker_options();
  require_ok(eplb_tracker_create(&to, &tracker));
  require_ok(eplb_tracker_record(tracker, 0, topk.data(), 3, kTopK));
  const eplb_tracker_options to3 = tracker_options(3);
  require_ok(eplb_tracker_create(&to3, &other_tracker));
  eplb_planner_options affinity = planner_options();
  affinity.affinity = 1;
  require_ok(eplb_planner_create(&affinity, &affinity_planner));
  eplb_tracker_options bare = tracker_options();
  bare.reservoir_capacity = 0;
  require_ok(eplb_tracker_create(&bare, &bare_tracker));
  eplb_tracker_options one_layer = tracker_options();
  one_layer.num_layers = 1;
  require_ok(eplb_tracker_create(&one_layer, &one_layer_tracker));
  const eplb_workload_options wo = workload_options();
  require_ok(eplb_workload_create(&wo, &workload));
  const std::vector<int32_t> regrouped = {0, 2, 1, 3, 0, 2, 1, 3, 3, 2, 1, 0, 3, 2, 1, 0};
  require_ok(eplb_placement_create_from_phy2log(kLayers, kExperts, kSlots, kNodes, kGpus,
                                                regrouped.data(), regrouped.size(), &moved));
  require_ok(
      eplb_migration_plan(placement, moved, loads.data(), loads.size(), nullptr, &migration));
  eplb_migration_summary summary{};
  summary.struct_size = sizeof(summary);
  require_ok(eplb_migration_get_summary(migration, &summary));
  migration_steps = summary.num_steps;
  if (migration_steps == 0) ADD_FAILURE() << "the World's migration moves nothing";

  const eplb_snapshot_options so = snapshot_options();
  void* buffer = nullptr;
  size_t size = 0;
  require_ok(eplb_snapshot_save_to_buffer(placement, &so, &buffer, &size));
  const auto* bytes = static_cast<const unsigned char*>(buffer);
  snapshot_bytes.assign(bytes, bytes + size);
  eplb_buffer_free(buffer);
  require_ok(
      eplb_snapshot_load_from_buffer(snapshot_bytes.data(), snapshot_bytes.size(), &snapshot));
  require_ok(eplb_snapshot_save_to_buffer(placement, nullptr, &buffer, &size));
  require_ok(eplb_snapshot_load_from_buffer(buffer, size, &bare_snapshot));
  eplb_buffer_free(buffer);
  require_ok(eplb_snapshot_save_statistics_to_buffer(tracker, nullptr, &buffer, &size));
  require_ok(eplb_snapshot_load_from_buffer(buffer, size, &stats_snapshot));
  eplb_buffer_free(buffer);

  std::string pattern = (std::filesystem::temp_directory_path() / "eplb-bad-input-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  directory = pattern;
  snapshot_path = (directory / "good.eplb").string();
  require_ok(eplb_snapshot_save(placement, &so, snapshot_path.c_str()));

  char* text = nullptr;
  size_t len = 0;
  require_ok(eplb_placement_to_sglang_json(placement, 0, &text, &len));
  sglang_json.assign(text, len);
  eplb_buffer_free(text);
  require_ok(eplb_placement_to_vllm_ascend_json(placement, &text, &len));
  vllm_json.assign(text, len);
  eplb_buffer_free(text);
}

World::~World() {
  eplb_migration_destroy(migration);
  eplb_placement_destroy(moved);
  eplb_workload_destroy(workload);
  eplb_snapshot_destroy(stats_snapshot);
  eplb_tracker_destroy(one_layer_tracker);
  eplb_tracker_destroy(bare_tracker);
  eplb_planner_destroy(affinity_planner);
  eplb_snapshot_destroy(bare_snapshot);
  eplb_snapshot_destroy(snapshot);
  eplb_tracker_destroy(other_tracker);
  eplb_tracker_destroy(tracker);
  eplb_planner_destroy(planner);
  eplb_placement_destroy(other_shape);
  eplb_placement_destroy(placement);
  std::error_code ignored;
  std::filesystem::remove_all(directory, ignored);
}

// One bad input of one entry point: the call, the status it must return and fragments its
// message must contain.
struct BadInput {
  std::string input;
  eplb_status expected;
  std::vector<std::string> fragments;
  std::function<eplb_status(World&)> call;
};

// One entry point. Either `bad_inputs` is not empty, or the function has no failing input and
// `total` describes what it does with odd input while `check` verifies it.
struct Row {
  std::string entry_point;
  std::vector<BadInput> bad_inputs;
  std::string total;
  std::function<bool(World&)> check;
};

constexpr eplb_status kInvalid = EPLB_ERR_INVALID_ARGUMENT;
constexpr eplb_status kCorrupt = EPLB_ERR_CORRUPT;
constexpr eplb_status kSmall = EPLB_ERR_BUFFER_TOO_SMALL;
constexpr eplb_status kIo = EPLB_ERR_IO;

// --- helpers that build bad calls ---------------------------------------------------------------

// Host-only device tables of the World's placement for GPU 1, released after `call` (routing
// kernels, issue #7 items 1-3).
eplb_status with_host_tables(World& w,
                             const std::function<eplb_status(eplb_device_tables*)>& call) {
  eplb_device_tables* tables = nullptr;
  if (eplb_device_tables_create(w.placement, 1, 0, EPLB_DEVICE_TABLES_HOST_ONLY, nullptr,
                                &tables) != EPLB_OK) {
    ADD_FAILURE() << "setup failed: " << eplb_last_error_message();
    return EPLB_OK;
  }
  const eplb_status status = call(tables);
  eplb_device_tables_destroy(tables);
  return status;
}

eplb_status create_tables(World& w, uint32_t gpu, uint32_t max_replicas, uint32_t flags) {
  eplb_device_tables* out = sentinel<eplb_device_tables>();
  const eplb_status status =
      eplb_device_tables_create(w.placement, gpu, max_replicas, flags, nullptr, &out);
  if (out != sentinel<eplb_device_tables>()) {
    ADD_FAILURE() << "eplb_device_tables_create wrote its output on failure";
    if (status == EPLB_OK) eplb_device_tables_destroy(out);
  }
  return status;
}

eplb_status planner_create_with(const std::function<void(eplb_planner_options&)>& edit, World& w) {
  eplb_planner_options o = w.planner_options();
  edit(o);
  eplb_planner* out = sentinel<eplb_planner>();
  const eplb_status status = eplb_planner_create(&o, &out);
  if (out != sentinel<eplb_planner>()) {
    ADD_FAILURE() << "eplb_planner_create wrote its output on failure";
    if (status == EPLB_OK) eplb_planner_destroy(out);
  }
  return status;
}

eplb_status tracker_create_with(const std::function<void(eplb_tracker_options&)>& edit) {
  eplb_tracker_options o = World::tracker_options();
  edit(o);
  eplb_tracker* out = sentinel<eplb_tracker>();
  const eplb_status status = eplb_tracker_create(&o, &out);
  if (out != sentinel<eplb_tracker>()) {
    ADD_FAILURE() << "eplb_tracker_create wrote its output on failure";
    if (status == EPLB_OK) eplb_tracker_destroy(out);
  }
  return status;
}

eplb_status save_with(const std::function<void(eplb_snapshot_options&)>& edit, World& w) {
  eplb_snapshot_options o = w.snapshot_options();
  edit(o);
  return eplb_snapshot_save(w.placement, &o, (w.directory / "bad-options.eplb").c_str());
}

eplb_status import_map(uint32_t layers, uint32_t experts, uint32_t slots, uint32_t nodes,
                       uint32_t gpus, const std::vector<int32_t>& map, size_t len) {
  eplb_placement* out = sentinel<eplb_placement>();
  const eplb_status status = eplb_placement_create_from_phy2log(layers, experts, slots, nodes, gpus,
                                                                map.data(), len, &out);
  if (out != sentinel<eplb_placement>()) {
    ADD_FAILURE() << "eplb_placement_create_from_phy2log wrote its output on failure";
    if (status == EPLB_OK) eplb_placement_destroy(out);
  }
  return status;
}

std::vector<int32_t> edited_map(const World& w, size_t index, int32_t value) {
  std::vector<int32_t> map = w.phy2log;
  map[index] = value;
  return map;
}

eplb_status plan_with(std::vector<double> loads, size_t len, World& w) {
  eplb_placement* out = sentinel<eplb_placement>();
  const eplb_status status = eplb_planner_plan(w.planner, loads.data(), len, &out);
  if (out != sentinel<eplb_placement>()) ADD_FAILURE() << "eplb_planner_plan wrote its output";
  return status;
}

std::vector<double> loads_with(const World& w, size_t index, double value) {
  std::vector<double> loads = w.loads;
  loads[index] = value;
  return loads;
}

eplb_status plan_windows_with(std::vector<double> loads, size_t windows, size_t len, World& w) {
  eplb_placement* out = sentinel<eplb_placement>();
  const eplb_status status = eplb_planner_plan_windows(w.planner, loads.data(), windows, len, &out);
  if (out != sentinel<eplb_placement>()) ADD_FAILURE() << "plan_windows wrote its output";
  return status;
}

eplb_status load_bytes(std::vector<unsigned char> bytes) {
  eplb_snapshot* out = sentinel<eplb_snapshot>();
  const eplb_status status = eplb_snapshot_load_from_buffer(bytes.data(), bytes.size(), &out);
  if (out != sentinel<eplb_snapshot>()) ADD_FAILURE() << "load_from_buffer wrote its output";
  return status;
}

eplb_status write_and_load(World& w, const std::string& name, const std::string& content) {
  const std::string path = (w.directory / name).string();
  std::ofstream(path, std::ios::binary) << content;
  eplb_snapshot* out = sentinel<eplb_snapshot>();
  const eplb_status status = eplb_snapshot_load(path.c_str(), &out);
  if (out != sentinel<eplb_snapshot>()) ADD_FAILURE() << "eplb_snapshot_load wrote its output";
  return status;
}

eplb_status from_sglang(const std::string& json, uint32_t experts, uint32_t nodes, uint32_t gpus,
                        uint32_t dense) {
  eplb_placement* out = sentinel<eplb_placement>();
  const eplb_status status =
      eplb_placement_from_sglang_json(json.data(), json.size(), experts, nodes, gpus, dense, &out);
  if (out != sentinel<eplb_placement>()) ADD_FAILURE() << "from_sglang_json wrote its output";
  return status;
}

eplb_status from_vllm(const std::string& json, uint32_t experts, uint32_t nodes) {
  eplb_placement* out = sentinel<eplb_placement>();
  const eplb_status status =
      eplb_placement_from_vllm_ascend_json(json.data(), json.size(), experts, nodes, &out);
  if (out != sentinel<eplb_placement>()) ADD_FAILURE() << "from_vllm_ascend_json wrote its output";
  return status;
}

eplb_status loads_from(const std::string& json) {
  double* out = sentinel<double>();
  uint32_t layers = 7;
  uint32_t experts = 7;
  const eplb_status status =
      eplb_loads_from_sglang_json(json.data(), json.size(), &out, &layers, &experts);
  if (out != sentinel<double>() || layers != 7 || experts != 7) {
    ADD_FAILURE() << "eplb_loads_from_sglang_json wrote its outputs";
  }
  return status;
}

eplb_status record(World& w, uint32_t layer, std::vector<int32_t> ids, size_t tokens,
                   uint32_t top_k) {
  return eplb_tracker_record(w.tracker, layer, ids.data(), tokens, top_k);
}

eplb_status record_physical(World& w, const eplb_placement* placement, std::vector<int32_t> ids,
                            size_t tokens) {
  return eplb_tracker_record_physical(w.tracker, placement, 0, ids.data(), tokens, World::kTopK);
}

eplb_status metrics_with(World& w, const std::vector<double>& loads, size_t len,
                         uint32_t struct_size = sizeof(eplb_metrics)) {
  eplb_metrics m{};
  m.struct_size = struct_size;
  return eplb_metrics_compute(w.placement, loads.data(), len, &m);
}

eplb_status layer_metrics_with(World& w, uint32_t layer, const std::vector<double>& loads,
                               size_t len, uint32_t struct_size = sizeof(eplb_layer_metrics)) {
  eplb_layer_metrics m{};
  m.struct_size = struct_size;
  return eplb_metrics_compute_layer(w.placement, layer, loads.data(), len, &m);
}

eplb_status optimum_with(World& w, const std::vector<double>& loads, size_t len) {
  double out = 0;
  return eplb_metrics_exact_optimum(w.placement, loads.data(), len, &out);
}

eplb_status touched_with(World& w, uint32_t layer, std::vector<int32_t> rows, size_t num_rows,
                         uint32_t top_k) {
  double out = 0;
  return eplb_metrics_nodes_touched(w.placement, layer, rows.data(), num_rows, top_k, &out);
}

std::vector<unsigned char> flipped(const World& w, size_t offset) {
  std::vector<unsigned char> bytes = w.snapshot_bytes;
  bytes[offset] ^= 0x40U;
  return bytes;
}

// The dimensions every [layers][experts] buffer has in World.
constexpr size_t kMatrixLen = static_cast<size_t>(World::kLayers) * World::kExperts;
constexpr size_t kMapLen = static_cast<size_t>(World::kLayers) * World::kSlots;
constexpr size_t kPairs = World::kExperts * (World::kExperts - 1) / 2;

eplb_status plan_tracked_with(eplb_planner* planner, const std::vector<double>& loads, size_t len,
                              const eplb_tracker* tracker) {
  eplb_placement* out = sentinel<eplb_placement>();
  const eplb_status status = eplb_planner_plan_tracked(
      planner, loads.empty() ? nullptr : loads.data(), len, tracker, &out);
  if (out != sentinel<eplb_placement>()) ADD_FAILURE() << "plan_tracked wrote its output";
  return status;
}

eplb_status save_statistics_with(const std::function<void(eplb_snapshot_options&)>& edit,
                                 World& w) {
  eplb_snapshot_options o;
  eplb_snapshot_options_init(&o);
  edit(o);
  return eplb_snapshot_save_statistics(w.tracker, &o, (w.directory / "bad-stats.eplb").c_str());
}

eplb_status statistics_to_buffer_with(const std::function<void(eplb_snapshot_options&)>& edit,
                                      World& w) {
  eplb_snapshot_options o;
  eplb_snapshot_options_init(&o);
  edit(o);
  void* buffer = sentinel<void>();
  size_t size = 7;
  const eplb_status status = eplb_snapshot_save_statistics_to_buffer(w.tracker, &o, &buffer, &size);
  if (buffer != sentinel<void>() || size != 7) {
    ADD_FAILURE() << "save_statistics_to_buffer wrote its outputs";
  }
  return status;
}

eplb_status workload_create_with(const std::function<void(eplb_workload_options&)>& edit) {
  eplb_workload_options o = World::workload_options();
  edit(o);
  eplb_workload* out = sentinel<eplb_workload>();
  const eplb_status status = eplb_workload_create(&o, &out);
  if (out != sentinel<eplb_workload>()) {
    ADD_FAILURE() << "eplb_workload_create wrote its output on failure";
    if (status == EPLB_OK) eplb_workload_destroy(out);
  }
  return status;
}

eplb_status next_batch_with(World& w, size_t tokens, size_t out_len) {
  std::vector<int32_t> out(16, 7);
  const eplb_status status = eplb_workload_next_batch(w.workload, tokens, out.data(), out_len);
  if (out != std::vector<int32_t>(16, 7)) ADD_FAILURE() << "next_batch wrote its output";
  return status;
}

eplb_status migrate_with(World& w, const eplb_placement* new_placement,
                         const std::vector<double>& loads, size_t len,
                         const std::function<void(eplb_migration_options&)>& edit = {}) {
  eplb_migration_options o;
  eplb_migration_options_init(&o);
  if (edit) edit(o);
  eplb_migration* out = sentinel<eplb_migration>();
  const eplb_status status = eplb_migration_plan(
      w.placement, new_placement, loads.empty() ? nullptr : loads.data(), len, &o, &out);
  if (out != sentinel<eplb_migration>()) {
    ADD_FAILURE() << "eplb_migration_plan wrote its output on failure";
    if (status == EPLB_OK) eplb_migration_destroy(out);
  }
  return status;
}

// A migration to a placement of World's shape but another node count (`nodes`).
eplb_status migrate_to_nodes(World& w, uint32_t nodes) {
  eplb_placement* other = nullptr;
  require_ok(eplb_placement_create_from_phy2log(World::kLayers, World::kExperts, World::kSlots,
                                                nodes, World::kGpus, w.phy2log.data(),
                                                w.phy2log.size(), &other));
  const eplb_status status = migrate_with(w, other, w.loads, kMatrixLen);
  eplb_placement_destroy(other);
  return status;
}

eplb_status step_placement_at(World& w, uint32_t step) {
  eplb_placement* out = sentinel<eplb_placement>();
  const eplb_status status = eplb_migration_get_step_placement(w.migration, step, &out);
  if (out != sentinel<eplb_placement>()) ADD_FAILURE() << "get_step_placement wrote its output";
  return status;
}

// --- the matrix ---------------------------------------------------------------------------------

// clang-format off
// Host-only split tables of the World's placement (both layers), released after `call` (GPU
// replica split, issue #9).
eplb_status with_split_tables(World& w, const std::function<eplb_status(eplb_split_tables*)>& call) {
  eplb_split_tables* tables = nullptr;
  if (eplb_split_tables_create(w.placement, 0, 0, EPLB_SPLIT_TABLES_HOST_ONLY, nullptr, &tables) !=
      EPLB_OK) {
    ADD_FAILURE() << "setup failed: " << eplb_last_error_message();
    return EPLB_OK;
  }
  const eplb_status status = call(tables);
  eplb_split_tables_destroy(tables);
  return status;
}

eplb_status create_split_tables(const eplb_placement* placement, uint32_t first, uint32_t count,
                                uint32_t flags, bool null_out = false) {
  eplb_split_tables* out = sentinel<eplb_split_tables>();
  const eplb_status status =
      eplb_split_tables_create(placement, first, count, flags, nullptr, null_out ? nullptr : &out);
  if (out != sentinel<eplb_split_tables>()) {
    ADD_FAILURE() << "eplb_split_tables_create wrote its output on failure";
    if (status == EPLB_OK) eplb_split_tables_destroy(out);
  }
  return status;
}

// A host workspace large enough for the waterfill kernels on the World (3 tokens, 4 GPUs).
void* wf_ws() {
  static uint64_t workspace[256];
  return workspace;
}
constexpr size_t kWfWsBytes = 256 * sizeof(uint64_t);

const std::vector<Row>& matrix() {
  static const std::vector<Row> rows = {
  {"eplb_status_string", {}, "an unknown status gives \"unknown status\", never NULL",
   [](World&) { return std::strcmp(eplb_status_string(static_cast<eplb_status>(15)), "unknown status") == 0; }},
  {"eplb_last_error_message", {}, "never NULL; \"\" after a successful call",
   [](World& w) { eplb_placement_info i{}; i.struct_size = sizeof(i);
                  return eplb_placement_get_info(w.placement, &i) == EPLB_OK &&
                         eplb_last_error_message() != nullptr && *eplb_last_error_message() == '\0'; }},
  {"eplb_version_number", {}, "no input; equals the header's EPLB_VERSION_NUMBER",
   [](World&) { return eplb_version_number() == EPLB_VERSION_NUMBER; }},
  {"eplb_version_string", {}, "no input; equals EPLB_VERSION_STRING",
   [](World&) { return std::strcmp(eplb_version_string(), EPLB_VERSION_STRING) == 0; }},
  {"eplb_algorithm_count", {}, "no input; at least EPLB_ALGORITHM_BALANCED_RELAXED",
   [](World&) { return eplb_algorithm_count() >= EPLB_ALGORITHM_BALANCED_RELAXED; }},
  {"eplb_algorithm_name", {}, "an unknown id gives NULL",
   [](World&) { return eplb_algorithm_name(eplb_algorithm_count() + 1) == nullptr &&
                       eplb_algorithm_name(UINT32_MAX) == nullptr; }},
  {"eplb_algorithm_description", {}, "an unknown id gives NULL",
   [](World&) { return eplb_algorithm_description(eplb_algorithm_count() + 1) == nullptr &&
                       eplb_algorithm_description(UINT32_MAX) == nullptr; }},
  {"eplb_algorithm_from_name", {
    {"NULL name", kInvalid, {"name", "NULL"}, [](World&) { uint32_t a = 0; return eplb_algorithm_from_name(nullptr, &a); }},
    {"NULL out_algorithm", kInvalid, {"out_algorithm", "NULL"}, [](World&) { return eplb_algorithm_from_name("deepseek", nullptr); }},
    {"unknown name", kInvalid, {"bogus", "deepseek"}, [](World&) { uint32_t a = 0; return eplb_algorithm_from_name("bogus", &a); }},
    {"empty name", kInvalid, {"unknown algorithm \"\""}, [](World&) { uint32_t a = 0; return eplb_algorithm_from_name("", &a); }},
  }, {}, {}},
  {"eplb_placement_get_info", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { eplb_placement_info i{}; i.struct_size = sizeof(i); return eplb_placement_get_info(nullptr, &i); }},
    {"NULL out_info", kInvalid, {"out_info", "NULL"}, [](World& w) { return eplb_placement_get_info(w.placement, nullptr); }},
    {"struct_size 0", kInvalid, {"struct_size", "0"}, [](World& w) { eplb_placement_info i{}; return eplb_placement_get_info(w.placement, &i); }},
    {"struct_size 3", kInvalid, {"struct_size", "3"}, [](World& w) { eplb_placement_info i{}; i.struct_size = 3; return eplb_placement_get_info(w.placement, &i); }},
  }, {}, {}},
  {"eplb_placement_get_phy2log", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { int32_t o[16]; return eplb_placement_get_phy2log(nullptr, o, 16); }},
    {"NULL out", kInvalid, {"out", "NULL"}, [](World& w) { return eplb_placement_get_phy2log(w.placement, nullptr, kMapLen); }},
    {"out_len one short", kSmall, {"15", "16"}, [](World& w) { int32_t o[16]; return eplb_placement_get_phy2log(w.placement, o, kMapLen - 1); }},
    {"out_len 0", kSmall, {"0", "16"}, [](World& w) { int32_t o[1]; return eplb_placement_get_phy2log(w.placement, o, 0); }},
  }, {}, {}},
  {"eplb_placement_get_replica_counts", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { int32_t o[8]; return eplb_placement_get_replica_counts(nullptr, o, 8); }},
    {"NULL out", kInvalid, {"out", "NULL"}, [](World& w) { return eplb_placement_get_replica_counts(w.placement, nullptr, kMatrixLen); }},
    {"out_len one short", kSmall, {"7", "8"}, [](World& w) { int32_t o[8]; return eplb_placement_get_replica_counts(w.placement, o, kMatrixLen - 1); }},
  }, {}, {}},
  {"eplb_placement_get_log2phy", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { int32_t o[16]; return eplb_placement_get_log2phy(nullptr, o, 16); }},
    {"NULL out", kInvalid, {"out", "NULL"}, [](World& w) { return eplb_placement_get_log2phy(w.placement, nullptr, 16); }},
    {"out_len one short", kSmall, {"15", "16"}, [](World& w) { int32_t o[16]; return eplb_placement_get_log2phy(w.placement, o, 15); }},
  }, {}, {}},
  {"eplb_placement_create_from_phy2log", {
    {"NULL phy2log", kInvalid, {"phy2log", "NULL"}, [](World&) { eplb_placement* o = nullptr; return eplb_placement_create_from_phy2log(2, 4, 8, 2, 4, nullptr, kMapLen, &o); }},
    {"NULL out_placement", kInvalid, {"out_placement", "NULL"}, [](World& w) { return eplb_placement_create_from_phy2log(2, 4, 8, 2, 4, w.phy2log.data(), kMapLen, nullptr); }},
    {"zero layers", kInvalid, {"num_layers", "0"}, [](World& w) { return import_map(0, 4, 8, 2, 4, w.phy2log, kMapLen); }},
    {"zero experts", kInvalid, {"num_logical_experts", "0"}, [](World& w) { return import_map(2, 0, 8, 2, 4, w.phy2log, kMapLen); }},
    {"zero nodes", kInvalid, {"num_nodes", "0"}, [](World& w) { return import_map(2, 4, 8, 0, 4, w.phy2log, kMapLen); }},
    {"zero gpus", kInvalid, {"num_gpus", "0"}, [](World& w) { return import_map(2, 4, 8, 2, 0, w.phy2log, kMapLen); }},
    {"slots not a multiple of gpus", kInvalid, {"num_physical_experts (8)", "num_gpus (3)"}, [](World& w) { return import_map(2, 4, 8, 1, 3, w.phy2log, kMapLen); }},
    {"gpus not a multiple of nodes", kInvalid, {"num_gpus (4)", "num_nodes (3)"}, [](World& w) { return import_map(2, 4, 8, 3, 4, w.phy2log, kMapLen); }},
    {"fewer slots than experts", kInvalid, {"num_physical_experts (8)", "9"}, [](World& w) { return import_map(2, 9, 8, 2, 4, w.phy2log, kMapLen); }},
    {"length one short", kInvalid, {"phy2log", "15", "16"}, [](World& w) { return import_map(2, 4, 8, 2, 4, w.phy2log, kMapLen - 1); }},
    {"length SIZE_MAX", kInvalid, {"phy2log", std::to_string(kSizeMax)}, [](World& w) { return import_map(2, 4, 8, 2, 4, w.phy2log, kSizeMax); }},
    {"layers x slots beyond any buffer", kInvalid, {"num_layers", "2147483648"}, [](World& w) { return import_map(0x80000000U, 4, 0x80000000U, 1, 1, w.phy2log, kMapLen); }},
    {"id == E", kInvalid, {"phy2log[1][3]", "4"}, [](World& w) { return import_map(2, 4, 8, 2, 4, edited_map(w, 8 + 3, 4), kMapLen); }},
    {"id -1", kInvalid, {"phy2log[0][5]", "-1"}, [](World& w) { return import_map(2, 4, 8, 2, 4, edited_map(w, 5, -1), kMapLen); }},
    {"expert missing from a layer", kInvalid, {"layer 0", "expert 0"}, [](World& w) { std::vector<int32_t> m = edited_map(w, 0, 1); m[4] = 1; return import_map(2, 4, 8, 2, 4, m, kMapLen); }},
  }, {}, {}},
  {"eplb_placement_destroy", {}, "NULL is a no-op", [](World&) { eplb_placement_destroy(nullptr); return true; }},
  {"eplb_planner_options_init", {}, "NULL is a no-op", [](World&) { eplb_planner_options_init(nullptr); return true; }},
  {"eplb_planner_create", {
    {"NULL options", kInvalid, {"options", "NULL"}, [](World&) { eplb_planner* o = nullptr; return eplb_planner_create(nullptr, &o); }},
    {"NULL out_planner", kInvalid, {"out_planner", "NULL"}, [](World& w) { const auto o = w.planner_options(); return eplb_planner_create(&o, nullptr); }},
    {"struct_size 0", kInvalid, {"struct_size", "0"}, [](World& w) { return planner_create_with([](auto& o) { o.struct_size = 0; }, w); }},
    {"struct_size 2", kInvalid, {"struct_size", "2"}, [](World& w) { return planner_create_with([](auto& o) { o.struct_size = 2; }, w); }},
    {"unknown algorithm", kInvalid, {"algorithm", "99"}, [](World& w) { return planner_create_with([](auto& o) { o.algorithm = 99; }, w); }},
    {"zero layers", kInvalid, {"num_layers", "0"}, [](World& w) { return planner_create_with([](auto& o) { o.num_layers = 0; }, w); }},
    {"zero experts", kInvalid, {"num_logical_experts", "0"}, [](World& w) { return planner_create_with([](auto& o) { o.num_logical_experts = 0; }, w); }},
    {"zero gpus", kInvalid, {"num_gpus", "0"}, [](World& w) { return planner_create_with([](auto& o) { o.num_gpus = 0; }, w); }},
    {"zero groups", kInvalid, {"num_groups", "0"}, [](World& w) { return planner_create_with([](auto& o) { o.num_groups = 0; }, w); }},
    {"experts not a multiple of groups", kInvalid, {"num_logical_experts (4)", "num_groups (3)"}, [](World& w) { return planner_create_with([](auto& o) { o.num_groups = 3; }, w); }},
    {"slots not a multiple of gpus", kInvalid, {"num_physical_experts (8)", "num_gpus (3)"}, [](World& w) { return planner_create_with([](auto& o) { o.num_gpus = 3; o.num_nodes = 1; }, w); }},
    {"gpus not a multiple of nodes", kInvalid, {"num_gpus (4)", "num_nodes (3)"}, [](World& w) { return planner_create_with([](auto& o) { o.num_nodes = 3; }, w); }},
    {"fewer slots than experts", kInvalid, {"num_physical_experts (8)", "12"}, [](World& w) { return planner_create_with([](auto& o) { o.num_logical_experts = 12; }, w); }},
    {"a count above INT32_MAX", kInvalid, {"num_layers", "4294967295"}, [](World& w) { return planner_create_with([](auto& o) { o.num_layers = UINT32_MAX; }, w); }},
    {"cross_node_budget above slots", kInvalid, {"cross_node_budget", "9"}, [](World& w) { return planner_create_with([](auto& o) { o.algorithm = EPLB_ALGORITHM_BALANCED_RELAXED; o.cross_node_budget = 9; }, w); }},
    {"257 threads", kInvalid, {"num_threads", "257"}, [](World& w) { return planner_create_with([](auto& o) { o.num_threads = 257; }, w); }},
    {"affinity 2", kInvalid, {"affinity (2)", "0 or 1"}, [](World& w) { return planner_create_with([](auto& o) { o.affinity = 2; }, w); }},
    {"reserved0 1", kInvalid, {"reserved0 (1)", "must be 0"}, [](World& w) { return planner_create_with([](auto& o) { o.reserved0 = 1; }, w); }},
    {"affinity_min_balance 0", kInvalid, {"affinity_min_balance (0)", "(0, 1]"}, [](World& w) { return planner_create_with([](auto& o) { o.affinity = 1; o.affinity_min_balance = 0; }, w); }},
    {"affinity_min_balance NaN", kInvalid, {"affinity_min_balance (nan)", "(0, 1]"}, [](World& w) { return planner_create_with([](auto& o) { o.affinity = 1; o.affinity_min_balance = kNaN; }, w); }},
    {"affinity_min_balance 1.5", kInvalid, {"affinity_min_balance (1.5)", "(0, 1]"}, [](World& w) { return planner_create_with([](auto& o) { o.affinity = 1; o.affinity_min_balance = 1.5; }, w); }},
  }, {}, {}},
  {"eplb_planner_destroy", {}, "NULL is a no-op", [](World&) { eplb_planner_destroy(nullptr); return true; }},
  {"eplb_planner_plan", {
    {"NULL planner", kInvalid, {"planner", "NULL"}, [](World& w) { eplb_placement* o = nullptr; return eplb_planner_plan(nullptr, w.loads.data(), kMatrixLen, &o); }},
    {"NULL loads", kInvalid, {"loads", "NULL"}, [](World& w) { eplb_placement* o = nullptr; return eplb_planner_plan(w.planner, nullptr, kMatrixLen, &o); }},
    {"NULL out_placement", kInvalid, {"out_placement", "NULL"}, [](World& w) { return eplb_planner_plan(w.planner, w.loads.data(), kMatrixLen, nullptr); }},
    {"loads_len one short", kInvalid, {"loads has 7 values", "8"}, [](World& w) { return plan_with(w.loads, kMatrixLen - 1, w); }},
    {"loads_len SIZE_MAX", kInvalid, {"loads has " + std::to_string(kSizeMax)}, [](World& w) { return plan_with(w.loads, kSizeMax, w); }},
    {"negative load", kInvalid, {"loads[1][2]", "-1", "negative"}, [](World& w) { return plan_with(loads_with(w, 6, -1), kMatrixLen, w); }},
    {"NaN load", kInvalid, {"loads[0][1]", "NaN"}, [](World& w) { return plan_with(loads_with(w, 1, kNaN), kMatrixLen, w); }},
    {"infinite load", kInvalid, {"loads[1][3]", "infinite"}, [](World& w) { return plan_with(loads_with(w, 7, kInf), kMatrixLen, w); }},
    {"-infinite load", kInvalid, {"loads[0][0]", "-inf"}, [](World& w) { return plan_with(loads_with(w, 0, -kInf), kMatrixLen, w); }},
    {"planner with affinity", kInvalid, {"affinity", "eplb_planner_plan_tracked"}, [](World& w) { eplb_placement* o = sentinel<eplb_placement>(); const eplb_status s = eplb_planner_plan(w.affinity_planner, w.loads.data(), kMatrixLen, &o); if (o != sentinel<eplb_placement>()) ADD_FAILURE() << "plan wrote its output"; return s; }},
  }, {}, {}},
  {"eplb_planner_plan_windows", {
    {"NULL planner", kInvalid, {"planner", "NULL"}, [](World& w) { eplb_placement* o = nullptr; return eplb_planner_plan_windows(nullptr, w.loads.data(), 1, kMatrixLen, &o); }},
    {"NULL loads", kInvalid, {"loads", "NULL"}, [](World& w) { eplb_placement* o = nullptr; return eplb_planner_plan_windows(w.planner, nullptr, 1, kMatrixLen, &o); }},
    {"NULL out_placement", kInvalid, {"out_placement", "NULL"}, [](World& w) { return eplb_planner_plan_windows(w.planner, w.loads.data(), 1, kMatrixLen, nullptr); }},
    {"zero windows", kInvalid, {"num_windows", "0"}, [](World& w) { return plan_windows_with(w.loads, 0, 0, w); }},
    {"windows x layers x experts overflows size_t", EPLB_ERR_OUT_OF_MEMORY, {"num_windows", std::to_string(kSizeMax / 4), "overflows"}, [](World& w) { return plan_windows_with(w.loads, kSizeMax / 4, kMatrixLen, w); }},
    {"loads_len of one window for two", kInvalid, {"loads has 8 values", "16"}, [](World& w) { return plan_windows_with(w.loads, 2, kMatrixLen, w); }},
    {"NaN load in window 1", kInvalid, {"loads[1][0][2]", "NaN"}, [](World& w) { std::vector<double> l = w.loads; l.insert(l.end(), w.loads.begin(), w.loads.end()); l[kMatrixLen + 2] = kNaN; return plan_windows_with(l, 2, 2 * kMatrixLen, w); }},
  }, {}, {}},
  {"eplb_snapshot_options_init", {}, "NULL is a no-op", [](World&) { eplb_snapshot_options_init(nullptr); return true; }},
  {"eplb_snapshot_save", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World& w) { return eplb_snapshot_save(nullptr, nullptr, (w.directory / "x.eplb").c_str()); }},
    {"NULL path", kInvalid, {"path", "NULL"}, [](World& w) { return eplb_snapshot_save(w.placement, nullptr, nullptr); }},
    {"empty path", kIo, {"''"}, [](World& w) { return eplb_snapshot_save(w.placement, nullptr, ""); }},
    {"missing directory", kIo, {"no-such-dir", "No such file"}, [](World& w) { return eplb_snapshot_save(w.placement, nullptr, (w.directory / "no-such-dir" / "x.eplb").c_str()); }},
    {"path is a directory", kIo, {"eplb-bad-input-"}, [](World& w) { return eplb_snapshot_save(w.placement, nullptr, w.directory.c_str()); }},
    {"options struct_size 0", kInvalid, {"struct_size", "0"}, [](World& w) { return save_with([](auto& o) { o.struct_size = 0; }, w); }},
    {"loads_len of another shape", kInvalid, {"loads has 7 values", "8"}, [](World& w) { return save_with([](auto& o) { o.loads_len = 7; }, w); }},
    {"loads_len without loads", kInvalid, {"loads"}, [](World& w) { return save_with([](auto& o) { o.loads = nullptr; }, w); }},
    {"NaN load", kInvalid, {"loads[0][3]", "NaN"}, [](World& w) { static std::vector<double> l; l = loads_with(w, 3, kNaN); return save_with([](auto& o) { o.loads = l.data(); }, w); }},
    {"negative load", kInvalid, {"loads[1][0]", "-2"}, [](World& w) { static std::vector<double> l; l = loads_with(w, 4, -2); return save_with([](auto& o) { o.loads = l.data(); }, w); }},
    {"label of 256 bytes", kInvalid, {"label", "255 bytes"}, [](World& w) { static const std::string label(256, 'x'); return save_with([](auto& o) { o.label = label.c_str(); }, w); }},
    {"compression level 0", kInvalid, {"compression_level", "0"}, [](World& w) { return save_with([](auto& o) { o.compression_level = 0; }, w); }},
    {"compression level 20", kInvalid, {"compression_level", "20"}, [](World& w) { return save_with([](auto& o) { o.compression_level = 20; }, w); }},
  }, {}, {}},
  {"eplb_snapshot_save_to_buffer", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { void* b = nullptr; size_t s = 0; return eplb_snapshot_save_to_buffer(nullptr, nullptr, &b, &s); }},
    {"NULL out_buffer", kInvalid, {"out_buffer", "NULL"}, [](World& w) { size_t s = 0; return eplb_snapshot_save_to_buffer(w.placement, nullptr, nullptr, &s); }},
    {"NULL out_size", kInvalid, {"out_size", "NULL"}, [](World& w) { void* b = nullptr; return eplb_snapshot_save_to_buffer(w.placement, nullptr, &b, nullptr); }},
    {"loads of another shape", kInvalid, {"loads has 9 values", "8"}, [](World& w) { static std::vector<double> l(9, 1.0); eplb_snapshot_options o = w.snapshot_options(); o.loads = l.data(); o.loads_len = l.size(); void* b = nullptr; size_t s = 0; return eplb_snapshot_save_to_buffer(w.placement, &o, &b, &s); }},
    {"options struct_size 1", kInvalid, {"struct_size", "1"}, [](World& w) { eplb_snapshot_options o = w.snapshot_options(); o.struct_size = 1; void* b = nullptr; size_t s = 0; return eplb_snapshot_save_to_buffer(w.placement, &o, &b, &s); }},
  }, {}, {}},
  {"eplb_buffer_free", {}, "NULL is a no-op", [](World&) { eplb_buffer_free(nullptr); return true; }},
  {"eplb_snapshot_load", {
    {"NULL path", kInvalid, {"path", "NULL"}, [](World&) { eplb_snapshot* o = nullptr; return eplb_snapshot_load(nullptr, &o); }},
    {"NULL out_snapshot", kInvalid, {"out_snapshot", "NULL"}, [](World& w) { return eplb_snapshot_load(w.snapshot_path.c_str(), nullptr); }},
    {"missing file", kIo, {"missing.eplb", "No such file"}, [](World& w) { eplb_snapshot* o = nullptr; return eplb_snapshot_load(w.missing_path().c_str(), &o); }},
    {"a directory", kIo, {"directory"}, [](World& w) { eplb_snapshot* o = nullptr; return eplb_snapshot_load(w.directory.c_str(), &o); }},
    {"empty file", EPLB_ERR_TRUNCATED, {"0"}, [](World& w) { return write_and_load(w, "empty.eplb", ""); }},
    {"text file", kCorrupt, {"magic"}, [](World& w) { return write_and_load(w, "text.eplb", std::string(200, 'a')); }},
  }, {}, {}},
  {"eplb_snapshot_load_from_buffer", {
    {"NULL data", kInvalid, {"data", "NULL"}, [](World&) { eplb_snapshot* o = nullptr; return eplb_snapshot_load_from_buffer(nullptr, 100, &o); }},
    {"NULL out_snapshot", kInvalid, {"out_snapshot", "NULL"}, [](World& w) { return eplb_snapshot_load_from_buffer(w.snapshot_bytes.data(), w.snapshot_bytes.size(), nullptr); }},
    {"size 0", EPLB_ERR_TRUNCATED, {"0"}, [](World&) { return load_bytes({}); }},
    {"last byte missing", EPLB_ERR_TRUNCATED, {"bytes"}, [](World& w) { std::vector<unsigned char> b = w.snapshot_bytes; b.pop_back(); return load_bytes(b); }},
    {"bad magic", kCorrupt, {"magic"}, [](World& w) { return load_bytes(flipped(w, 0)); }},
    {"flipped last byte", kCorrupt, {"checksum"}, [](World& w) { return load_bytes(flipped(w, w.snapshot_bytes.size() - 1)); }},
  }, {}, {}},
  {"eplb_snapshot_inspect", {
    {"NULL path", kInvalid, {"path", "NULL"}, [](World&) { eplb_snapshot_info i{}; i.struct_size = sizeof(i); return eplb_snapshot_inspect(nullptr, &i); }},
    {"NULL out_info", kInvalid, {"out_info", "NULL"}, [](World& w) { return eplb_snapshot_inspect(w.snapshot_path.c_str(), nullptr); }},
    {"struct_size 0", kInvalid, {"struct_size", "0"}, [](World& w) { eplb_snapshot_info i{}; return eplb_snapshot_inspect(w.snapshot_path.c_str(), &i); }},
    {"missing file", kIo, {"missing.eplb", "No such file"}, [](World& w) { eplb_snapshot_info i{}; i.struct_size = sizeof(i); return eplb_snapshot_inspect(w.missing_path().c_str(), &i); }},
  }, {}, {}},
  {"eplb_snapshot_get_info", {
    {"NULL snapshot", kInvalid, {"snapshot", "NULL"}, [](World&) { eplb_snapshot_info i{}; i.struct_size = sizeof(i); return eplb_snapshot_get_info(nullptr, &i); }},
    {"NULL out_info", kInvalid, {"out_info", "NULL"}, [](World& w) { return eplb_snapshot_get_info(w.snapshot, nullptr); }},
    {"struct_size 0", kInvalid, {"struct_size", "0"}, [](World& w) { eplb_snapshot_info i{}; return eplb_snapshot_get_info(w.snapshot, &i); }},
    {"struct_size 5", kInvalid, {"struct_size", "5"}, [](World& w) { eplb_snapshot_info i{}; i.struct_size = 5; return eplb_snapshot_get_info(w.snapshot, &i); }},
  }, {}, {}},
  {"eplb_snapshot_get_placement", {
    {"NULL snapshot", kInvalid, {"snapshot", "NULL"}, [](World&) { eplb_placement* o = nullptr; return eplb_snapshot_get_placement(nullptr, &o); }},
    {"NULL out_placement", kInvalid, {"out_placement", "NULL"}, [](World& w) { return eplb_snapshot_get_placement(w.snapshot, nullptr); }},
    {"statistics snapshot without placement", kInvalid, {"no placement", "statistics snapshot"}, [](World& w) { eplb_placement* o = sentinel<eplb_placement>(); const eplb_status s = eplb_snapshot_get_placement(w.stats_snapshot, &o); if (o != sentinel<eplb_placement>()) ADD_FAILURE() << "get_placement wrote its output"; return s; }},
  }, {}, {}},
  {"eplb_snapshot_get_loads", {
    {"NULL snapshot", kInvalid, {"snapshot", "NULL"}, [](World&) { double o[8]; return eplb_snapshot_get_loads(nullptr, o, 8); }},
    {"NULL out", kInvalid, {"out", "NULL"}, [](World& w) { return eplb_snapshot_get_loads(w.snapshot, nullptr, kMatrixLen); }},
    {"out_len one short", kSmall, {"7", "8"}, [](World& w) { double o[8]; return eplb_snapshot_get_loads(w.snapshot, o, kMatrixLen - 1); }},
    {"snapshot without statistics", kInvalid, {"statistics"}, [](World& w) { double o[8]; return eplb_snapshot_get_loads(w.bare_snapshot, o, kMatrixLen); }},
  }, {}, {}},
  {"eplb_snapshot_destroy", {}, "NULL is a no-op", [](World&) { eplb_snapshot_destroy(nullptr); return true; }},
  {"eplb_snapshot_save_statistics", {
    {"NULL tracker", kInvalid, {"tracker", "NULL"}, [](World& w) { return eplb_snapshot_save_statistics(nullptr, nullptr, (w.directory / "x.eplb").c_str()); }},
    {"NULL path", kInvalid, {"path", "NULL"}, [](World& w) { return eplb_snapshot_save_statistics(w.tracker, nullptr, nullptr); }},
    {"empty path", kIo, {"''"}, [](World& w) { return eplb_snapshot_save_statistics(w.tracker, nullptr, ""); }},
    {"missing directory", kIo, {"no-such-dir", "No such file"}, [](World& w) { return eplb_snapshot_save_statistics(w.tracker, nullptr, (w.directory / "no-such-dir" / "x.eplb").c_str()); }},
    {"options struct_size 0", kInvalid, {"struct_size", "0"}, [](World& w) { return save_statistics_with([](auto& o) { o.struct_size = 0; }, w); }},
    {"options with loads", kInvalid, {"options->loads", "NULL", "statistics snapshot"}, [](World& w) { return save_statistics_with([&w](auto& o) { o.loads = w.loads.data(); o.loads_len = kMatrixLen; }, w); }},
    {"options with a tracker", kInvalid, {"options->tracker", "NULL", "first argument"}, [](World& w) { return save_statistics_with([&w](auto& o) { o.tracker = w.tracker; }, w); }},
    {"loads_len without loads", kInvalid, {"options->loads is NULL", "8"}, [](World& w) { return save_statistics_with([](auto& o) { o.loads_len = kMatrixLen; }, w); }},
    {"label of 256 bytes", kInvalid, {"label", "255 bytes"}, [](World& w) { static const std::string label(256, 'x'); return save_statistics_with([](auto& o) { o.label = label.c_str(); }, w); }},
    {"compression level 20", kInvalid, {"compression_level", "20"}, [](World& w) { return save_statistics_with([](auto& o) { o.compression_level = 20; }, w); }},
  }, {}, {}},
  {"eplb_snapshot_save_statistics_to_buffer", {
    {"NULL tracker", kInvalid, {"tracker", "NULL"}, [](World&) { void* b = nullptr; size_t s = 0; return eplb_snapshot_save_statistics_to_buffer(nullptr, nullptr, &b, &s); }},
    {"NULL out_buffer", kInvalid, {"out_buffer", "NULL"}, [](World& w) { size_t s = 0; return eplb_snapshot_save_statistics_to_buffer(w.tracker, nullptr, nullptr, &s); }},
    {"NULL out_size", kInvalid, {"out_size", "NULL"}, [](World& w) { void* b = nullptr; return eplb_snapshot_save_statistics_to_buffer(w.tracker, nullptr, &b, nullptr); }},
    {"options struct_size 1", kInvalid, {"struct_size", "1"}, [](World& w) { return statistics_to_buffer_with([](auto& o) { o.struct_size = 1; }, w); }},
    {"options with loads", kInvalid, {"options->loads", "statistics snapshot"}, [](World& w) { return statistics_to_buffer_with([&w](auto& o) { o.loads = w.loads.data(); o.loads_len = kMatrixLen; }, w); }},
    {"options with a tracker", kInvalid, {"options->tracker"}, [](World& w) { return statistics_to_buffer_with([&w](auto& o) { o.tracker = w.other_tracker; }, w); }},
    {"compression level 0", kInvalid, {"compression_level", "0"}, [](World& w) { return statistics_to_buffer_with([](auto& o) { o.compression_level = 0; }, w); }},
  }, {}, {}},
  {"eplb_snapshot_get_tracker", {
    {"NULL snapshot", kInvalid, {"snapshot", "NULL"}, [](World&) { eplb_tracker* o = nullptr; return eplb_snapshot_get_tracker(nullptr, &o); }},
    {"NULL out_tracker", kInvalid, {"out_tracker", "NULL"}, [](World& w) { return eplb_snapshot_get_tracker(w.stats_snapshot, nullptr); }},
    {"placement snapshot without statistics", kInvalid, {"no co-activation statistics", "has_coactivation"}, [](World& w) { eplb_tracker* o = sentinel<eplb_tracker>(); const eplb_status s = eplb_snapshot_get_tracker(w.snapshot, &o); if (o != sentinel<eplb_tracker>()) ADD_FAILURE() << "get_tracker wrote its output"; return s; }},
  }, {}, {}},
  {"eplb_placement_to_sglang_json", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { char* j = nullptr; size_t n = 0; return eplb_placement_to_sglang_json(nullptr, 0, &j, &n); }},
    {"NULL out_json", kInvalid, {"out_json", "NULL"}, [](World& w) { size_t n = 0; return eplb_placement_to_sglang_json(w.placement, 0, nullptr, &n); }},
    {"NULL out_len", kInvalid, {"out_len", "NULL"}, [](World& w) { char* j = nullptr; return eplb_placement_to_sglang_json(w.placement, 0, &j, nullptr); }},
    {"rows above INT32_MAX", kInvalid, {"num_dense_layers", "4294967295"}, [](World& w) { char* j = nullptr; size_t n = 0; return eplb_placement_to_sglang_json(w.placement, UINT32_MAX, &j, &n); }},
  }, {}, {}},
  {"eplb_placement_from_sglang_json", {
    {"NULL json", kInvalid, {"json", "NULL"}, [](World&) { eplb_placement* o = nullptr; return eplb_placement_from_sglang_json(nullptr, 10, 0, 1, 4, 0, &o); }},
    {"NULL out_placement", kInvalid, {"out_placement", "NULL"}, [](World& w) { return eplb_placement_from_sglang_json(w.sglang_json.data(), w.sglang_json.size(), 0, 1, 4, 0, nullptr); }},
    {"zero gpus", kInvalid, {"num_gpus", "0"}, [](World& w) { return from_sglang(w.sglang_json, 0, 1, 0, 0); }},
    {"zero nodes", kInvalid, {"num_nodes", "0"}, [](World& w) { return from_sglang(w.sglang_json, 0, 0, 4, 0); }},
    {"width not a multiple of gpus", kInvalid, {"8", "3"}, [](World& w) { return from_sglang(w.sglang_json, 0, 1, 3, 0); }},
    {"all rows dense", kInvalid, {"num_dense_layers", "2"}, [](World& w) { return from_sglang(w.sglang_json, 0, 1, 4, 2); }},
    {"more experts than the width", kInvalid, {"num_logical_experts", "9"}, [](World& w) { return from_sglang(w.sglang_json, 9, 1, 4, 0); }},
    {"not JSON", kCorrupt, {"JSON"}, [](World&) { return from_sglang("{\"physical_to_logical_map\": [[0, 1", 0, 1, 1, 0); }},
    {"length cuts the document", kCorrupt, {"JSON"}, [](World& w) { return from_sglang(w.sglang_json.substr(0, w.sglang_json.size() / 2), 0, 1, 4, 0); }},
    {"an extra key", kCorrupt, {"other"}, [](World&) { return from_sglang(R"({"physical_to_logical_map": [[0, 1]], "other": 1})", 0, 1, 1, 0); }},
    {"ragged rows", kCorrupt, {"physical_to_logical_map[1]", "3 slots", "2"}, [](World&) { return from_sglang(R"({"physical_to_logical_map": [[0, 1], [0, 1, 1]]})", 0, 1, 1, 0); }},
    {"negative id", kCorrupt, {"-3"}, [](World&) { return from_sglang(R"({"physical_to_logical_map": [[0, -3]]})", 0, 1, 1, 0); }},
    {"id out of range", kCorrupt, {"5"}, [](World&) { return from_sglang(R"({"physical_to_logical_map": [[0, 5]]})", 2, 1, 1, 0); }},
    {"non-integer id", kCorrupt, {"1.5"}, [](World&) { return from_sglang(R"({"physical_to_logical_map": [[0, 1.5]]})", 0, 1, 1, 0); }},
  }, {}, {}},
  {"eplb_placement_to_vllm_ascend_json", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { char* j = nullptr; size_t n = 0; return eplb_placement_to_vllm_ascend_json(nullptr, &j, &n); }},
    {"NULL out_json", kInvalid, {"out_json", "NULL"}, [](World& w) { size_t n = 0; return eplb_placement_to_vllm_ascend_json(w.placement, nullptr, &n); }},
    {"NULL out_len", kInvalid, {"out_len", "NULL"}, [](World& w) { char* j = nullptr; return eplb_placement_to_vllm_ascend_json(w.placement, &j, nullptr); }},
  }, {}, {}},
  {"eplb_placement_from_vllm_ascend_json", {
    {"NULL json", kInvalid, {"json", "NULL"}, [](World&) { eplb_placement* o = nullptr; return eplb_placement_from_vllm_ascend_json(nullptr, 10, 0, 1, &o); }},
    {"NULL out_placement", kInvalid, {"out_placement", "NULL"}, [](World& w) { return eplb_placement_from_vllm_ascend_json(w.vllm_json.data(), w.vllm_json.size(), 0, 1, nullptr); }},
    {"zero nodes", kInvalid, {"num_nodes", "0"}, [](World& w) { return from_vllm(w.vllm_json, 0, 0); }},
    {"gpus not a multiple of nodes", kInvalid, {"num_nodes (3)"}, [](World& w) { return from_vllm(w.vllm_json, 0, 3); }},
    {"not JSON", kCorrupt, {"JSON"}, [](World&) { return from_vllm("[", 0, 1); }},
    {"devices of different sizes", kCorrupt, {"device_expert", "1", "2"}, [](World&) { return from_vllm(R"({"moe_layer_count": 1, "layer_list": [{"device_list": [{"device_expert": [0, 1]}, {"device_expert": [2]}]}]})", 0, 1); }},
    {"negative id", kCorrupt, {"-1"}, [](World&) { return from_vllm(R"({"moe_layer_count": 1, "layer_list": [{"device_list": [{"device_expert": [0, -1]}]}]})", 0, 1); }},
    {"layer count mismatch", kCorrupt, {"moe_layer_count", "2"}, [](World&) { return from_vllm(R"({"moe_layer_count": 2, "layer_list": [{"device_list": [{"device_expert": [0, 1]}]}]})", 0, 1); }},
  }, {}, {}},
  {"eplb_loads_from_sglang_json", {
    {"NULL json", kInvalid, {"json", "NULL"}, [](World&) { double* o = nullptr; uint32_t l = 0; uint32_t e = 0; return eplb_loads_from_sglang_json(nullptr, 5, &o, &l, &e); }},
    {"NULL out_loads", kInvalid, {"out_loads", "NULL"}, [](World& w) { uint32_t l = 0; uint32_t e = 0; return eplb_loads_from_sglang_json(w.loads_json.data(), w.loads_json.size(), nullptr, &l, &e); }},
    {"NULL out_num_layers", kInvalid, {"out_num_layers", "NULL"}, [](World& w) { double* o = nullptr; uint32_t e = 0; return eplb_loads_from_sglang_json(w.loads_json.data(), w.loads_json.size(), &o, nullptr, &e); }},
    {"NULL out_num_experts", kInvalid, {"out_num_experts", "NULL"}, [](World& w) { double* o = nullptr; uint32_t l = 0; return eplb_loads_from_sglang_json(w.loads_json.data(), w.loads_json.size(), &o, &l, nullptr); }},
    {"not JSON", kCorrupt, {"JSON"}, [](World&) { return loads_from("{\"logical_count\": [[1, 2"); }},
    {"no logical_count key", kCorrupt, {"logical_count"}, [](World&) { return loads_from(R"({"counts": [[1]]})"); }},
    {"negative load", kCorrupt, {"logical_count[1][0]", "-5"}, [](World&) { return loads_from(R"({"logical_count": [[1, 2], [-5, 3]]})"); }},
    {"a string load", kCorrupt, {"logical_count[0][1]", "string"}, [](World&) { return loads_from(R"({"logical_count": [[1, "x"]]})"); }},
    {"a number beyond double", kCorrupt, {"1e400"}, [](World&) { return loads_from(R"({"logical_count": [[1, 1e400]]})"); }},
    {"ragged rows", kCorrupt, {"logical_count[1]", "3", "2"}, [](World&) { return loads_from(R"({"logical_count": [[1, 2], [1, 2, 3]]})"); }},
  }, {}, {}},
  {"eplb_tracker_options_init", {}, "NULL is a no-op", [](World&) { eplb_tracker_options_init(nullptr); return true; }},
  {"eplb_tracker_create", {
    {"NULL options", kInvalid, {"options", "NULL"}, [](World&) { eplb_tracker* o = nullptr; return eplb_tracker_create(nullptr, &o); }},
    {"NULL out_tracker", kInvalid, {"out_tracker", "NULL"}, [](World&) { const auto o = World::tracker_options(); return eplb_tracker_create(&o, nullptr); }},
    {"struct_size 0", kInvalid, {"struct_size", "0"}, [](World&) { return tracker_create_with([](auto& o) { o.struct_size = 0; }); }},
    {"zero layers", kInvalid, {"num_layers", "0"}, [](World&) { return tracker_create_with([](auto& o) { o.num_layers = 0; }); }},
    {"zero experts", kInvalid, {"num_logical_experts", "0"}, [](World&) { return tracker_create_with([](auto& o) { o.num_logical_experts = 0; }); }},
    {"top_k 0", kInvalid, {"top_k", "0"}, [](World&) { return tracker_create_with([](auto& o) { o.top_k = 0; }); }},
    {"top_k 1025", kInvalid, {"top_k", "1025"}, [](World&) { return tracker_create_with([](auto& o) { o.top_k = 1025; }); }},
    {"unknown window", kInvalid, {"window", "7"}, [](World&) { return tracker_create_with([](auto& o) { o.window = 7; }); }},
    {"sliding window of 0 batches", kInvalid, {"window_batches", "0"}, [](World&) { return tracker_create_with([](auto& o) { o.window = EPLB_WINDOW_SLIDING; o.window_batches = 0; }); }},
    {"decay 0", kInvalid, {"decay", "0"}, [](World&) { return tracker_create_with([](auto& o) { o.window = EPLB_WINDOW_DECAY; o.decay = 0; }); }},
    {"decay 1.5", kInvalid, {"decay", "1.5"}, [](World&) { return tracker_create_with([](auto& o) { o.window = EPLB_WINDOW_DECAY; o.decay = 1.5; }); }},
    {"decay NaN", kInvalid, {"decay", "nan"}, [](World&) { return tracker_create_with([](auto& o) { o.window = EPLB_WINDOW_DECAY; o.decay = kNaN; }); }},
    {"reserved0 1", kInvalid, {"reserved0 (1)", "must be 0"}, [](World&) { return tracker_create_with([](auto& o) { o.reserved0 = 1; }); }},
    {"a count above INT32_MAX", kInvalid, {"num_logical_experts", "4294967295"}, [](World&) { return tracker_create_with([](auto& o) { o.num_logical_experts = UINT32_MAX; }); }},
    {"statistics beyond size_t", EPLB_ERR_OUT_OF_MEMORY, {"num_layers (2147483647)", "num_logical_experts (2147483647)", "overflow size_t"}, [](World&) { return tracker_create_with([](auto& o) { o.num_layers = INT32_MAX; o.num_logical_experts = INT32_MAX; }); }},
  }, {}, {}},
  {"eplb_tracker_destroy", {}, "NULL is a no-op", [](World&) { eplb_tracker_destroy(nullptr); return true; }},
  {"eplb_tracker_record", {
    {"NULL tracker", kInvalid, {"tracker", "NULL"}, [](World& w) { return eplb_tracker_record(nullptr, 0, w.topk.data(), 3, World::kTopK); }},
    {"NULL ids with tokens", kInvalid, {"topk_ids", "NULL"}, [](World& w) { return eplb_tracker_record(w.tracker, 0, nullptr, 3, World::kTopK); }},
    {"layer out of range", kInvalid, {"layer", "2"}, [](World& w) { return record(w, 2, w.topk, 3, World::kTopK); }},
    {"top_k mismatch", kInvalid, {"top_k", "3", "2"}, [](World& w) { return record(w, 0, w.topk, 2, 3); }},
    {"id -2", kInvalid, {"token 1", "slot 0", "-2"}, [](World& w) { return record(w, 0, {0, 1, -2, 3, 0, 1}, 3, World::kTopK); }},
    {"id == E", kInvalid, {"layer 1", "token 2", "slot 1", "4"}, [](World& w) { return record(w, 1, {0, 1, 2, 3, 0, 4}, 3, World::kTopK); }},
    {"tokens x top_k overflows size_t", EPLB_ERR_OUT_OF_MEMORY, {"topk_ids", std::to_string(kSizeMax / 2 + 1), "overflows size_t"}, [](World& w) { return record(w, 0, w.topk, kSizeMax / 2 + 1, World::kTopK); }},
  }, {}, {}},
  {"eplb_tracker_record_physical", {
    {"NULL tracker", kInvalid, {"tracker", "NULL"}, [](World& w) { return eplb_tracker_record_physical(nullptr, w.placement, 0, w.topk.data(), 3, World::kTopK); }},
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World& w) { return record_physical(w, nullptr, w.topk, 3); }},
    {"placement of another shape", kInvalid, {"placement", "8"}, [](World& w) { return record_physical(w, w.other_shape, w.topk, 3); }},
    {"physical id == R", kInvalid, {"physical id", "8"}, [](World& w) { return record_physical(w, w.placement, {0, 1, 8, 2}, 2); }},
    {"physical id -5", kInvalid, {"physical id", "-5"}, [](World& w) { return record_physical(w, w.placement, {-5, 1}, 1); }},
    {"tokens x top_k overflows size_t", EPLB_ERR_OUT_OF_MEMORY, {"topk_ids", "overflows size_t"}, [](World& w) { return record_physical(w, w.placement, w.topk, kSizeMax / 2 + 1); }},
  }, {}, {}},
  {"eplb_tracker_merge", {
    {"NULL dst", kInvalid, {"dst", "NULL"}, [](World& w) { return eplb_tracker_merge(nullptr, w.tracker); }},
    {"NULL src", kInvalid, {"src", "NULL"}, [](World& w) { return eplb_tracker_merge(w.tracker, nullptr); }},
    {"different top_k", kInvalid, {"top_k", "3", "2"}, [](World& w) { return eplb_tracker_merge(w.tracker, w.other_tracker); }},
  }, {}, {}},
  {"eplb_tracker_reset", {
    {"NULL tracker", kInvalid, {"tracker", "NULL"}, [](World&) { return eplb_tracker_reset(nullptr); }},
  }, {}, {}},
  {"eplb_tracker_get_loads", {
    {"NULL tracker", kInvalid, {"tracker", "NULL"}, [](World&) { double o[8]; return eplb_tracker_get_loads(nullptr, o, 8); }},
    {"NULL out", kInvalid, {"out", "NULL"}, [](World& w) { return eplb_tracker_get_loads(w.tracker, nullptr, kMatrixLen); }},
    {"out_len one short", kSmall, {"7", "8"}, [](World& w) { double o[8]; return eplb_tracker_get_loads(w.tracker, o, kMatrixLen - 1); }},
  }, {}, {}},
  {"eplb_tracker_get_coactivation", {
    {"NULL tracker", kInvalid, {"tracker", "NULL"}, [](World&) { double o[6]; return eplb_tracker_get_coactivation(nullptr, 0, o, 6); }},
    {"NULL out", kInvalid, {"out", "NULL"}, [](World& w) { return eplb_tracker_get_coactivation(w.tracker, 0, nullptr, kPairs); }},
    {"layer out of range", kInvalid, {"layer", "2"}, [](World& w) { double o[6]; return eplb_tracker_get_coactivation(w.tracker, 2, o, kPairs); }},
    {"out_len one short", kSmall, {"5", "6"}, [](World& w) { double o[6]; return eplb_tracker_get_coactivation(w.tracker, 0, o, kPairs - 1); }},
  }, {}, {}},
  {"eplb_tracker_get_samples", {
    {"NULL tracker", kInvalid, {"tracker", "NULL"}, [](World&) { size_t r = 0; return eplb_tracker_get_samples(nullptr, 0, nullptr, 0, &r); }},
    {"NULL out_rows", kInvalid, {"out_rows", "NULL"}, [](World& w) { return eplb_tracker_get_samples(w.tracker, 0, nullptr, 0, nullptr); }},
    {"NULL out with out_len", kInvalid, {"out", "NULL"}, [](World& w) { size_t r = 0; return eplb_tracker_get_samples(w.tracker, 0, nullptr, 6, &r); }},
    {"layer out of range", kInvalid, {"layer", "2"}, [](World& w) { size_t r = 0; return eplb_tracker_get_samples(w.tracker, 2, nullptr, 0, &r); }},
    {"out_len one short", kSmall, {"5", "6"}, [](World& w) { int32_t o[6]; size_t r = 0; return eplb_tracker_get_samples(w.tracker, 0, o, 5, &r); }},
  }, {}, {}},
  {"eplb_tracker_get_options", {
    {"NULL tracker", kInvalid, {"tracker", "NULL"}, [](World&) { eplb_tracker_options o; eplb_tracker_options_init(&o); return eplb_tracker_get_options(nullptr, &o); }},
    {"NULL out_options", kInvalid, {"out_options", "NULL"}, [](World& w) { return eplb_tracker_get_options(w.tracker, nullptr); }},
    {"struct_size 0", kInvalid, {"out_options->struct_size (0)"}, [](World& w) { eplb_tracker_options o{}; return eplb_tracker_get_options(w.tracker, &o); }},
    {"struct_size 3", kInvalid, {"out_options->struct_size (3)"}, [](World& w) { eplb_tracker_options o{}; o.struct_size = 3; return eplb_tracker_get_options(w.tracker, &o); }},
  }, {}, {}},
  {"eplb_tracker_get_layer_counts", {
    {"NULL tracker", kInvalid, {"tracker", "NULL"}, [](World&) { uint64_t b = 0; uint64_t t = 0; return eplb_tracker_get_layer_counts(nullptr, 0, &b, &t); }},
    {"layer out of range", kInvalid, {"layer (2)", "num_layers (2)"}, [](World& w) { uint64_t b = 7; uint64_t t = 7; const eplb_status s = eplb_tracker_get_layer_counts(w.tracker, 2, &b, &t); if (b != 7 || t != 7) ADD_FAILURE() << "get_layer_counts wrote its outputs"; return s; }},
    {"layer UINT32_MAX", kInvalid, {"layer (4294967295)"}, [](World& w) { return eplb_tracker_get_layer_counts(w.tracker, UINT32_MAX, nullptr, nullptr); }},
  }, {}, {}},
  {"eplb_planner_plan_tracked", {
    {"NULL planner", kInvalid, {"planner", "NULL"}, [](World& w) { return plan_tracked_with(nullptr, {}, 0, w.tracker); }},
    {"NULL tracker", kInvalid, {"tracker", "NULL"}, [](World& w) { return plan_tracked_with(w.planner, {}, 0, nullptr); }},
    {"NULL out_placement", kInvalid, {"out_placement", "NULL"}, [](World& w) { return eplb_planner_plan_tracked(w.planner, nullptr, 0, w.tracker, nullptr); }},
    {"NULL loads with loads_len", kInvalid, {"loads is NULL", "8"}, [](World& w) { return plan_tracked_with(w.planner, {}, kMatrixLen, w.tracker); }},
    {"loads with loads_len 0", kInvalid, {"loads_len is 0", "NULL"}, [](World& w) { return plan_tracked_with(w.planner, w.loads, 0, w.tracker); }},
    {"loads_len one short", kInvalid, {"loads has 7 values", "8"}, [](World& w) { return plan_tracked_with(w.planner, w.loads, kMatrixLen - 1, w.tracker); }},
    {"loads_len SIZE_MAX", kInvalid, {"loads has " + std::to_string(kSizeMax)}, [](World& w) { return plan_tracked_with(w.planner, w.loads, kSizeMax, w.tracker); }},
    {"tracker of another shape", kInvalid, {"shape", "1 layers x 4 experts", "(2 x 4)"}, [](World& w) { return plan_tracked_with(w.planner, {}, 0, w.one_layer_tracker); }},
    {"affinity with a tracker without reservoir", kInvalid, {"affinity", "reservoir_capacity = 0"}, [](World& w) { return plan_tracked_with(w.affinity_planner, {}, 0, w.bare_tracker); }},
    {"negative load", kInvalid, {"loads[1][2]", "-1", "negative"}, [](World& w) { return plan_tracked_with(w.planner, loads_with(w, 6, -1), kMatrixLen, w.tracker); }},
    {"NaN load", kInvalid, {"loads[0][1]", "NaN"}, [](World& w) { return plan_tracked_with(w.affinity_planner, loads_with(w, 1, kNaN), kMatrixLen, w.tracker); }},
    {"infinite load", kInvalid, {"loads[1][3]", "infinite"}, [](World& w) { return plan_tracked_with(w.planner, loads_with(w, 7, kInf), kMatrixLen, w.tracker); }},
  }, {}, {}},
  {"eplb_metrics_compute", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World& w) { eplb_metrics m{}; m.struct_size = sizeof(m); return eplb_metrics_compute(nullptr, w.loads.data(), kMatrixLen, &m); }},
    {"NULL loads", kInvalid, {"loads", "NULL"}, [](World& w) { eplb_metrics m{}; m.struct_size = sizeof(m); return eplb_metrics_compute(w.placement, nullptr, kMatrixLen, &m); }},
    {"NULL out_metrics", kInvalid, {"out_metrics", "NULL"}, [](World& w) { return eplb_metrics_compute(w.placement, w.loads.data(), kMatrixLen, nullptr); }},
    {"struct_size 0", kInvalid, {"struct_size", "0"}, [](World& w) { return metrics_with(w, w.loads, kMatrixLen, 0); }},
    {"loads of another shape", kInvalid, {"loads has 7 values", "8"}, [](World& w) { return metrics_with(w, w.loads, kMatrixLen - 1); }},
    {"loads_len SIZE_MAX", kInvalid, {"loads has " + std::to_string(kSizeMax)}, [](World& w) { return metrics_with(w, w.loads, kSizeMax); }},
    {"negative load", kInvalid, {"loads[1][1]", "-3"}, [](World& w) { return metrics_with(w, loads_with(w, 5, -3), kMatrixLen); }},
    {"NaN load", kInvalid, {"loads[0][2]", "NaN"}, [](World& w) { return metrics_with(w, loads_with(w, 2, kNaN), kMatrixLen); }},
    {"infinite load", kInvalid, {"loads[0][0]", "infinite"}, [](World& w) { return metrics_with(w, loads_with(w, 0, kInf), kMatrixLen); }},
  }, {}, {}},
  {"eplb_metrics_compute_layer", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World& w) { eplb_layer_metrics m{}; m.struct_size = sizeof(m); return eplb_metrics_compute_layer(nullptr, 0, w.loads.data(), 4, &m); }},
    {"NULL out_metrics", kInvalid, {"out_metrics", "NULL"}, [](World& w) { return eplb_metrics_compute_layer(w.placement, 0, w.loads.data(), 4, nullptr); }},
    {"struct_size 7", kInvalid, {"struct_size", "7"}, [](World& w) { return layer_metrics_with(w, 0, w.loads, 4, 7); }},
    {"layer out of range", kInvalid, {"layer", "2"}, [](World& w) { return layer_metrics_with(w, 2, w.loads, 4); }},
    {"layer_loads_len of all layers", kInvalid, {"layer_loads has 8 values", "4"}, [](World& w) { return layer_metrics_with(w, 0, w.loads, kMatrixLen); }},
    {"NaN load", kInvalid, {"layer_loads[0][1]", "NaN"}, [](World& w) { return layer_metrics_with(w, 0, loads_with(w, 1, kNaN), 4); }},
  }, {}, {}},
  {"eplb_metrics_gpu_loads", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World& w) { double o[8]; return eplb_metrics_gpu_loads(nullptr, w.loads.data(), kMatrixLen, o, 8); }},
    {"NULL out", kInvalid, {"out", "NULL"}, [](World& w) { return eplb_metrics_gpu_loads(w.placement, w.loads.data(), kMatrixLen, nullptr, 8); }},
    {"out_len one short", kSmall, {"7", "8"}, [](World& w) { double o[8]; return eplb_metrics_gpu_loads(w.placement, w.loads.data(), kMatrixLen, o, 7); }},
    {"loads of another shape", kInvalid, {"loads has 4 values", "8"}, [](World& w) { double o[8]; return eplb_metrics_gpu_loads(w.placement, w.loads.data(), 4, o, 8); }},
    {"negative load", kInvalid, {"loads[0][1]"}, [](World& w) { const auto l = loads_with(w, 1, -1); double o[8]; return eplb_metrics_gpu_loads(w.placement, l.data(), kMatrixLen, o, 8); }},
  }, {}, {}},
  {"eplb_metrics_exact_optimum", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World& w) { double o = 0; return eplb_metrics_exact_optimum(nullptr, w.loads.data(), 4, &o); }},
    {"NULL out_optimum", kInvalid, {"out_optimum", "NULL"}, [](World& w) { return eplb_metrics_exact_optimum(w.placement, w.loads.data(), 4, nullptr); }},
    {"layer_loads_len of all layers", kInvalid, {"layer_loads has 8 values", "4"}, [](World& w) { return optimum_with(w, w.loads, kMatrixLen); }},
    {"NaN load", kInvalid, {"layer_loads[0][3]", "NaN"}, [](World& w) { return optimum_with(w, loads_with(w, 3, kNaN), 4); }},
    {"infinite load", kInvalid, {"layer_loads[0][0]", "infinite"}, [](World& w) { return optimum_with(w, loads_with(w, 0, kInf), 4); }},
  }, {}, {}},
  {"eplb_metrics_relaxed_bound", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World& w) { double o = 0; return eplb_metrics_relaxed_bound(nullptr, w.loads.data(), 4, 2, &o); }},
    {"NULL layer_loads", kInvalid, {"layer_loads", "NULL"}, [](World& w) { double o = 0; return eplb_metrics_relaxed_bound(w.placement, nullptr, 4, 2, &o); }},
    {"NULL out_bound", kInvalid, {"out_bound", "NULL"}, [](World& w) { return eplb_metrics_relaxed_bound(w.placement, w.loads.data(), 4, 2, nullptr); }},
    {"layer_loads_len of all layers", kInvalid, {"layer_loads has 8 values", "4"}, [](World& w) { double o = 0; return eplb_metrics_relaxed_bound(w.placement, w.loads.data(), kMatrixLen, 2, &o); }},
    {"negative load", kInvalid, {"layer_loads[0][1]", "-1"}, [](World& w) { const auto l = loads_with(w, 1, -1); double o = 0; return eplb_metrics_relaxed_bound(w.placement, l.data(), 4, 2, &o); }},
  }, {}, {}},
  {"eplb_metrics_nodes_touched", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World& w) { double o = 0; return eplb_metrics_nodes_touched(nullptr, 0, w.topk.data(), 3, 2, &o); }},
    {"NULL out_mean", kInvalid, {"out_mean", "NULL"}, [](World& w) { return eplb_metrics_nodes_touched(w.placement, 0, w.topk.data(), 3, 2, nullptr); }},
    {"NULL rows with num_rows", kInvalid, {"rows", "NULL"}, [](World& w) { double o = 0; return eplb_metrics_nodes_touched(w.placement, 0, nullptr, 3, 2, &o); }},
    {"top_k 0", kInvalid, {"top_k", "0"}, [](World& w) { return touched_with(w, 0, w.topk, 3, 0); }},
    {"layer out of range", kInvalid, {"layer", "2"}, [](World& w) { return touched_with(w, 2, w.topk, 3, 2); }},
    {"id == E", kInvalid, {"row 1", "slot 0", "4"}, [](World& w) { return touched_with(w, 0, {0, 1, 4, 2}, 2, 2); }},
    {"rows x top_k overflows size_t", EPLB_ERR_OUT_OF_MEMORY, {"rows", std::to_string(kSizeMax / 2 + 1), "overflows size_t"}, [](World& w) { return touched_with(w, 0, w.topk, kSizeMax / 2 + 1, 2); }},
  }, {}, {}},
  {"eplb_workload_options_init", {}, "NULL is a no-op", [](World&) { eplb_workload_options_init(nullptr); return true; }},
  {"eplb_workload_create", {
    {"NULL options", kInvalid, {"options", "NULL"}, [](World&) { eplb_workload* o = nullptr; return eplb_workload_create(nullptr, &o); }},
    {"NULL out_workload", kInvalid, {"out_workload", "NULL"}, [](World&) { const auto o = World::workload_options(); return eplb_workload_create(&o, nullptr); }},
    {"struct_size 0", kInvalid, {"options->struct_size (0)"}, [](World&) { return workload_create_with([](auto& o) { o.struct_size = 0; }); }},
    {"zero layers", kInvalid, {"num_layers (0)"}, [](World&) { return workload_create_with([](auto& o) { o.num_layers = 0; }); }},
    {"zero experts", kInvalid, {"num_experts (0)"}, [](World&) { return workload_create_with([](auto& o) { o.num_experts = 0; }); }},
    {"top_k 0", kInvalid, {"top_k (0)", "num_experts (4)"}, [](World&) { return workload_create_with([](auto& o) { o.top_k = 0; }); }},
    {"top_k above num_experts", kInvalid, {"top_k (5)", "num_experts (4)"}, [](World&) { return workload_create_with([](auto& o) { o.top_k = 5; }); }},
    {"zero groups", kInvalid, {"num_groups (0)"}, [](World&) { return workload_create_with([](auto& o) { o.num_groups = 0; }); }},
    {"groups not dividing experts", kInvalid, {"num_groups (3)", "num_experts (4)"}, [](World&) { return workload_create_with([](auto& o) { o.num_groups = 3; }); }},
    {"topk_groups above num_groups", kInvalid, {"topk_groups (3)", "num_groups (2)"}, [](World&) { return workload_create_with([](auto& o) { o.num_groups = 2; o.topk_groups = 3; }); }},
    {"topk_groups too few for top_k", kInvalid, {"topk_groups (1)", "top_k (3)"}, [](World&) { return workload_create_with([](auto& o) { o.num_groups = 4; o.topk_groups = 1; o.top_k = 3; }); }},
    {"sigma_min above sigma_max", kInvalid, {"sigma range", "[2, 1]"}, [](World&) { return workload_create_with([](auto& o) { o.sigma_min = 2; o.sigma_max = 1; }); }},
    {"sigma_min NaN", kInvalid, {"sigma range", "nan"}, [](World&) { return workload_create_with([](auto& o) { o.sigma_min = kNaN; }); }},
    {"sigma_max infinite", kInvalid, {"sigma range", "inf"}, [](World&) { return workload_create_with([](auto& o) { o.sigma_max = kInf; }); }},
    {"topic_experts above num_experts", kInvalid, {"topic_experts (5)", "num_experts (4)"}, [](World&) { return workload_create_with([](auto& o) { o.topic_experts = 5; }); }},
    {"boost NaN", kInvalid, {"boost (nan)", "finite"}, [](World&) { return workload_create_with([](auto& o) { o.boost = kNaN; }); }},
    {"topic_zipf -1", kInvalid, {"topic_zipf (-1)"}, [](World&) { return workload_create_with([](auto& o) { o.topic_zipf = -1; }); }},
    {"topic_persistence 1.5", kInvalid, {"topic_persistence (1.5)", "[0, 1]"}, [](World&) { return workload_create_with([](auto& o) { o.topic_persistence = 1.5; }); }},
    {"drift_rho NaN", kInvalid, {"drift_rho (nan)", "[0, 1]"}, [](World&) { return workload_create_with([](auto& o) { o.drift_rho = kNaN; }); }},
    {"noise_scale -1", kInvalid, {"noise_scale (-1)"}, [](World&) { return workload_create_with([](auto& o) { o.noise_scale = -1; }); }},
  }, {}, {}},
  {"eplb_workload_destroy", {}, "NULL is a no-op", [](World&) { eplb_workload_destroy(nullptr); return true; }},
  {"eplb_workload_next_batch", {
    {"NULL workload", kInvalid, {"workload", "NULL"}, [](World&) { int32_t o[12]; return eplb_workload_next_batch(nullptr, 3, o, 12); }},
    {"NULL out", kInvalid, {"out", "NULL"}, [](World& w) { return eplb_workload_next_batch(w.workload, 3, nullptr, 12); }},
    {"num_tokens 0", kInvalid, {"num_tokens (0)"}, [](World& w) { return next_batch_with(w, 0, 16); }},
    {"out_len one short", kSmall, {"12 ids", "out_len is 11"}, [](World& w) { return next_batch_with(w, 3, 11); }},
    {"layers x tokens x top_k overflows size_t", EPLB_ERR_OUT_OF_MEMORY, {"num_tokens", std::to_string(kSizeMax / 2 + 1), "overflows size_t"}, [](World& w) { return next_batch_with(w, kSizeMax / 2 + 1, kSizeMax); }},
  }, {}, {}},
  {"eplb_migration_options_init", {}, "NULL is a no-op", [](World&) { eplb_migration_options_init(nullptr); return true; }},
  {"eplb_migration_plan", {
    {"NULL old_placement", kInvalid, {"old_placement", "NULL"}, [](World& w) { eplb_migration* o = nullptr; return eplb_migration_plan(nullptr, w.moved, nullptr, 0, nullptr, &o); }},
    {"NULL new_placement", kInvalid, {"new_placement", "NULL"}, [](World& w) { eplb_migration* o = nullptr; return eplb_migration_plan(w.placement, nullptr, nullptr, 0, nullptr, &o); }},
    {"NULL out_migration", kInvalid, {"out_migration", "NULL"}, [](World& w) { return eplb_migration_plan(w.placement, w.moved, nullptr, 0, nullptr, nullptr); }},
    {"NULL loads with loads_len", kInvalid, {"loads is NULL", "8"}, [](World& w) { return migrate_with(w, w.moved, {}, kMatrixLen); }},
    {"loads with loads_len 0", kInvalid, {"loads_len is 0"}, [](World& w) { return migrate_with(w, w.moved, w.loads, 0); }},
    {"loads_len one short", kInvalid, {"loads has 7 values", "8"}, [](World& w) { return migrate_with(w, w.moved, w.loads, kMatrixLen - 1); }},
    {"loads_len SIZE_MAX", kInvalid, {"loads has " + std::to_string(kSizeMax)}, [](World& w) { return migrate_with(w, w.moved, w.loads, kSizeMax); }},
    {"negative load", kInvalid, {"loads[1][2]", "-1"}, [](World& w) { return migrate_with(w, w.moved, loads_with(w, 6, -1), kMatrixLen); }},
    {"NaN load", kInvalid, {"loads[0][1]", "NaN"}, [](World& w) { return migrate_with(w, w.moved, loads_with(w, 1, kNaN), kMatrixLen); }},
    {"infinite load", kInvalid, {"loads[1][3]", "infinite"}, [](World& w) { return migrate_with(w, w.moved, loads_with(w, 7, kInf), kMatrixLen); }},
    {"new placement of another shape", kInvalid, {"new_placement num_layers (1)", "old_placement's (2)"}, [](World& w) { return migrate_with(w, w.other_shape, {}, 0); }},
    {"new placement on another node count", kInvalid, {"new_placement num_nodes (1)", "old_placement's (2)"}, [](World& w) { return migrate_to_nodes(w, 1); }},
    {"options struct_size 0", kInvalid, {"options->struct_size (0)"}, [](World& w) { return migrate_with(w, w.moved, w.loads, kMatrixLen, [](auto& o) { o.struct_size = 0; }); }},
    {"relabel 4", kInvalid, {"options->relabel (4)", "0..3"}, [](World& w) { return migrate_with(w, w.moved, w.loads, kMatrixLen, [](auto& o) { o.relabel = 4; }); }},
    {"bytes_per_expert 0", kInvalid, {"options->bytes_per_expert is 0"}, [](World& w) { return migrate_with(w, w.moved, w.loads, kMatrixLen, [](auto& o) { o.bytes_per_expert = 0; }); }},
    {"reserved0 1", kInvalid, {"options->reserved0 (1)", "must be 0"}, [](World& w) { return migrate_with(w, w.moved, w.loads, kMatrixLen, [](auto& o) { o.reserved0 = 1; }); }},
    {"min_gain NaN", kInvalid, {"options->min_gain (nan)", "not finite"}, [](World& w) { return migrate_with(w, w.moved, w.loads, kMatrixLen, [](auto& o) { o.min_gain = kNaN; }); }},
    {"min_gain_per_gib -1", kInvalid, {"options->min_gain_per_gib (-1)", ">= 0"}, [](World& w) { return migrate_with(w, w.moved, w.loads, kMatrixLen, [](auto& o) { o.min_gain_per_gib = -1; }); }},
  }, {}, {}},
  {"eplb_migration_destroy", {}, "NULL is a no-op", [](World&) { eplb_migration_destroy(nullptr); return true; }},
  {"eplb_migration_get_summary", {
    {"NULL migration", kInvalid, {"migration", "NULL"}, [](World&) { eplb_migration_summary s{}; s.struct_size = sizeof(s); return eplb_migration_get_summary(nullptr, &s); }},
    {"NULL out_summary", kInvalid, {"out_summary", "NULL"}, [](World& w) { return eplb_migration_get_summary(w.migration, nullptr); }},
    {"struct_size 0", kInvalid, {"out_summary->struct_size (0)"}, [](World& w) { eplb_migration_summary s{}; return eplb_migration_get_summary(w.migration, &s); }},
    {"struct_size 4", kInvalid, {"out_summary->struct_size (4)"}, [](World& w) { eplb_migration_summary s{}; s.struct_size = 4; return eplb_migration_get_summary(w.migration, &s); }},
  }, {}, {}},
  {"eplb_migration_get_transfers", {
    {"NULL migration", kInvalid, {"migration", "NULL"}, [](World&) { size_t n = 0; return eplb_migration_get_transfers(nullptr, EPLB_MIGRATION_ALL_STEPS, nullptr, 0, &n); }},
    {"NULL out_count", kInvalid, {"out_count", "NULL"}, [](World& w) { return eplb_migration_get_transfers(w.migration, EPLB_MIGRATION_ALL_STEPS, nullptr, 0, nullptr); }},
    {"NULL out with out_len", kInvalid, {"out is NULL", "4"}, [](World& w) { size_t n = 0; return eplb_migration_get_transfers(w.migration, EPLB_MIGRATION_ALL_STEPS, nullptr, 4, &n); }},
    {"step == num_steps", kInvalid, {"step", "out of range"}, [](World& w) { size_t n = 0; return eplb_migration_get_transfers(w.migration, w.migration_steps, nullptr, 0, &n); }},
    {"out_len 0 for a step that moves", kSmall, {"transfers need", "out_len is 0"}, [](World& w) { eplb_migration_transfer t[1]; size_t n = 0; return eplb_migration_get_transfers(w.migration, 0, t, 0, &n); }},
  }, {}, {}},
  {"eplb_migration_copy_transfers", {
    {"NULL migration", kInvalid, {"migration", "NULL"}, [](World&) { eplb_migration_transfer* t = nullptr; size_t n = 0; return eplb_migration_copy_transfers(nullptr, 0, &t, &n); }},
    {"NULL out_transfers", kInvalid, {"out_transfers", "NULL"}, [](World& w) { size_t n = 0; return eplb_migration_copy_transfers(w.migration, 0, nullptr, &n); }},
    {"NULL out_count", kInvalid, {"out_count", "NULL"}, [](World& w) { eplb_migration_transfer* t = nullptr; return eplb_migration_copy_transfers(w.migration, 0, &t, nullptr); }},
    {"step == num_steps", kInvalid, {"step", "out of range"}, [](World& w) { eplb_migration_transfer* t = sentinel<eplb_migration_transfer>(); size_t n = 7; const eplb_status s = eplb_migration_copy_transfers(w.migration, w.migration_steps, &t, &n); if (t != sentinel<eplb_migration_transfer>() || n != 7) ADD_FAILURE() << "copy_transfers wrote its outputs"; return s; }},
  }, {}, {}},
  {"eplb_migration_get_gpu_map", {
    {"NULL migration", kInvalid, {"migration", "NULL"}, [](World&) { uint32_t o[8]; return eplb_migration_get_gpu_map(nullptr, o, 8); }},
    {"NULL out", kInvalid, {"out", "NULL"}, [](World& w) { return eplb_migration_get_gpu_map(w.migration, nullptr, 8); }},
    {"out_len one short", kSmall, {"8 elements", "out_len is 7"}, [](World& w) { uint32_t o[8]; return eplb_migration_get_gpu_map(w.migration, o, 7); }},
  }, {}, {}},
  {"eplb_migration_get_target", {
    {"NULL migration", kInvalid, {"migration", "NULL"}, [](World&) { eplb_placement* o = nullptr; return eplb_migration_get_target(nullptr, &o); }},
    {"NULL out_placement", kInvalid, {"out_placement", "NULL"}, [](World& w) { return eplb_migration_get_target(w.migration, nullptr); }},
  }, {}, {}},
  {"eplb_migration_get_step_placement", {
    {"NULL migration", kInvalid, {"migration", "NULL"}, [](World&) { eplb_placement* o = nullptr; return eplb_migration_get_step_placement(nullptr, 0, &o); }},
    {"NULL out_placement", kInvalid, {"out_placement", "NULL"}, [](World& w) { return eplb_migration_get_step_placement(w.migration, 0, nullptr); }},
    {"step == num_steps", kInvalid, {"step", "out of range"}, [](World& w) { return step_placement_at(w, w.migration_steps); }},
    {"step UINT32_MAX", kInvalid, {"step (4294967295)", "out of range"}, [](World& w) { return step_placement_at(w, UINT32_MAX); }},
  }, {}, {}},
  {"eplb_split_workspace_create", {
    {"NULL out_workspace", kInvalid, {"out_workspace", "NULL"}, [](World&) { return eplb_split_workspace_create(nullptr); }},
  }, {}, {}},
  {"eplb_split_workspace_destroy", {}, "NULL is a no-op", [](World&) { eplb_split_workspace_destroy(nullptr); return true; }},
  {"eplb_split_solve", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { const int32_t c[4] = {1, 2, 3, 4}; int32_t q[8]; return eplb_split_solve(nullptr, nullptr, 0, c, 4, nullptr, nullptr, 0, q, 8, nullptr); }},
    {"NULL counts", kInvalid, {"counts", "NULL"}, [](World& w) { int32_t q[8]; return eplb_split_solve(nullptr, w.placement, 0, nullptr, 4, nullptr, nullptr, 0, q, 8, nullptr); }},
    {"NULL out_quotas", kInvalid, {"out_quotas", "NULL"}, [](World& w) { const int32_t c[4] = {1, 2, 3, 4}; return eplb_split_solve(nullptr, w.placement, 0, c, 4, nullptr, nullptr, 0, nullptr, 8, nullptr); }},
    {"layer == num_layers", kInvalid, {"layer (2)"}, [](World& w) { const int32_t c[4] = {1, 2, 3, 4}; int32_t q[8]; return eplb_split_solve(nullptr, w.placement, 2, c, 4, nullptr, nullptr, 0, q, 8, nullptr); }},
    {"counts_len one short", kInvalid, {"counts has 3"}, [](World& w) { const int32_t c[4] = {1, 2, 3, 4}; int32_t q[8]; return eplb_split_solve(nullptr, w.placement, 0, c, 3, nullptr, nullptr, 0, q, 8, nullptr); }},
    {"negative count", kInvalid, {"counts[2] = -1"}, [](World& w) { const int32_t c[4] = {1, 2, -1, 4}; int32_t q[8]; return eplb_split_solve(nullptr, w.placement, 0, c, 4, nullptr, nullptr, 0, q, 8, nullptr); }},
    {"out_quotas_len one short", kInvalid, {"out_quotas_len (7)"}, [](World& w) { const int32_t c[4] = {1, 2, 3, 4}; int32_t q[8]; return eplb_split_solve(nullptr, w.placement, 0, c, 4, nullptr, nullptr, 0, q, 7, nullptr); }},
    {"gpu_len != num_gpus", kInvalid, {"gpu_len (3)"}, [](World& w) { const int32_t c[4] = {1, 2, 3, 4}; const double g[4] = {1, 1, 1, 1}; int32_t q[8]; return eplb_split_solve(nullptr, w.placement, 0, c, 4, g, nullptr, 3, q, 8, nullptr); }},
    {"NaN weight", kInvalid, {"gpu_weights[1]", "nan"}, [](World& w) { const int32_t c[4] = {1, 2, 3, 4}; const double g[4] = {1, kNaN, 1, 1}; int32_t q[8]; return eplb_split_solve(nullptr, w.placement, 0, c, 4, g, nullptr, 4, q, 8, nullptr); }},
    {"zero weight", kInvalid, {"gpu_weights[0] = 0"}, [](World& w) { const int32_t c[4] = {1, 2, 3, 4}; const double g[4] = {0, 1, 1, 1}; int32_t q[8]; return eplb_split_solve(nullptr, w.placement, 0, c, 4, g, nullptr, 4, q, 8, nullptr); }},
    {"infinite extra load", kInvalid, {"gpu_extra_load[3]", "inf"}, [](World& w) { const int32_t c[4] = {1, 2, 3, 4}; const double x[4] = {0, 0, 0, kInf}; int32_t q[8]; return eplb_split_solve(nullptr, w.placement, 0, c, 4, nullptr, x, 4, q, 8, nullptr); }},
  }, {}, {}},
  {"eplb_split_solve_by_node", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { const int32_t c[8] = {1, 2, 3, 4, 5, 6, 7, 8}; int32_t q[16]; return eplb_split_solve_by_node(nullptr, nullptr, 0, c, 8, nullptr, nullptr, 0, 0.0, q, 16, nullptr, nullptr); }},
    {"NULL counts_by_node", kInvalid, {"counts_by_node", "NULL"}, [](World& w) { int32_t q[16]; return eplb_split_solve_by_node(nullptr, w.placement, 0, nullptr, 8, nullptr, nullptr, 0, 0.0, q, 16, nullptr, nullptr); }},
    {"NULL out_quotas", kInvalid, {"out_quotas", "NULL"}, [](World& w) { const int32_t c[8] = {1, 2, 3, 4, 5, 6, 7, 8}; return eplb_split_solve_by_node(nullptr, w.placement, 0, c, 8, nullptr, nullptr, 0, 0.0, nullptr, 16, nullptr, nullptr); }},
    {"layer == num_layers", kInvalid, {"layer (2)"}, [](World& w) { const int32_t c[8] = {1, 2, 3, 4, 5, 6, 7, 8}; int32_t q[16]; return eplb_split_solve_by_node(nullptr, w.placement, 2, c, 8, nullptr, nullptr, 0, 0.0, q, 16, nullptr, nullptr); }},
    {"counts_len = experts only", kInvalid, {"counts_by_node has 4"}, [](World& w) { const int32_t c[8] = {1, 2, 3, 4, 5, 6, 7, 8}; int32_t q[16]; return eplb_split_solve_by_node(nullptr, w.placement, 0, c, 4, nullptr, nullptr, 0, 0.0, q, 16, nullptr, nullptr); }},
    {"negative count", kInvalid, {"counts_by_node[5] = -3"}, [](World& w) { const int32_t c[8] = {1, 2, 3, 4, 5, -3, 7, 8}; int32_t q[16]; return eplb_split_solve_by_node(nullptr, w.placement, 0, c, 8, nullptr, nullptr, 0, 0.0, q, 16, nullptr, nullptr); }},
    {"out_quotas_len = slots only", kInvalid, {"out_quotas_len (8)"}, [](World& w) { const int32_t c[8] = {1, 2, 3, 4, 5, 6, 7, 8}; int32_t q[16]; return eplb_split_solve_by_node(nullptr, w.placement, 0, c, 8, nullptr, nullptr, 0, 0.0, q, 8, nullptr, nullptr); }},
    {"NaN slack", kInvalid, {"slack (nan)"}, [](World& w) { const int32_t c[8] = {1, 2, 3, 4, 5, 6, 7, 8}; int32_t q[16]; return eplb_split_solve_by_node(nullptr, w.placement, 0, c, 8, nullptr, nullptr, 0, kNaN, q, 16, nullptr, nullptr); }},
    {"negative slack", kInvalid, {"slack (-1)"}, [](World& w) { const int32_t c[8] = {1, 2, 3, 4, 5, 6, 7, 8}; int32_t q[16]; return eplb_split_solve_by_node(nullptr, w.placement, 0, c, 8, nullptr, nullptr, 0, -1.0, q, 16, nullptr, nullptr); }},
    {"gpu_len != num_gpus", kInvalid, {"gpu_len (3)"}, [](World& w) { const int32_t c[8] = {1, 2, 3, 4, 5, 6, 7, 8}; const double g[4] = {1, 1, 1, 1}; int32_t q[16]; return eplb_split_solve_by_node(nullptr, w.placement, 0, c, 8, g, nullptr, 3, 0.0, q, 16, nullptr, nullptr); }},
    {"zero weight", kInvalid, {"gpu_weights[2] = 0"}, [](World& w) { const int32_t c[8] = {1, 2, 3, 4, 5, 6, 7, 8}; const double g[4] = {1, 1, 0, 1}; int32_t q[16]; return eplb_split_solve_by_node(nullptr, w.placement, 0, c, 8, g, nullptr, 4, 0.0, q, 16, nullptr, nullptr); }},
  }, {}, {}},
  {"eplb_split_rank_quotas", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { const int32_t q[8] = {}; const int32_t c[8] = {}; int32_t o[8]; return eplb_split_rank_quotas(nullptr, 0, q, 8, c, 8, 2, 0, o, 8); }},
    {"NULL rank_counts", kInvalid, {"rank_counts", "NULL"}, [](World& w) { const int32_t q[8] = {}; int32_t o[8]; return eplb_split_rank_quotas(w.placement, 0, q, 8, nullptr, 8, 2, 0, o, 8); }},
    {"rank == num_ranks", kInvalid, {"rank (2)"}, [](World& w) { const int32_t q[8] = {}; const int32_t c[8] = {}; int32_t o[8]; return eplb_split_rank_quotas(w.placement, 0, q, 8, c, 8, 2, 2, o, 8); }},
    {"rank_counts_len for 3 ranks", kInvalid, {"rank_counts has 8"}, [](World& w) { const int32_t q[8] = {}; const int32_t c[8] = {}; int32_t o[8]; return eplb_split_rank_quotas(w.placement, 0, q, 8, c, 8, 3, 0, o, 8); }},
    {"quotas short of the counts", kInvalid, {"expert 0", "sum to 0"}, [](World& w) { const int32_t q[8] = {}; const int32_t c[8] = {1, 0, 0, 0, 0, 0, 0, 0}; int32_t o[8]; return eplb_split_rank_quotas(w.placement, 0, q, 8, c, 8, 2, 0, o, 8); }},
    {"negative count", kInvalid, {"rank_counts[5] = -1"}, [](World& w) { const int32_t q[8] = {}; const int32_t c[8] = {0, 0, 0, 0, 0, -1, 0, 0}; int32_t o[8]; return eplb_split_rank_quotas(w.placement, 0, q, 8, c, 8, 2, 0, o, 8); }},
    {"out_quotas_len one short", kInvalid, {"out_quotas has 7"}, [](World& w) { const int32_t q[8] = {}; const int32_t c[8] = {}; int32_t o[8]; return eplb_split_rank_quotas(w.placement, 0, q, 8, c, 8, 2, 0, o, 7); }},
  }, {}, {}},
  {"eplb_shared_expert_waterfill", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World& w) { int32_t o[9]; return eplb_shared_expert_waterfill(nullptr, w.topk.data(), 3, World::kTopK, nullptr, nullptr, nullptr, 0, 0, o, 9); }},
    {"NULL topk_slots with tokens", kInvalid, {"topk_slots", "NULL"}, [](World& w) { int32_t o[9]; return eplb_shared_expert_waterfill(w.placement, nullptr, 3, World::kTopK, nullptr, nullptr, nullptr, 0, 0, o, 9); }},
    {"NULL out_topk", kInvalid, {"out_topk", "NULL"}, [](World& w) { return eplb_shared_expert_waterfill(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, nullptr, 0, 0, nullptr, 9); }},
    {"top_k 0", kInvalid, {"top_k (0)"}, [](World& w) { int32_t o[9]; return eplb_shared_expert_waterfill(w.placement, w.topk.data(), 3, 0, nullptr, nullptr, nullptr, 0, 0, o, 9); }},
    {"unknown flag", kInvalid, {"flags (2)"}, [](World& w) { int32_t o[9]; return eplb_shared_expert_waterfill(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, nullptr, 0, 2, o, 9); }},
    {"out_topk_len one short", kInvalid, {"out_topk_len (8)"}, [](World& w) { int32_t o[9]; return eplb_shared_expert_waterfill(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, nullptr, 0, 0, o, 8); }},
    {"num_tokens * (top_k + 1) overflows", EPLB_ERR_OUT_OF_MEMORY, {"num_tokens"}, [](World& w) { int32_t o[9]; return eplb_shared_expert_waterfill(w.placement, w.topk.data(), kSizeMax / 2, World::kTopK, nullptr, nullptr, nullptr, 0, 0, o, 9); }},
    {"slot out of range", kInvalid, {"topk_slots[1] = 8"}, [](World& w) { const int32_t t[2] = {0, 8}; int32_t o[3]; return eplb_shared_expert_waterfill(w.placement, t, 1, World::kTopK, nullptr, nullptr, nullptr, 0, 0, o, 3); }},
    {"source GPU out of range", kInvalid, {"source_gpu[2] = 4"}, [](World& w) { const int32_t s[3] = {0, 1, 4}; int32_t o[9]; return eplb_shared_expert_waterfill(w.placement, w.topk.data(), 3, World::kTopK, s, nullptr, nullptr, 0, 0, o, 9); }},
    {"gpu_len != num_gpus", kInvalid, {"gpu_len (2)"}, [](World& w) { double l[4] = {0, 0, 0, 0}; int32_t o[9]; return eplb_shared_expert_waterfill(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, l, 2, 0, o, 9); }},
    {"negative load", kInvalid, {"gpu_loads[1] = -1"}, [](World& w) { double l[4] = {0, -1, 0, 0}; int32_t o[9]; return eplb_shared_expert_waterfill(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, l, 4, 0, o, 9); }},
    {"NaN weight", kInvalid, {"gpu_weights[2]", "nan"}, [](World& w) { const double g[4] = {1, 1, kNaN, 1}; int32_t o[9]; return eplb_shared_expert_waterfill(w.placement, w.topk.data(), 3, World::kTopK, nullptr, g, nullptr, 4, 0, o, 9); }},
  }, {}, {}},
  {"eplb_device_count", {
    {"NULL out_count", kInvalid, {"out_count", "NULL"}, [](World&) { return eplb_device_count(nullptr); }},
  }, {}, {}},
  // Routing kernels (issue #7 items 1-3): host-checkable errors, the same with and without a GPU.
  {"eplb_device_tables_create", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { eplb_device_tables* t = nullptr; return eplb_device_tables_create(nullptr, 0, 0, EPLB_DEVICE_TABLES_HOST_ONLY, nullptr, &t); }},
    {"NULL out_tables", kInvalid, {"out_tables", "NULL"}, [](World& w) { return eplb_device_tables_create(w.placement, 0, 0, EPLB_DEVICE_TABLES_HOST_ONLY, nullptr, nullptr); }},
    {"gpu == num_gpus", kInvalid, {"gpu (4)"}, [](World& w) { return create_tables(w, 4, 0, EPLB_DEVICE_TABLES_HOST_ONLY); }},
    {"unknown flag", kInvalid, {"flags (2)"}, [](World& w) { return create_tables(w, 0, 0, 2); }},
    {"max_replicas above num_physical_experts", kInvalid, {"max_replicas (9)"}, [](World& w) { return create_tables(w, 0, 9, EPLB_DEVICE_TABLES_HOST_ONLY); }},
  }, {}, {}},
  {"eplb_device_tables_update", {
    {"NULL tables", kInvalid, {"tables", "NULL"}, [](World& w) { return eplb_device_tables_update(nullptr, w.placement, nullptr); }},
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World& w) { return with_host_tables(w, [](eplb_device_tables* t) { return eplb_device_tables_update(t, nullptr, nullptr); }); }},
    {"another shape", kInvalid, {"shape"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { return eplb_device_tables_update(t, w.other_shape, nullptr); }); }},
  }, {}, {}},
  {"eplb_device_tables_destroy", {}, "NULL is a no-op", [](World&) { eplb_device_tables_destroy(nullptr); return true; }},
  {"eplb_device_tables_get_info", {
    {"NULL tables", kInvalid, {"tables", "NULL"}, [](World&) { eplb_device_tables_info i{}; i.struct_size = sizeof(i); return eplb_device_tables_get_info(nullptr, &i); }},
    {"struct_size 0", kInvalid, {"struct_size (0)"}, [](World& w) { return with_host_tables(w, [](eplb_device_tables* t) { eplb_device_tables_info i{}; return eplb_device_tables_get_info(t, &i); }); }},
  }, {}, {}},
  {"eplb_device_tables_get_static_map", {
    {"NULL out", kInvalid, {"out", "NULL"}, [](World& w) { return with_host_tables(w, [](eplb_device_tables* t) { return eplb_device_tables_get_static_map(t, nullptr, 8); }); }},
    {"out_len one short", kSmall, {"out_len (7)"}, [](World& w) { return with_host_tables(w, [](eplb_device_tables* t) { int32_t o[8]; return eplb_device_tables_get_static_map(t, o, 7); }); }},
  }, {}, {}},
  {"eplb_kernel_record_load", {
    {"NULL counts", kInvalid, {"counts", "NULL"}, [](World& w) { return eplb_kernel_record_load(w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, 4, 2, 0, nullptr, nullptr, nullptr); }},
    {"unknown id_type", kInvalid, {"id_type (2)"}, [](World& w) { int64_t c[8]; return eplb_kernel_record_load(w.topk.data(), 2, 3, World::kTopK, 4, 2, 0, nullptr, c, nullptr); }},
    {"layer == num_layers", kInvalid, {"layer (2)"}, [](World& w) { int64_t c[8]; return eplb_kernel_record_load(w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, 4, 2, 2, nullptr, c, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_record_load_cpu", {
    {"NULL topk_ids with tokens", kInvalid, {"topk_ids", "NULL"}, [](World&) { int64_t c[8]; return eplb_kernel_record_load_cpu(nullptr, EPLB_IDS_INT32, 3, World::kTopK, 4, 2, 0, nullptr, c, nullptr); }},
    {"top_k 0", kInvalid, {"top_k (0)"}, [](World& w) { int64_t c[8]; return eplb_kernel_record_load_cpu(w.topk.data(), EPLB_IDS_INT32, 3, 0, 4, 2, 0, nullptr, c, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_map_record", {
    {"NULL tables", kInvalid, {"tables", "NULL"}, [](World& w) { int32_t o[6]; return eplb_kernel_map_record(nullptr, 0, EPLB_MAP_STATIC, 0, nullptr, w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, nullptr, o, nullptr); }},
    {"host-only tables", kInvalid, {"HOST_ONLY"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { int32_t o[6]; return eplb_kernel_map_record(t, 0, EPLB_MAP_STATIC, 0, nullptr, w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, nullptr, o, nullptr); }); }},
  }, {}, {}},
  {"eplb_kernel_map_record_cpu", {
    {"unknown mode", kInvalid, {"mode (5)"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { int32_t o[6]; return eplb_kernel_map_record_cpu(t, 0, 5, 0, nullptr, w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, nullptr, o, nullptr); }); }},
    {"quota without quotas", kInvalid, {"quotas", "NULL"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { int32_t o[6]; return eplb_kernel_map_record_cpu(t, 0, EPLB_MAP_QUOTA, 0, nullptr, w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, nullptr, o, nullptr); }); }},
    {"layer == num_layers", kInvalid, {"layer (2)"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { int32_t o[6]; return eplb_kernel_map_record_cpu(t, 2, EPLB_MAP_STATIC, 0, nullptr, w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, nullptr, o, nullptr); }); }},
    {"NULL out_physical", kInvalid, {"out_physical", "NULL"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { return eplb_kernel_map_record_cpu(t, 0, EPLB_MAP_STATIC, 0, nullptr, w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, nullptr, nullptr, nullptr); }); }},
  }, {}, {}},
  {"eplb_kernel_fold_counts", {
    {"NULL tables", kInvalid, {"tables", "NULL"}, [](World&) { int64_t p[16] = {}; int64_t l[8] = {}; return eplb_kernel_fold_counts(nullptr, p, l, nullptr); }},
    {"host-only tables", kInvalid, {"HOST_ONLY"}, [](World& w) { return with_host_tables(w, [](eplb_device_tables* t) { int64_t p[16] = {}; int64_t l[8] = {}; return eplb_kernel_fold_counts(t, p, l, nullptr); }); }},
  }, {}, {}},
  {"eplb_kernel_fold_counts_cpu", {
    {"NULL physical_counts", kInvalid, {"physical_counts", "NULL"}, [](World& w) { return with_host_tables(w, [](eplb_device_tables* t) { int64_t l[8]; return eplb_kernel_fold_counts_cpu(t, nullptr, l, nullptr); }); }},
  }, {}, {}},
  {"eplb_kernel_coactivation", {
    {"top_k above 64", kInvalid, {"top_k (65)"}, [](World& w) { int64_t c[12]; return eplb_kernel_coactivation(w.topk.data(), EPLB_IDS_INT32, 1, 65, 4, 2, 0, nullptr, c, 0, 0, 0, nullptr, nullptr); }},
    {"samples without a stride", kInvalid, {"sample_stride (0)"}, [](World& w) { int32_t o[6]; return eplb_kernel_coactivation(w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, 4, 2, 0, nullptr, nullptr, 0, 0, 3, o, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_coactivation_cpu", {
    {"num_experts 0", kInvalid, {"num_experts (0)"}, [](World& w) { int64_t c[12]; return eplb_kernel_coactivation_cpu(w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, 0, 2, 0, nullptr, c, 0, 0, 0, nullptr, nullptr); }},
    {"samples without out_samples", kInvalid, {"out_samples", "NULL"}, [](World& w) { return eplb_kernel_coactivation_cpu(w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, 4, 2, 0, nullptr, nullptr, 1, 0, 3, nullptr, nullptr); }},
  }, {}, {}},
  // Dispatch kernels (issue #7 items 4-5): host-checkable errors, so the status is the same with
  // and without a GPU (the GPU entry points check arguments before looking for a device).
  {"eplb_kernel_dispatch_layout_workspace_size", {
    {"NULL out_bytes", kInvalid, {"out_bytes", "NULL"}, [](World&) { return eplb_kernel_dispatch_layout_workspace_size(4, 2, 8, 4, 2, nullptr); }},
    {"num_ranks not dividing experts", kInvalid, {"num_ranks (3)"}, [](World&) { size_t b = 0; return eplb_kernel_dispatch_layout_workspace_size(4, 2, 8, 3, 1, &b); }},
  }, {}, {}},
  {"eplb_kernel_dispatch_layout", {
    {"num_nodes 0", kInvalid, {"num_nodes (0)"}, [](World&) { int32_t ids[2] = {0, 1}, e[8], r[4], n[2]; uint8_t in[8]; return eplb_kernel_dispatch_layout(ids, 2, 1, 8, 4, 0, e, r, n, in, nullptr, nullptr, 0, nullptr); }},
    {"top_k 0", kInvalid, {"top_k (0)"}, [](World&) { int32_t ids[2] = {0, 1}, e[8], r[4], n[2]; uint8_t in[8]; return eplb_kernel_dispatch_layout(ids, 2, 0, 8, 4, 2, e, r, n, in, nullptr, nullptr, 0, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_dispatch_layout_cpu", {
    {"NULL tokens_per_expert", kInvalid, {"tokens_per_expert", "NULL"}, [](World&) { int32_t ids[2] = {0, 1}, r[4], n[2]; uint8_t in[8]; unsigned char ws[256]; return eplb_kernel_dispatch_layout_cpu(ids, 2, 1, 8, 4, 2, nullptr, r, n, in, nullptr, ws, sizeof ws, nullptr); }},
    {"short workspace", kInvalid, {"workspace_size (0)"}, [](World&) { int32_t ids[2] = {0, 1}, e[8], r[4], n[2]; uint8_t in[8]; return eplb_kernel_dispatch_layout_cpu(ids, 2, 1, 8, 4, 2, e, r, n, in, nullptr, nullptr, 0, nullptr); }},
    {"misaligned workspace", kInvalid, {"workspace", "4-byte aligned"}, [](World&) { int32_t ids[2] = {0, 1}, e[8], r[4], n[2]; uint8_t in[8]; alignas(4) unsigned char ws[260]; return eplb_kernel_dispatch_layout_cpu(ids, 2, 1, 8, 4, 2, e, r, n, in, nullptr, ws + 1, 256, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_expert_sort_capacity", {
    {"NULL out_capacity", kInvalid, {"out_capacity", "NULL"}, [](World&) { return eplb_kernel_expert_sort_capacity(4, 2, 8, 16, nullptr); }},
    {"block_size 0", kInvalid, {"block_size (0)"}, [](World&) { size_t c = 0; return eplb_kernel_expert_sort_capacity(4, 2, 8, 0, &c); }},
    {"num_tokens * top_k overflows", kInvalid, {"num_tokens", "top_k"}, [](World&) { size_t c = 0; return eplb_kernel_expert_sort_capacity(kSizeMax / 2, 8, 8, 16, &c); }},
  }, {}, {}},
  {"eplb_kernel_expert_sort_workspace_size", {
    {"NULL out_bytes", kInvalid, {"out_bytes", "NULL"}, [](World&) { return eplb_kernel_expert_sort_workspace_size(4, 2, 8, nullptr); }},
    {"num_experts 0", kInvalid, {"num_experts (0)"}, [](World&) { size_t b = 0; return eplb_kernel_expert_sort_workspace_size(4, 2, 0, &b); }},
  }, {}, {}},
  {"eplb_kernel_expert_sort", {
    {"capacity too small", kInvalid, {"capacity (16)"}, [](World&) { int32_t ids[8] = {0, 1, 2, 3, 4, 5, 6, 7}, s[16], b[1], o[9], inv[8], t = 0; unsigned char ws[256]; return eplb_kernel_expert_sort(ids, 4, 2, 8, 16, 16, s, b, o, inv, &t, ws, sizeof ws, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_expert_sort_cpu", {
    {"NULL inverse", kInvalid, {"inverse", "NULL"}, [](World&) { int32_t ids[8] = {0, 1, 2, 3, 4, 5, 6, 7}, s[128], b[8], o[9], t = 0; unsigned char ws[256]; return eplb_kernel_expert_sort_cpu(ids, 4, 2, 8, 16, 128, s, b, o, nullptr, &t, ws, sizeof ws, nullptr); }},
    {"capacity not a multiple of block_size", kInvalid, {"capacity (130)"}, [](World&) { int32_t ids[8] = {0, 1, 2, 3, 4, 5, 6, 7}, s[130], b[8], o[9], inv[8], t = 0; unsigned char ws[256]; return eplb_kernel_expert_sort_cpu(ids, 4, 2, 8, 16, 130, s, b, o, inv, &t, ws, sizeof ws, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_permute", {
    {"hidden not a multiple of 8", kInvalid, {"hidden (12)"}, [](World&) { alignas(16) uint16_t in[64] = {}, out[64] = {}; const int32_t inv[2] = {0, 1}; return eplb_kernel_permute(in, EPLB_ROW_DTYPE_BFLOAT16, 2, 1, 12, inv, 2, out, nullptr); }},
    {"unknown dtype", kInvalid, {"dtype (7)"}, [](World&) { alignas(16) uint16_t in[64] = {}, out[64] = {}; const int32_t inv[2] = {0, 1}; return eplb_kernel_permute(in, 7, 2, 1, 16, inv, 2, out, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_permute_cpu", {
    {"NULL inverse", kInvalid, {"inverse", "NULL"}, [](World&) { alignas(16) uint16_t in[64] = {}, out[64] = {}; return eplb_kernel_permute_cpu(in, EPLB_ROW_DTYPE_FLOAT16, 2, 1, 16, nullptr, 2, out, nullptr); }},
    {"misaligned output", kInvalid, {"output", "16-byte aligned"}, [](World&) { alignas(16) uint16_t in[64] = {}, out[72] = {}; const int32_t inv[2] = {0, 1}; return eplb_kernel_permute_cpu(in, EPLB_ROW_DTYPE_FLOAT16, 2, 1, 16, inv, 2, out + 1, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_unpermute", {
    {"hidden 0", kInvalid, {"hidden (0)"}, [](World&) { alignas(16) float in[32] = {}, out[32] = {}; const int32_t inv[2] = {0, 1}; const float w[2] = {1, 1}; return eplb_kernel_unpermute(in, EPLB_ROW_DTYPE_FLOAT32, 2, 1, 0, inv, w, 2, out, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_unpermute_cpu", {
    {"NULL weights", kInvalid, {"weights", "NULL"}, [](World&) { alignas(16) float in[32] = {}, out[32] = {}; const int32_t inv[2] = {0, 1}; return eplb_kernel_unpermute_cpu(in, EPLB_ROW_DTYPE_FLOAT32, 2, 1, 16, inv, nullptr, 2, out, nullptr); }},
    {"top_k 0", kInvalid, {"top_k (0)"}, [](World&) { alignas(16) float in[32] = {}, out[32] = {}; const int32_t inv[2] = {0, 1}; const float w[2] = {1, 1}; return eplb_kernel_unpermute_cpu(in, EPLB_ROW_DTYPE_FLOAT32, 2, 0, 16, inv, w, 2, out, nullptr); }},
  }, {}, {}},
  // NCCL (issue #8): every bad input here is checked on the host before NCCL is loaded, so the
  // statuses are the same with or without NCCL, a GPU or NCCL support in the build.
  {"eplb_nccl_version", {
    {"NULL out_version", kInvalid, {"out_version", "NULL"}, [](World&) { return eplb_nccl_version(nullptr); }},
  }, {}, {}},
  {"eplb_comm_get_unique_id", {
    {"NULL out_id", kInvalid, {"out_id", "NULL"}, [](World&) { return eplb_comm_get_unique_id(nullptr, EPLB_COMM_UNIQUE_ID_BYTES); }},
    {"out_len one short", kSmall, {"128", "127"}, [](World&) { unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES]; return eplb_comm_get_unique_id(id, EPLB_COMM_UNIQUE_ID_BYTES - 1); }},
  }, {}, {}},
  {"eplb_comm_create", {
    {"NULL unique_id", kInvalid, {"unique_id", "NULL"}, [](World&) { eplb_comm* c = nullptr; return eplb_comm_create(nullptr, EPLB_COMM_UNIQUE_ID_BYTES, 1, 0, -1, &c); }},
    {"NULL out_comm", kInvalid, {"out_comm", "NULL"}, [](World&) { unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES] = {}; return eplb_comm_create(id, sizeof(id), 1, 0, -1, nullptr); }},
    {"unique_id_len 64", kInvalid, {"unique_id_len (64)", "128"}, [](World&) { unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES] = {}; eplb_comm* c = sentinel<eplb_comm>(); const eplb_status s = eplb_comm_create(id, 64, 1, 0, -1, &c); if (c != sentinel<eplb_comm>()) ADD_FAILURE() << "comm_create wrote its output"; return s; }},
    {"nranks 0", kInvalid, {"nranks (0)"}, [](World&) { unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES] = {}; eplb_comm* c = nullptr; return eplb_comm_create(id, sizeof(id), 0, 0, -1, &c); }},
    {"rank == nranks", kInvalid, {"rank (2)", "[0, 2)"}, [](World&) { unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES] = {}; eplb_comm* c = nullptr; return eplb_comm_create(id, sizeof(id), 2, 2, -1, &c); }},
    {"rank -1", kInvalid, {"rank (-1)"}, [](World&) { unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES] = {}; eplb_comm* c = nullptr; return eplb_comm_create(id, sizeof(id), 2, -1, -1, &c); }},
    {"device -2", kInvalid, {"device (-2)"}, [](World&) { unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES] = {}; eplb_comm* c = nullptr; return eplb_comm_create(id, sizeof(id), 1, 0, -2, &c); }},
  }, {}, {}},
  {"eplb_comm_adopt", {
    {"NULL nccl_comm", kInvalid, {"nccl_comm", "NULL"}, [](World&) { eplb_comm* c = nullptr; return eplb_comm_adopt(nullptr, &c); }},
    {"NULL out_comm", kInvalid, {"out_comm", "NULL"}, [](World&) { int fake = 0; return eplb_comm_adopt(&fake, nullptr); }},
  }, {}, {}},
  {"eplb_comm_destroy", {}, "NULL is a no-op", [](World&) { eplb_comm_destroy(nullptr); return true; }},
  {"eplb_comm_get_rank", {
    {"NULL comm", kInvalid, {"comm", "NULL"}, [](World&) { int32_t r = 0; return eplb_comm_get_rank(nullptr, &r); }},
  }, {}, {}},
  {"eplb_comm_get_size", {
    {"NULL comm", kInvalid, {"comm", "NULL"}, [](World&) { int32_t n = 0; return eplb_comm_get_size(nullptr, &n); }},
  }, {}, {}},
  {"eplb_comm_allreduce_tracker", {
    {"NULL local", kInvalid, {"local", "NULL"}, [](World& w) { return eplb_comm_allreduce_tracker(nullptr, nullptr, w.tracker); }},
    {"NULL out_sum", kInvalid, {"out_sum", "NULL"}, [](World& w) { return eplb_comm_allreduce_tracker(nullptr, w.tracker, nullptr); }},
    {"trackers of different top_k", kInvalid, {"differ", "top_k 2 vs 3"}, [](World& w) { return eplb_comm_allreduce_tracker(nullptr, w.tracker, w.other_tracker); }},
    {"NULL comm", kInvalid, {"comm", "NULL"}, [](World& w) { return eplb_comm_allreduce_tracker(nullptr, w.tracker, w.tracker); }},
  }, {}, {}},
  {"eplb_comm_allreduce", {
    {"dtype 5", kInvalid, {"dtype (5)"}, [](World&) { return eplb_comm_allreduce(nullptr, nullptr, 0, 5, EPLB_COMM_SUM, nullptr); }},
    {"op 3", kInvalid, {"op (3)"}, [](World&) { return eplb_comm_allreduce(nullptr, nullptr, 0, EPLB_COMM_INT64, 3, nullptr); }},
    {"NULL data with count 4", kInvalid, {"data is NULL", "4"}, [](World&) { return eplb_comm_allreduce(nullptr, nullptr, 4, EPLB_COMM_INT64, EPLB_COMM_SUM, nullptr); }},
    {"NULL comm", kInvalid, {"comm", "NULL"}, [](World&) { return eplb_comm_allreduce(nullptr, nullptr, 0, EPLB_COMM_INT64, EPLB_COMM_SUM, nullptr); }},
  }, {}, {}},
  {"eplb_migration_execute_step", {
    {"NULL migration", kInvalid, {"migration", "NULL"}, [](World&) { void* t[8] = {}; const uint64_t b[2] = {8, 8}; return eplb_migration_execute_step(nullptr, nullptr, 0, t, 8, b, 2, nullptr, 0, nullptr); }},
    {"step == num_steps", kInvalid, {"step", "out of range"}, [](World& w) { void* t[8] = {}; const uint64_t b[2] = {8, 8}; return eplb_migration_execute_step(w.migration, nullptr, w.migration_steps, t, 8, b, 2, nullptr, 0, nullptr); }},
    {"NULL tensor_bytes", kInvalid, {"tensor_bytes", "NULL"}, [](World& w) { void* t[8] = {}; return eplb_migration_execute_step(w.migration, nullptr, 0, t, 8, nullptr, 2, nullptr, 0, nullptr); }},
    {"num_tensors 0", kInvalid, {"num_tensors is 0"}, [](World& w) { void* t[8] = {}; const uint64_t b[2] = {8, 8}; return eplb_migration_execute_step(w.migration, nullptr, 0, t, 8, b, 0, nullptr, 0, nullptr); }},
    {"a tensor of 0 bytes", kInvalid, {"tensor_bytes[1] is 0"}, [](World& w) { void* t[8] = {}; const uint64_t b[2] = {8, 0}; return eplb_migration_execute_step(w.migration, nullptr, 0, t, 8, b, 2, nullptr, 0, nullptr); }},
    {"NULL slot_tensors", kInvalid, {"slot_tensors", "NULL"}, [](World& w) { const uint64_t b[2] = {8, 8}; return eplb_migration_execute_step(w.migration, nullptr, 0, nullptr, 8, b, 2, nullptr, 0, nullptr); }},
    {"slot_tensors_len one short", kInvalid, {"slot_tensors_len (7)", "8"}, [](World& w) { void* t[8] = {}; const uint64_t b[2] = {8, 8}; return eplb_migration_execute_step(w.migration, nullptr, 0, t, 7, b, 2, nullptr, 0, nullptr); }},
    {"NULL staging with staging_bytes 64", kInvalid, {"staging is NULL", "64"}, [](World& w) { void* t[8] = {}; const uint64_t b[2] = {8, 8}; return eplb_migration_execute_step(w.migration, nullptr, 0, t, 8, b, 2, nullptr, 64, nullptr); }},
    {"NULL comm", kInvalid, {"comm", "NULL"}, [](World& w) { void* t[8] = {}; const uint64_t b[2] = {8, 8}; return eplb_migration_execute_step(w.migration, nullptr, 0, t, 8, b, 2, nullptr, 0, nullptr); }},
  }, {}, {}},
  // Token dispatch and combine over NCCL: the options are checked before the communicator.
  {"eplb_token_exchange_options_init", {}, "NULL is a no-op", [](World&) { eplb_token_exchange_options_init(nullptr); return true; }},
  {"eplb_token_exchange_create", {
    {"NULL options", kInvalid, {"options", "NULL"}, [](World&) { eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, nullptr, &x); }},
    {"NULL out_exchange", kInvalid, {"out_exchange", "NULL"}, [](World&) { const auto o = eplb::test::small_token_exchange_options(); return eplb_token_exchange_create(nullptr, &o, nullptr); }},
    {"row_bytes 24", kInvalid, {"row_bytes (24)", "multiple of 16"}, [](World&) { auto o = eplb::test::small_token_exchange_options(); o.row_bytes = 24; eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
    {"hidden 12", kInvalid, {"hidden (12)", "multiple of 8"}, [](World&) { auto o = eplb::test::small_token_exchange_options(); o.hidden = 12; eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
    {"out_dtype 3", kInvalid, {"out_dtype (3)"}, [](World&) { auto o = eplb::test::small_token_exchange_options(); o.out_dtype = 3; eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
    {"max_tokens 0", kInvalid, {"max_tokens (0)"}, [](World&) { auto o = eplb::test::small_token_exchange_options(); o.max_tokens = 0; eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
    {"slots_per_rank 9000", kInvalid, {"slots_per_rank (9000)"}, [](World&) { auto o = eplb::test::small_token_exchange_options(); o.slots_per_rank = 9000; eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
    {"struct_size 8", kInvalid, {"struct_size (8)"}, [](World&) { auto o = eplb::test::small_token_exchange_options(); o.struct_size = 8; eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
    {"NULL comm", kInvalid, {"comm", "NULL"}, [](World&) { const auto o = eplb::test::small_token_exchange_options(); eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
  }, {}, {}},
  {"eplb_token_exchange_destroy", {}, "NULL is a no-op", [](World&) { eplb_token_exchange_destroy(nullptr); return true; }},
  {"eplb_token_exchange_dispatch", {
    {"NULL exchange", kInvalid, {"exchange", "NULL"}, [](World&) { uint64_t n = 0; return eplb_token_exchange_dispatch(nullptr, 0, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr, &n, nullptr); }},
  }, {}, {}},
  {"eplb_token_exchange_combine", {
    {"NULL exchange", kInvalid, {"exchange", "NULL"}, [](World&) { return eplb_token_exchange_combine(nullptr, nullptr, 0, nullptr, nullptr); }},
  }, {}, {}},
  // GPU replica split and shared-expert waterfill (issue #9): host-checkable errors, so the status
  // is the same with and without a GPU (the GPU entry points check arguments before the device).
  {"eplb_split_tables_create", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { return create_split_tables(nullptr, 0, 0, EPLB_SPLIT_TABLES_HOST_ONLY); }},
    {"NULL out_tables", kInvalid, {"out_tables", "NULL"}, [](World& w) { return create_split_tables(w.placement, 0, 0, EPLB_SPLIT_TABLES_HOST_ONLY, true); }},
    {"unknown flag", kInvalid, {"flags (2)"}, [](World& w) { return create_split_tables(w.placement, 0, 0, 2); }},
    {"first_layer == num_layers", kInvalid, {"first_layer (2)"}, [](World& w) { return create_split_tables(w.placement, 2, 0, EPLB_SPLIT_TABLES_HOST_ONLY); }},
    {"range past the last layer", kInvalid, {"first_layer + num_layers (3)"}, [](World& w) { return create_split_tables(w.placement, 1, 2, EPLB_SPLIT_TABLES_HOST_ONLY); }},
  }, {}, {}},
  {"eplb_split_tables_destroy", {}, "NULL is a no-op", [](World&) { eplb_split_tables_destroy(nullptr); return true; }},
  {"eplb_kernel_split_solve_workspace_size", {
    {"NULL tables", kInvalid, {"tables", "NULL"}, [](World&) { size_t b = 7; const eplb_status s = eplb_kernel_split_solve_workspace_size(nullptr, &b); return b == 7 ? s : EPLB_OK; }},
    {"NULL out_bytes", kInvalid, {"out_bytes", "NULL"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { return eplb_kernel_split_solve_workspace_size(t, nullptr); }); }},
  }, {}, {}},
  {"eplb_kernel_split_solve", {
    {"NULL tables", kInvalid, {"tables", "NULL"}, [](World&) { const int32_t c[4] = {1, 2, 3, 4}; int32_t q[8]; return eplb_kernel_split_solve(nullptr, 0, c, nullptr, nullptr, q, nullptr, nullptr, 0, nullptr); }},
    {"host-only tables", kInvalid, {"HOST_ONLY"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { const int32_t c[4] = {1, 2, 3, 4}; int32_t q[8]; uint64_t ws[64]; return eplb_kernel_split_solve(t, 0, c, nullptr, nullptr, q, nullptr, ws, sizeof(ws), nullptr); }); }},
  }, {}, {}},
  {"eplb_kernel_split_solve_cpu", {
    {"layer == num_layers", kInvalid, {"layer (2)"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { const int32_t c[4] = {1, 2, 3, 4}; int32_t q[8]; uint64_t ws[64]; return eplb_kernel_split_solve_cpu(t, 2, c, nullptr, nullptr, q, nullptr, ws, sizeof(ws), nullptr); }); }},
    {"NULL counts", kInvalid, {"counts", "NULL"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { int32_t q[8]; uint64_t ws[64]; return eplb_kernel_split_solve_cpu(t, 0, nullptr, nullptr, nullptr, q, nullptr, ws, sizeof(ws), nullptr); }); }},
    {"NULL out_quotas", kInvalid, {"out_quotas", "NULL"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { const int32_t c[4] = {1, 2, 3, 4}; uint64_t ws[64]; return eplb_kernel_split_solve_cpu(t, 0, c, nullptr, nullptr, nullptr, nullptr, ws, sizeof(ws), nullptr); }); }},
    {"workspace_bytes 0", kInvalid, {"workspace_bytes (0)"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { const int32_t c[4] = {1, 2, 3, 4}; int32_t q[8]; return eplb_kernel_split_solve_cpu(t, 0, c, nullptr, nullptr, q, nullptr, nullptr, 0, nullptr); }); }},
    {"negative count", kInvalid, {"counts[2] = -1"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { const int32_t c[4] = {1, 2, -1, 4}; int32_t q[8] = {}; uint64_t ws[64]; const eplb_status s = eplb_kernel_split_solve_cpu(t, 0, c, nullptr, nullptr, q, nullptr, ws, sizeof(ws), nullptr); return q[0] == 0 ? s : EPLB_OK; }); }},
    {"NaN weight", kInvalid, {"gpu_weights[1]", "nan"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { const int32_t c[4] = {1, 2, 3, 4}; const double g[4] = {1, kNaN, 1, 1}; int32_t q[8]; uint64_t ws[64]; return eplb_kernel_split_solve_cpu(t, 0, c, g, nullptr, q, nullptr, ws, sizeof(ws), nullptr); }); }},
  }, {}, {}},
  {"eplb_kernel_shared_waterfill_workspace_size", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { size_t b = 0; return eplb_kernel_shared_waterfill_workspace_size(nullptr, 3, &b); }},
    {"NULL out_bytes", kInvalid, {"out_bytes", "NULL"}, [](World& w) { return eplb_kernel_shared_waterfill_workspace_size(w.placement, 3, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_shared_waterfill", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World& w) { int32_t o[9]; return eplb_kernel_shared_waterfill(nullptr, w.topk.data(), 3, World::kTopK, nullptr, nullptr, nullptr, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"top_k 0", kInvalid, {"top_k (0)"}, [](World& w) { int32_t o[9]; return eplb_kernel_shared_waterfill(w.placement, w.topk.data(), 3, 0, nullptr, nullptr, nullptr, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"top_k above 1024", kInvalid, {"top_k (1025)"}, [](World& w) { int32_t o[9]; return eplb_kernel_shared_waterfill(w.placement, w.topk.data(), 3, 1025, nullptr, nullptr, nullptr, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"unknown flag", kInvalid, {"flags (2)"}, [](World& w) { int32_t o[9]; return eplb_kernel_shared_waterfill(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, nullptr, 2, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"NULL out_topk with tokens", kInvalid, {"out_topk", "NULL"}, [](World& w) { return eplb_kernel_shared_waterfill(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, nullptr, 0, nullptr, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_shared_waterfill_cpu", {
    {"workspace_bytes one short", kInvalid, {"workspace_bytes"}, [](World& w) { int32_t o[9]; size_t b = 0; eplb_kernel_shared_waterfill_workspace_size(w.placement, 3, &b); return eplb_kernel_shared_waterfill_cpu(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, nullptr, 0, o, nullptr, wf_ws(), b - 1, nullptr); }},
    {"slot out of range", kInvalid, {"topk_slots[1] = 8"}, [](World& w) { const int32_t t[2] = {0, 8}; int32_t o[3] = {7, 7, 7}; const eplb_status s = eplb_kernel_shared_waterfill_cpu(w.placement, t, 1, World::kTopK, nullptr, nullptr, nullptr, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); return o[0] == 7 ? s : EPLB_OK; }},
    {"source GPU out of range", kInvalid, {"source_gpu[2] = 4"}, [](World& w) { const int32_t src[3] = {0, 1, 4}; int32_t o[9]; return eplb_kernel_shared_waterfill_cpu(w.placement, w.topk.data(), 3, World::kTopK, src, nullptr, nullptr, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"NULL topk_slots with tokens", kInvalid, {"topk_slots", "NULL"}, [](World& w) { int32_t o[9]; return eplb_kernel_shared_waterfill_cpu(w.placement, nullptr, 3, World::kTopK, nullptr, nullptr, nullptr, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"negative load", kInvalid, {"gpu_loads[1] = -1"}, [](World& w) { const double l[4] = {0, -1, 0, 0}; int32_t o[9]; return eplb_kernel_shared_waterfill_cpu(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, l, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"NaN weight", kInvalid, {"gpu_weights[2]", "nan"}, [](World& w) { const double g[4] = {1, 1, kNaN, 1}; int32_t o[9]; return eplb_kernel_shared_waterfill_cpu(w.placement, w.topk.data(), 3, World::kTopK, nullptr, g, nullptr, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
  }, {}, {}},
  };
  return rows;
}
// clang-format on

// --- exported symbols of libeplb.so, from its ELF dynamic symbol table ------------------------

std::set<std::string> exported_eplb_symbols(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  const std::vector<char> file((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
  const auto at = [&](size_t offset, size_t size) {
    if (offset > file.size() || size > file.size() - offset) {
      throw std::runtime_error(path + ": ELF offset out of range");
    }
    return file.data() + offset;
  };
  Elf64_Ehdr header;
  std::memcpy(&header, at(0, sizeof header), sizeof header);
  if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64) {
    throw std::runtime_error(path + " is not a 64-bit ELF file");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < header.e_shnum; ++i) {
    Elf64_Shdr section;
    std::memcpy(&section, at(header.e_shoff + i * sizeof section, sizeof section), sizeof section);
    if (section.sh_type != SHT_DYNSYM) continue;
    Elf64_Shdr strings;
    std::memcpy(&strings, at(header.e_shoff + section.sh_link * sizeof strings, sizeof strings),
                sizeof strings);
    for (size_t s = 0; s < section.sh_size / sizeof(Elf64_Sym); ++s) {
      Elf64_Sym symbol;
      std::memcpy(&symbol, at(section.sh_offset + s * sizeof symbol, sizeof symbol), sizeof symbol);
      if (symbol.st_shndx == SHN_UNDEF) continue;
      if (ELF64_ST_BIND(symbol.st_info) == STB_LOCAL) continue;
      const char* name = at(strings.sh_offset + symbol.st_name, 1);
      if (std::strncmp(name, "eplb_", 5) == 0) names.insert(name);
    }
  }
  return names;
}

// --- the tests ----------------------------------------------------------------------------------

TEST(Matrix, EveryExportedSymbolHasARow) {
  const std::set<std::string> exported = exported_eplb_symbols(EPLB_LIBRARY_PATH);
  ASSERT_FALSE(exported.empty()) << "no eplb_* symbols found in " << EPLB_LIBRARY_PATH;
  std::set<std::string> in_table;
  for (const Row& row : matrix()) {
    EXPECT_TRUE(in_table.insert(row.entry_point).second) << "two rows for " << row.entry_point;
  }
  std::string missing;
  for (const std::string& name : exported) {
    if (in_table.count(name) == 0) missing += "\n  " + name;
  }
  std::string stale;
  for (const std::string& name : in_table) {
    if (exported.count(name) == 0) stale += "\n  " + name;
  }
  EXPECT_TRUE(missing.empty()) << "libeplb.so exports entry points without a row in the bad-input "
                                  "matrix (tests/reliability/bad_input_matrix_test.cpp, matrix()):"
                               << missing;
  EXPECT_TRUE(stale.empty()) << "rows of the bad-input matrix name symbols libeplb.so does not "
                                "export:"
                             << stale;
}

TEST(Matrix, EveryBadInputFailsWithItsStatusAndANamingMessage) {
  World world;
  size_t bad_inputs = 0;
  size_t totals = 0;
  for (const Row& row : matrix()) {
    if (row.bad_inputs.empty()) {
      SCOPED_TRACE(row.entry_point);
      ASSERT_TRUE(row.check) << row.entry_point << " has neither bad inputs nor a total check";
      EXPECT_TRUE(row.check(world)) << row.entry_point << ": " << row.total;
      ++totals;
      continue;
    }
    EXPECT_TRUE(row.total.empty()) << row.entry_point << " has bad inputs and a total note";
    for (const BadInput& bad : row.bad_inputs) {
      SCOPED_TRACE(row.entry_point + " with " + bad.input);
      ++bad_inputs;
      const eplb_status status = bad.call(world);
      const std::string message = eplb_last_error_message();
      EXPECT_EQ(status, bad.expected)
          << "got " << eplb_status_string(status) << ", expected "
          << eplb_status_string(bad.expected) << "; message: " << message;
      EXPECT_FALSE(message.empty()) << "empty error message";
      for (const std::string& fragment : bad.fragments) {
        EXPECT_NE(message.find(fragment), std::string::npos)
            << "message \"" << message << "\" does not name \"" << fragment << "\"";
      }
    }
  }
  // Use after failed calls: every handle the bad calls were given still holds what it held.
  std::vector<double> tracked(kMatrixLen);
  ASSERT_EQ(eplb_tracker_get_loads(world.tracker, tracked.data(), tracked.size()), EPLB_OK);
  EXPECT_EQ(tracked, (std::vector<double>{1, 2, 1, 1, 0, 0, 0, 0}));
  std::vector<int32_t> map(kMapLen);
  ASSERT_EQ(eplb_placement_get_phy2log(world.placement, map.data(), map.size()), EPLB_OK);
  EXPECT_EQ(map, world.phy2log);
  std::vector<double> stored(kMatrixLen);
  ASSERT_EQ(eplb_snapshot_get_loads(world.snapshot, stored.data(), stored.size()), EPLB_OK);
  EXPECT_EQ(stored, world.loads);
  eplb_placement* planned = nullptr;
  ASSERT_EQ(eplb_planner_plan(world.planner, world.loads.data(), world.loads.size(), &planned),
            EPLB_OK)
      << eplb_last_error_message();
  EXPECT_STREQ(eplb_last_error_message(), "");
  eplb_placement_destroy(planned);
  eplb_snapshot* reloaded = nullptr;
  ASSERT_EQ(eplb_snapshot_load(world.snapshot_path.c_str(), &reloaded), EPLB_OK);
  eplb_snapshot_destroy(reloaded);
  ASSERT_EQ(eplb_planner_plan_tracked(world.affinity_planner, nullptr, 0, world.tracker, &planned),
            EPLB_OK)
      << eplb_last_error_message();
  eplb_placement_destroy(planned);
  eplb_tracker* restored = nullptr;
  ASSERT_EQ(eplb_snapshot_get_tracker(world.stats_snapshot, &restored), EPLB_OK);
  ASSERT_EQ(eplb_tracker_get_loads(restored, tracked.data(), tracked.size()), EPLB_OK);
  EXPECT_EQ(tracked, (std::vector<double>{1, 2, 1, 1, 0, 0, 0, 0}));
  eplb_tracker_destroy(restored);
  uint64_t batches = 0;
  ASSERT_EQ(eplb_tracker_get_layer_counts(world.bare_tracker, 1, &batches, nullptr), EPLB_OK);
  EXPECT_EQ(batches, 0U);
  std::vector<int32_t> batch(static_cast<size_t>(World::kLayers) * 3 * World::kTopK, -1);
  ASSERT_EQ(eplb_workload_next_batch(world.workload, 3, batch.data(), batch.size()), EPLB_OK);
  for (const int32_t id : batch) EXPECT_TRUE(id >= 0 && id < static_cast<int32_t>(World::kExperts));
  eplb_migration_summary summary{};
  summary.struct_size = sizeof(summary);
  ASSERT_EQ(eplb_migration_get_summary(world.migration, &summary), EPLB_OK);
  EXPECT_EQ(summary.num_steps, world.migration_steps);
  eplb_placement* target = nullptr;
  ASSERT_EQ(eplb_migration_get_target(world.migration, &target), EPLB_OK);
  eplb_placement_destroy(target);
  ASSERT_EQ(eplb_migration_get_step_placement(world.migration, world.migration_steps - 1, &target),
            EPLB_OK);
  eplb_placement_destroy(target);
  EXPECT_STREQ(eplb_last_error_message(), "");

  std::printf("bad-input matrix: %zu entry points, %zu bad inputs, %zu total functions checked\n",
              matrix().size(), bad_inputs, totals);
}

}  // namespace
