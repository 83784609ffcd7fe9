#include "eplb/progress.hpp"

#include <unistd.h>

#include <iostream>

namespace eplb_cli {

Progress::Progress() : tty_(::isatty(STDERR_FILENO) != 0), start_(Clock::now()), last_(start_) {}

void Progress::show(const std::string& text) {
  if (!tty_) return;
  const auto now = Clock::now();
  if (now - start_ < std::chrono::seconds(1) || now - last_ < std::chrono::milliseconds(200)) {
    return;
  }
  last_ = now;
  shown_ = true;
  std::cerr << "\r\033[K" << text << std::flush;
}

void Progress::finish() {
  if (shown_) std::cerr << "\r\033[K" << std::flush;
  shown_ = false;
}

}  // namespace eplb_cli
