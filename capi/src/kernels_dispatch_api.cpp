// C API: dispatch layout, expert sort, permute and unpermute (eplb_kernel_dispatch_layout ...,
// issue #7 items 4 and 5). GPU entry points validate host-checkable arguments first, then require
// a device, then check that the arrays are device memory, then launch; the _cpu references run the
// same validation and compute on host memory.
#include "../../kernels/device.hpp"
#include "../../kernels/dispatch.hpp"
#include "guard.hpp"

namespace {

namespace k = eplb::kernels;

k::LayoutArgs layout_args(const int32_t* topk_ids, size_t num_tokens, size_t top_k,
                          uint32_t num_physical_experts, uint32_t num_ranks, uint32_t num_nodes,
                          int32_t* tokens_per_expert, int32_t* tokens_per_rank,
                          int32_t* tokens_per_node, uint8_t* is_token_in_rank,
                          int32_t* send_offsets, void* workspace, size_t workspace_size) {
  k::LayoutArgs a;
  a.topk_ids = topk_ids;
  a.num_tokens = num_tokens;
  a.top_k = top_k;
  a.num_experts = num_physical_experts;
  a.num_ranks = num_ranks;
  a.num_nodes = num_nodes;
  a.tokens_per_expert = tokens_per_expert;
  a.tokens_per_rank = tokens_per_rank;
  a.tokens_per_node = tokens_per_node;
  a.is_token_in_rank = is_token_in_rank;
  a.send_offsets = send_offsets;
  a.workspace = workspace;
  a.workspace_size = workspace_size;
  return a;
}

k::SortArgs sort_args(const int32_t* topk_ids, size_t num_tokens, size_t top_k,
                      uint32_t num_experts, uint32_t block_size, size_t capacity,
                      int32_t* sorted_ids, int32_t* block_experts, int32_t* expert_offsets,
                      int32_t* inverse, int32_t* total_padded, void* workspace,
                      size_t workspace_size) {
  k::SortArgs a;
  a.topk_ids = topk_ids;
  a.num_tokens = num_tokens;
  a.top_k = top_k;
  a.num_experts = num_experts;
  a.block_size = block_size;
  a.capacity = capacity;
  a.sorted_ids = sorted_ids;
  a.block_experts = block_experts;
  a.expert_offsets = expert_offsets;
  a.inverse = inverse;
  a.total_padded = total_padded;
  a.workspace = workspace;
  a.workspace_size = workspace_size;
  return a;
}

k::PermuteArgs permute_args(const void* input, uint32_t dtype, size_t num_tokens, size_t top_k,
                            size_t hidden, const int32_t* inverse, size_t output_rows,
                            void* output) {
  k::PermuteArgs a;
  a.input = input;
  a.dtype = static_cast<k::RowDtype>(dtype);
  a.num_tokens = num_tokens;
  a.top_k = top_k;
  a.hidden = hidden;
  a.inverse = inverse;
  a.output_rows = output_rows;
  a.output = output;
  return a;
}

k::UnpermuteArgs unpermute_args(const void* permuted, uint32_t dtype, size_t num_tokens,
                                size_t top_k, size_t hidden, const int32_t* inverse,
                                const float* weights, size_t permuted_rows, void* output) {
  k::UnpermuteArgs a;
  a.permuted = permuted;
  a.dtype = static_cast<k::RowDtype>(dtype);
  a.num_tokens = num_tokens;
  a.top_k = top_k;
  a.hidden = hidden;
  a.inverse = inverse;
  a.weights = weights;
  a.permuted_rows = permuted_rows;
  a.output = output;
  return a;
}

}  // namespace

#if !EPLB_HAVE_CUDA
// The launchers live in dispatch.cu; a build without CUDA never reaches them (require_device()
// has thrown), but keeps the same code path.
namespace eplb::kernels {
void launch_dispatch_layout(const LayoutArgs& /*args*/, void* /*stream*/) { require_device(); }
void launch_expert_sort(const SortArgs& /*args*/, void* /*stream*/) { require_device(); }
void launch_permute(const PermuteArgs& /*args*/, void* /*stream*/) { require_device(); }
void launch_unpermute(const UnpermuteArgs& /*args*/, void* /*stream*/) { require_device(); }
}  // namespace eplb::kernels
#endif

extern "C" {

eplb_status eplb_kernel_dispatch_layout_workspace_size(size_t num_tokens, size_t top_k,
                                                       uint32_t num_physical_experts,
                                                       uint32_t num_ranks, uint32_t num_nodes,
                                                       size_t* out_bytes) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(out_bytes, "out_bytes");
    *out_bytes =
        k::layout_workspace_bytes(num_tokens, top_k, num_physical_experts, num_ranks, num_nodes);
  });
}

eplb_status eplb_kernel_dispatch_layout(const int32_t* topk_ids, size_t num_tokens, size_t top_k,
                                        uint32_t num_physical_experts, uint32_t num_ranks,
                                        uint32_t num_nodes, int32_t* tokens_per_expert,
                                        int32_t* tokens_per_rank, int32_t* tokens_per_node,
                                        uint8_t* is_token_in_rank, int32_t* send_offsets,
                                        void* workspace, size_t workspace_size, void* stream) {
  return eplb::capi::guard([&] {
    const k::LayoutArgs args =
        layout_args(topk_ids, num_tokens, top_k, num_physical_experts, num_ranks, num_nodes,
                    tokens_per_expert, tokens_per_rank, tokens_per_node, is_token_in_rank,
                    send_offsets, workspace, workspace_size);
    k::validate_layout(args);
    k::require_device();
    k::check_layout_device_pointers(args);
    k::launch_dispatch_layout(args, stream);
  });
}

eplb_status eplb_kernel_dispatch_layout_cpu(const int32_t* topk_ids, size_t num_tokens,
                                            size_t top_k, uint32_t num_physical_experts,
                                            uint32_t num_ranks, uint32_t num_nodes,
                                            int32_t* tokens_per_expert, int32_t* tokens_per_rank,
                                            int32_t* tokens_per_node, uint8_t* is_token_in_rank,
                                            int32_t* send_offsets, void* workspace,
                                            size_t workspace_size, void* /*stream*/) {
  return eplb::capi::guard([&] {
    k::dispatch_layout_cpu(layout_args(topk_ids, num_tokens, top_k, num_physical_experts, num_ranks,
                                       num_nodes, tokens_per_expert, tokens_per_rank,
                                       tokens_per_node, is_token_in_rank, send_offsets, workspace,
                                       workspace_size));
  });
}

eplb_status eplb_kernel_expert_sort_capacity(size_t num_tokens, size_t top_k, uint32_t num_experts,
                                             uint32_t block_size, size_t* out_capacity) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(out_capacity, "out_capacity");
    *out_capacity = k::sort_capacity(num_tokens, top_k, num_experts, block_size);
  });
}

eplb_status eplb_kernel_expert_sort_workspace_size(size_t num_tokens, size_t top_k,
                                                   uint32_t num_experts, size_t* out_bytes) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(out_bytes, "out_bytes");
    *out_bytes = k::sort_workspace_bytes(num_tokens, top_k, num_experts);
  });
}

eplb_status eplb_kernel_expert_sort(const int32_t* topk_ids, size_t num_tokens, size_t top_k,
                                    uint32_t num_experts, uint32_t block_size, size_t capacity,
                                    int32_t* sorted_ids, int32_t* block_experts,
                                    int32_t* expert_offsets, int32_t* inverse,
                                    int32_t* total_padded, void* workspace, size_t workspace_size,
                                    void* stream) {
  return eplb::capi::guard([&] {
    const k::SortArgs args =
        sort_args(topk_ids, num_tokens, top_k, num_experts, block_size, capacity, sorted_ids,
                  block_experts, expert_offsets, inverse, total_padded, workspace, workspace_size);
    k::validate_sort(args);
    k::require_device();
    k::check_sort_device_pointers(args);
    k::launch_expert_sort(args, stream);
  });
}

eplb_status eplb_kernel_expert_sort_cpu(const int32_t* topk_ids, size_t num_tokens, size_t top_k,
                                        uint32_t num_experts, uint32_t block_size, size_t capacity,
                                        int32_t* sorted_ids, int32_t* block_experts,
                                        int32_t* expert_offsets, int32_t* inverse,
                                        int32_t* total_padded, void* workspace,
                                        size_t workspace_size, void* /*stream*/) {
  return eplb::capi::guard([&] {
    k::expert_sort_cpu(sort_args(topk_ids, num_tokens, top_k, num_experts, block_size, capacity,
                                 sorted_ids, block_experts, expert_offsets, inverse, total_padded,
                                 workspace, workspace_size));
  });
}

eplb_status eplb_kernel_permute(const void* input, uint32_t dtype, size_t num_tokens, size_t top_k,
                                size_t hidden, const int32_t* inverse, size_t output_rows,
                                void* output, void* stream) {
  return eplb::capi::guard([&] {
    const k::PermuteArgs args =
        permute_args(input, dtype, num_tokens, top_k, hidden, inverse, output_rows, output);
    k::validate_permute(args);
    k::require_device();
    k::check_permute_device_pointers(args);
    k::launch_permute(args, stream);
  });
}

eplb_status eplb_kernel_permute_cpu(const void* input, uint32_t dtype, size_t num_tokens,
                                    size_t top_k, size_t hidden, const int32_t* inverse,
                                    size_t output_rows, void* output, void* /*stream*/) {
  return eplb::capi::guard([&] {
    k::permute_cpu(
        permute_args(input, dtype, num_tokens, top_k, hidden, inverse, output_rows, output));
  });
}

eplb_status eplb_kernel_unpermute(const void* permuted, uint32_t dtype, size_t num_tokens,
                                  size_t top_k, size_t hidden, const int32_t* inverse,
                                  const float* weights, size_t permuted_rows, void* output,
                                  void* stream) {
  return eplb::capi::guard([&] {
    const k::UnpermuteArgs args = unpermute_args(permuted, dtype, num_tokens, top_k, hidden,
                                                 inverse, weights, permuted_rows, output);
    k::validate_unpermute(args);
    k::require_device();
    k::check_unpermute_device_pointers(args);
    k::launch_unpermute(args, stream);
  });
}

eplb_status eplb_kernel_unpermute_cpu(const void* permuted, uint32_t dtype, size_t num_tokens,
                                      size_t top_k, size_t hidden, const int32_t* inverse,
                                      const float* weights, size_t permuted_rows, void* output,
                                      void* /*stream*/) {
  return eplb::capi::guard([&] {
    k::unpermute_cpu(unpermute_args(permuted, dtype, num_tokens, top_k, hidden, inverse, weights,
                                    permuted_rows, output));
  });
}

}  // extern "C"
