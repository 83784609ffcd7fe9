// Host-side validation and CPU references of the dispatch kernels (dispatch.hpp). Plain C++,
// always built. The CPU references define the semantics; dispatch.cu reproduces them bit for bit.
// This file is compiled with -ffp-contract=off so that the unpermute sum is one multiply and one
// add per term in float32, exactly like the GPU's __fmul_rn / __fadd_rn.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../core/error.hpp"
#include "argument_checks.hpp"
#include "device.hpp"
#include "dispatch.hpp"
#include "dispatch_rules.hpp"

namespace eplb::kernels {

namespace {

constexpr size_t kInt32Max = static_cast<size_t>(std::numeric_limits<int32_t>::max());
constexpr size_t kLayoutTokensPerBlock = 128;  // must match dispatch.cu
constexpr size_t kSortPairsPerChunk = 1024;    // must match dispatch.cu

void require_device_array(const void* pointer, size_t length, const char* name) {
  if (length > 0) require_device_pointer(pointer, name);
}

// The kernels use the workspace as int32 arrays: a misaligned one would be a misaligned address
// on the GPU (checked here, in the shared validation, so the CPU reference rejects it too).
void require_workspace_aligned(const void* workspace) {
  require_aligned(workspace, alignof(int32_t), "workspace", "the kernels use it as int32 arrays");
}

void validate_topology(uint32_t num_experts, uint32_t num_ranks, uint32_t num_nodes) {
  if (num_experts == 0 || num_experts > kMaxPhysicalExperts) {
    fail_invalid("num_physical_experts (", num_experts, ") must be in [1, ", kMaxPhysicalExperts,
                 "]");
  }
  if (num_ranks == 0 || num_ranks > kMaxRanks) {
    fail_invalid("num_ranks (", num_ranks, ") must be in [1, ", kMaxRanks, "]");
  }
  if (num_experts % num_ranks != 0) {
    fail_invalid("num_physical_experts (", num_experts, ") is not a multiple of num_ranks (",
                 num_ranks, ")");
  }
  if (num_nodes == 0 || num_ranks % num_nodes != 0) {
    fail_invalid("num_nodes (", num_nodes, ") must be >= 1 and divide num_ranks (", num_ranks, ")");
  }
}

void validate_topk_shape(size_t num_tokens, size_t top_k) {
  if (top_k == 0) fail_invalid("top_k (0) must be >= 1");
  static_cast<void>(product_within_int32(num_tokens, top_k, "num_tokens", "top_k"));
}

size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

void validate_rows(RowDtype dtype, size_t hidden) {
  const auto raw_dtype = static_cast<uint32_t>(dtype);
  if (raw_dtype > static_cast<uint32_t>(RowDtype::bfloat16)) {
    fail_invalid("dtype (", raw_dtype, ") is not an eplb_row_dtype (0, 1 or 2)");
  }
  // The GPU kernels' grids have one y-block per 128 or 256 vectors of 16 bytes (at most 65535
  // blocks; 2^24 float32 elements are 32768 of them), and count vectors in int.
  if (hidden == 0 || hidden % 8 != 0 || hidden > (size_t{1} << 24)) {
    fail_invalid("hidden (", hidden, ") must be a positive multiple of 8, at most 2^24");
  }
}

// Elements * hidden * bytes must fit in size_t (the row buffers' byte sizes).
void require_row_bytes(size_t rows, size_t hidden, RowDtype dtype, const char* rows_name) {
  const size_t row_bytes = hidden * row_dtype_bytes(dtype);
  if (hidden > std::numeric_limits<size_t>::max() / 4 ||
      (rows != 0 && row_bytes > std::numeric_limits<size_t>::max() / rows)) {
    fail(Errc::out_of_memory, rows_name, " (", rows, ") * hidden (", hidden, ") overflows size_t");
  }
}

float load_element(const void* rows, RowDtype dtype, size_t index) {
  switch (dtype) {
    case RowDtype::float32:
      return static_cast<const float*>(rows)[index];
    case RowDtype::float16:
      return fp16_to_float(static_cast<const uint16_t*>(rows)[index]);
    case RowDtype::bfloat16:
      return bf16_to_float(static_cast<const uint16_t*>(rows)[index]);
  }
  return 0.0f;
}

void store_element(void* rows, RowDtype dtype, size_t index, float value) {
  switch (dtype) {
    case RowDtype::float32:
      static_cast<float*>(rows)[index] = value;
      return;
    case RowDtype::float16:
      static_cast<uint16_t*>(rows)[index] = float_to_fp16(value);
      return;
    case RowDtype::bfloat16:
      static_cast<uint16_t*>(rows)[index] = float_to_bf16(value);
      return;
  }
}

}  // namespace

size_t row_dtype_bytes(RowDtype dtype) noexcept { return dtype == RowDtype::float32 ? 4 : 2; }

// --- conversions
// ----------------------------------------------------------------------------------

float bf16_to_float(uint16_t bits) noexcept {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

uint16_t float_to_bf16(float value) noexcept {
  const uint32_t u = std::bit_cast<uint32_t>(value);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fff;
  const uint32_t rounding_bias = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding_bias) >> 16);
}

float fp16_to_float(uint16_t bits) noexcept {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  const uint32_t mantissa = bits & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign != 0 ? -magnitude : magnitude;
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

uint16_t float_to_fp16(float value) noexcept {
  const uint32_t u = std::bit_cast<uint32_t>(value);
  const auto sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return 0x7fff;                                  // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (a >= 0x38800000u) {                                              // normal half
    const uint32_t exponent = (a >> 23) - 112u;
    uint32_t half = (exponent << 10) | ((a & 0x7fffffu) >> 13);
    const uint32_t remainder = a & 0x1fffu;
    if (remainder > 0x1000u || (remainder == 0x1000u && (half & 1u) != 0)) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  if (a <= 0x33000000u) return sign;  // <= 2^-25 rounds (ties to even) to zero
  // Subnormal half: units of 2^-24.
  const uint32_t mantissa = (a & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126u - (a >> 23);  // in [14, 24]
  uint32_t half = mantissa >> shift;
  const uint32_t remainder = mantissa & ((1u << shift) - 1u);
  const uint32_t halfway = 1u << (shift - 1u);
  if (remainder > halfway || (remainder == halfway && (half & 1u) != 0)) ++half;
  return static_cast<uint16_t>(sign | half);
}

// --- dispatch layout
// ------------------------------------------------------------------------------

size_t layout_workspace_bytes(size_t num_tokens, size_t top_k, uint32_t num_experts,
                              uint32_t num_ranks, uint32_t num_nodes) {
  validate_topk_shape(num_tokens, top_k);
  validate_topology(num_experts, num_ranks, num_nodes);
  static_cast<void>(product_within_int32(num_tokens, num_ranks, "num_tokens", "num_ranks"));
  const size_t blocks = ceil_div(num_tokens, kLayoutTokensPerBlock);
  const size_t columns = size_t{num_experts} + num_ranks + num_nodes;
  // Per-block partial counts [blocks][columns] and rank bit words [blocks * 4][num_ranks].
  return sizeof(int32_t) * blocks * (columns + 4 * size_t{num_ranks});
}

void validate_layout(const LayoutArgs& a) {
  const size_t needed =
      layout_workspace_bytes(a.num_tokens, a.top_k, a.num_experts, a.num_ranks, a.num_nodes);
  require_array(a.topk_ids, a.num_tokens * a.top_k, "topk_ids");
  require_array(a.tokens_per_expert, 1, "tokens_per_expert");
  require_array(a.tokens_per_rank, 1, "tokens_per_rank");
  require_array(a.tokens_per_node, 1, "tokens_per_node");
  require_array(a.is_token_in_rank, a.num_tokens, "is_token_in_rank");
  require_element_aligned(a.send_offsets, "send_offsets");
  if (a.workspace_size < needed) {
    fail_invalid("workspace_size (", a.workspace_size, ") is less than the ", needed,
                 " bytes eplb_kernel_dispatch_layout_workspace_size reports");
  }
  require_array(static_cast<const char*>(a.workspace), needed, "workspace");
  require_workspace_aligned(a.workspace);
}

void check_layout_device_pointers(const LayoutArgs& a) {
  require_device_array(a.topk_ids, a.num_tokens * a.top_k, "topk_ids");
  require_device_pointer(a.tokens_per_expert, "tokens_per_expert");
  require_device_pointer(a.tokens_per_rank, "tokens_per_rank");
  require_device_pointer(a.tokens_per_node, "tokens_per_node");
  require_device_array(a.is_token_in_rank, a.num_tokens, "is_token_in_rank");
  if (a.send_offsets != nullptr) require_device_array(a.send_offsets, a.num_tokens, "send_offsets");
  require_device_array(
      a.workspace,
      layout_workspace_bytes(a.num_tokens, a.top_k, a.num_experts, a.num_ranks, a.num_nodes),
      "workspace");
}

void dispatch_layout_cpu(const LayoutArgs& a) {
  validate_layout(a);
  const size_t experts_per_rank = a.num_experts / a.num_ranks;
  const size_t ranks_per_node = a.num_ranks / a.num_nodes;
  std::vector<int32_t> per_expert(a.num_experts, 0);
  std::vector<int32_t> per_rank(a.num_ranks, 0);
  std::vector<int32_t> per_node(a.num_nodes, 0);
  std::vector<uint8_t> in_rank(a.num_ranks);
  std::vector<uint8_t> in_node(a.num_nodes);
  for (size_t t = 0; t < a.num_tokens; ++t) {
    std::fill(in_rank.begin(), in_rank.end(), uint8_t{0});
    std::fill(in_node.begin(), in_node.end(), uint8_t{0});
    for (size_t k = 0; k < a.top_k; ++k) {
      const int32_t id = a.topk_ids[t * a.top_k + k];
      const int32_t rank = slot_rank(id, a.num_ranks, static_cast<uint32_t>(experts_per_rank));
      if (rank < 0) continue;  // masked or invalid
      if (static_cast<uint32_t>(id) < a.num_experts) ++per_expert[static_cast<size_t>(id)];
      in_rank[static_cast<size_t>(rank)] = 1;
      in_node[static_cast<size_t>(rank) / ranks_per_node] = 1;
    }
    for (size_t r = 0; r < a.num_ranks; ++r) {
      a.is_token_in_rank[t * a.num_ranks + r] = in_rank[r];
      per_rank[r] += in_rank[r];
    }
    for (size_t n = 0; n < a.num_nodes; ++n) per_node[n] += in_node[n];
  }
  if (a.send_offsets != nullptr) {
    // Rank-major packed send buffer: rank r's rows start after all rows of ranks < r, and hold
    // its tokens in increasing token order.
    std::vector<int32_t> next(a.num_ranks, 0);
    int32_t start = 0;
    for (size_t r = 0; r < a.num_ranks; ++r) {
      next[r] = start;
      start += per_rank[r];
    }
    for (size_t t = 0; t < a.num_tokens; ++t) {
      for (size_t r = 0; r < a.num_ranks; ++r) {
        const size_t cell = t * a.num_ranks + r;
        a.send_offsets[cell] = a.is_token_in_rank[cell] != 0 ? next[r]++ : -1;
      }
    }
  }
  std::copy(per_expert.begin(), per_expert.end(), a.tokens_per_expert);
  std::copy(per_rank.begin(), per_rank.end(), a.tokens_per_rank);
  std::copy(per_node.begin(), per_node.end(), a.tokens_per_node);
}

// --- expert sort
// ----------------------------------------------------------------------------------

size_t sort_capacity(size_t num_tokens, size_t top_k, uint32_t num_experts, uint32_t block_size) {
  validate_topk_shape(num_tokens, top_k);
  if (num_experts == 0 || num_experts > kMaxPhysicalExperts) {
    fail_invalid("num_experts (", num_experts, ") must be in [1, ", kMaxPhysicalExperts, "]");
  }
  if (block_size == 0 || block_size > 65536) {
    fail_invalid("block_size (", block_size, ") must be in [1, 65536]");
  }
  const size_t pairs = num_tokens * top_k;  // < 2^31
  const size_t padded_segments = std::min(pairs, size_t{num_experts});
  const size_t bound = pairs + padded_segments * (block_size - 1);  // < 2^31 + 2^13 * 2^16
  const size_t capacity = ceil_div(bound, block_size) * block_size;
  if (capacity > kInt32Max) {
    fail_invalid("the padded length (", capacity, ") of num_tokens (", num_tokens, ") * top_k (",
                 top_k, ") with block_size (", block_size, ") exceeds 2^31 - 1");
  }
  return capacity;
}

size_t sort_workspace_bytes(size_t num_tokens, size_t top_k, uint32_t num_experts) {
  validate_topk_shape(num_tokens, top_k);
  if (num_experts == 0 || num_experts > kMaxPhysicalExperts) {
    fail_invalid("num_experts (", num_experts, ") must be in [1, ", kMaxPhysicalExperts, "]");
  }
  const size_t chunks = ceil_div(num_tokens * top_k, kSortPairsPerChunk);
  // Per-chunk counts [chunks][num_experts] (then their prefix over chunks) and totals [E].
  return sizeof(int32_t) * (chunks + 1) * num_experts;
}

void validate_sort(const SortArgs& a) {
  const size_t minimum = sort_capacity(a.num_tokens, a.top_k, a.num_experts, a.block_size);
  const size_t needed = sort_workspace_bytes(a.num_tokens, a.top_k, a.num_experts);
  if (a.capacity < minimum || a.capacity % a.block_size != 0 || a.capacity > kInt32Max) {
    fail_invalid("capacity (", a.capacity, ") must be a multiple of block_size (", a.block_size,
                 "), at least ", minimum, " (eplb_kernel_expert_sort_capacity) and < 2^31");
  }
  require_array(a.topk_ids, a.num_tokens * a.top_k, "topk_ids");
  require_array(a.sorted_ids, a.capacity, "sorted_ids");
  require_array(a.block_experts, a.capacity / a.block_size, "block_experts");
  require_array(a.expert_offsets, 1, "expert_offsets");
  require_array(a.inverse, a.num_tokens * a.top_k, "inverse");
  require_array(a.total_padded, 1, "total_padded");
  if (a.workspace_size < needed) {
    fail_invalid("workspace_size (", a.workspace_size, ") is less than the ", needed,
                 " bytes eplb_kernel_expert_sort_workspace_size reports");
  }
  require_array(static_cast<const char*>(a.workspace), needed, "workspace");
  require_workspace_aligned(a.workspace);
}

void check_sort_device_pointers(const SortArgs& a) {
  const size_t pairs = a.num_tokens * a.top_k;
  require_device_array(a.topk_ids, pairs, "topk_ids");
  require_device_array(a.sorted_ids, a.capacity, "sorted_ids");
  require_device_array(a.block_experts, a.capacity / a.block_size, "block_experts");
  require_device_pointer(a.expert_offsets, "expert_offsets");
  require_device_array(a.inverse, pairs, "inverse");
  require_device_pointer(a.total_padded, "total_padded");
  require_device_array(a.workspace, sort_workspace_bytes(a.num_tokens, a.top_k, a.num_experts),
                       "workspace");
}

void expert_sort_cpu(const SortArgs& a) {
  validate_sort(a);
  const size_t pairs = a.num_tokens * a.top_k;
  const auto pad = static_cast<int32_t>(pairs);
  const size_t experts = a.num_experts;
  std::vector<int32_t> counts(experts, 0);
  for (size_t i = 0; i < pairs; ++i) {
    const int32_t id = a.topk_ids[i];
    if (id >= 0 && static_cast<size_t>(id) < experts) ++counts[static_cast<size_t>(id)];
  }
  std::vector<int32_t> offsets(experts + 1, 0);
  const auto block = static_cast<int32_t>(a.block_size);
  for (size_t e = 0; e < experts; ++e) {
    offsets[e + 1] = offsets[e] + (counts[e] + block - 1) / block * block;
  }
  const int32_t total = offsets[experts];
  std::fill(a.sorted_ids, a.sorted_ids + a.capacity, pad);
  std::vector<int32_t> cursor(offsets.begin(), offsets.end() - 1);
  for (size_t i = 0; i < pairs; ++i) {
    const int32_t id = a.topk_ids[i];
    if (id >= 0 && static_cast<size_t>(id) < experts) {
      const int32_t position = cursor[static_cast<size_t>(id)]++;
      a.sorted_ids[position] = static_cast<int32_t>(i);
      a.inverse[i] = position;
    } else {
      a.inverse[i] = -1;
    }
  }
  const size_t blocks = a.capacity / a.block_size;
  size_t expert = 0;
  for (size_t b = 0; b < blocks; ++b) {
    const auto start = static_cast<int32_t>(b * a.block_size);
    if (start >= total) {
      a.block_experts[b] = -1;
      continue;
    }
    while (offsets[expert + 1] <= start) ++expert;
    a.block_experts[b] = static_cast<int32_t>(expert);
  }
  std::copy(offsets.begin(), offsets.end(), a.expert_offsets);
  *a.total_padded = total;
}

// --- permute / unpermute
// --------------------------------------------------------------------------

void validate_permute(const PermuteArgs& a) {
  validate_rows(a.dtype, a.hidden);
  validate_topk_shape(a.num_tokens, a.top_k);
  if (a.output_rows > kInt32Max) fail_invalid("output_rows (", a.output_rows, ") exceeds 2^31 - 1");
  require_row_bytes(a.num_tokens, a.hidden, a.dtype, "num_tokens");
  require_row_bytes(a.output_rows, a.hidden, a.dtype, "output_rows");
  require_array(static_cast<const char*>(a.input), a.num_tokens, "input");
  require_array(a.inverse, a.num_tokens * a.top_k, "inverse");
  require_array(static_cast<const char*>(a.output), a.output_rows, "output");
  require_aligned16(a.input, "input");
  require_aligned16(a.output, "output");
}

void check_permute_device_pointers(const PermuteArgs& a) {
  require_device_array(a.input, a.num_tokens, "input");
  require_device_array(a.inverse, a.num_tokens * a.top_k, "inverse");
  require_device_array(a.output, a.output_rows, "output");
}

void permute_cpu(const PermuteArgs& a) {
  validate_permute(a);
  const size_t row_bytes = a.hidden * row_dtype_bytes(a.dtype);
  const auto* input = static_cast<const unsigned char*>(a.input);
  auto* output = static_cast<unsigned char*>(a.output);
  for (size_t t = 0; t < a.num_tokens; ++t) {
    for (size_t k = 0; k < a.top_k; ++k) {
      const int32_t row = a.inverse[t * a.top_k + k];
      if (row < 0 || static_cast<size_t>(row) >= a.output_rows) continue;
      std::memcpy(output + static_cast<size_t>(row) * row_bytes, input + t * row_bytes, row_bytes);
    }
  }
}

void validate_unpermute(const UnpermuteArgs& a) {
  validate_rows(a.dtype, a.hidden);
  validate_topk_shape(a.num_tokens, a.top_k);
  if (a.permuted_rows > kInt32Max) {
    fail_invalid("permuted_rows (", a.permuted_rows, ") exceeds 2^31 - 1");
  }
  require_row_bytes(a.num_tokens, a.hidden, a.dtype, "num_tokens");
  require_row_bytes(a.permuted_rows, a.hidden, a.dtype, "permuted_rows");
  require_array(static_cast<const char*>(a.permuted), a.permuted_rows, "permuted");
  require_array(a.inverse, a.num_tokens * a.top_k, "inverse");
  require_array(a.weights, a.num_tokens * a.top_k, "weights");
  require_array(static_cast<const char*>(a.output), a.num_tokens, "output");
  require_aligned16(a.permuted, "permuted");
  require_aligned16(a.output, "output");
}

void check_unpermute_device_pointers(const UnpermuteArgs& a) {
  require_device_array(a.permuted, a.permuted_rows, "permuted");
  require_device_array(a.inverse, a.num_tokens * a.top_k, "inverse");
  require_device_array(a.weights, a.num_tokens * a.top_k, "weights");
  require_device_array(a.output, a.num_tokens, "output");
}

void unpermute_cpu(const UnpermuteArgs& a) {
  validate_unpermute(a);
  std::vector<float> sum(a.hidden);
  for (size_t t = 0; t < a.num_tokens; ++t) {
    // -0 is the additive identity (-0 + x == x for every x, signed zeros included), so one slot
    // with weight 1 reproduces its row exactly; a token with no valid slot gets +0.
    std::fill(sum.begin(), sum.end(), -0.0f);
    bool any = false;
    for (size_t k = 0; k < a.top_k; ++k) {
      const int32_t row = a.inverse[t * a.top_k + k];
      if (row < 0 || static_cast<size_t>(row) >= a.permuted_rows) continue;
      any = true;
      const float weight = a.weights[t * a.top_k + k];
      const size_t base = static_cast<size_t>(row) * a.hidden;
      for (size_t h = 0; h < a.hidden; ++h) {
        const float product = weight * load_element(a.permuted, a.dtype, base + h);
        sum[h] = sum[h] + product;
      }
    }
    if (!any) std::fill(sum.begin(), sum.end(), 0.0f);
    for (size_t h = 0; h < a.hidden; ++h)
      store_element(a.output, a.dtype, t * a.hidden + h, sum[h]);
  }
}

}  // namespace eplb::kernels
