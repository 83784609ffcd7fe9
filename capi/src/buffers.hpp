// Buffers the C API hands to callers: allocated with std::malloc so that one function,
// eplb_buffer_free (std::free), releases every one of them, whichever entry point made it.
#pragma once

#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <string_view>
#include <type_traits>

namespace eplb::capi {

// A NUL-terminated malloc'ed copy of `text`; throws std::bad_alloc.
inline char* copy_to_malloc(std::string_view text) {
  auto* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out == nullptr) throw std::bad_alloc();
  if (!text.empty()) std::memcpy(out, text.data(), text.size());
  out[text.size()] = '\0';
  return out;
}

// A malloc'ed copy of `values` (at least one byte is allocated, so an empty array is not NULL);
// throws std::bad_alloc.
template <typename T>
T* copy_to_malloc(std::span<const T> values) {
  static_assert(std::is_trivially_copyable_v<T>);
  const std::size_t bytes = values.size_bytes();
  auto* out = static_cast<T*>(std::malloc(bytes == 0 ? 1 : bytes));
  if (out == nullptr) throw std::bad_alloc();
  if (bytes != 0) std::memcpy(out, values.data(), bytes);
  return out;
}

}  // namespace eplb::capi
