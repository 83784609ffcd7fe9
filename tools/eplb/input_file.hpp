// Opening the CLI's input files, with messages that say why one cannot be read and what kind of
// file it is when it is the wrong kind.
#pragma once

#include <fstream>
#include <string>

namespace eplb_cli {

// Opens `path` for reading, or throws InputError "'path': it is a directory" / "'path': No such
// file or directory" (errno's text) prefixed by `context` (e.g. "--trace ").
[[nodiscard]] std::ifstream open_input(const std::string& path, const std::string& context);

// True when the file starts with the .eplb snapshot magic (docs/SNAPSHOT_FORMAT.md); false for
// anything else, including a file that cannot be read.
[[nodiscard]] bool starts_like_snapshot(const std::string& path);

// True when `path`'s file name ends in `extension` (with its dot: ".eplb", ".json").
[[nodiscard]] bool has_extension(const std::string& path, const char* extension);

}  // namespace eplb_cli
