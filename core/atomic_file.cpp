#include "atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "error.hpp"

namespace eplb {

namespace {

[[noreturn]] void fail_io(const char* step, const std::string& path, int error) {
  fail(Errc::io, "cannot ", step, " '", path, "': ", std::strerror(error));
}

// Removes the temporary file unless released (every failure path after mkstemp).
class TemporaryFile {
 public:
  TemporaryFile(std::string name, int fd) : name_(std::move(name)), fd_(fd) {}
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!name_.empty()) ::unlink(name_.c_str());
  }
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  // Closes the descriptor; returns close()'s result (errno set on failure).
  int close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }
  void release() { name_.clear(); }

 private:
  std::string name_;
  int fd_;
};

}  // namespace

void write_file_atomically(const std::string& path, std::span<const std::byte> content) {
  if (path.empty()) fail(Errc::io, "cannot write '': the path is empty");
  const std::filesystem::path target(path);
  std::filesystem::path directory = target.parent_path();
  if (directory.empty()) directory = ".";
  const std::string pattern =
      (directory / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) fail_io("create a temporary file next to", path, errno);
  TemporaryFile temp(name.data(), fd);

  const auto* data = reinterpret_cast<const char*>(content.data());
  std::size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(temp.fd(), data + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_io("write", path, errno);
    }
    // write() returning 0 for a non-empty request means no progress is possible (a full device).
    if (n == 0) fail_io("write", path, ENOSPC);
    written += static_cast<std::size_t>(n);
  }
  // mkstemp creates the file 0600. Keep the permissions of the file being replaced, else 0644
  // (reading the umask would mean changing it, which races with other threads).
  mode_t mode = 0644;
  struct stat existing {};
  if (::stat(path.c_str(), &existing) == 0 && S_ISREG(existing.st_mode)) {
    mode = existing.st_mode & 07777;
  }
  if (::fchmod(temp.fd(), mode) != 0) fail_io("set permissions of", path, errno);
  if (::fsync(temp.fd()) != 0) fail_io("flush", path, errno);
  if (temp.close() != 0) fail_io("close", path, errno);
  if (::rename(temp.name().c_str(), path.c_str()) != 0) fail_io("replace", path, errno);
  temp.release();
  // Make the rename itself durable; the new file is complete whatever this returns.
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace eplb
