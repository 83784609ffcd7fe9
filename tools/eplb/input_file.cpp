#include "eplb/input_file.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <system_error>

#include "eplb/cli_error.hpp"

namespace eplb_cli {

namespace {

// The first bytes of the snapshot magic (PNG-style: high bit, name, line ends).
constexpr std::string_view kSnapshotMagic =
    "\x89"
    "EPLB";

}  // namespace

bool has_extension(const std::string& path, const char* extension) {
  return std::filesystem::path(path).extension() == extension;
}

std::ifstream open_input(const std::string& path, const std::string& context) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw InputError(context + "cannot read '" + path + "': it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(context + "cannot open '" + path + "': " + std::strerror(errno));
  return in;
}

bool starts_like_snapshot(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(kSnapshotMagic.size(), '\0');
  return in.read(head.data(), static_cast<std::streamsize>(head.size())) && head == kSnapshotMagic;
}

}  // namespace eplb_cli
