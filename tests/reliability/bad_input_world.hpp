// The bad-input matrix's shared pieces (bad_input_matrix_test.cpp says how the matrix works): the
// World of valid objects every bad call starts from, the Row / BadInput table types, and the
// helpers that build bad calls. The rows are in bad_input_rows_*.cpp, one file per part of the API,
// so that the table compiles in parallel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "eplb/eplb.h"

namespace bad_input {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr size_t kSizeMax = std::numeric_limits<size_t>::max();

// A pointer value that is never dereferenced: outputs must still hold it after a failed call.
template <typename T>
T* sentinel() {
  static int anchor = 0;
  return reinterpret_cast<T*>(&anchor);
}

// `p` moved `bytes` forward, still typed T: misaligned for its elements (a packed buffer, or an
// offset that forgot the element size). Only the validation sees it: nothing reads or writes it.
template <typename T>
T* misaligned(T* p, std::uintptr_t bytes = 1) {
  return reinterpret_cast<T*>(reinterpret_cast<std::uintptr_t>(p) + bytes);
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
  eplb_plan_control* control = nullptr;       // not attached to any planner
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

// Fails the current test and throws when a setup call does not return EPLB_OK.
void require_ok(eplb_status status);

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

// The dimensions every [layers][experts] buffer has in World.
constexpr size_t kMatrixLen = static_cast<size_t>(World::kLayers) * World::kExperts;
constexpr size_t kMapLen = static_cast<size_t>(World::kLayers) * World::kSlots;
constexpr size_t kPairs = World::kExperts * (World::kExperts - 1) / 2;

// The size of wf_ws()'s workspace.
constexpr size_t kWfWsBytes = 256 * sizeof(uint64_t);

// --- helpers that build bad calls (bad_input_calls.cpp) ------------------------------------------

// Host-only device tables of the World's placement for GPU 1, released after `call` (routing
// kernels, issue #7 items 1-3).
eplb_status with_host_tables(World& w, const std::function<eplb_status(eplb_device_tables*)>& call);

eplb_status create_tables(World& w, uint32_t gpu, uint32_t max_replicas, uint32_t flags);

eplb_status planner_create_with(const std::function<void(eplb_planner_options&)>& edit, World& w);

eplb_status tracker_create_with(const std::function<void(eplb_tracker_options&)>& edit);

eplb_status save_with(const std::function<void(eplb_snapshot_options&)>& edit, World& w);

eplb_status import_map(uint32_t layers, uint32_t experts, uint32_t slots, uint32_t nodes,
                       uint32_t gpus, const std::vector<int32_t>& map, size_t len);

std::vector<int32_t> edited_map(const World& w, size_t index, int32_t value);

eplb_status plan_with(std::vector<double> loads, size_t len, World& w);

std::vector<double> loads_with(const World& w, size_t index, double value);

eplb_status plan_windows_with(std::vector<double> loads, size_t windows, size_t len, World& w);
// eplb_planner_plan_near with `change` applied to default options (or NULL options when
// `options_null`) and a report whose struct_size is `report_size`; checks that neither output was
// written.
eplb_status plan_near_with(eplb_planner* planner, const std::vector<double>& loads, size_t len,
                           const eplb_placement* current,
                           const std::function<void(eplb_plan_near_options&)>& change,
                           uint32_t report_size = sizeof(eplb_plan_near_report));

eplb_status load_bytes(std::vector<unsigned char> bytes);

eplb_status write_and_load(World& w, const std::string& name, const std::string& content);

eplb_status from_sglang(const std::string& json, uint32_t experts, uint32_t nodes, uint32_t gpus,
                        uint32_t dense);

eplb_status from_vllm(const std::string& json, uint32_t experts, uint32_t nodes);

eplb_status loads_from(const std::string& json);

eplb_status record(World& w, uint32_t layer, std::vector<int32_t> ids, size_t tokens,
                   uint32_t top_k);

eplb_status record_physical(World& w, const eplb_placement* placement, std::vector<int32_t> ids,
                            size_t tokens);

eplb_status metrics_with(World& w, const std::vector<double>& loads, size_t len,
                         uint32_t struct_size = sizeof(eplb_metrics));

eplb_status layer_metrics_with(World& w, uint32_t layer, const std::vector<double>& loads,
                               size_t len, uint32_t struct_size = sizeof(eplb_layer_metrics));

eplb_status optimum_with(World& w, const std::vector<double>& loads, size_t len);

eplb_status touched_with(World& w, uint32_t layer, std::vector<int32_t> rows, size_t num_rows,
                         uint32_t top_k);

std::vector<unsigned char> flipped(const World& w, size_t offset);

eplb_status plan_tracked_with(eplb_planner* planner, const std::vector<double>& loads, size_t len,
                              const eplb_tracker* tracker);

eplb_status save_statistics_with(const std::function<void(eplb_snapshot_options&)>& edit, World& w);

eplb_status statistics_to_buffer_with(const std::function<void(eplb_snapshot_options&)>& edit,
                                      World& w);

eplb_status workload_create_with(const std::function<void(eplb_workload_options&)>& edit);

eplb_status next_batch_with(World& w, size_t tokens, size_t out_len);

eplb_status migrate_with(World& w, const eplb_placement* new_placement,
                         const std::vector<double>& loads, size_t len,
                         const std::function<void(eplb_migration_options&)>& edit = {});

// A migration to a placement of World's shape but another node count (`nodes`).
eplb_status migrate_to_nodes(World& w, uint32_t nodes);

eplb_status step_placement_at(World& w, uint32_t step);

// Host-only split tables of the World's placement (both layers), released after `call` (GPU
// replica split, issue #9).
eplb_status with_split_tables(World& w, const std::function<eplb_status(eplb_split_tables*)>& call);

eplb_status create_split_tables(const eplb_placement* placement, uint32_t first, uint32_t count,
                                uint32_t flags, bool null_out = false);

// A host workspace large enough for the waterfill kernels on the World (3 tokens, 4 GPUs).
void* wf_ws();

// --- the rows, by part of the API ----------------------------------------------------------------

// Versions, algorithms, placements, planners, snapshots and the JSON interop formats.
std::vector<Row> placement_and_snapshot_rows();
// Trackers, metrics, the workload simulator, migration and per-batch balancing on the host.
std::vector<Row> statistics_and_migration_rows();
// GPU kernels and their CPU references, NCCL and the token exchange (host-checkable errors).
std::vector<Row> device_rows();

}  // namespace bad_input
