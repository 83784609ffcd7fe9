// Writing the CLI's output files atomically, with the library's own writer (core/atomic_file.hpp:
// readers see the old or the new complete file; links are written through; pipes and devices such
// as /dev/stdout are written to directly).
#pragma once

#include <string>
#include <string_view>

namespace eplb_cli {

// Throws Failure naming the path and the system error on any failure (the destination is left
// untouched and the temporary file removed).
void write_file_atomically(const std::string& path, std::string_view content);

}  // namespace eplb_cli
