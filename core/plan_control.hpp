// Cancellation and progress of plans, shared between the planning threads and any thread that
// watches or cancels them. Every member is thread-safe and lock-free.
#pragma once

#include <atomic>
#include <cstdint>

namespace eplb {

struct PlanProgress {
  std::uint64_t steps_done = 0;
  std::uint64_t steps_total = 0;
  bool cancelled = false;
};

class PlanControl {
 public:
  // Sticky: every plan using this control stops at its next layer boundary, and later plans
  // stop before they start.
  void cancel() noexcept { cancelled_.store(true, std::memory_order_release); }
  [[nodiscard]] bool cancelled() const noexcept {
    return cancelled_.load(std::memory_order_acquire);
  }

  // A plan announces its steps (one per layer and pass) before it takes any.
  void add_steps(std::uint64_t steps) noexcept {
    total_.fetch_add(steps, std::memory_order_release);
  }
  void step_done() noexcept { done_.fetch_add(1, std::memory_order_release); }

  // Done is read before total, and every step is announced before it is taken, so a reader
  // never sees more steps done than announced.
  [[nodiscard]] PlanProgress progress() const noexcept {
    PlanProgress progress;
    progress.steps_done = done_.load(std::memory_order_acquire);
    progress.steps_total = total_.load(std::memory_order_acquire);
    progress.cancelled = cancelled();
    return progress;
  }

 private:
  std::atomic<bool> cancelled_{false};
  std::atomic<std::uint64_t> done_{0};
  std::atomic<std::uint64_t> total_{0};
};

}  // namespace eplb
