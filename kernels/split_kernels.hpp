// Per-batch balancing on the GPU (issue #9), behind a CUDA-free interface: the replica-split
// solver (packed per-layer tables built on the host, uploaded once) and the parallel
// shared-expert waterfill. Each has a host-side validation (what is checkable without touching
// device memory; throws Error(invalid_argument)), a CPU reference (split_kernels_cpu.cpp, the same
// algorithm as the kernel: split_solver.hpp and waterfill_rule.hpp are compiled on both sides), a
// device-pointer check and a launcher (split_kernels.cu, only in builds with CUDA). The C API runs
// validate -> require_device -> check pointers -> launch. C++17: split_kernels.cu includes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace eplb::kernels {

// --- replica-split solver ---------------------------------------------------------------------

// Shape of a packed table set (layers [first_layer, first_layer + num_layers)).
struct SplitTableShape {
  std::int32_t first_layer = 0;
  std::int32_t num_layers = 0;
  std::int32_t num_experts = 0;
  std::int32_t num_slots = 0;
  std::int32_t num_gpus = 0;
  std::int32_t max_movable = 0;  // most movable experts in one layer of the set
  std::int32_t max_edges = 0;    // most (movable expert, GPU) pairs in one layer
};

// Packs layers [first_layer, first_layer + num_layers) of `phy2log` ([layers][num_slots], every
// expert placed; checked by the Placement that owns it) for the solver. `shape` is filled.
[[nodiscard]] std::vector<std::int32_t> build_split_tables(
    const std::int32_t* phy2log, std::int32_t first_layer, std::int32_t num_layers,
    std::int32_t num_experts, std::int32_t num_slots, std::int32_t num_gpus,
    SplitTableShape& shape);

// Workspace bytes of eplb_kernel_split_solve for a table set (the solver's state).
[[nodiscard]] std::size_t split_workspace_bytes(const SplitTableShape& shape);

struct SplitSolveArgs {
  const std::int32_t* tables = nullptr;  // packed tables (host copy for the CPU, device copy for
                                         // the GPU)
  SplitTableShape shape;
  std::int32_t layer = 0;                // absolute layer, inside the set
  const std::int32_t* counts = nullptr;  // [num_experts]
  const double* gpu_weights = nullptr;   // [num_gpus] or null
  const double* gpu_extra = nullptr;     // [num_gpus] or null
  std::int32_t* quotas = nullptr;        // [num_slots]
  double* max_load = nullptr;            // [1] or null
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
};

// Sizes, layer range and workspace size; throws Error(invalid_argument).
void validate_split_solve(const SplitSolveArgs& args);
// The CPU reference (host arrays): also rejects negative counts and bad weights / extra loads.
void split_solve_cpu(const SplitSolveArgs& args);
void check_split_solve_device_pointers(const SplitSolveArgs& args);
void launch_split_solve(const SplitSolveArgs& args, void* stream);  // split_kernels.cu

// Device copy of packed tables (cudaMalloc + copy on `stream` + synchronise; setup time only).
[[nodiscard]] std::int32_t* upload_split_tables(const std::vector<std::int32_t>& packed,
                                                void* stream);  // split_kernels.cu
void free_split_tables(std::int32_t* device_tables) noexcept;   // split_kernels.cu

// --- shared-expert waterfill ------------------------------------------------------------------

struct WaterfillKernelArgs {
  const std::int32_t* topk_slots = nullptr;  // [num_tokens][top_k]
  std::uint32_t num_tokens = 0;
  std::uint32_t top_k = 0;
  const std::int32_t* source_gpu = nullptr;  // [num_tokens] or null
  const double* gpu_weights = nullptr;       // [num_gpus] or null
  const double* gpu_loads = nullptr;         // [num_gpus] or null (counted from the slots)
  std::uint32_t num_physical = 0;
  std::uint32_t num_gpus = 0;
  bool any_gpu = false;
  std::int32_t* out_topk = nullptr;  // [num_tokens][top_k + 1]
  double* out_gpu_loads = nullptr;   // [num_gpus] or null
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
};

[[nodiscard]] std::size_t waterfill_workspace_bytes(std::uint32_t num_tokens,
                                                    std::uint32_t num_gpus);
void validate_shared_waterfill(const WaterfillKernelArgs& args);
// The CPU reference: also rejects slots, source GPUs, weights and loads out of range.
void shared_waterfill_cpu(const WaterfillKernelArgs& args);
void check_shared_waterfill_device_pointers(const WaterfillKernelArgs& args);
void launch_shared_waterfill(const WaterfillKernelArgs& args, void* stream);  // split_kernels.cu

}  // namespace eplb::kernels
