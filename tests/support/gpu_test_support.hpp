// Helpers of the GPU-vs-CPU parity tests (tests/kernels/), which are compiled with the CUDA
// runtime (EPLB_TEST_WITH_CUDA=1) or without it: whether libeplb sees a GPU, the skip of a test
// on a machine without one and, with the CUDA runtime, device buffers. C API only.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "eplb/eplb.h"
#include "support/gpu_required.hpp"

#if EPLB_TEST_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace eplb::test {

// Whether libeplb has a CUDA device to run kernels on. eplb_device_count answers
// EPLB_ERR_NO_DEVICE without one (built without CUDA, no driver, no GPU).
inline bool have_gpu() {
  std::int32_t count = 0;
  return eplb_device_count(&count) == EPLB_OK && count > 0;
}

}  // namespace eplb::test

// Skips the calling test where libeplb finds no CUDA device (fails it instead when
// EPLB_REQUIRE_GPU=1); fails it on any other error.
#define SKIP_WITHOUT_GPU()                                                       \
  do {                                                                           \
    std::int32_t count_ = 0;                                                     \
    const eplb_status status_ = eplb_device_count(&count_);                      \
    if (status_ == EPLB_ERR_NO_DEVICE) {                                         \
      if (eplb::test::gpu_required()) {                                          \
        FAIL() << "EPLB_REQUIRE_GPU=1 but libeplb finds no usable CUDA device: " \
               << eplb_last_error_message();                                     \
      }                                                                          \
      GTEST_SKIP() << "no CUDA device (" << eplb_last_error_message()            \
                   << "): GPU-vs-CPU parity not checked on this machine";        \
    }                                                                            \
    ASSERT_EQ(status_, EPLB_OK) << eplb_last_error_message();                    \
  } while (false)

#if EPLB_TEST_WITH_CUDA

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

namespace eplb::test {

// A device buffer of `count` elements: a copy of a host vector, or poisoned with 0xab bytes. An
// empty one still allocates one element, so that its pointer is always a valid device pointer.
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
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { from_host(host); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(pointer); }
  // Overwrites the buffer with `host`, which must hold `count` elements.
  void from_host(const std::vector<T>& host) {
    EXPECT_EQ(host.size(), count);
    if (!host.empty() && host.size() <= count) {
      EXPECT_EQ(cudaMemcpy(pointer, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
                cudaSuccess);
    }
  }
  [[nodiscard]] std::vector<T> to_host() const {
    std::vector<T> host(count);
    if (count > 0) {
      EXPECT_EQ(cudaMemcpy(host.data(), pointer, count * sizeof(T), cudaMemcpyDeviceToHost),
                cudaSuccess);
    }
    return host;
  }
};

}  // namespace eplb::test

#endif
