#include "crash_versions.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace eplb_crash {

Version make_version(int which) {
  Version version;
  version.label = "crash-version-" + std::to_string(which);
  std::mt19937_64 rng(static_cast<uint64_t>(which) + 1);
  version.phy2log.resize(static_cast<size_t>(kLayers) * kSlots);
  version.loads.resize(static_cast<size_t>(kLayers) * kExperts);
  std::uniform_int_distribution<int32_t> expert(0, kExperts - 1);
  for (uint32_t layer = 0; layer < kLayers; ++layer) {
    int32_t* row = version.phy2log.data() + static_cast<size_t>(layer) * kSlots;
    // Every expert once (rotated per layer and version), then random replicas.
    for (uint32_t slot = 0; slot < kSlots; ++slot) {
      row[slot] = slot < kExperts ? static_cast<int32_t>((slot + layer + 7U * which) % kExperts)
                                  : expert(rng);
    }
    std::shuffle(row, row + kSlots, rng);
  }
  std::lognormal_distribution<double> load(4.0, 1.0);
  for (double& value : version.loads) value = std::round(load(rng));
  return version;
}

eplb_status save_version(const Version& version, const char* path) {
  eplb_placement* placement = nullptr;
  eplb_status status = eplb_placement_create_from_phy2log(kLayers, kExperts, kSlots, kNodes, kGpus,
                                                          version.phy2log.data(),
                                                          version.phy2log.size(), &placement);
  if (status != EPLB_OK) return status;
  eplb_snapshot_options options;
  eplb_snapshot_options_init(&options);
  options.compression_level = 1;
  options.loads = version.loads.data();
  options.loads_len = version.loads.size();
  options.label = version.label.c_str();
  status = eplb_snapshot_save(placement, &options, path);
  eplb_placement_destroy(placement);
  return status;
}

int identify(const char* path) {
  eplb_snapshot* snapshot = nullptr;
  if (eplb_snapshot_load(path, &snapshot) != EPLB_OK) return -2;
  int result = -1;
  eplb_snapshot_info info{};
  info.struct_size = sizeof(info);
  eplb_placement* placement = nullptr;
  std::vector<int32_t> map(static_cast<size_t>(kLayers) * kSlots);
  std::vector<double> loads(static_cast<size_t>(kLayers) * kExperts);
  if (eplb_snapshot_get_info(snapshot, &info) == EPLB_OK &&
      eplb_snapshot_get_placement(snapshot, &placement) == EPLB_OK &&
      eplb_placement_get_phy2log(placement, map.data(), map.size()) == EPLB_OK &&
      eplb_snapshot_get_loads(snapshot, loads.data(), loads.size()) == EPLB_OK) {
    for (int which = 0; which < 2; ++which) {
      const Version version = make_version(which);
      if (version.label == info.label && version.phy2log == map && version.loads == loads) {
        result = which;
      }
    }
  }
  eplb_placement_destroy(placement);
  eplb_snapshot_destroy(snapshot);
  return result;
}

}  // namespace eplb_crash
