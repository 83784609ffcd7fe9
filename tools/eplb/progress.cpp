#include "eplb/progress.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <system_error>
#include <utility>

namespace eplb_cli {

namespace {

// How long work runs before progress shows: a second, or EPLB_PROGRESS_DELAY_MS (for tests).
std::chrono::milliseconds delay() {
  const char* text = std::getenv("EPLB_PROGRESS_DELAY_MS");
  if (text == nullptr || *text == '\0') return std::chrono::seconds(1);
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  return *end == '\0' && value >= 0 ? std::chrono::milliseconds(value) : std::chrono::seconds(1);
}

}  // namespace

Progress::Progress()
    : tty_(::isatty(STDERR_FILENO) != 0), delay_(delay()), start_(Clock::now()), last_(start_) {}

void Progress::show(const std::string& text) {
  if (!tty_) return;
  const auto now = Clock::now();
  if (now - start_ < delay_ || (shown_ && now - last_ < std::chrono::milliseconds(200))) {
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

ProgressWhile::ProgressWhile(std::string text, std::function<std::string()> detail) {
  if (!progress_.active()) return;
  const auto start = std::chrono::steady_clock::now();
  try {
    ticker_ = std::thread([this, text = std::move(text), detail = std::move(detail), start] {
      std::unique_lock lock(mutex_);
      do {  // at least once: with no delay (EPLB_PROGRESS_DELAY_MS=0) even a short call shows
        const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
        char seconds[32];
        std::snprintf(seconds, sizeof(seconds), " %.1f s", elapsed.count());
        progress_.show(text + (detail ? " " + detail() : std::string()) + seconds);
      } while (!wake_.wait_for(lock, std::chrono::milliseconds(200), [this] { return done_; }));
      progress_.finish();
    });
  } catch (const std::system_error&) {
    // No thread for progress: the work goes on without it.
  }
}

ProgressWhile::~ProgressWhile() {
  if (!ticker_.joinable()) return;
  {
    const std::lock_guard lock(mutex_);
    done_ = true;
  }
  wake_.notify_one();
  ticker_.join();
}

}  // namespace eplb_cli
