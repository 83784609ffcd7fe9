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
  eplb_snapshot_destroy(snapshot);
  return 0;
}
