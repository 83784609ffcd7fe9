// Writing a file so that readers only ever see the old or the new complete content: a temporary
// file in the same directory, written, flushed with fsync, renamed over the destination, and the
// directory fsync'ed. A crash or a full disk mid-write leaves the previous file intact.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace eplb {

// Throws Error(Errc::io) "cannot <step> '<path>': <strerror>" on any failure; the destination
// is then untouched and the temporary file removed.
void write_file_atomically(const std::string& path, std::span<const std::byte> content);

}  // namespace eplb
