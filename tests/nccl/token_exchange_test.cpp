// The token exchange's step logic (nccl/token_exchange.hpp) over the in-process transport, one
// thread per rank, with the CPU references of its kernels: every token reaches each rank holding
// one of its slots exactly once, in source and token order, with its local slots and weights; the
// combined output equals the weighted sum of the experts computed directly (the oracle); the
// padded variant drops exactly the tokens beyond a pair's capacity and otherwise equals the exact
// variant bit for bit; a receive buffer that is too small fails every rank alike.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../kernels/dispatch.hpp"
#include "error.hpp"
#include "local_transport.hpp"
#include "token_exchange.hpp"

namespace eplb::nccl {
namespace {

using kernels::RowDtype;

// The "expert" of global physical slot s: y = x * (s + 1) + s, element-wise.
float expert(std::int32_t slot, float x) {
  return x * static_cast<float>(slot + 1) + static_cast<float>(slot);
}

// Host memory with the alignment the exchange's buffers and rows need.
class AlignedBytes {
 public:
  explicit AlignedBytes(std::size_t bytes)
      : data_(static_cast<std::byte*>(std::aligned_alloc(256, round_up(bytes)))) {
    if (data_ == nullptr) throw std::bad_alloc();
    std::memset(data_.get(), 0xA5, round_up(bytes));  // garbage where nothing is written
  }
  [[nodiscard]] std::byte* get() const { return data_.get(); }
  template <typename T>
  [[nodiscard]] T* as() const {
    return reinterpret_cast<T*>(data_.get());
  }

 private:
  static std::size_t round_up(std::size_t bytes) {
    return std::max<std::size_t>(256, (bytes + 255) / 256 * 256);
  }
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> data_;
};

struct RankInput {
  std::vector<std::int32_t> slots;  // [T][k] global physical slots
  std::vector<float> weights;       // [T][k]
  std::vector<float> rows;          // [T][hidden]
  [[nodiscard]] std::size_t tokens(std::size_t hidden) const { return rows.size() / hidden; }
};

RankInput random_input(std::mt19937_64& rng, const TokenExchangeShape& shape, std::size_t tokens) {
  const std::uint32_t num_slots = shape.num_ranks * shape.slots_per_rank;
  RankInput in;
  std::uniform_real_distribution<float> value(-1.0F, 1.0F);
  for (std::size_t t = 0; t < tokens; ++t) {
    std::vector<std::int32_t> row;
    while (row.size() < shape.top_k) {
      // Some masked entries, shared-expert slots (num_slots + rank, as the waterfill appends)
      // and ids beyond those, which are not dispatched.
      std::int32_t s = static_cast<std::int32_t>(rng() % (num_slots + shape.num_ranks + 3)) - 1;
      if (s >= 0 && std::find(row.begin(), row.end(), s) != row.end()) continue;
      row.push_back(s);
    }
    in.slots.insert(in.slots.end(), row.begin(), row.end());
    for (std::uint32_t j = 0; j < shape.top_k; ++j) in.weights.push_back(value(rng) + 1.5F);
    for (std::size_t h = 0; h < shape.hidden; ++h) in.rows.push_back(value(rng));
  }
  return in;
}

// Slots as the header states them: physical slot s on rank s / slots_per_rank (local slot
// s % slots_per_rank); the shared expert's slot num_slots + r on rank r (local slot
// slots_per_rank); anything else on no rank.
bool on_rank(const TokenExchangeShape& shape, std::int32_t slot, std::uint32_t rank) {
  const std::int64_t num_slots = std::int64_t{shape.num_ranks} * shape.slots_per_rank;
  if (slot < 0 || rank >= shape.num_ranks) return false;
  return slot < num_slots ? static_cast<std::uint32_t>(slot) / shape.slots_per_rank == rank
                          : slot == num_slots + rank;
}

std::int32_t local_slot(const TokenExchangeShape& shape, std::int32_t slot) {
  const std::int64_t num_slots = std::int64_t{shape.num_ranks} * shape.slots_per_rank;
  return slot < num_slots ? slot % static_cast<std::int32_t>(shape.slots_per_rank)
                          : static_cast<std::int32_t>(shape.slots_per_rank);
}

struct RankResult {
  std::uint64_t recv_rows = 0;
  std::vector<float> rows;           // [recv_rows][hidden]
  std::vector<std::int32_t> slots;   // [recv_rows][k]
  std::vector<float> weights;        // [recv_rows][k]
  std::vector<std::int32_t> counts;  // [num_ranks]
  std::int32_t dropped = -1;
  std::vector<float> out;  // [T][hidden], fp32 outputs
};

// Runs dispatch, the experts (this rank's slots, weighted, in float32) and combine on every rank,
// once per round with the same exchange (its buffers reused); results are [round][rank].
// `recv_capacity[r]` overrides rank r's receive rows when given.
std::vector<std::vector<RankResult>> run_rounds(const TokenExchangeShape& base,
                                                const std::vector<std::vector<RankInput>>& rounds,
                                                std::vector<std::uint64_t> recv_capacity = {}) {
  const std::uint32_t ranks = base.num_ranks;
  const std::size_t hidden = base.hidden, k = base.top_k;
  if (recv_capacity.empty()) {
    recv_capacity.assign(
        ranks, base.capacity > 0 ? base.padded_recv_rows() : std::size_t{ranks} * base.max_tokens);
  }
  LocalTransportHub hub(ranks);
  std::vector<std::vector<RankResult>> results(rounds.size(), std::vector<RankResult>(ranks));
  std::vector<std::exception_ptr> errors(ranks);
  std::vector<std::thread> threads;
  for (std::uint32_t r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      try {
        TokenExchangeShape shape = base;
        shape.rank = r;
        const AlignedBytes memory(TokenExchangeBuffers::bytes(shape));
        TokenExchange exchange(shape, TokenExchangeBuffers::carve(shape, memory.get()));
        CpuTokenExchangeDevice device;
        MigrationTransport& transport = hub.endpoint(r);
        for (std::size_t round = 0; round < rounds.size(); ++round) {
          const RankInput& in = rounds[round][r];
          const std::size_t tokens = in.tokens(hidden);
          const std::uint64_t capacity = recv_capacity[r];
          const AlignedBytes rows(in.rows.size() * sizeof(float));
          std::copy(in.rows.begin(), in.rows.end(), rows.as<float>());
          const AlignedBytes recv_rows(capacity * shape.row_bytes);
          std::vector<std::int32_t> recv_slots(capacity * k, -7);
          std::vector<float> recv_weights(capacity * k, -7.0F);
          RankResult& result = results[round][r];
          result.counts.assign(ranks, -1);
          DispatchRequest request;
          request.num_tokens = tokens;
          request.topk_slots = in.slots.data();
          request.topk_weights = in.weights.data();
          request.rows = rows.get();
          request.recv_rows = recv_rows.get();
          request.recv_slots = recv_slots.data();
          request.recv_weights = recv_weights.data();
          request.recv_counts = result.counts.data();
          request.recv_capacity = capacity;
          request.dropped = &result.dropped;
          // Empty inputs still pass valid (unused) pointers.
          static const std::int32_t no_slot = -1;
          static const float no_weight = 0.0F;
          if (tokens == 0) {
            request.topk_slots = &no_slot;
            request.topk_weights = &no_weight;
          }
          const std::uint64_t used = exchange.dispatch(request, device, transport);
          result.recv_rows = used;
          result.rows.assign(recv_rows.as<float>(), recv_rows.as<float>() + used * hidden);
          result.slots.assign(recv_slots.begin(), recv_slots.begin() + static_cast<long>(used * k));
          result.weights.assign(recv_weights.begin(),
                                recv_weights.begin() + static_cast<long>(used * k));

          // The experts: out[i] = sum_j w * expert(global slot, x), in float32, skipping -1.
          const std::size_t out_bytes = kernels::row_dtype_bytes(shape.out_dtype);
          const AlignedBytes expert_out(used * hidden * out_bytes);
          for (std::size_t i = 0; i < used; ++i) {
            for (std::size_t h = 0; h < hidden; ++h) {
              float sum = 0.0F;
              for (std::size_t j = 0; j < k; ++j) {
                const std::int32_t local = recv_slots[i * k + j];
                if (local < 0) continue;
                // Local slot slots_per_rank is the shared expert, global id num_slots + r.
                const auto slot = local == static_cast<std::int32_t>(shape.slots_per_rank)
                                      ? static_cast<std::int32_t>(ranks * shape.slots_per_rank + r)
                                      : static_cast<std::int32_t>(r * shape.slots_per_rank) + local;
                sum += recv_weights[i * k + j] * expert(slot, result.rows[i * hidden + h]);
              }
              const std::size_t at = i * hidden + h;
              if (shape.out_dtype == RowDtype::float32) {
                expert_out.as<float>()[at] = sum;
              } else if (shape.out_dtype == RowDtype::bfloat16) {
                expert_out.as<std::uint16_t>()[at] = kernels::float_to_bf16(sum);
              } else {
                expert_out.as<std::uint16_t>()[at] = kernels::float_to_fp16(sum);
              }
            }
          }
          const AlignedBytes out(std::max<std::size_t>(tokens, 1) * hidden * out_bytes);
          exchange.combine(expert_out.get(), used, out.get(), device, transport);
          result.out.resize(tokens * hidden);
          for (std::size_t i = 0; i < result.out.size(); ++i) {
            result.out[i] = shape.out_dtype == RowDtype::float32 ? out.as<float>()[i]
                            : shape.out_dtype == RowDtype::bfloat16
                                ? kernels::bf16_to_float(out.as<std::uint16_t>()[i])
                                : kernels::fp16_to_float(out.as<std::uint16_t>()[i]);
          }
        }
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  EXPECT_EQ(hub.undelivered(), 0U) << "a message was sent but never received";
  return results;
}

std::vector<RankResult> run(const TokenExchangeShape& base, const std::vector<RankInput>& inputs,
                            std::vector<std::uint64_t> recv_capacity = {}) {
  return run_rounds(base, {inputs}, std::move(recv_capacity)).front();
}

TokenExchangeShape shape_of(std::uint32_t ranks, std::uint32_t slots, std::uint32_t k,
                            std::size_t hidden, std::uint32_t max_tokens, std::uint32_t capacity) {
  TokenExchangeShape s;
  s.num_ranks = ranks;
  s.slots_per_rank = slots;
  s.top_k = k;
  s.row_bytes = hidden * sizeof(float);
  s.hidden = hidden;
  s.max_tokens = max_tokens;
  s.capacity = capacity;
  return s;
}

// Brute force: the tokens of `in` with a slot on `d`, in token order.
std::vector<std::size_t> tokens_for(const TokenExchangeShape& shape, const RankInput& in,
                                    std::uint32_t d) {
  std::vector<std::size_t> tokens;
  for (std::size_t t = 0; t < in.tokens(shape.hidden); ++t) {
    bool any = false;
    for (std::uint32_t j = 0; j < shape.top_k; ++j)
      any |= on_rank(shape, in.slots[t * shape.top_k + j], d);
    if (any) tokens.push_back(t);
  }
  return tokens;
}

// Checks every rank's receive arrays and combined outputs against brute force and the oracle.
void expect_matches_oracle(const TokenExchangeShape& shape, const std::vector<RankInput>& inputs,
                           const std::vector<RankResult>& results, double tolerance) {
  const std::uint32_t ranks = shape.num_ranks, k = shape.top_k;
  const std::size_t hidden = shape.hidden;
  const bool padded = shape.capacity > 0;
  for (std::uint32_t d = 0; d < ranks; ++d) {
    const RankResult& got = results[d];
    std::size_t at = 0;
    std::int64_t dropped = 0;
    for (std::uint32_t s = 0; s < ranks; ++s) {
      std::vector<std::size_t> expected = tokens_for(shape, inputs[s], d);
      if (padded && expected.size() > shape.capacity) expected.resize(shape.capacity);
      ASSERT_EQ(got.counts[s], static_cast<std::int32_t>(expected.size()))
          << "from " << s << " to " << d;
      if (padded) at = std::size_t{s} * shape.capacity;
      for (std::size_t i = 0; i < expected.size(); ++i, ++at) {
        const std::size_t t = expected[i];
        EXPECT_EQ(0, std::memcmp(&got.rows[at * hidden], &inputs[s].rows[t * hidden],
                                 hidden * sizeof(float)));
        for (std::uint32_t j = 0; j < k; ++j) {
          const std::int32_t slot = inputs[s].slots[t * k + j];
          const bool here = on_rank(shape, slot, d);
          EXPECT_EQ(got.slots[at * k + j], here ? local_slot(shape, slot) : -1);
          EXPECT_EQ(got.weights[at * k + j], here ? inputs[s].weights[t * k + j] : 0.0F);
        }
      }
      if (padded) {  // the rest of the slab carries no slot
        for (; at < std::size_t{s + 1} * shape.capacity; ++at) {
          for (std::uint32_t j = 0; j < k; ++j) {
            EXPECT_EQ(got.slots[at * k + j], -1);
            EXPECT_EQ(got.weights[at * k + j], 0.0F);
          }
        }
      }
    }
    EXPECT_EQ(got.recv_rows, padded ? shape.padded_recv_rows() : at);
    // This rank's dropped entries: its tokens beyond capacity for each destination.
    for (std::uint32_t r = 0; r < ranks; ++r) {
      const std::size_t n = tokens_for(shape, inputs[d], r).size();
      if (padded && n > shape.capacity) dropped += static_cast<std::int64_t>(n - shape.capacity);
    }
    EXPECT_EQ(got.dropped, dropped);
  }
  // Outputs: the weighted experts of each token's slots on ranks it reached.
  for (std::uint32_t r = 0; r < ranks; ++r) {
    const RankInput& in = inputs[r];
    std::vector<std::vector<std::size_t>> sent(ranks);
    for (std::uint32_t d = 0; d < ranks; ++d) {
      sent[d] = tokens_for(shape, in, d);
      if (padded && sent[d].size() > shape.capacity) sent[d].resize(shape.capacity);
    }
    for (std::size_t t = 0; t < in.tokens(hidden); ++t) {
      for (std::size_t h = 0; h < hidden; ++h) {
        double oracle = 0.0, magnitude = 1.0;  // the error scales with the terms, not the sum
        for (std::uint32_t j = 0; j < k; ++j) {
          const std::int32_t slot = in.slots[t * k + j];
          std::uint32_t d = 0;
          while (d < ranks && !on_rank(shape, slot, d)) ++d;
          if (d == ranks) continue;  // masked or dispatched nowhere
          if (!std::binary_search(sent[d].begin(), sent[d].end(), t)) continue;  // dropped
          const double term = double{in.weights[t * k + j]} * expert(slot, in.rows[t * hidden + h]);
          oracle += term;
          magnitude += std::abs(term);
        }
        EXPECT_NEAR(results[r].out[t * hidden + h], oracle, tolerance * magnitude)
            << "rank " << r << " token " << t;
      }
    }
  }
}

TEST(TokenExchange, ExactEveryTokenReachesEachOfItsRanksOnceAndCombinesToTheOracle) {
  std::mt19937_64 rng(21);
  for (int trial = 0; trial < 12; ++trial) {
    const std::uint32_t ranks = 1 + static_cast<std::uint32_t>(rng() % 5);
    const std::uint32_t slots = 1 + static_cast<std::uint32_t>(rng() % 4);
    const std::uint32_t k = 1 + static_cast<std::uint32_t>(rng() % std::min(4U, ranks * slots));
    const std::size_t hidden = 8 * (1 + rng() % 2);
    const TokenExchangeShape shape = shape_of(ranks, slots, k, hidden, 30, 0);
    std::vector<RankInput> inputs;
    for (std::uint32_t r = 0; r < ranks; ++r)
      inputs.push_back(random_input(rng, shape, rng() % 31));
    expect_matches_oracle(shape, inputs, run(shape, inputs), 1e-4);
  }
}

TEST(TokenExchange, PaddedDropsExactlyWhatExceedsCapacity) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 10; ++trial) {
    const std::uint32_t ranks = 1 + static_cast<std::uint32_t>(rng() % 4);
    const std::uint32_t capacity = 1 + static_cast<std::uint32_t>(rng() % 12);
    const TokenExchangeShape shape = shape_of(ranks, 3, 2, 8, 20, capacity);
    std::vector<RankInput> inputs;
    for (std::uint32_t r = 0; r < ranks; ++r)
      inputs.push_back(random_input(rng, shape, rng() % 21));
    expect_matches_oracle(shape, inputs, run(shape, inputs), 1e-4);
  }
}

TEST(TokenExchange, PaddedWithRoomGivesTheExactVariantsResultsBitForBit) {
  std::mt19937_64 rng(8);
  for (int trial = 0; trial < 6; ++trial) {
    const std::uint32_t ranks = 2 + static_cast<std::uint32_t>(rng() % 3);
    const TokenExchangeShape exact = shape_of(ranks, 3, 2, 8, 20, 0);
    std::vector<RankInput> inputs;
    for (std::uint32_t r = 0; r < ranks; ++r)
      inputs.push_back(random_input(rng, exact, 1 + rng() % 20));
    TokenExchangeShape padded = exact;
    padded.capacity = 20;  // the most tokens any rank has
    const auto a = run(exact, inputs);
    const auto b = run(padded, inputs);
    for (std::uint32_t r = 0; r < ranks; ++r) {
      EXPECT_EQ(a[r].counts, b[r].counts);
      EXPECT_EQ(b[r].dropped, 0);
      EXPECT_EQ(a[r].out, b[r].out);
    }
  }
}

TEST(TokenExchange, LaterRoundsReuseTheBuffersWithoutStaleState) {
  std::mt19937_64 rng(29);
  for (const std::uint32_t capacity : {0U, 5U}) {
    const TokenExchangeShape shape = shape_of(3, 2, 2, 8, 16, capacity);
    std::vector<std::vector<RankInput>> rounds(3);
    for (auto& inputs : rounds) {
      for (std::uint32_t r = 0; r < 3; ++r) inputs.push_back(random_input(rng, shape, rng() % 17));
    }
    const auto results = run_rounds(shape, rounds);
    for (std::size_t round = 0; round < rounds.size(); ++round) {
      expect_matches_oracle(shape, rounds[round], results[round], 1e-4);
    }
  }
}

TEST(TokenExchange, HalfPrecisionOutputsRoundOnceFromTheFloatSum) {
  std::mt19937_64 rng(13);
  for (const RowDtype dtype : {RowDtype::bfloat16, RowDtype::float16}) {
    TokenExchangeShape shape = shape_of(3, 2, 3, 16, 12, 0);
    shape.out_dtype = dtype;
    std::vector<RankInput> inputs;
    for (std::uint32_t r = 0; r < 3; ++r) inputs.push_back(random_input(rng, shape, 12));
    // Each partial row and the sum are rounded to 8 (bf16) or 11 (fp16) significant bits.
    expect_matches_oracle(shape, inputs, run(shape, inputs),
                          dtype == RowDtype::bfloat16 ? 1e-2 : 2e-3);
  }
}

TEST(TokenExchange, ATooSmallReceiveBufferFailsEveryRankAlikeBeforeTokensMove) {
  const TokenExchangeShape shape = shape_of(3, 2, 2, 8, 10, 0);
  std::mt19937_64 rng(3);
  std::vector<RankInput> inputs;
  for (std::uint32_t r = 0; r < 3; ++r) inputs.push_back(random_input(rng, shape, 10));
  // Rank 1 can take one token only; every rank's dispatch must throw the same error (a rank that
  // went on would wait forever for its peers' blocks).
  std::vector<std::uint64_t> capacity = {30, 1, 30};
  LocalTransportHub hub(3);
  std::vector<std::string> messages(3);
  std::vector<char> untouched(3, 0);
  std::vector<std::thread> threads;
  for (std::uint32_t r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      TokenExchangeShape mine = shape;
      mine.rank = r;
      const AlignedBytes memory(TokenExchangeBuffers::bytes(mine));
      TokenExchange exchange(mine, TokenExchangeBuffers::carve(mine, memory.get()));
      CpuTokenExchangeDevice device;
      const AlignedBytes rows(10 * mine.row_bytes);
      const AlignedBytes recv_rows(capacity[r] * mine.row_bytes);
      std::vector<std::int32_t> recv_slots(capacity[r] * 2, -7), counts(3, -7);
      std::vector<float> recv_weights(capacity[r] * 2, -7.0F);
      DispatchRequest q;
      q.num_tokens = 10;
      q.topk_slots = inputs[r].slots.data();
      q.topk_weights = inputs[r].weights.data();
      q.rows = rows.get();
      q.recv_rows = recv_rows.get();
      q.recv_slots = recv_slots.data();
      q.recv_weights = recv_weights.data();
      q.recv_counts = counts.data();
      q.recv_capacity = capacity[r];
      try {
        static_cast<void>(exchange.dispatch(q, device, hub.endpoint(r)));
      } catch (const Error& e) {
        if (e.code() == Errc::buffer_too_small) messages[r] = e.what();
      }
      // No token moved: the receive arrays are as they were.
      untouched[r] =
          std::all_of(recv_slots.begin(), recv_slots.end(),
                      [](std::int32_t v) { return v == -7; }) &&
          std::all_of(recv_weights.begin(), recv_weights.end(),
                      [](float v) { return v == -7.0F; }) &&
          std::all_of(counts.begin(), counts.end(), [](std::int32_t v) { return v == -7; });
    });
  }
  for (auto& t : threads) t.join();
  for (std::uint32_t r = 0; r < 3; ++r) {
    EXPECT_NE(messages[r].find("rank 1 receives"), std::string::npos) << r << ": " << messages[r];
    EXPECT_NE(messages[r].find("recv_capacity (1)"), std::string::npos) << messages[r];
    EXPECT_TRUE(untouched[r]) << "rank " << r;
  }
}

TEST(TokenExchange, BadArgumentsAreNamedBeforeAnyMessage) {
  TokenExchangeShape shape = shape_of(2, 2, 2, 8, 4, 3);
  const AlignedBytes memory(TokenExchangeBuffers::bytes(shape));
  TokenExchange exchange(shape, TokenExchangeBuffers::carve(shape, memory.get()));
  CpuTokenExchangeDevice device;
  LocalTransportHub hub(2);
  const AlignedBytes rows(8 * shape.row_bytes), recv_rows(6 * shape.row_bytes);
  std::vector<std::int32_t> slots(8, 0), recv_slots(12), counts(2);
  std::vector<float> weights(8, 1.0F), recv_weights(12);
  DispatchRequest q;
  q.num_tokens = 4;
  q.topk_slots = slots.data();
  q.topk_weights = weights.data();
  q.rows = rows.get();
  q.recv_rows = recv_rows.get();
  q.recv_slots = recv_slots.data();
  q.recv_weights = recv_weights.data();
  q.recv_counts = counts.data();
  q.recv_capacity = 6;
  const auto expect_invalid = [&](DispatchRequest bad, const std::string& needle) {
    try {
      static_cast<void>(exchange.dispatch(bad, device, hub.endpoint(0)));
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  DispatchRequest bad = q;
  bad.num_tokens = 5;
  expect_invalid(bad, "num_tokens (5) exceeds the exchange's max_tokens (4)");
  bad = q;
  bad.recv_capacity = 5;
  expect_invalid(bad, "recv_capacity (5) is less than num_ranks x capacity (6)");
  bad = q;
  bad.rows = rows.get() + 4;
  expect_invalid(bad, "rows (");
  bad = q;
  bad.recv_weights = nullptr;
  expect_invalid(bad, "recv_weights is NULL");
  // Every id, weight and count array must be aligned to its elements (a GPU would fault).
  const auto shifted = [](auto* p) {
    return reinterpret_cast<decltype(p)>(reinterpret_cast<std::uintptr_t>(p) + 2);
  };
  bad = q;
  bad.topk_slots = shifted(slots.data());
  expect_invalid(bad, "topk_slots (");
  bad = q;
  bad.topk_weights = shifted(weights.data());
  expect_invalid(bad, "topk_weights (");
  bad = q;
  bad.recv_slots = shifted(recv_slots.data());
  expect_invalid(bad, "recv_local_slots (");
  bad = q;
  bad.recv_weights = shifted(recv_weights.data());
  expect_invalid(bad, "recv_weights (");
  bad = q;
  bad.recv_counts = shifted(counts.data());
  expect_invalid(bad, "recv_counts (");
  bad = q;
  bad.dropped = shifted(counts.data());
  expect_invalid(bad, "dropped (");
  try {
    exchange.combine(rows.get(), 6, recv_rows.get(), device, hub.endpoint(0));
    ADD_FAILURE() << "combine before a dispatch";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs a successful dispatch"), std::string::npos);
  }
  for (const auto& [field, needle] :
       std::vector<std::pair<int, std::string>>{{0, "row_bytes (20)"},
                                                {1, "hidden (12)"},
                                                {2, "max_tokens (0)"},
                                                {3, "top_k (0)"},
                                                {4, "rank (2)"},
                                                {5, "out_dtype (7)"}}) {
    TokenExchangeShape wrong = shape;
    if (field == 0) wrong.row_bytes = 20;
    if (field == 1) wrong.hidden = 12;
    if (field == 2) wrong.max_tokens = 0;
    if (field == 3) wrong.top_k = 0;
    if (field == 4) wrong.rank = 2;
    if (field == 5) wrong.out_dtype = static_cast<RowDtype>(7);
    try {
      wrong.validate();
      ADD_FAILURE() << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace eplb::nccl
