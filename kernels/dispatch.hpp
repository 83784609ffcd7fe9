// Dispatch-side kernels on physical expert ids (issue #7, items 4 and 5), behind a CUDA-free
// interface: the dispatch layout (counts per expert / rank / node, is_token_in_rank, send
// offsets), the stable expert sort with padded segments, and permute / unpermute of token rows.
//
// Each operation has one argument struct, a host-side validation (everything checkable without
// touching device memory; throws Error(invalid_argument) or Error(out_of_memory)), a CPU reference
// (plain C++, the semantics the tests check), a device-pointer check and a launcher (dispatch.cu,
// only in builds with CUDA). The C API shims run validate → require_device → check_device_pointers
// → launch, so the status of bad input is the same on machines with and without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>

namespace eplb::kernels {

// Element type of token rows (values of eplb_row_dtype in eplb.h).
enum class RowDtype : uint32_t { float32 = 0, float16 = 1, bfloat16 = 2 };

// Bytes of one element of `dtype` (4 or 2).
[[nodiscard]] size_t row_dtype_bytes(RowDtype dtype) noexcept;

// Upper bounds that keep per-block tables in 48 KiB of shared memory (documented in eplb.h).
inline constexpr uint32_t kMaxPhysicalExperts = 8192;
inline constexpr uint32_t kMaxRanks = 1024;

// --- dispatch layout
// ------------------------------------------------------------------------------

struct LayoutArgs {
  const int32_t* topk_ids = nullptr;  // [num_tokens][top_k]
  size_t num_tokens = 0;
  size_t top_k = 0;
  uint32_t num_experts = 0;  // physical experts; rank r holds [r*E/R, (r+1)*E/R)
  uint32_t num_ranks = 0;
  uint32_t num_nodes = 0;                // node n holds ranks [n*R/N, (n+1)*R/N)
  int32_t* tokens_per_expert = nullptr;  // [num_experts]
  int32_t* tokens_per_rank = nullptr;    // [num_ranks]
  int32_t* tokens_per_node = nullptr;    // [num_nodes]
  uint8_t* is_token_in_rank = nullptr;   // [num_tokens][num_ranks]
  int32_t* send_offsets = nullptr;       // [num_tokens][num_ranks], optional
  void* workspace = nullptr;
  size_t workspace_size = 0;
};

// Workspace bytes of the layout (throws like validate_layout for bad sizes).
[[nodiscard]] size_t layout_workspace_bytes(size_t num_tokens, size_t top_k, uint32_t num_experts,
                                            uint32_t num_ranks, uint32_t num_nodes);
void validate_layout(const LayoutArgs& args);
void dispatch_layout_cpu(const LayoutArgs& args);
void check_layout_device_pointers(const LayoutArgs& args);
void launch_dispatch_layout(const LayoutArgs& args, void* stream);  // dispatch.cu

// --- expert sort
// ----------------------------------------------------------------------------------

struct SortArgs {
  const int32_t* topk_ids = nullptr;  // [num_tokens][top_k]
  size_t num_tokens = 0;
  size_t top_k = 0;
  uint32_t num_experts = 0;
  uint32_t block_size = 0;
  size_t capacity = 0;               // entries of sorted_ids, >= sort_capacity(), % block_size == 0
  int32_t* sorted_ids = nullptr;     // [capacity]
  int32_t* block_experts = nullptr;  // [capacity / block_size]
  int32_t* expert_offsets = nullptr;  // [num_experts + 1]
  int32_t* inverse = nullptr;         // [num_tokens][top_k]
  int32_t* total_padded = nullptr;    // [1]
  void* workspace = nullptr;
  size_t workspace_size = 0;
};

// The worst-case padded length: round_up(n + min(n, E) * (block_size - 1), block_size) with
// n = num_tokens * top_k.
[[nodiscard]] size_t sort_capacity(size_t num_tokens, size_t top_k, uint32_t num_experts,
                                   uint32_t block_size);
[[nodiscard]] size_t sort_workspace_bytes(size_t num_tokens, size_t top_k, uint32_t num_experts);
void validate_sort(const SortArgs& args);
void expert_sort_cpu(const SortArgs& args);
void check_sort_device_pointers(const SortArgs& args);
void launch_expert_sort(const SortArgs& args, void* stream);  // dispatch.cu

// --- permute / unpermute
// --------------------------------------------------------------------------

struct PermuteArgs {
  const void* input = nullptr;  // [num_tokens][hidden] of dtype
  RowDtype dtype = RowDtype::float32;
  size_t num_tokens = 0;
  size_t top_k = 0;
  size_t hidden = 0;
  const int32_t* inverse = nullptr;  // [num_tokens][top_k]
  size_t output_rows = 0;
  void* output = nullptr;  // [output_rows][hidden] of dtype
};

struct UnpermuteArgs {
  const void* permuted = nullptr;  // [permuted_rows][hidden] of dtype
  RowDtype dtype = RowDtype::float32;
  size_t num_tokens = 0;
  size_t top_k = 0;
  size_t hidden = 0;
  const int32_t* inverse = nullptr;  // [num_tokens][top_k]
  const float* weights = nullptr;    // [num_tokens][top_k]
  size_t permuted_rows = 0;
  void* output = nullptr;  // [num_tokens][hidden] of dtype
};

void validate_permute(const PermuteArgs& args);
void permute_cpu(const PermuteArgs& args);
void check_permute_device_pointers(const PermuteArgs& args);
void launch_permute(const PermuteArgs& args, void* stream);  // dispatch.cu

void validate_unpermute(const UnpermuteArgs& args);
void unpermute_cpu(const UnpermuteArgs& args);
void check_unpermute_device_pointers(const UnpermuteArgs& args);
void launch_unpermute(const UnpermuteArgs& args, void* stream);  // dispatch.cu

// Conversions done by hand on the CPU, round to nearest even (NaN becomes the canonical 0x7FFF).
[[nodiscard]] float bf16_to_float(uint16_t bits) noexcept;
[[nodiscard]] uint16_t float_to_bf16(float value) noexcept;
[[nodiscard]] float fp16_to_float(uint16_t bits) noexcept;
[[nodiscard]] uint16_t float_to_fp16(float value) noexcept;

}  // namespace eplb::kernels
