// Placements in the C ABI tests (tests/capi/), which include nothing from the library but
// "eplb/eplb.h": an owning pointer, and the info and phy2log map read back with every call
// checked.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "eplb/eplb.h"

namespace eplb::test {

struct PlacementDeleter {
  void operator()(eplb_placement* p) const { eplb_placement_destroy(p); }
};
using PlacementPtr = std::unique_ptr<eplb_placement, PlacementDeleter>;

inline eplb_placement_info info_of(const eplb_placement* p) {
  eplb_placement_info info;
  std::memset(&info, 0, sizeof(info));
  info.struct_size = sizeof(info);
  EXPECT_EQ(eplb_placement_get_info(p, &info), EPLB_OK) << eplb_last_error_message();
  return info;
}

// [layers][physical experts].
inline std::vector<std::int32_t> phy2log_of(const eplb_placement* p) {
  const eplb_placement_info info = info_of(p);
  std::vector<std::int32_t> out(static_cast<std::size_t>(info.num_layers) *
                                info.num_physical_experts);
  EXPECT_EQ(eplb_placement_get_phy2log(p, out.data(), out.size()), EPLB_OK);
  return out;
}

}  // namespace eplb::test
