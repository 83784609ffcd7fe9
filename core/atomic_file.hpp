// Writing a file so that readers only ever see the old or the new complete content: a temporary
// file in the destination's directory, written, flushed with fsync, renamed over the destination,
// and the directory fsync'ed. A crash or a full disk mid-write leaves the previous file intact.
//
// What a user of `cp` or a shell redirect expects also holds:
// - a destination that is a symbolic link (or a chain of them, even dangling) is written through:
//   the file it points to is replaced and the link stays; a link the kernel would not follow
//   (fs.protected_symlinks: another user's link in /tmp) is refused, as a shell's `>` is;
// - /dev/stdout, /dev/stderr, /dev/fd/N and /proc/self/fd/N are written to that descriptor
//   (keeping a redirect's offset and append mode); a destination that exists and is not a regular
//   file (a pipe, a terminal) is written to directly, since it cannot be replaced;
// - a replaced file keeps its permissions; a new one gets 0666 minus the process's umask.
//
// Dependency-free (no library types), so that the eplb CLI compiles the same writer.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>

namespace eplb {

struct FileWriteFailure {
  std::string step;  // what could not be done: "write", "flush", "replace", ...
  std::string path;  // the destination as given
  int error = 0;     // errno

  // "cannot <step> '<path>': <strerror>".
  [[nodiscard]] std::string message() const;
};

// Writes `content` to `path` as described above. Returns the failure, if any; the destination is
// then untouched (a non-regular destination may have taken part of the content) and the
// temporary file removed.
[[nodiscard]] std::optional<FileWriteFailure> write_file_atomically(
    const std::string& path, std::span<const std::byte> content);

}  // namespace eplb
