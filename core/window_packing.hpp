// Improving a packing for several load windows at once: pairwise swaps between GPUs that lower
// the sum over windows of each window's busiest GPU (the expected per-window peak), keeping the
// no-duplicate rule. Used by robust (multi-window) planning.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace eplb {

class WindowPacker {
 public:
  // `replica_expert[r]` is replica r's expert (< num_experts); `replica_loads` is
  // [replicas][num_windows]. `slot_replica` (num_gpus * slots_per_gpu, GPU-major) is improved
  // in place. Returns the objective: the sum over windows of the busiest GPU's load.
  double improve(std::span<const std::int32_t> replica_expert,
                 std::span<const double> replica_loads, std::size_t num_windows,
                 std::uint32_t num_gpus, std::uint32_t slots_per_gpu, std::uint32_t num_experts,
                 std::span<std::int32_t> slot_replica);

  // The objective of a packing without changing it.
  static double objective(std::span<const double> replica_loads, std::size_t num_windows,
                          std::uint32_t num_gpus, std::uint32_t slots_per_gpu,
                          std::span<const std::int32_t> slot_replica);

 private:
  void rank_windows();

  std::size_t windows_ = 0;
  std::uint32_t num_gpus_ = 0;
  std::vector<double> gpu_load_;                  // [gpu][window]
  std::vector<std::uint16_t> copies_;             // [gpu][expert]
  std::vector<std::array<std::int32_t, 3>> top_;  // per window: its three busiest GPUs
  std::vector<std::uint32_t> busiest_count_;      // per GPU: windows where it is busiest
  std::vector<std::uint32_t> busiest_begin_;      // per GPU: its first in busiest_windows_
  std::vector<std::uint32_t> busiest_windows_;    // the windows, by their busiest GPU
  std::vector<std::uint32_t> candidates_;
};

}  // namespace eplb
