// Helper of crash_test: writes 'r' to file descriptor FD once set up, then saves the two crash
// versions alternately to PATH, forever, writing one byte to FD after each save returns EPLB_OK
// (so the test knows a complete save happened), until it is killed. Exit status 1 on any failed
// save.
//   crash_snapshot_writer PATH FD
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "crash_versions.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crash_snapshot_writer PATH FD\n");
    return 2;
  }
  const int fd = std::atoi(argv[2]);
  const eplb_crash::Version versions[2] = {eplb_crash::make_version(0),
                                           eplb_crash::make_version(1)};
  if (::write(fd, "r", 1) != 1) return 1;
  for (unsigned long n = 0;; ++n) {
    if (eplb_crash::save_version(versions[n % 2], argv[1]) != EPLB_OK) {
      std::fprintf(stderr, "crash_snapshot_writer: %s\n", eplb_last_error_message());
      return 1;
    }
    const char done = static_cast<char>('0' + n % 2);
    if (::write(fd, &done, 1) != 1) return 1;
  }
}
