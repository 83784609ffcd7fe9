// Writing a file so that readers only ever see the old or the new complete content: a temporary
// file in the same directory, flushed and fsync'ed, then renamed over the destination.
#pragma once

#include <string>
#include <string_view>

namespace eplb_cli {

// Throws Failure naming the path and the system error on any failure (the destination is left
// untouched and the temporary file removed).
void write_file_atomically(const std::string& path, std::string_view content);

}  // namespace eplb_cli
