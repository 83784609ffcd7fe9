// Progress on stderr for work that takes more than a second (EPLB_PROGRESS_DELAY_MS overrides
// it, for tests), only when stderr is a terminal (never in pipes or logs): one line, rewritten in
// place, erased when the work is done.
#pragma once

#include <chrono>
#include <string>

namespace eplb_cli {

class Progress {
 public:
  Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress() { finish(); }

  // Shows `text` in place of the previous line, once a second has passed since construction, at
  // most five times a second (cheap to call more often: the text is only written then).
  void show(const std::string& text);
  // Erases the line, if one was shown.
  void finish();

 private:
  using Clock = std::chrono::steady_clock;
  bool tty_;
  bool shown_ = false;
  std::chrono::milliseconds delay_;
  Clock::time_point start_;
  Clock::time_point last_;
};

}  // namespace eplb_cli
