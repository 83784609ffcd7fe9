#include "eplb/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "eplb/cli_error.hpp"

namespace eplb_cli {

namespace {

[[noreturn]] void fail_io(const std::string& what, const std::string& path, int error) {
  throw Failure("cannot " + what + " '" + path + "': " + std::strerror(error));
}

}  // namespace

void write_file_atomically(const std::string& path, std::string_view content) {
  const std::filesystem::path target(path);
  std::filesystem::path directory = target.parent_path();
  if (directory.empty()) directory = ".";
  std::string temp = (directory / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  std::vector<char> name(temp.begin(), temp.end());
  name.push_back('\0');
  const int fd = ::mkstemp(name.data());
  if (fd < 0) fail_io("create a temporary file next to", path, errno);
  temp = name.data();
  auto abandon = [&](const char* what) {
    const int error = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    fail_io(what, path, error);
  };
  std::size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      abandon("write");
    }
    if (n == 0) {  // no progress: treat as a full device rather than spin
      errno = ENOSPC;
      abandon("write");
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, 0644) != 0) abandon("set permissions of");
  if (::fsync(fd) != 0) abandon("flush");
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    fail_io("close", path, error);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    fail_io("replace", path, error);
  }
  // Make the rename itself durable.
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace eplb_cli
