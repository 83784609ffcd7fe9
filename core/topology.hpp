// The shape of a model's MoE layers and of the expert-parallel deployment they run on.
#pragma once

#include <cstddef>
#include <cstdint>

namespace eplb {

struct Topology {
  std::uint32_t num_layers = 0;
  std::uint32_t num_logical = 0;   // E: logical experts per layer
  std::uint32_t num_physical = 0;  // R: physical slots per layer over all GPUs
  std::uint32_t num_nodes = 1;
  std::uint32_t num_gpus = 0;
  std::uint32_t num_groups = 1;

  [[nodiscard]] std::uint32_t slots_per_gpu() const { return num_physical / num_gpus; }
  [[nodiscard]] std::uint32_t gpus_per_node() const { return num_gpus / num_nodes; }
  [[nodiscard]] std::uint32_t gpu_of_slot(std::uint32_t slot) const {
    return slot / slots_per_gpu();
  }
  [[nodiscard]] std::uint32_t node_of_gpu(std::uint32_t gpu) const { return gpu / gpus_per_node(); }
  // num_layers * num_logical, checked against size_t overflow by validate().
  [[nodiscard]] std::size_t load_count() const {
    return static_cast<std::size_t>(num_layers) * num_logical;
  }
  [[nodiscard]] std::size_t slot_count() const {
    return static_cast<std::size_t>(num_layers) * num_physical;
  }

  // Throws Error(invalid_argument) naming the first inconsistent field: zero counts,
  // E % groups, R % gpus, gpus % nodes, R < E, counts above INT32_MAX.
  void validate() const;
};

// a * b, throwing Error(out_of_memory) if it overflows size_t.
[[nodiscard]] std::size_t checked_mul(std::size_t a, std::size_t b, const char* what);

}  // namespace eplb
