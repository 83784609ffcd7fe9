// The World's setup and the helpers that build bad calls (bad_input_world.hpp).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <fstream>
#include <stdexcept>

#include "bad_input_world.hpp"

namespace bad_input {

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
  require_ok(eplb_plan_control_create(&control));
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
  eplb_plan_control_destroy(control);
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

eplb_status plan_near_with(eplb_planner* planner, const std::vector<double>& loads, size_t len,
                           const eplb_placement* current,
                           const std::function<void(eplb_plan_near_options&)>& change,
                           uint32_t report_size) {
  eplb_plan_near_options options;
  eplb_plan_near_options_init(&options);
  if (change) change(options);
  eplb_plan_near_report report{};
  report.struct_size = report_size;
  report.layers_kept = 77;
  eplb_placement* out = sentinel<eplb_placement>();
  const eplb_status status = eplb_planner_plan_near(planner, loads.empty() ? nullptr : loads.data(),
                                                    len, current, &options, &out, &report);
  if (out != sentinel<eplb_placement>()) ADD_FAILURE() << "plan_near wrote its placement";
  if (report.layers_kept != 77) ADD_FAILURE() << "plan_near wrote its report";
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
                         uint32_t struct_size) {
  eplb_metrics m{};
  m.struct_size = struct_size;
  return eplb_metrics_compute(w.placement, loads.data(), len, &m);
}

eplb_status layer_metrics_with(World& w, uint32_t layer, const std::vector<double>& loads,
                               size_t len, uint32_t struct_size) {
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
                         const std::function<void(eplb_migration_options&)>& edit) {
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
// Host-only split tables of the World's placement (both layers), released after `call` (GPU
// replica split, issue #9).
eplb_status with_split_tables(World& w,
                              const std::function<eplb_status(eplb_split_tables*)>& call) {
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
                                uint32_t flags, bool null_out) {
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

}  // namespace bad_input
