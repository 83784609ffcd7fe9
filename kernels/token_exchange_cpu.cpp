// CPU references of the token exchange's device steps (token_exchange.hpp). They define the
// semantics; token_exchange.cu reproduces them bit for bit.
#include <algorithm>
#include <cstring>
#include <vector>

#include "dispatch_rules.hpp"
#include "token_exchange.hpp"

namespace eplb::kernels {

namespace {

// Exclusive prefix sums of tokens_per_rank: where each destination's exact block starts.
std::vector<int64_t> rank_starts(const ExchangeGeometry& g) {
  std::vector<int64_t> start(g.num_ranks, 0);
  int64_t sum = 0;
  for (uint32_t r = 0; r < g.num_ranks; ++r) {
    start[r] = sum;
    sum += g.tokens_per_rank[r];
  }
  return start;
}

float load_element(const void* base, RowDtype dtype, size_t i) {
  switch (dtype) {
    case RowDtype::float32:
      return static_cast<const float*>(base)[i];
    case RowDtype::float16:
      return fp16_to_float(static_cast<const uint16_t*>(base)[i]);
    case RowDtype::bfloat16:
      return bf16_to_float(static_cast<const uint16_t*>(base)[i]);
  }
  return 0.0F;
}

void store_element(void* base, RowDtype dtype, size_t i, float value) {
  switch (dtype) {
    case RowDtype::float32:
      static_cast<float*>(base)[i] = value;
      return;
    case RowDtype::float16:
      static_cast<uint16_t*>(base)[i] = float_to_fp16(value);
      return;
    case RowDtype::bfloat16:
      static_cast<uint16_t*>(base)[i] = float_to_bf16(value);
      return;
  }
}

}  // namespace

void token_pack_cpu(const TokenPackArgs& a) {
  const ExchangeGeometry& g = a.geometry;
  const std::vector<int64_t> start = rank_starts(g);
  const size_t k = g.top_k;
  int32_t dropped = 0;
  for (size_t t = 0; t < g.num_tokens; ++t) {
    for (uint32_t r = 0; r < g.num_ranks; ++r) {
      const int64_t row = exchange_row(g, t, r, start[r]);
      if (row < 0) {
        dropped += g.send_offsets[t * g.num_ranks + r] >= 0 ? 1 : 0;
        continue;
      }
      const auto at = static_cast<size_t>(row);
      std::memcpy(static_cast<std::byte*>(a.send_rows) + at * a.row_bytes,
                  static_cast<const std::byte*>(a.rows) + t * a.row_bytes, a.row_bytes);
      for (size_t j = 0; j < k; ++j) {
        const int32_t slot = a.topk_slots[t * k + j];
        const bool here = slot_rank(slot, g.num_ranks, g.slots_per_rank) == static_cast<int32_t>(r);
        a.send_slots[at * k + j] = here ? slot_local(slot, g.num_ranks, g.slots_per_rank) : -1;
        a.send_weights[at * k + j] = here ? a.topk_weights[t * k + j] : 0.0F;
      }
    }
  }
  for (uint32_t r = 0; r < g.num_ranks; ++r) {
    const int32_t count = g.tokens_per_rank[r];
    const int32_t sent =
        g.capacity == 0 ? count : std::min(count, static_cast<int32_t>(g.capacity));
    a.count_message[r] = sent;
    if (g.capacity == 0) continue;
    // The unused rows of a padded slab carry no slot, so a receiver may treat the slab as rows.
    for (size_t i = static_cast<size_t>(sent) * k; i < size_t{g.capacity} * k; ++i) {
      a.send_slots[size_t{r} * g.capacity * k + i] = -1;
      a.send_weights[size_t{r} * g.capacity * k + i] = 0.0F;
    }
  }
  a.count_message[g.num_ranks] = static_cast<int32_t>(a.recv_capacity);
  if (a.dropped != nullptr) *a.dropped = dropped;
}

void recv_counts_cpu(const RecvCountsArgs& a) {
  for (uint32_t s = 0; s < a.num_ranks; ++s) {
    a.recv_counts[s] = a.gathered[size_t{s} * (a.num_ranks + 1) + a.rank];
  }
}

void token_combine_cpu(const TokenCombineArgs& a) {
  const ExchangeGeometry& g = a.geometry;
  const std::vector<int64_t> start = rank_starts(g);
  std::vector<float> sum(a.hidden);
  for (size_t t = 0; t < g.num_tokens; ++t) {
    // From -0, the additive identity (so a single -0 term stays -0), as the kernel does; a token
    // without destinations gets +0.
    std::fill(sum.begin(), sum.end(), -0.0F);
    bool any = false;
    for (uint32_t r = 0; r < g.num_ranks; ++r) {
      const int64_t row = exchange_row(g, t, r, start[r]);
      if (row < 0) continue;
      any = true;
      const size_t base = static_cast<size_t>(row) * a.hidden;
      for (size_t h = 0; h < a.hidden; ++h) sum[h] += load_element(a.partial, a.dtype, base + h);
    }
    if (!any) std::fill(sum.begin(), sum.end(), 0.0F);
    for (size_t h = 0; h < a.hidden; ++h) store_element(a.out, a.dtype, t * a.hidden + h, sum[h]);
  }
}

}  // namespace eplb::kernels
