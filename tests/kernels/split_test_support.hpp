// Helpers shared by split_kernel_test.cpp and waterfill_kernel_test.cpp: placements through the C
// API, and (in builds with CUDA) device buffers and the skip-without-GPU check of the parity
// tests.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "eplb/eplb.h"

#if EPLB_TEST_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

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

#if EPLB_TEST_WITH_CUDA

#define SPLIT_SKIP_WITHOUT_GPU()                                          \
  do {                                                                    \
    int32_t count_ = 0;                                                   \
    const eplb_status status_ = eplb_device_count(&count_);               \
    if (status_ == EPLB_ERR_NO_DEVICE) {                                  \
      GTEST_SKIP() << "no CUDA device (" << eplb_last_error_message()     \
                   << "): GPU-vs-CPU parity not checked on this machine"; \
    }                                                                     \
    ASSERT_EQ(status_, EPLB_OK) << eplb_last_error_message();             \
  } while (false)

// A device buffer holding a copy of a host vector (or `n` poisoned elements).
template <typename T>
struct DeviceArray {
  T* pointer = nullptr;
  std::size_t count = 0;
  explicit DeviceArray(std::size_t n) : count(n) {
    void* raw = nullptr;
    EXPECT_EQ(cudaMalloc(&raw, (n > 0 ? n : 1) * sizeof(T)), cudaSuccess);
    pointer = static_cast<T*>(raw);
    EXPECT_EQ(cudaMemset(pointer, 0xab, (n > 0 ? n : 1) * sizeof(T)), cudaSuccess);
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) {
    if (!host.empty()) {
      EXPECT_EQ(cudaMemcpy(pointer, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
                cudaSuccess);
    }
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(pointer); }
  [[nodiscard]] std::vector<T> to_host() const {
    std::vector<T> host(count);
    if (count > 0) {
      EXPECT_EQ(cudaMemcpy(host.data(), pointer, count * sizeof(T), cudaMemcpyDeviceToHost),
                cudaSuccess);
    }
    return host;
  }
};

#endif

}  // namespace split_test
