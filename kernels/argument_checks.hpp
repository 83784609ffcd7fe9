// Host-side argument checks shared by the kernels' validation (dispatch_reference.cpp) and the
// token exchange built on them (nccl/token_exchange.cpp). Each throws an invalid-argument error
// that names the offending value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "../core/error.hpp"

namespace eplb::kernels {

// A NULL pointer is an error unless the array is empty.
template <typename T>
void require_array(const T* pointer, std::size_t length, const char* name) {
  if (length > 0 && pointer == nullptr) fail_invalid(name, " is NULL");
}

// a * b, or an error naming the product when it exceeds int32 (the kernels index with 32-bit ids
// and write int32 positions).
inline std::size_t product_within_int32(std::size_t a, std::size_t b, const char* a_name,
                                        const char* b_name) {
  constexpr auto kInt32Max = static_cast<std::size_t>(std::numeric_limits<int32_t>::max());
  if (a != 0 && b > kInt32Max / a) {
    fail_invalid(a_name, " (", a, ") * ", b_name, " (", b, ") exceeds 2^31 - 1");
  }
  return a * b;
}

// Token rows are loaded and stored as 16-byte vectors (row_vector.cuh).
inline void require_aligned16(const void* pointer, const char* name) {
  if (reinterpret_cast<std::uintptr_t>(pointer) % 16 != 0) {
    fail_invalid(name, " (", pointer, ") is not 16-byte aligned (rows move as 16-byte vectors)");
  }
}

}  // namespace eplb::kernels
