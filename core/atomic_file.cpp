#include "atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace eplb {

namespace {

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

// Writes all of `content` to `fd`; false with errno set on failure (ENOSPC when the system
// makes no progress).
bool write_all(int fd, std::span<const std::byte> content) {
  const auto* data = reinterpret_cast<const char*>(content.data());
  std::size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, data + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) {  // no progress for a non-empty request: a full device
      errno = ENOSPC;
      return false;
    }
    written += static_cast<std::size_t>(n);
  }
  return true;
}

// The file a chain of symbolic links ends at (itself when `path` is no link); an intermediate
// directory may be a link, since rename() follows those. Empty with errno = ELOOP for a cycle.
std::string final_target(const std::string& path) {
  std::filesystem::path target(path);
  for (int hops = 0; hops < 40; ++hops) {
    struct stat link {};
    if (::lstat(target.c_str(), &link) != 0 || !S_ISLNK(link.st_mode)) return target.string();
    std::vector<char> buffer(static_cast<std::size_t>(link.st_size > 0 ? link.st_size : 255) + 1);
    const ssize_t n = ::readlink(target.c_str(), buffer.data(), buffer.size());
    if (n < 0 || static_cast<std::size_t>(n) >= buffer.size()) return target.string();
    const std::filesystem::path next(std::string(buffer.data(), static_cast<std::size_t>(n)));
    target = next.is_absolute() ? next : target.parent_path() / next;
  }
  errno = ELOOP;
  return {};
}

// 0666 less the umask, read without changing it (umask() would race with other threads).
mode_t new_file_mode() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "Umask:") {
      unsigned mask = 0;
      if (status >> std::oct >> mask) return static_cast<mode_t>(0666U & ~mask);
      break;
    }
    status.ignore(1 << 16, '\n');
  }
  return 0644;
}

}  // namespace

std::string FileWriteFailure::message() const {
  if (path.empty()) return "cannot " + step + " '': the path is empty";
  return "cannot " + step + " '" + path + "': " + std::strerror(error);
}

std::optional<FileWriteFailure> write_file_atomically(const std::string& path,
                                                      std::span<const std::byte> content) {
  const auto failure = [&](const char* step) {
    return std::optional<FileWriteFailure>(FileWriteFailure{step, path, errno});
  };
  if (path.empty()) {
    errno = ENOENT;
    return failure("write");
  }
  struct stat existing {};
  const bool exists = ::stat(path.c_str(), &existing) == 0;  // through links
  if (exists && S_ISDIR(existing.st_mode)) {
    errno = EISDIR;
    return failure("replace");
  }
  if (exists && !S_ISREG(existing.st_mode)) {  // a pipe or a device: write straight to it
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return failure("open");
    const bool written = write_all(fd, content);
    const int error = errno;
    if (::close(fd) != 0 && written) return failure("close");
    errno = error;
    if (!written) return failure("write");
    return std::nullopt;
  }

  const std::string target_name = final_target(path);
  if (target_name.empty()) return failure("follow the links of");
  const std::filesystem::path target(target_name);
  std::filesystem::path directory = target.parent_path();
  if (directory.empty()) directory = ".";
  const std::string pattern =
      (directory / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) {
    // Say what is wrong with the directory when that is the reason.
    struct stat dir {};
    if (errno == ENOENT || errno == ENOTDIR) {
      const int error = ::stat(directory.c_str(), &dir) != 0 ? errno : ENOTDIR;
      return FileWriteFailure{"write into the directory of", path, error};
    }
    return failure("create a temporary file next to");
  }
  TemporaryFile temp(name.data(), fd);
  if (!write_all(temp.fd(), content)) return failure("write");
  // mkstemp creates the file 0600: keep the permissions of the file being replaced.
  const mode_t mode = exists ? existing.st_mode & 07777 : new_file_mode();
  if (::fchmod(temp.fd(), mode) != 0) return failure("set permissions of");
  if (::fsync(temp.fd()) != 0) return failure("flush");
  if (temp.close() != 0) return failure("close");
  if (::rename(temp.name().c_str(), target.c_str()) != 0) return failure("replace");
  temp.release();
  // Make the rename itself durable; the new file is complete whatever this returns.
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return std::nullopt;
}

}  // namespace eplb
