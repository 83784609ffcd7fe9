// Host-side argument checks shared by the kernels' validation (dispatch_reference.cpp) and the
// token exchange built on them (nccl/token_exchange.cpp). Each throws an invalid-argument error
// that names the offending value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "../core/error.hpp"

namespace eplb::kernels {

inline void require_aligned(const void* pointer, std::size_t alignment, const char* name,
                            const char* reason) {
  if (reinterpret_cast<std::uintptr_t>(pointer) % alignment != 0) {
    fail_invalid(name, " (", pointer, ") is not ", alignment, "-byte aligned (", reason, ")");
  }
}

// The kernels load and store every element whole: an array that is not aligned to its element
// type would be a misaligned-address fault on the GPU (and undefined behaviour in the CPU
// references), so the validation both share refuses it. NULL passes (checked separately).
template <typename T>
void require_element_aligned(const T* pointer, const char* name) {
  if constexpr (alignof(T) > 1) {
    if (reinterpret_cast<std::uintptr_t>(pointer) % alignof(T) != 0) {
      fail_invalid(name, " (", static_cast<const void*>(pointer), ") is not ", alignof(T),
                   "-byte aligned (its elements are ", sizeof(T), " bytes)");
    }
  }
}

// A NULL pointer is an error unless the array is empty; a non-NULL one must be aligned to its
// elements.
template <typename T>
void require_array(const T* pointer, std::size_t length, const char* name) {
  if (length > 0 && pointer == nullptr) fail_invalid(name, " is NULL");
  require_element_aligned(pointer, name);
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
  require_aligned(pointer, 16, name, "rows move as 16-byte vectors");
}

}  // namespace eplb::kernels
