#include "eplb/input_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "eplb/cli_error.hpp"

namespace eplb_cli {

namespace {

// The first bytes of the snapshot magic (PNG-style: high bit, name, line ends).
constexpr std::string_view kSnapshotMagic =
    "\x89"
    "EPLB";

// How eplb_snapshot_load_from_buffer names its source in messages.
constexpr std::string_view kBufferPrefix = "snapshot buffer: ";

// Throws InputError when `path` names a directory (which opens, but cannot be read as a file).
void refuse_directory(const std::string& path, const std::string& context) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw InputError(context + "cannot read '" + path + "': it is a directory");
  }
}

// The message for a file that does not open (errno set by the failed open). Inputs are files:
// '-' is one too, and the message says how to read standard input instead.
std::string cannot_open(const std::string& path, const std::string& context) {
  std::string message = context + "cannot open '" + path + "': " + std::strerror(errno);
  if (path == "-") message += " (to read standard input, name it /dev/stdin)";
  return message;
}

// Decodes a snapshot from `bytes`. On failure returns the status, with `error` set to the
// library's message (naming no buffer: the caller names the path).
eplb_status load_snapshot_bytes(const std::string& bytes, eplb_snapshot** out, std::string& error) {
  const eplb_status status = eplb_snapshot_load_from_buffer(bytes.data(), bytes.size(), out);
  if (status != EPLB_OK) {
    std::string_view message = eplb_last_error_message();
    if (message.starts_with(kBufferPrefix)) message.remove_prefix(kBufferPrefix.size());
    error = message;
  }
  return status;
}

}  // namespace

bool has_extension(const std::string& path, const char* extension) {
  const std::string actual = std::filesystem::path(path).extension().string();
  const std::string_view wanted(extension);
  return actual.size() == wanted.size() &&
         std::equal(actual.begin(), actual.end(), wanted.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

std::ifstream open_input(const std::string& path, const std::string& context) {
  refuse_directory(path, context);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(cannot_open(path, context));
  return in;
}

std::string read_input(const std::string& path, const std::string& context) {
  refuse_directory(path, context);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw InputError(cannot_open(path, context));
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      text.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {  // the system failed, not the input: exit status 1
      const int read_error = errno;
      ::close(fd);
      throw Failure(context + "cannot read '" + path + "': " + std::strerror(read_error));
    }
  }
  ::close(fd);
  return text;
}

bool starts_like_snapshot(std::string_view bytes) { return bytes.starts_with(kSnapshotMagic); }

bool starts_like_json(std::string_view bytes) {
  const std::size_t first = bytes.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && (bytes[first] == '{' || bytes[first] == '[');
}

SnapshotPtr decode_snapshot(const std::string& path, const std::string& bytes,
                            eplb_snapshot_info& info) {
  eplb_snapshot* raw = nullptr;
  std::string error;
  const eplb_status status = load_snapshot_bytes(bytes, &raw, error);
  if (status == EPLB_ERR_OUT_OF_MEMORY || status == EPLB_ERR_INTERNAL) {
    throw Failure(path + ": " + error + " [" + eplb_status_string(status) + "]");
  }
  if (status != EPLB_OK) {
    throw InputError(path + ": " + error + " [" + eplb_status_string(status) + "]");
  }
  SnapshotPtr snapshot(raw);
  info = eplb_snapshot_info{};
  info.struct_size = sizeof(info);
  check(eplb_snapshot_get_info(snapshot.get(), &info), path + ": ");
  return snapshot;
}

}  // namespace eplb_cli
