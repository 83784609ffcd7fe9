#include "atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
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

// The content of the symbolic link `link`; empty with errno set on failure.
std::string read_link(const std::filesystem::path& link) {
  std::vector<char> buffer(256);
  for (;;) {
    const ssize_t n = ::readlink(link.c_str(), buffer.data(), buffer.size());
    if (n < 0) return {};
    if (static_cast<std::size_t>(n) < buffer.size()) {
      return {buffer.data(), static_cast<std::size_t>(n)};
    }
    if (buffer.size() >= (std::size_t{1} << 16)) {  // far beyond PATH_MAX
      errno = ENAMETOOLONG;
      return {};
    }
    buffer.resize(buffer.size() * 2);
  }
}

// Whether the kernel's protected_symlinks rule forbids following `link` (its status `link_status`):
// a link in a sticky, world-writable directory (/tmp) owned neither by us nor by the directory's
// owner. Following it by hand must not do what the kernel refuses.
bool protected_link(const std::filesystem::path& link, const struct stat& link_status) {
  std::filesystem::path directory = link.parent_path();
  if (directory.empty()) directory = ".";
  struct stat dir {};
  if (::stat(directory.c_str(), &dir) != 0) return true;
  const bool sticky_shared = (dir.st_mode & S_ISVTX) != 0 && (dir.st_mode & S_IWOTH) != 0;
  return sticky_shared && link_status.st_uid != ::geteuid() && link_status.st_uid != dir.st_uid;
}

struct Target {
  std::string path;           // empty with errno set when the links cannot be followed
  bool through_proc = false;  // a link under /proc (a descriptor's magic link) was followed
};

// The file a chain of symbolic links ends at (itself when `path` is no link); an intermediate
// directory may be a link, since rename() follows those.
Target final_target(const std::string& path) {
  std::filesystem::path target(path);
  Target result;
  for (int hops = 0; hops < 40; ++hops) {
    struct stat link {};
    if (::lstat(target.c_str(), &link) != 0 || !S_ISLNK(link.st_mode)) {
      result.path = target.string();
      return result;
    }
    if (protected_link(target, link)) {
      errno = EACCES;
      return {};
    }
    result.through_proc |= target.string().starts_with("/proc/");
    const std::string next_text = read_link(target);
    if (next_text.empty()) return {};
    const std::filesystem::path next(next_text);
    target = next.is_absolute() ? next : target.parent_path() / next;
  }
  errno = ELOOP;
  return {};
}

// The descriptor a path names when it is one of this process's: /dev/stdout, /dev/stderr,
// /dev/fd/N, /proc/self/fd/N; -1 otherwise. Writing to the descriptor itself keeps its offset and
// mode (a shell's `>>` or a redirect shared with other output), which reopening would not.
int named_descriptor(const std::string& path) {
  if (path == "/dev/stdout") return STDOUT_FILENO;
  if (path == "/dev/stderr") return STDERR_FILENO;
  for (const std::string_view prefix : {"/dev/fd/", "/proc/self/fd/"}) {
    if (!path.starts_with(prefix) || path.size() == prefix.size() ||
        path.size() > prefix.size() + 9) {
      continue;
    }
    int fd = 0;
    for (std::size_t i = prefix.size(); i < path.size(); ++i) {
      if (path[i] < '0' || path[i] > '9') return -1;
      fd = fd * 10 + (path[i] - '0');
    }
    return fd;
  }
  return -1;
}

// 0666 less the umask, read without changing it (umask() would race with other threads).
mode_t new_file_mode() {
  const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0644;
  std::string status;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) status.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const std::size_t at = status.find("\nUmask:");
  if (at == std::string::npos) return 0644;
  unsigned mask = 0;
  bool digits = false;
  for (std::size_t i = at + 7; i < status.size() && status[i] != '\n'; ++i) {
    if (status[i] >= '0' && status[i] <= '7') {
      mask = mask * 8 + static_cast<unsigned>(status[i] - '0');
      digits = true;
    } else if (status[i] != ' ' && status[i] != '\t') {
      return 0644;
    }
  }
  return digits ? static_cast<mode_t>(0666U & ~mask & 0777U) : 0644;
}

// Writes all of `content` to the open descriptor `fd`, which the caller keeps.
std::optional<FileWriteFailure> write_to_descriptor(int fd, const std::string& path,
                                                    std::span<const std::byte> content) {
  if (write_all(fd, content)) return std::nullopt;
  return FileWriteFailure{"write", path, errno};
}

// Opens `path` (a pipe, a device, or a file reached through /proc) and writes `content` to it.
std::optional<FileWriteFailure> write_directly(const std::string& path, int flags,
                                               std::span<const std::byte> content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY | flags);
  if (fd < 0) return FileWriteFailure{"open", path, errno};
  auto failure = write_to_descriptor(fd, path, content);
  if (::close(fd) != 0 && !failure) failure = FileWriteFailure{"close", path, errno};
  return failure;
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
  if (const int fd = named_descriptor(path); fd >= 0 && ::fcntl(fd, F_GETFD) != -1) {
    return write_to_descriptor(fd, path, content);  // e.g. /dev/stdout: this process's own
  }
  struct stat existing {};
  const bool exists = ::stat(path.c_str(), &existing) == 0;  // through links
  // Anything but "no such file" (EACCES from the kernel's protected_symlinks, ELOOP, ENOTDIR)
  // is an error, not a licence to follow the links by hand.
  if (!exists && errno != ENOENT) return failure("open");
  if (exists && S_ISDIR(existing.st_mode)) {
    errno = EISDIR;
    return failure("replace");
  }
  if (exists && !S_ISREG(existing.st_mode)) {  // a pipe or a device: write straight to it
    return write_directly(path, 0, content);
  }

  const Target resolved = final_target(path);
  if (resolved.path.empty()) return failure("follow the links of");
  // A file reached through a descriptor's link under /proc: the descriptor's owner holds the
  // file open, so replacing it would hide the output; write into it instead.
  if (resolved.through_proc) return write_directly(path, O_TRUNC, content);
  const std::string& target_name = resolved.path;
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
    if (errno == ENOENT || errno == ENOTDIR) {
      const int original = errno;
      struct stat dir {};
      const int error = ::stat(directory.c_str(), &dir) != 0 ? errno
                        : !S_ISDIR(dir.st_mode)              ? ENOTDIR
                                                             : original;
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
