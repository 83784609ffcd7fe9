// Helpers shared by split_kernel_test.cpp and waterfill_kernel_test.cpp: placements through the C
// API. The GPU helpers of their parity tests are in support/gpu_test_support.hpp.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "eplb/eplb.h"

namespace split_test {

struct Placement {
  eplb_placement* p = nullptr;
  Placement() = default;
  Placement(const Placement&) = delete;
  Placement& operator=(const Placement&) = delete;
  ~Placement() { eplb_placement_destroy(p); }
};

// A placement from phy2log [layers][slots] (one node unless `nodes` says otherwise).
inline void make_placement(Placement& out, std::uint32_t layers, std::uint32_t experts,
                           std::uint32_t slots, std::uint32_t gpus,
                           const std::vector<std::int32_t>& phy2log, std::uint32_t nodes = 1) {
  ASSERT_EQ(eplb_placement_create_from_phy2log(layers, experts, slots, nodes, gpus, phy2log.data(),
                                               phy2log.size(), &out.p),
            EPLB_OK)
      << eplb_last_error_message();
}

}  // namespace split_test
