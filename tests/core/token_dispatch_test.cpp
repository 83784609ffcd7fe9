// Token dispatch and combine over the in-process transport, one thread per rank: every token
// reaches each rank holding one of its slots exactly once, with its local slots and weights, and
// the combined output equals the weighted sum of the experts computed directly (the oracle).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <random>
#include <thread>
#include <vector>

#include "error.hpp"
#include "local_transport.hpp"
#include "token_dispatch.hpp"

namespace eplb {
namespace {

// The "expert" of physical slot s: y = x * (s + 1) + s, element-wise.
float expert(std::int32_t slot, float x) {
  return x * static_cast<float>(slot + 1) + static_cast<float>(slot);
}

struct RankInput {
  std::vector<std::int32_t> slots;  // [T][k]
  std::vector<float> weights;       // [T][k]
  std::vector<float> rows;          // [T][hidden]
};

RankInput random_input(std::mt19937_64& rng, const DispatchShape& shape, std::size_t tokens) {
  const std::uint32_t num_slots = shape.num_ranks * shape.slots_per_rank;
  RankInput in;
  std::uniform_real_distribution<float> value(-1.0F, 1.0F);
  for (std::size_t t = 0; t < tokens; ++t) {
    std::vector<std::int32_t> row;
    while (row.size() < shape.top_k) {
      std::int32_t s = static_cast<std::int32_t>(rng() % (num_slots + 2)) - 1;
      if (s >= static_cast<std::int32_t>(num_slots)) s = -1;  // some masked entries
      if (s >= 0 && std::find(row.begin(), row.end(), s) != row.end()) continue;
      row.push_back(s);
    }
    in.slots.insert(in.slots.end(), row.begin(), row.end());
    for (std::uint32_t j = 0; j < shape.top_k; ++j) in.weights.push_back(value(rng) + 1.5F);
    for (std::size_t h = 0; h < shape.hidden; ++h) in.rows.push_back(value(rng));
  }
  return in;
}

struct RankResult {
  ReceivedTokens received;
  std::vector<float> out;
};

// Runs dispatch, the experts (this rank's slots, weighted) and combine on every rank.
std::vector<RankResult> run(const DispatchShape& shape, const std::vector<RankInput>& inputs) {
  LocalTransportHub hub(shape.num_ranks);
  std::vector<RankResult> results(shape.num_ranks);
  std::vector<std::exception_ptr> errors(shape.num_ranks);
  std::vector<std::thread> threads;
  for (std::uint32_t r = 0; r < shape.num_ranks; ++r) {
    threads.emplace_back([&, r] {
      try {
        const RankInput& in = inputs[r];
        const std::size_t tokens = in.rows.size() / shape.hidden;
        const DispatchPlan plan = plan_dispatch(shape, in.slots, tokens);
        MigrationTransport& transport = hub.endpoint(r);
        RankResult& result = results[r];
        result.received =
            dispatch_tokens(shape, plan, in.slots, in.weights,
                            std::as_bytes(std::span<const float>(in.rows)), transport);
        const ReceivedTokens& got = result.received;
        std::vector<float> expert_out(got.size() * shape.hidden, 0.0F);
        for (std::size_t i = 0; i < got.size(); ++i) {
          for (std::uint32_t j = 0; j < shape.top_k; ++j) {
            const std::int32_t local = got.local_slots[i * shape.top_k + j];
            if (local < 0) continue;
            const auto slot = static_cast<std::int32_t>(r * shape.slots_per_rank) + local;
            for (std::size_t h = 0; h < shape.hidden; ++h) {
              float x;
              std::memcpy(&x, got.rows.data() + (i * shape.hidden + h) * sizeof(float), sizeof x);
              expert_out[i * shape.hidden + h] +=
                  got.weights[i * shape.top_k + j] * expert(slot, x);
            }
          }
        }
        result.out.resize(tokens * shape.hidden);
        combine_tokens(shape, plan, got, expert_out, result.out, transport);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return results;
}

DispatchShape shape_of(std::uint32_t ranks, std::uint32_t slots, std::uint32_t k,
                       std::size_t hidden, std::uint32_t capacity) {
  return DispatchShape{.num_ranks = ranks,
                       .slots_per_rank = slots,
                       .top_k = k,
                       .row_bytes = hidden * sizeof(float),
                       .hidden = hidden,
                       .capacity = capacity};
}

TEST(TokenDispatch, EveryTokenReachesEachOfItsRanksOnceAndCombinesToTheOracle) {
  std::mt19937_64 rng(21);
  for (int trial = 0; trial < 12; ++trial) {
    const std::uint32_t ranks = 1 + static_cast<std::uint32_t>(rng() % 5);
    const std::uint32_t slots = 1 + static_cast<std::uint32_t>(rng() % 4);
    const std::uint32_t k = 1 + static_cast<std::uint32_t>(rng() % std::min(4U, ranks * slots));
    const std::size_t hidden = 1 + rng() % 6;
    const DispatchShape shape = shape_of(ranks, slots, k, hidden, 0);
    std::vector<RankInput> inputs;
    for (std::uint32_t r = 0; r < ranks; ++r)
      inputs.push_back(random_input(rng, shape, rng() % 30));
    const auto results = run(shape, inputs);
    for (std::uint32_t d = 0; d < ranks; ++d) {
      const ReceivedTokens& got = results[d].received;
      for (std::uint32_t s = 0; s < ranks; ++s) {
        // Brute force: the tokens of s with a slot on d, in token order.
        const RankInput& in = inputs[s];
        std::vector<std::size_t> expected;
        for (std::size_t t = 0; t < in.rows.size() / hidden; ++t) {
          bool on_d = false;
          for (std::uint32_t j = 0; j < k; ++j) {
            const std::int32_t slot = in.slots[t * k + j];
            on_d |= slot >= 0 && static_cast<std::uint32_t>(slot) / slots == d;
          }
          if (on_d) expected.push_back(t);
        }
        ASSERT_EQ(got.offsets[s + 1] - got.offsets[s], expected.size())
            << "from " << s << " to " << d;
        for (std::size_t i = 0; i < expected.size(); ++i) {
          const std::size_t at = got.offsets[s] + i, t = expected[i];
          EXPECT_EQ(0, std::memcmp(got.rows.data() + at * shape.row_bytes,
                                   in.rows.data() + t * hidden, shape.row_bytes));
          for (std::uint32_t j = 0; j < k; ++j) {
            const std::int32_t slot = in.slots[t * k + j];
            const bool here = slot >= 0 && static_cast<std::uint32_t>(slot) / slots == d;
            EXPECT_EQ(got.local_slots[at * k + j],
                      here ? slot % static_cast<std::int32_t>(slots) : -1);
            EXPECT_EQ(got.weights[at * k + j], here ? in.weights[t * k + j] : 0.0F);
          }
        }
      }
    }
    for (std::uint32_t r = 0; r < ranks; ++r) {
      const RankInput& in = inputs[r];
      for (std::size_t t = 0; t < in.rows.size() / hidden; ++t) {
        for (std::size_t h = 0; h < hidden; ++h) {
          double oracle = 0.0;
          for (std::uint32_t j = 0; j < k; ++j) {
            const std::int32_t slot = in.slots[t * k + j];
            if (slot >= 0)
              oracle += double{in.weights[t * k + j]} * expert(slot, in.rows[t * hidden + h]);
          }
          EXPECT_NEAR(results[r].out[t * hidden + h], oracle, 1e-4 * (1.0 + std::abs(oracle)))
              << "rank " << r << " token " << t;
        }
      }
    }
  }
}

TEST(TokenDispatch, PaddedVariantGivesTheExactVariantsResultsBitForBit) {
  std::mt19937_64 rng(8);
  for (int trial = 0; trial < 6; ++trial) {
    const std::uint32_t ranks = 2 + static_cast<std::uint32_t>(rng() % 3);
    const DispatchShape exact = shape_of(ranks, 3, 2, 4, 0);
    std::vector<RankInput> inputs;
    for (std::uint32_t r = 0; r < ranks; ++r)
      inputs.push_back(random_input(rng, exact, 1 + rng() % 20));
    DispatchShape padded = exact;
    padded.capacity = 20;  // the most tokens any rank has
    const auto a = run(exact, inputs);
    const auto b = run(padded, inputs);
    for (std::uint32_t r = 0; r < ranks; ++r) {
      EXPECT_EQ(a[r].received.offsets, b[r].received.offsets);
      EXPECT_EQ(a[r].received.rows, b[r].received.rows);
      EXPECT_EQ(a[r].received.local_slots, b[r].received.local_slots);
      EXPECT_EQ(a[r].out, b[r].out);
    }
  }
}

TEST(TokenDispatch, BadInputIsNamed) {
  const DispatchShape shape = shape_of(2, 2, 2, 1, 0);
  const std::vector<std::int32_t> slots = {0, 4};
  try {
    static_cast<void>(plan_dispatch(shape, slots, 1));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("topk_slots[1] = 4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(static_cast<void>(plan_dispatch(shape, slots, 2)), Error);  // length mismatch
  DispatchShape small = shape;
  small.capacity = 1;
  const std::vector<std::int32_t> two_tokens = {0, 1, 0, -1};
  try {
    static_cast<void>(plan_dispatch(small, two_tokens, 2));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("capacity (1)"), std::string::npos) << e.what();
  }
  DispatchShape zero = shape;
  zero.top_k = 0;
  EXPECT_THROW(zero.validate(), Error);
}

}  // namespace
}  // namespace eplb
