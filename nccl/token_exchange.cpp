#include "token_exchange.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../kernels/argument_checks.hpp"
#include "error.hpp"

namespace eplb::nccl {

namespace {

constexpr std::size_t kAlign = 256;
constexpr std::size_t kInt32Max =
    static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max());

std::size_t align_up(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// a * b * c bytes, or Error(out_of_memory) naming `what` when it overflows.
std::size_t product(std::size_t a, std::size_t b, std::size_t c, const char* what) {
  const std::size_t limit = std::numeric_limits<std::size_t>::max() / 4;
  if ((a != 0 && b > limit / a) || (a * b != 0 && c > limit / (a * b))) {
    fail(Errc::out_of_memory, what, " (", a, " x ", b, " x ", c, " bytes) overflows size_t");
  }
  return a * b * c;
}

// The sizes of TokenExchangeBuffers' fields in carve order.
struct BufferSizes {
  std::size_t per_expert, per_rank, per_node, in_rank, offsets, workspace, rows, slots, weights,
      message, gathered, partial;
};

BufferSizes buffer_sizes(const TokenExchangeShape& s) {
  s.validate();
  const std::size_t ranks = s.num_ranks, tokens = s.max_tokens, rows = s.send_rows();
  return BufferSizes{
      .per_expert = product(ranks, s.slots_per_rank, sizeof(std::int32_t), "tokens_per_expert"),
      .per_rank = product(ranks, 1, sizeof(std::int32_t), "tokens_per_rank"),
      .per_node = sizeof(std::int32_t),
      .in_rank = product(tokens, ranks, 1, "is_token_in_rank"),
      .offsets = product(tokens, ranks, sizeof(std::int32_t), "send_offsets"),
      .workspace = kernels::layout_workspace_bytes(tokens, s.top_k, s.num_ranks * s.slots_per_rank,
                                                   s.num_ranks, 1),
      .rows = product(rows, s.row_bytes, 1, "the send rows"),
      .slots = product(rows, s.top_k, sizeof(std::int32_t), "the send slots"),
      .weights = product(rows, s.top_k, sizeof(float), "the send weights"),
      .message = product(ranks + 1, 1, sizeof(std::int32_t), "the count message"),
      .gathered = product(ranks, ranks + 1, sizeof(std::int32_t), "the count matrix"),
      .partial = product(rows, s.out_row_bytes(), 1, "the partial outputs")};
}

template <typename T>
T* take(std::byte*& cursor, std::size_t bytes) {
  T* at = reinterpret_cast<T*>(cursor);
  cursor += align_up(bytes);
  return at;
}

template <typename T>
std::span<const std::byte> bytes_of(const T* data, std::size_t count) {
  return {reinterpret_cast<const std::byte*>(data), count * sizeof(T)};
}

template <typename T>
std::span<std::byte> writable_bytes_of(T* data, std::size_t count) {
  return {reinterpret_cast<std::byte*>(data), count * sizeof(T)};
}

}  // namespace

void TokenExchangeShape::validate() const {
  if (num_ranks == 0 || num_ranks > kernels::kMaxRanks) {
    fail_invalid("num_ranks (", num_ranks, ") must be in [1, ", kernels::kMaxRanks, "]");
  }
  if (rank >= num_ranks)
    fail_invalid("rank (", rank, ") must be below num_ranks (", num_ranks, ")");
  // slots_per_rank + 1 local slots (the shared expert's last) must stay sortable on a rank.
  if (slots_per_rank == 0 ||
      std::uint64_t{slots_per_rank} * num_ranks > kernels::kMaxPhysicalExperts ||
      slots_per_rank >= kernels::kMaxPhysicalExperts) {
    fail_invalid("slots_per_rank (", slots_per_rank, ") must be in [1, ",
                 kernels::kMaxPhysicalExperts - 1,
                 "] with num_ranks x slots_per_rank <= ", kernels::kMaxPhysicalExperts);
  }
  if (top_k == 0) fail_invalid("top_k (0) must be >= 1");
  if (row_bytes == 0 || row_bytes % 16 != 0 || row_bytes > kInt32Max) {
    fail_invalid("row_bytes (", row_bytes, ") must be a positive multiple of 16 below 2^31");
  }
  // The combine kernel's grid has one y-block per 128 vectors of 16 bytes (at most 65535).
  if (hidden == 0 || hidden % 8 != 0 || hidden > (std::size_t{1} << 24)) {
    fail_invalid("hidden (", hidden, ") must be a positive multiple of 8, at most 2^24");
  }
  const auto dtype = static_cast<std::uint32_t>(out_dtype);
  if (dtype > static_cast<std::uint32_t>(kernels::RowDtype::bfloat16)) {
    fail_invalid("out_dtype (", dtype, ") is not an eplb_row_dtype (0, 1 or 2)");
  }
  if (max_tokens == 0) fail_invalid("max_tokens (0) must be >= 1");
  // The kernels index rows, slots and positions with 32-bit ints.
  if (std::uint64_t{max_tokens} * std::max(num_ranks, top_k) > kInt32Max ||
      std::uint64_t{capacity} * num_ranks * top_k > kInt32Max) {
    fail_invalid("max_tokens (", max_tokens, ") or capacity (", capacity,
                 ") is too large: rows x top_k and rows x num_ranks must stay below 2^31");
  }
}

std::size_t TokenExchangeShape::send_rows() const {
  if (capacity > 0) return std::size_t{num_ranks} * capacity;
  return std::size_t{max_tokens} * std::min(num_ranks, top_k);
}

std::size_t TokenExchangeShape::padded_recv_rows() const {
  return std::size_t{num_ranks} * capacity;
}

std::size_t TokenExchangeShape::out_row_bytes() const {
  return hidden * kernels::row_dtype_bytes(out_dtype);
}

std::size_t TokenExchangeBuffers::bytes(const TokenExchangeShape& shape) {
  const BufferSizes z = buffer_sizes(shape);
  std::size_t total = 0;
  for (const std::size_t part :
       {z.per_expert, z.per_rank, z.per_node, z.in_rank, z.offsets, z.workspace, z.rows, z.slots,
        z.weights, z.message, z.gathered, z.partial}) {
    if (part > std::numeric_limits<std::size_t>::max() / 2 - total) {
      fail(Errc::out_of_memory, "the token exchange's buffers overflow size_t");
    }
    total += align_up(part);
  }
  return total;
}

TokenExchangeBuffers TokenExchangeBuffers::carve(const TokenExchangeShape& shape, void* base) {
  const BufferSizes z = buffer_sizes(shape);
  auto* cursor = static_cast<std::byte*>(base);
  TokenExchangeBuffers b;
  b.tokens_per_expert = take<std::int32_t>(cursor, z.per_expert);
  b.tokens_per_rank = take<std::int32_t>(cursor, z.per_rank);
  b.tokens_per_node = take<std::int32_t>(cursor, z.per_node);
  b.is_token_in_rank = take<std::uint8_t>(cursor, z.in_rank);
  b.send_offsets = take<std::int32_t>(cursor, z.offsets);
  b.layout_workspace = take<std::byte>(cursor, z.workspace);
  b.layout_workspace_bytes = z.workspace;
  b.send_rows = take<std::byte>(cursor, z.rows);
  b.send_slots = take<std::int32_t>(cursor, z.slots);
  b.send_weights = take<float>(cursor, z.weights);
  b.count_message = take<std::int32_t>(cursor, z.message);
  b.gathered = take<std::int32_t>(cursor, z.gathered);
  b.partial = take<std::byte>(cursor, z.partial);
  return b;
}

void CpuTokenExchangeDevice::layout(const kernels::LayoutArgs& args) {
  kernels::dispatch_layout_cpu(args);
}
void CpuTokenExchangeDevice::pack(const kernels::TokenPackArgs& args) {
  kernels::token_pack_cpu(args);
}
void CpuTokenExchangeDevice::recv_counts(const kernels::RecvCountsArgs& args) {
  kernels::recv_counts_cpu(args);
}
void CpuTokenExchangeDevice::combine(const kernels::TokenCombineArgs& args) {
  kernels::token_combine_cpu(args);
}
void CpuTokenExchangeDevice::read(std::span<std::int32_t> to, const std::int32_t* from) {
  std::copy_n(from, to.size(), to.begin());
}
void CpuTokenExchangeDevice::require_memory(const void* pointer, const char* name) {
  if (pointer == nullptr) fail_invalid(name, " is NULL");
}

TokenExchange::TokenExchange(const TokenExchangeShape& shape, const TokenExchangeBuffers& buffers)
    : shape_(shape), buffers_(buffers) {
  shape_.validate();
}

kernels::ExchangeGeometry TokenExchange::geometry(std::size_t num_tokens) const {
  kernels::ExchangeGeometry g;
  g.num_tokens = num_tokens;
  g.num_ranks = shape_.num_ranks;
  g.slots_per_rank = shape_.slots_per_rank;
  g.top_k = shape_.top_k;
  g.capacity = shape_.capacity;
  g.tokens_per_rank = buffers_.tokens_per_rank;
  g.send_offsets = buffers_.send_offsets;
  return g;
}

std::int32_t TokenExchange::sent(std::uint32_t from, std::uint32_t to) const {
  return gathered_[std::size_t{from} * (shape_.num_ranks + 1) + to];
}

std::uint64_t TokenExchange::dispatch(const DispatchRequest& q, TokenExchangeDevice& device,
                                      MigrationTransport& transport) {
  const TokenExchangeShape& s = shape_;
  const std::uint32_t ranks = s.num_ranks, me = s.rank, k = s.top_k;
  const bool padded = s.capacity > 0;
  dispatched_ = false;  // a failed dispatch leaves nothing to combine
  // Everything a host can check, before any message.
  if (q.num_tokens > s.max_tokens) {
    fail_invalid("num_tokens (", q.num_tokens, ") exceeds the exchange's max_tokens (",
                 s.max_tokens, ")");
  }
  if (padded && q.recv_capacity < s.padded_recv_rows()) {
    fail_invalid("recv_capacity (", q.recv_capacity, ") is less than num_ranks x capacity (",
                 s.padded_recv_rows(), ") rows, what a padded dispatch receives");
  }
  if (q.num_tokens > 0) {
    device.require_memory(q.topk_slots, "topk_slots");
    device.require_memory(q.topk_weights, "topk_weights");
    device.require_memory(q.rows, "rows");
    kernels::require_element_aligned(q.topk_slots, "topk_slots");
    kernels::require_element_aligned(q.topk_weights, "topk_weights");
    kernels::require_aligned16(q.rows, "rows");
  }
  if (q.recv_capacity > 0) {
    device.require_memory(q.recv_rows, "recv_rows");
    device.require_memory(q.recv_slots, "recv_local_slots");
    device.require_memory(q.recv_weights, "recv_weights");
    kernels::require_element_aligned(q.recv_slots, "recv_local_slots");
    kernels::require_element_aligned(q.recv_weights, "recv_weights");
    kernels::require_aligned16(q.recv_rows, "recv_rows");
  }
  device.require_memory(q.recv_counts, "recv_counts");
  kernels::require_element_aligned(q.recv_counts, "recv_counts");
  if (q.dropped != nullptr) device.require_memory(q.dropped, "dropped");
  kernels::require_element_aligned(q.dropped, "dropped");

  // 1-2: layout and pack.
  kernels::LayoutArgs layout;
  layout.topk_ids = q.topk_slots;
  layout.num_tokens = q.num_tokens;
  layout.top_k = k;
  layout.num_experts = ranks * s.slots_per_rank;
  layout.num_ranks = ranks;
  layout.num_nodes = 1;
  layout.tokens_per_expert = buffers_.tokens_per_expert;
  layout.tokens_per_rank = buffers_.tokens_per_rank;
  layout.tokens_per_node = buffers_.tokens_per_node;
  layout.is_token_in_rank = buffers_.is_token_in_rank;
  layout.send_offsets = buffers_.send_offsets;
  layout.workspace = buffers_.layout_workspace;
  layout.workspace_size = buffers_.layout_workspace_bytes;
  device.layout(layout);
  kernels::TokenPackArgs pack;
  pack.geometry = geometry(q.num_tokens);
  pack.topk_slots = q.topk_slots;
  pack.topk_weights = q.topk_weights;
  pack.rows = q.rows;
  pack.row_bytes = s.row_bytes;
  pack.recv_capacity =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(q.recv_capacity, kInt32Max));
  pack.send_rows = buffers_.send_rows;
  pack.send_slots = buffers_.send_slots;
  pack.send_weights = buffers_.send_weights;
  pack.count_message = buffers_.count_message;
  pack.dropped = q.dropped;
  device.pack(pack);

  // 3: the count messages, every rank to every rank.
  const std::size_t message = ranks + std::size_t{1};
  for (std::uint32_t p = 0; p < ranks; ++p)
    transport.send(p, bytes_of(buffers_.count_message, message));
  for (std::uint32_t p = 0; p < ranks; ++p) {
    transport.recv(p, writable_bytes_of(buffers_.gathered + p * message, message));
  }
  const auto post_block = [&](std::uint32_t peer, std::size_t send_at, std::size_t send_n,
                              std::size_t recv_at, std::size_t recv_n) {
    // Rows, then slots, then weights, in both directions; empty blocks are skipped on both sides
    // (both know the sizes).
    if (send_n > 0) {
      transport.send(
          peer, bytes_of(static_cast<const std::byte*>(buffers_.send_rows) + send_at * s.row_bytes,
                         send_n * s.row_bytes));
      transport.send(peer, bytes_of(buffers_.send_slots + send_at * k, send_n * k));
      transport.send(peer, bytes_of(buffers_.send_weights + send_at * k, send_n * k));
    }
    if (recv_n > 0) {
      transport.recv(peer,
                     writable_bytes_of(static_cast<std::byte*>(q.recv_rows) + recv_at * s.row_bytes,
                                       recv_n * s.row_bytes));
      transport.recv(peer, writable_bytes_of(q.recv_slots + recv_at * k, recv_n * k));
      transport.recv(peer, writable_bytes_of(q.recv_weights + recv_at * k, recv_n * k));
    }
  };

  std::uint64_t received = 0;
  if (padded) {
    // 4 (padded): fixed-size slabs in the same group as the counts.
    for (std::uint32_t p = 0; p < ranks; ++p) {
      post_block(p, std::size_t{p} * s.capacity, s.capacity, std::size_t{p} * s.capacity,
                 s.capacity);
    }
    transport.wait();
    received = s.padded_recv_rows();
  } else {
    // 4 (exact): read the count matrix, check every rank's capacity, then the exact blocks.
    transport.wait();
    gathered_.assign(std::size_t{ranks} * message, 0);
    device.read(gathered_, buffers_.gathered);
    for (std::uint32_t d = 0; d < ranks; ++d) {
      std::uint64_t total = 0;
      for (std::uint32_t from = 0; from < ranks; ++from) {
        if (sent(from, d) < 0) {
          fail(Errc::internal, "rank ", from, " announced ", sent(from, d), " tokens for rank ", d);
        }
        total += static_cast<std::uint64_t>(sent(from, d));
      }
      const auto capacity = static_cast<std::uint64_t>(sent(d, ranks));
      if (total > capacity) {
        fail(Errc::buffer_too_small, "rank ", d, " receives ", total,
             " tokens in this dispatch, more than its recv_capacity (", capacity,
             "); every rank of the group fails this call alike");
      }
      if (d == me) received = total;
    }
    std::size_t send_at = 0, recv_at = 0;
    for (std::uint32_t p = 0; p < ranks; ++p) {
      const auto send_n = static_cast<std::size_t>(sent(me, p));
      const auto recv_n = static_cast<std::size_t>(sent(p, me));
      post_block(p, send_at, send_n, recv_at, recv_n);
      send_at += send_n;
      recv_at += recv_n;
    }
    transport.wait();
  }
  kernels::RecvCountsArgs counts;
  counts.gathered = buffers_.gathered;
  counts.num_ranks = ranks;
  counts.rank = me;
  counts.recv_counts = q.recv_counts;
  device.recv_counts(counts);
  num_tokens_ = q.num_tokens;
  received_rows_ = received;
  dispatched_ = true;
  return received;
}

void TokenExchange::combine(const void* expert_out, std::uint64_t expert_out_rows, void* out,
                            TokenExchangeDevice& device, MigrationTransport& transport) {
  if (!dispatched_) fail_invalid("combine needs a successful dispatch before it");
  const TokenExchangeShape& s = shape_;
  const std::uint32_t ranks = s.num_ranks, me = s.rank;
  const bool padded = s.capacity > 0;
  if (expert_out_rows < received_rows_) {
    fail_invalid("expert_out_rows (", expert_out_rows, ") is less than the ", received_rows_,
                 " rows the last dispatch received");
  }
  if (received_rows_ > 0) {
    device.require_memory(expert_out, "expert_out");
    kernels::require_aligned16(expert_out, "expert_out");
  }
  if (num_tokens_ > 0) {
    device.require_memory(out, "out");
    kernels::require_aligned16(out, "out");
  }
  const std::size_t row = s.out_row_bytes();
  std::size_t back_at = 0, partial_at = 0;
  for (std::uint32_t p = 0; p < ranks; ++p) {
    const std::size_t back_n = padded ? s.capacity : static_cast<std::size_t>(sent(p, me));
    const std::size_t partial_n = padded ? s.capacity : static_cast<std::size_t>(sent(me, p));
    if (back_n > 0) {
      transport.send(
          p, bytes_of(static_cast<const std::byte*>(expert_out) + back_at * row, back_n * row));
    }
    if (partial_n > 0) {
      transport.recv(p,
                     writable_bytes_of(static_cast<std::byte*>(buffers_.partial) + partial_at * row,
                                       partial_n * row));
    }
    back_at += back_n;
    partial_at += partial_n;
  }
  transport.wait();
  kernels::TokenCombineArgs combine;
  combine.geometry = geometry(num_tokens_);
  combine.partial = buffers_.partial;
  combine.dtype = s.out_dtype;
  combine.hidden = s.hidden;
  combine.out = out;
  device.combine(combine);
}

}  // namespace eplb::nccl
