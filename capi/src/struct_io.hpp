// Reading and writing the versioned structs of the C API (`struct_size` first). A caller built
// against an older header passes a smaller struct: we read the fields it covers and default the
// rest. A caller built against a newer header passes a larger one: accepted only if the bytes we
// do not know are zero, so that no option the caller set is silently ignored. Output structs get
// the fields we know and zeros up to the caller's size. No size above kMaxStructSize is read or
// written.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../../core/error.hpp"

namespace eplb::capi {

// No struct of the C API will ever be larger (eplb.h's conventions say so): a struct_size above
// it is an uninitialised struct, refused before any byte past the known fields is read or
// written (as Linux's extensible structs cap their size at a page).
constexpr std::uint32_t kMaxStructSize = 4096;

// Fails unless `size` is between the first published version's size and kMaxStructSize.
// `remedy` says how the caller sets it right.
inline void check_size_bounds(std::uint32_t size, std::size_t minimum_size, const char* name,
                              const char* remedy) {
  if (size < minimum_size) {
    fail_invalid(name, "->struct_size (", size, ") is smaller than the smallest version (",
                 minimum_size, "); ", remedy);
  }
  if (size > kMaxStructSize) {
    fail_invalid(name, "->struct_size (", size, ") is above ", kMaxStructSize,
                 ", larger than any libeplb struct: the struct looks uninitialised; ", remedy);
  }
}

// `minimum_size` is the size of the struct's first published version.
template <typename Struct>
void check_struct_size(const Struct* value, std::size_t minimum_size, const char* name) {
  static_assert(std::is_trivially_copyable_v<Struct>);
  static_assert(sizeof(Struct) <= kMaxStructSize);
  const std::uint32_t size = value->struct_size;
  check_size_bounds(size, minimum_size, name, "initialise the struct with its _init function");
  if (size > sizeof(Struct)) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(value);
    for (std::size_t i = sizeof(Struct); i < size; ++i) {
      if (bytes[i] != 0) {
        fail_invalid(name, "->struct_size (", size, ") is larger than this library knows (",
                     sizeof(Struct), ") and byte ", i,
                     " is not zero: a caller built against a newer eplb.h set a field this "
                     "library does not support (upgrade libeplb), or the struct was not "
                     "initialised with its _init function");
      }
    }
  }
}

// Copies the caller's input struct over `defaults`, field bytes the caller's size covers only.
template <typename Struct>
Struct read_struct(const Struct* in, const Struct& defaults, std::size_t minimum_size,
                   const char* name) {
  check_struct_size(in, minimum_size, name);
  Struct result = defaults;
  const std::size_t covered = std::min<std::size_t>(in->struct_size, sizeof(Struct));
  std::memcpy(static_cast<void*>(&result), in, covered);
  result.struct_size = sizeof(Struct);
  return result;
}

// Writes `value` into the caller's output struct, as many bytes as its struct_size covers and
// zeros beyond what this library knows; the caller's struct_size is kept.
template <typename Struct>
void write_struct(Struct* out, const Struct& value, std::size_t minimum_size, const char* name) {
  static_assert(sizeof(Struct) <= kMaxStructSize);
  const std::uint32_t size = out->struct_size;
  check_size_bounds(size, minimum_size, name, "set it to sizeof before the call");
  const std::size_t covered = std::min<std::size_t>(size, sizeof(Struct));
  std::memcpy(static_cast<void*>(out), &value, covered);
  if (size > sizeof(Struct)) {
    std::memset(reinterpret_cast<unsigned char*>(out) + sizeof(Struct), 0, size - sizeof(Struct));
  }
  out->struct_size = size;
}

}  // namespace eplb::capi
