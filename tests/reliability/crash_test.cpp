// Crash consistency of eplb_snapshot_save: a process killed with SIGKILL at random points while
// it saves, and a save onto a full device, always leave the destination as the old or the new
// complete file (never a torn one), and a failed save reports EPLB_ERR_IO naming the path.
//
// The kill loop runs crash_snapshot_writer (saving two versions alternately to one path) and
// kills it after a random delay, EPLB_CRASH_KILLS times (default 60; set it higher for a longer
// run, as RELIABILITY.md shows). Delays come from a fixed seed, so a run is repeatable up to the
// scheduler.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "crash_versions.hpp"

namespace {

namespace fs = std::filesystem;

// A fresh directory under the temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "eplb-crash-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Files in `directory` other than `keep` (temporary files a killed save left behind).
std::vector<fs::path> others(const fs::path& directory, const std::string& keep) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(directory)) {
    if (entry.path().filename() != keep) found.push_back(entry.path());
  }
  return found;
}

unsigned kills_requested() {
  const char* text = std::getenv("EPLB_CRASH_KILLS");
  return text != nullptr ? static_cast<unsigned>(std::strtoul(text, nullptr, 10)) : 60U;
}

TEST(Snapshot, SigkillWhileSavingLeavesTheOldOrTheNewCompleteFile) {
  const TempDir directory;
  const std::string path = (directory.path() / "placement.eplb").string();
  const unsigned kills = kills_requested();
  std::mt19937_64 rng(20261123);
  // 0 to ~2 saves' worth of time (a save of this file takes ~15-30 ms on an idle machine).
  std::uniform_int_distribution<int> delay_us(0, 40000);

  unsigned long saves_completed = 0;
  unsigned found[2] = {0, 0};
  unsigned absent = 0;
  unsigned leftovers = 0;
  for (unsigned k = 0; k < kills; ++k) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0) << std::strerror(errno);
    if (pid == 0) {
      ::close(fds[0]);
      const std::string fd = std::to_string(fds[1]);
      ::execl(EPLB_CRASH_WRITER, EPLB_CRASH_WRITER, path.c_str(), fd.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    // Time the kill from the end of the writer's setup, so it lands among the saves.
    char ready = 0;
    ASSERT_EQ(::read(fds[0], &ready, 1), 1) << "the writer did not start";
    ASSERT_EQ(ready, 'r');
    // Kill k lets k % 3 saves complete first, so kills after complete saves are exercised however
    // slow the machine is; the random delay then puts the kill anywhere in the next save.
    unsigned long completed_now = 0;
    for (unsigned wait = 0; wait < k % 3; ++wait) {
      char done = 0;
      ASSERT_EQ(::read(fds[0], &done, 1), 1) << "the writer stopped";
      ++completed_now;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int wait_status = 0;
    ASSERT_EQ(::waitpid(pid, &wait_status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL)
        << "the writer ended on its own (exit status "
        << (WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1) << ") before kill " << k;
    char buffer[256];
    ssize_t n = 0;
    saves_completed += completed_now;
    while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0) saves_completed += n;
    ::close(fds[0]);

    SCOPED_TRACE("kill " + std::to_string(k) + ", " + std::to_string(saves_completed) +
                 " saves completed so far");
    const int version = eplb_crash::identify(path.c_str());
    if (version == -2 && !fs::exists(path)) {
      // Only before the first complete save: a save that returned EPLB_OK is never lost.
      EXPECT_EQ(saves_completed, 0U) << "the file vanished after a completed save";
      ++absent;
    } else {
      ASSERT_TRUE(version == 0 || version == 1)
          << "torn or foreign file after SIGKILL: "
          << (version == -2 ? eplb_last_error_message() : "matches neither version");
      ++found[version];
    }
    // A killed save may leave its temporary file (it is never the destination); clear them so
    // the directory stays small, counting them for the report.
    for (const fs::path& stray : others(directory.path(), "placement.eplb")) {
      EXPECT_NE(stray.filename().string().find(".tmp."), std::string::npos) << stray;
      fs::remove(stray);
      ++leftovers;
    }
  }
  std::printf(
      "crash loop: %u SIGKILLs survived: %lu saves completed, file held version 0 %u times, "
      "version 1 %u times, absent (before any save) %u times; %u temporary files left by killed "
      "saves\n",
      kills, saves_completed, found[0], found[1], absent, leftovers);
  // Two kills in three come after a completed save, so the file must have been there.
  EXPECT_GE(found[0] + found[1], kills - (kills + 2) / 3);
}

// Runs `body` in a forked child and returns its exit status (77: skipped).
template <typename Body>
int in_child(Body body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) ::_exit(body());
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// In the child: version 0 is at `path`; a save of version 1 must fail with EPLB_ERR_IO naming
// the path and `reason`, leave version 0 there and no temporary file. Exit status 0 if so.
int expect_failed_save_keeps_old(const std::string& path, const char* reason) {
  const eplb_status status = eplb_crash::save_version(eplb_crash::make_version(1), path.c_str());
  const std::string message = eplb_last_error_message();
  int failures = 0;
  if (status != EPLB_ERR_IO) {
    std::fprintf(stderr, "expected EPLB_ERR_IO, got %s: %s\n", eplb_status_string(status),
                 message.c_str());
    ++failures;
  }
  if (message.find(path) == std::string::npos || message.find(reason) == std::string::npos) {
    std::fprintf(stderr, "message \"%s\" does not name the path and \"%s\"\n", message.c_str(),
                 reason);
    ++failures;
  }
  const int version = eplb_crash::identify(path.c_str());
  if (version != 0) {
    std::fprintf(stderr, "the old file did not survive (identify: %d)\n", version);
    ++failures;
  }
  const auto stray = others(fs::path(path).parent_path(), fs::path(path).filename().string());
  if (!stray.empty()) {
    std::fprintf(stderr, "a temporary file was left: %s\n", stray.front().c_str());
    ++failures;
  }
  return failures == 0 ? 0 : 1;
}

TEST(Snapshot, FileSizeLimitFailsTheSaveAndKeepsTheOldFile) {
  // RLIMIT_FSIZE makes write() fail with EFBIG once the temporary file reaches the limit (with
  // SIGXFSZ ignored): the behaviour of a full device, without privileges.
  const TempDir directory;
  const std::string path = (directory.path() / "placement.eplb").string();
  ASSERT_EQ(eplb_crash::save_version(eplb_crash::make_version(0), path.c_str()), EPLB_OK)
      << eplb_last_error_message();
  const int result = in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{16384, 16384};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 2;
    return expect_failed_save_keeps_old(path, "File too large");
  });
  EXPECT_EQ(result, 0) << "see the child's message above";
  EXPECT_EQ(eplb_crash::identify(path.c_str()), 0);
}

TEST(Snapshot, FullTmpfsFailsTheSaveAndKeepsTheOldFile) {
  // A tmpfs just large enough for one version, mounted in a private mount namespace (as root,
  // or in a user namespace where the kernel allows it); skipped where neither works.
  const TempDir directory;
  void* buffer = nullptr;
  size_t size = 0;
  {
    const eplb_crash::Version v0 = eplb_crash::make_version(0);
    eplb_placement* placement = nullptr;
    ASSERT_EQ(eplb_placement_create_from_phy2log(
                  eplb_crash::kLayers, eplb_crash::kExperts, eplb_crash::kSlots, eplb_crash::kNodes,
                  eplb_crash::kGpus, v0.phy2log.data(), v0.phy2log.size(), &placement),
              EPLB_OK);
    eplb_snapshot_options options;
    eplb_snapshot_options_init(&options);
    options.compression_level = 1;
    options.loads = v0.loads.data();
    options.loads_len = v0.loads.size();
    options.label = v0.label.c_str();
    ASSERT_EQ(eplb_snapshot_save_to_buffer(placement, &options, &buffer, &size), EPLB_OK);
    eplb_placement_destroy(placement);
    eplb_buffer_free(buffer);
  }
  const std::string mount_point = directory.path().string();
  const std::string path = mount_point + "/placement.eplb";
  const int result = in_child([&] {
    const int flags = ::geteuid() == 0 ? CLONE_NEWNS : CLONE_NEWUSER | CLONE_NEWNS;
    if (::unshare(flags) != 0) return 77;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 77;
    // Room for one version and a third of another, in whole pages.
    const size_t bytes = (size + size / 3 + 4095) / 4096 * 4096;
    const std::string options = "size=" + std::to_string(bytes);
    if (::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, options.c_str()) != 0) return 77;
    if (eplb_crash::save_version(eplb_crash::make_version(0), path.c_str()) != EPLB_OK) {
      std::fprintf(stderr, "the first save did not fit: %s\n", eplb_last_error_message());
      return 3;
    }
    return expect_failed_save_keeps_old(path, "No space left");
  });
  if (result == 77) GTEST_SKIP() << "cannot mount a tmpfs here (no mount namespace)";
  EXPECT_EQ(result, 0) << "see the child's message above";
}

}  // namespace
