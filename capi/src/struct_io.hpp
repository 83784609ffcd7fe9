// Reading and writing the versioned structs of the C API (`struct_size` first). A caller built
// against an older header passes a smaller struct: we read the fields it covers and default the
// rest. A caller built against a newer header passes a larger one: accepted only if the bytes we
// do not know are zero, so that no option the caller set is silently ignored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../../core/error.hpp"

namespace eplb::capi {

// `minimum_size` is the size of the struct's first published version.
template <typename Struct>
void check_struct_size(const Struct* value, std::size_t minimum_size, const char* name) {
  static_assert(std::is_trivially_copyable_v<Struct>);
  const std::uint32_t size = value->struct_size;
  if (size < minimum_size) {
    fail_invalid(name, "->struct_size (", size, ") is smaller than the smallest version (",
                 minimum_size, "); initialise it with its _init function or sizeof");
  }
  if (size > sizeof(Struct)) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(value);
    for (std::size_t i = sizeof(Struct); i < size; ++i) {
      if (bytes[i] != 0) {
        fail_invalid(name, "->struct_size (", size, ") is larger than this library knows (",
                     sizeof(Struct), ") and sets fields it does not support; upgrade libeplb");
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
  const std::uint32_t size = out->struct_size;
  if (size < minimum_size) {
    fail_invalid(name, "->struct_size (", size, ") is smaller than the smallest version (",
                 minimum_size, "); set it to sizeof before the call");
  }
  const std::size_t covered = std::min<std::size_t>(size, sizeof(Struct));
  std::memcpy(static_cast<void*>(out), &value, covered);
  if (size > sizeof(Struct)) {
    std::memset(reinterpret_cast<unsigned char*>(out) + sizeof(Struct), 0, size - sizeof(Struct));
  }
  out->struct_size = size;
}

}  // namespace eplb::capi
