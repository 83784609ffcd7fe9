#include "token_dispatch.hpp"

#include <cstring>
#include <limits>

#include "error.hpp"

namespace eplb {

namespace {

constexpr std::size_t kMaxBytes = std::numeric_limits<std::size_t>::max() / 4;

// Bytes of one packed dispatch block of `n` tokens: rows, then local slots, then weights.
std::size_t block_bytes(const DispatchShape& shape, std::size_t n) {
  return n * (shape.row_bytes + shape.top_k * (sizeof(std::int32_t) + sizeof(float)));
}

std::span<std::byte> as_bytes_of(std::uint32_t& value) {
  return {reinterpret_cast<std::byte*>(&value), sizeof value};
}

}  // namespace

void DispatchShape::validate() const {
  if (num_ranks == 0) fail_invalid("num_ranks is 0");
  if (slots_per_rank == 0) fail_invalid("slots_per_rank is 0");
  if (top_k == 0) fail_invalid("top_k is 0");
  if (row_bytes == 0) fail_invalid("row_bytes is 0");
  if (hidden == 0) fail_invalid("hidden is 0");
  if (std::uint64_t{num_ranks} * slots_per_rank >
      static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
    fail_invalid("num_ranks (", num_ranks, ") x slots_per_rank (", slots_per_rank,
                 ") exceeds INT32_MAX slots");
  }
  if (row_bytes > kMaxBytes / (top_k + 1) || hidden > kMaxBytes / sizeof(float)) {
    fail_invalid("row_bytes (", row_bytes, ") or hidden (", hidden, ") is too large");
  }
}

DispatchPlan plan_dispatch(const DispatchShape& shape, std::span<const std::int32_t> topk_slots,
                           std::size_t num_tokens) {
  shape.validate();
  if (num_tokens > std::numeric_limits<std::uint32_t>::max() ||
      topk_slots.size() / shape.top_k != num_tokens || topk_slots.size() % shape.top_k != 0) {
    fail_invalid("topk_slots has ", topk_slots.size(), " entries; expected num_tokens (",
                 num_tokens, ") x top_k (", shape.top_k, ")");
  }
  const std::int64_t num_slots = std::int64_t{shape.num_ranks} * shape.slots_per_rank;
  const std::uint32_t ranks = shape.num_ranks;
  std::vector<std::uint32_t> count(ranks, 0);
  std::vector<std::uint32_t> last_token(ranks, std::numeric_limits<std::uint32_t>::max());
  for (std::size_t t = 0; t < num_tokens; ++t) {
    for (std::uint32_t j = 0; j < shape.top_k; ++j) {
      const std::int32_t slot = topk_slots[t * shape.top_k + j];
      if (slot == -1) continue;
      if (slot < 0 || slot >= num_slots) {
        fail_invalid("topk_slots[", t * shape.top_k + j, "] = ", slot, " is outside [-1, ",
                     num_slots, ")");
      }
      const auto rank = static_cast<std::uint32_t>(slot) / shape.slots_per_rank;
      if (last_token[rank] != t) {  // once per destination rank
        last_token[rank] = static_cast<std::uint32_t>(t);
        ++count[rank];
      }
    }
  }
  DispatchPlan plan;
  plan.offsets.assign(ranks + 1, 0);
  for (std::uint32_t r = 0; r < ranks; ++r) {
    if (shape.capacity > 0 && count[r] > shape.capacity) {
      fail_invalid("rank ", r, " would receive ", count[r], " tokens, more than capacity (",
                   shape.capacity, ")");
    }
    plan.offsets[r + 1] = plan.offsets[r] + count[r];
  }
  plan.tokens.resize(plan.offsets[ranks]);
  std::vector<std::uint32_t> fill(plan.offsets.begin(), plan.offsets.end() - 1);
  last_token.assign(ranks, std::numeric_limits<std::uint32_t>::max());
  for (std::size_t t = 0; t < num_tokens; ++t) {
    for (std::uint32_t j = 0; j < shape.top_k; ++j) {
      const std::int32_t slot = topk_slots[t * shape.top_k + j];
      if (slot < 0) continue;
      const auto rank = static_cast<std::uint32_t>(slot) / shape.slots_per_rank;
      if (last_token[rank] != t) {
        last_token[rank] = static_cast<std::uint32_t>(t);
        plan.tokens[fill[rank]++] = static_cast<std::uint32_t>(t);
      }
    }
  }
  return plan;
}

ReceivedTokens dispatch_tokens(const DispatchShape& shape, const DispatchPlan& plan,
                               std::span<const std::int32_t> topk_slots,
                               std::span<const float> topk_weights, std::span<const std::byte> rows,
                               MigrationTransport& transport) {
  shape.validate();
  const std::uint32_t ranks = shape.num_ranks, k = shape.top_k;
  if (plan.offsets.size() != ranks + std::size_t{1}) {
    fail_invalid("the dispatch plan has ", plan.offsets.size(), " offsets; expected ", ranks + 1);
  }
  const std::size_t num_tokens = topk_slots.size() / k;
  if (topk_weights.size() != topk_slots.size()) {
    fail_invalid("topk_weights has ", topk_weights.size(), " entries; expected ",
                 topk_slots.size());
  }
  if (rows.size() != num_tokens * shape.row_bytes) {
    fail_invalid("rows has ", rows.size(), " bytes; expected num_tokens (", num_tokens,
                 ") x row_bytes (", shape.row_bytes, ")");
  }
  for (const std::uint32_t t : plan.tokens) {
    if (t >= num_tokens) fail_invalid("the dispatch plan names token ", t, " of ", num_tokens);
  }
  const bool padded = shape.capacity > 0;

  // Pack one block per destination: rows, then this rank's slots as local indices, then weights.
  std::vector<std::vector<std::byte>> send_blocks(ranks);
  std::vector<std::uint32_t> send_count(ranks), recv_count(ranks, 0);
  for (std::uint32_t d = 0; d < ranks; ++d) {
    const std::uint32_t n = plan.count(d);
    send_count[d] = n;
    const std::size_t block_tokens = padded ? shape.capacity : n;
    std::vector<std::byte>& block = send_blocks[d];
    block.assign(block_bytes(shape, block_tokens), std::byte{0});
    std::byte* row_at = block.data();
    std::byte* slot_at = row_at + block_tokens * shape.row_bytes;
    std::byte* weight_at = slot_at + block_tokens * k * sizeof(std::int32_t);
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t t = plan.tokens[plan.offsets[d] + i];
      std::memcpy(row_at + i * shape.row_bytes, rows.data() + t * shape.row_bytes, shape.row_bytes);
      for (std::uint32_t j = 0; j < k; ++j) {
        const std::int32_t slot = topk_slots[std::size_t{t} * k + j];
        const bool here = slot >= 0 && static_cast<std::uint32_t>(slot) / shape.slots_per_rank == d;
        const std::int32_t local =
            here
                ? static_cast<std::int32_t>(static_cast<std::uint32_t>(slot) % shape.slots_per_rank)
                : -1;
        const float weight = here ? topk_weights[std::size_t{t} * k + j] : 0.0F;
        std::memcpy(slot_at + (std::size_t{i} * k + j) * sizeof local, &local, sizeof local);
        std::memcpy(weight_at + (std::size_t{i} * k + j) * sizeof weight, &weight, sizeof weight);
      }
    }
  }

  // Counts first. The exact variant needs them before it can size the receives.
  for (std::uint32_t p = 0; p < ranks; ++p) transport.send(p, as_bytes_of(send_count[p]));
  for (std::uint32_t p = 0; p < ranks; ++p) transport.recv(p, as_bytes_of(recv_count[p]));
  if (!padded) transport.wait();

  std::vector<std::vector<std::byte>> recv_blocks(ranks);
  for (std::uint32_t p = 0; p < ranks; ++p) transport.send(p, send_blocks[p]);
  for (std::uint32_t p = 0; p < ranks; ++p) {
    recv_blocks[p].resize(block_bytes(shape, padded ? shape.capacity : recv_count[p]));
    transport.recv(p, recv_blocks[p]);
  }
  transport.wait();

  ReceivedTokens received;
  received.offsets.assign(ranks + 1, 0);
  for (std::uint32_t p = 0; p < ranks; ++p) {
    if (padded && recv_count[p] > shape.capacity) {
      fail_invalid("rank ", p, " sent ", recv_count[p], " tokens, more than capacity (",
                   shape.capacity, ")");
    }
    received.offsets[p + 1] = received.offsets[p] + recv_count[p];
  }
  const std::size_t total = received.offsets[ranks];
  received.rows.resize(total * shape.row_bytes);
  received.local_slots.resize(total * k);
  received.weights.resize(total * k);
  for (std::uint32_t p = 0; p < ranks; ++p) {
    const std::size_t n = recv_count[p], block_tokens = padded ? shape.capacity : n;
    const std::byte* row_at = recv_blocks[p].data();
    const std::byte* slot_at = row_at + block_tokens * shape.row_bytes;
    const std::byte* weight_at = slot_at + block_tokens * k * sizeof(std::int32_t);
    const std::size_t at = received.offsets[p];
    if (n == 0) continue;
    std::memcpy(received.rows.data() + at * shape.row_bytes, row_at, n * shape.row_bytes);
    std::memcpy(received.local_slots.data() + at * k, slot_at, n * k * sizeof(std::int32_t));
    std::memcpy(received.weights.data() + at * k, weight_at, n * k * sizeof(float));
  }
  return received;
}

void combine_tokens(const DispatchShape& shape, const DispatchPlan& plan,
                    const ReceivedTokens& received, std::span<const float> expert_out,
                    std::span<float> out, MigrationTransport& transport) {
  shape.validate();
  const std::uint32_t ranks = shape.num_ranks;
  const std::size_t hidden = shape.hidden;
  if (plan.offsets.size() != ranks + std::size_t{1} ||
      received.offsets.size() != ranks + std::size_t{1}) {
    fail_invalid("the dispatch plan or the received tokens do not have ", ranks + 1, " offsets");
  }
  if (expert_out.size() != received.size() * hidden) {
    fail_invalid("expert_out has ", expert_out.size(), " floats; expected received tokens (",
                 received.size(), ") x hidden (", hidden, ")");
  }
  if (out.size() % hidden != 0) {
    fail_invalid("out has ", out.size(), " floats, not a multiple of hidden (", hidden, ")");
  }
  const std::size_t num_tokens = out.size() / hidden;
  for (const std::uint32_t t : plan.tokens) {
    if (t >= num_tokens) fail_invalid("the dispatch plan names token ", t, " of ", num_tokens);
  }
  const bool padded = shape.capacity > 0;
  const auto float_bytes = [](std::span<const float> values) { return std::as_bytes(values); };

  // Send each source its rows back (padded to capacity in the padded variant), receive ours.
  std::vector<std::vector<float>> padded_out(padded ? ranks : 0);
  for (std::uint32_t p = 0; p < ranks; ++p) {
    const std::size_t from = received.offsets[p], n = received.offsets[p + 1] - from;
    std::span<const float> rows = expert_out.subspan(from * hidden, n * hidden);
    if (padded) {
      padded_out[p].assign(std::size_t{shape.capacity} * hidden, 0.0F);
      std::copy(rows.begin(), rows.end(), padded_out[p].begin());
      rows = padded_out[p];
    }
    transport.send(p, float_bytes(rows));
  }
  std::vector<std::vector<float>> partial(ranks);
  for (std::uint32_t d = 0; d < ranks; ++d) {
    partial[d].resize((padded ? shape.capacity : plan.count(d)) * hidden);
    transport.recv(d, std::as_writable_bytes(std::span<float>(partial[d])));
  }
  transport.wait();

  // Sum in ascending destination rank order: deterministic, whatever the arrival order.
  std::fill(out.begin(), out.end(), 0.0F);
  for (std::uint32_t d = 0; d < ranks; ++d) {
    for (std::uint32_t i = 0; i < plan.count(d); ++i) {
      const std::uint32_t t = plan.tokens[plan.offsets[d] + i];
      float* target = out.data() + std::size_t{t} * hidden;
      const float* source = partial[d].data() + std::size_t{i} * hidden;
      for (std::size_t h = 0; h < hidden; ++h) target[h] += source[h];
    }
  }
}

}  // namespace eplb
