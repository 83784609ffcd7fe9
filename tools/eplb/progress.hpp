// Progress on stderr for work that takes more than a second (EPLB_PROGRESS_DELAY_MS overrides
// it, for tests), only when stderr is a terminal (never in pipes or logs): one line, rewritten in
// place, erased when the work is done.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

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
  // Whether anything can show (stderr is a terminal).
  [[nodiscard]] bool active() const { return tty_; }

 private:
  using Clock = std::chrono::steady_clock;
  bool tty_;
  bool shown_ = false;
  std::chrono::milliseconds delay_;
  Clock::time_point start_;
  Clock::time_point last_;
};

// Progress for one long call (a plan): "TEXT DETAIL 2.4 s", the seconds counted by a thread five
// times a second while the object lives, erased when it goes; `detail` (optional, called from
// that thread, so thread-safe) says how far the call is, e.g. "37 %". Nothing runs unless stderr
// is a terminal.
class ProgressWhile {
 public:
  explicit ProgressWhile(std::string text, std::function<std::string()> detail = {});
  ProgressWhile(const ProgressWhile&) = delete;
  ProgressWhile& operator=(const ProgressWhile&) = delete;
  ~ProgressWhile();

 private:
  Progress progress_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread ticker_;
};

}  // namespace eplb_cli
