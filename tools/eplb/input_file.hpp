// Reading the CLI's input files, each exactly once (so that a pipe, a FIFO or `<(...)` works like
// a file), with messages that say why one cannot be read and what kind of file it is when it is
// the wrong kind.
#pragma once

#include <eplb/eplb.h>

#include <fstream>
#include <string>
#include <string_view>

#include "eplb/library.hpp"

namespace eplb_cli {

// Opens `path` for reading, or throws InputError "'path': it is a directory" / "'path': No such
// file or directory" (errno's text) prefixed by `context` (e.g. "--trace ").
[[nodiscard]] std::ifstream open_input(const std::string& path, const std::string& context);

// The whole content of `path` (open_input's errors, and InputError when reading fails).
[[nodiscard]] std::string read_input(const std::string& path, const std::string& context);

// True when `bytes` start with the .eplb snapshot magic (docs/SNAPSHOT_FORMAT.md).
[[nodiscard]] bool starts_like_snapshot(std::string_view bytes);

// True when the first byte of `bytes` after JSON's whitespace opens an object or an array: a
// JSON document (the SGLang and vLLM-Ascend files), whatever the file is named.
[[nodiscard]] bool starts_like_json(std::string_view bytes);

// Decodes the snapshot `bytes`, the content of `path`, and its info: InputError naming `path`
// and the status ("[corrupt data]") for a damaged or foreign file, Failure when the library runs
// out of memory or fails.
[[nodiscard]] SnapshotPtr decode_snapshot(const std::string& path, const std::string& bytes,
                                          eplb_snapshot_info& info);

// True when `path`'s file name ends in `extension` (with its dot: ".eplb", ".json"), in any case.
[[nodiscard]] bool has_extension(const std::string& path, const char* extension);

}  // namespace eplb_cli
