// Packing a layer's replicas onto GPUs with a fixed number of slots each, minimising the busiest
// GPU's load: greedy LPT that never puts two replicas of one expert on one GPU while another GPU
// with a free slot could take it, then a local search of pairwise swaps between the busiest GPU
// and the others until no swap lowers it. Deterministic.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace eplb {

struct Replica {
  std::int32_t expert = 0;
  double load = 0;  // the expert's load / its replica count
};

class ReplicaPacker {
 public:
  // Packs `replicas` (num_gpus * slots_per_gpu of them) and writes, for each GPU in order, its
  // slots_per_gpu replica indices into `slot_replica` (GPU g's slots are g*slots_per_gpu...).
  // Within a GPU, replicas are ordered by decreasing load, then expert id. `num_experts` bounds
  // the expert ids. Returns the busiest GPU's load.
  double pack(std::span<const Replica> replicas, std::uint32_t num_gpus,
              std::uint32_t slots_per_gpu, std::uint32_t num_experts,
              std::span<std::int32_t> slot_replica);

  // The local search alone, on a given assignment (`slot_replica` as written by pack()); used to
  // improve another planner's packing. Returns the busiest GPU's load.
  // Per-GPU loads after the last pack() or improve().
  [[nodiscard]] std::span<const double> gpu_loads() const { return gpu_load_; }

  // With `separate_duplicates` false, duplicates already in the assignment are left where they
  // are (the search still never creates one).
  double improve(std::span<const Replica> replicas, std::uint32_t num_gpus,
                 std::uint32_t slots_per_gpu, std::uint32_t num_experts,
                 std::span<std::int32_t> slot_replica, bool separate_duplicates = true);

 private:
  void load_state(std::span<const Replica> replicas, std::uint32_t num_gpus,
                  std::uint32_t slots_per_gpu, std::uint32_t num_experts,
                  std::span<const std::int32_t> slot_replica);
  void remove_duplicates(std::span<const Replica> replicas, std::span<std::int32_t> slot_replica);
  double swap_search(std::span<const Replica> replicas, std::span<std::int32_t> slot_replica);
  [[nodiscard]] bool holds(std::uint32_t gpu, std::int32_t expert) const;
  void order_slots(std::span<const Replica> replicas, std::span<std::int32_t> slot_replica) const;

  std::uint32_t num_gpus_ = 0;
  std::uint32_t slots_ = 0;
  std::uint32_t num_experts_ = 0;
  std::vector<double> gpu_load_;
  std::vector<std::uint16_t> copies_;  // [gpu][expert]: replicas of the expert on the GPU
  std::vector<std::int32_t> order_;
  std::vector<std::int32_t> heap_;
  std::vector<std::int32_t> skipped_;
  std::vector<std::uint32_t> filled_;
  std::vector<std::uint32_t> gpu_order_;
};

}  // namespace eplb
