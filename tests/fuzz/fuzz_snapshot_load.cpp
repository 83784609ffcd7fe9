// libFuzzer target for snapshot loading (eplb_snapshot_load_from_buffer): any bytes must give
// EPLB_OK or an error status, never a crash, a leak, undefined behaviour or an allocation the
// file's size does not justify. A snapshot that loads must save and load again unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "eplb/eplb.h"

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

std::vector<int32_t> log2phy_of(const eplb_placement* placement) {
  eplb_placement_info info{};
  info.struct_size = sizeof(info);
  require(eplb_placement_get_info(placement, &info) == EPLB_OK);
  std::vector<int32_t> out(static_cast<size_t>(info.num_layers) * info.num_logical_experts *
                           info.log2phy_width);
  require(eplb_placement_get_log2phy(placement, out.data(), out.size()) == EPLB_OK);
  return out;
}

std::vector<double> loads_of(const eplb_tracker* tracker) {
  eplb_tracker_options options;
  eplb_tracker_options_init(&options);
  require(eplb_tracker_get_options(tracker, &options) == EPLB_OK);
  std::vector<double> out(static_cast<size_t>(options.num_layers) * options.num_logical_experts);
  require(eplb_tracker_get_loads(tracker, out.data(), out.size()) == EPLB_OK);
  return out;
}

// A statistics snapshot (no placement): its tracker must save and load again unchanged.
void check_statistics(const eplb_snapshot* snapshot) {
  eplb_tracker* tracker = nullptr;
  require(eplb_snapshot_get_tracker(snapshot, &tracker) == EPLB_OK);
  void* buffer = nullptr;
  size_t buffer_size = 0;
  require(eplb_snapshot_save_statistics_to_buffer(tracker, nullptr, &buffer, &buffer_size) ==
          EPLB_OK);
  eplb_snapshot* again = nullptr;
  require(eplb_snapshot_load_from_buffer(buffer, buffer_size, &again) == EPLB_OK);
  eplb_tracker* reloaded = nullptr;
  require(eplb_snapshot_get_tracker(again, &reloaded) == EPLB_OK);
  const std::vector<double> a = loads_of(tracker);
  const std::vector<double> b = loads_of(reloaded);
  require(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) require(a[i] == b[i] || (a[i] != a[i] && b[i] != b[i]));
  eplb_tracker_destroy(reloaded);
  eplb_snapshot_destroy(again);
  eplb_buffer_free(buffer);
  eplb_tracker_destroy(tracker);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  eplb_snapshot* snapshot = nullptr;
  if (eplb_snapshot_load_from_buffer(data, size, &snapshot) != EPLB_OK) {
    require(snapshot == nullptr);
    return 0;
  }
  eplb_snapshot_info info{};
  info.struct_size = sizeof(info);
  require(eplb_snapshot_get_info(snapshot, &info) == EPLB_OK);
  if (info.num_physical_experts == 0) {
    check_statistics(snapshot);
    eplb_snapshot_destroy(snapshot);
    return 0;
  }
  eplb_placement* placement = nullptr;
  require(eplb_snapshot_get_placement(snapshot, &placement) == EPLB_OK);
  std::vector<double> loads;
  if (info.has_loads != 0) {
    loads.resize(static_cast<size_t>(info.num_layers) * info.num_logical_experts);
    require(eplb_snapshot_get_loads(snapshot, loads.data(), loads.size()) == EPLB_OK);
  }

  eplb_snapshot_options options;
  eplb_snapshot_options_init(&options);
  options.loads = loads.empty() ? nullptr : loads.data();
  options.loads_len = loads.size();
  options.label = info.label;
  eplb_tracker* tracker = nullptr;
  if (info.has_coactivation != 0) {
    require(eplb_snapshot_get_tracker(snapshot, &tracker) == EPLB_OK);
    options.tracker = tracker;
  }
  void* buffer = nullptr;
  size_t buffer_size = 0;
  require(eplb_snapshot_save_to_buffer(placement, &options, &buffer, &buffer_size) == EPLB_OK);
  eplb_snapshot* again = nullptr;
  require(eplb_snapshot_load_from_buffer(buffer, buffer_size, &again) == EPLB_OK);
  eplb_placement* reloaded = nullptr;
  require(eplb_snapshot_get_placement(again, &reloaded) == EPLB_OK);
  require(log2phy_of(reloaded) == log2phy_of(placement));

  eplb_placement_destroy(reloaded);
  eplb_snapshot_destroy(again);
  eplb_buffer_free(buffer);
  eplb_placement_destroy(placement);
  eplb_tracker_destroy(tracker);
  eplb_snapshot_destroy(snapshot);
  return 0;
}
