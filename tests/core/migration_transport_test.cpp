// Migration schedules executed over the in-process transport, one thread per rank, with the step
// logic the NCCL executor uses: after every step each rank's slots hold, byte for byte, the
// weights of the experts the placement in force says they hold.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "error.hpp"
#include "local_transport.hpp"
#include "migration_exchange.hpp"
#include "migration_plan.hpp"
#include "placement.hpp"
#include "support/migration_ranks.hpp"

namespace eplb {
namespace {

using test::random_placement;

// The weights of (layer, expert): bytes that differ between any two experts and layers.
std::byte weight_byte(std::uint32_t layer, std::int32_t expert, std::size_t i) {
  const std::uint64_t x = (std::uint64_t{layer} * 1000003u + static_cast<std::uint64_t>(expert)) *
                              0x9E3779B97F4A7C15ull +
                          i * 0xBF58476D1CE4E5B9ull;
  return static_cast<std::byte>((x >> 29) ^ (x >> 7));
}

struct Rank {
  std::vector<std::byte> weights;  // [layers][slots_per_gpu][bytes]
  std::vector<std::byte> staging;
};

std::vector<Rank> load_weights(const Placement& placement, std::size_t bytes,
                               std::uint32_t staging_slots) {
  const Topology& t = placement.topology();
  const std::uint32_t per_gpu = t.slots_per_gpu();
  std::vector<Rank> ranks(t.num_gpus);
  for (Rank& rank : ranks) {
    rank.weights.resize(std::size_t{t.num_layers} * per_gpu * bytes);
    rank.staging.resize(std::size_t{staging_slots} * bytes);
  }
  for (const test::SlotExpert& s : test::slots_of(placement)) {
    for (std::size_t i = 0; i < bytes; ++i) {
      ranks[s.gpu].weights[(std::size_t{s.layer} * per_gpu + s.slot) * bytes + i] =
          weight_byte(s.layer, s.expert, i);
    }
  }
  return ranks;
}

void expect_weights(const std::vector<Rank>& ranks, const Placement& placement, std::size_t bytes,
                    const char* when) {
  const std::uint32_t per_gpu = placement.topology().slots_per_gpu();
  for (const test::SlotExpert& s : test::slots_of(placement)) {
    for (std::size_t i = 0; i < bytes; ++i) {
      ASSERT_EQ(ranks[s.gpu].weights[(std::size_t{s.layer} * per_gpu + s.slot) * bytes + i],
                weight_byte(s.layer, s.expert, i))
          << when << ": gpu " << s.gpu << " layer " << s.layer << " slot " << s.slot;
    }
  }
}

// Runs every step with one thread per rank; checks the weights after each step.
void run_threads(const MigrationPlan& plan, std::vector<Rank>& ranks, std::size_t bytes) {
  const Topology& t = plan.topology();
  const std::uint32_t per_gpu = t.slots_per_gpu();
  for (std::uint32_t step = 0; step < plan.summary().num_steps; ++step) {
    LocalTransportHub hub(t.num_gpus);
    test::run_rank_threads(t.num_gpus, [&](std::uint32_t rank) {
      const RankStepOps ops = rank_step_ops(plan, step, rank);
      Rank& mine = ranks[rank];
      const SlotBytes slot = [&](std::uint32_t layer, std::uint32_t local) {
        return std::span(mine.weights)
            .subspan((std::size_t{layer} * per_gpu + local) * bytes, bytes);
      };
      run_migration_step(ops, slot, mine.staging, bytes, hub.endpoint(rank));
    });
    EXPECT_EQ(hub.undelivered(), 0U) << "step " << step << ": an unmatched send or receive";
    expect_weights(ranks, plan.placement_after_step(step), bytes, "after a step");
  }
}

TEST(LocalTransport, ExecutesSchedulesExactly) {
  std::mt19937_64 rng(77);
  for (int trial = 0; trial < 24; ++trial) {
    const Topology t = test::trial_topology(trial, 1 + trial % 3);
    const Placement old = random_placement(rng, t);
    const Placement next = random_placement(rng, t);
    MigrationOptions options;
    options.bytes_per_expert = 16 + trial;
    options.max_bytes_per_step = trial % 2 ? options.bytes_per_expert * 3 : 0;
    options.relabel = static_cast<MigrationRelabel>(trial % 3);
    const auto plan = MigrationPlan::make(old, next, {}, options);
    auto ranks = load_weights(old, options.bytes_per_expert, plan.summary().max_staging_slots);
    SCOPED_TRACE(testing::Message() << "trial " << trial);
    run_threads(plan, ranks, options.bytes_per_expert);
    expect_weights(ranks, plan.target(), options.bytes_per_expert, "at the end");
  }
}

TEST(LocalTransport, StagingTooSmallIsAnError) {
  const Topology t = test::one_layer_topology(2, 2, 2);
  const Placement old = Placement::from_phy2log(t, {0, 1});
  const Placement next = Placement::from_phy2log(t, {1, 0});
  MigrationOptions options;
  options.relabel = MigrationRelabel::none;
  options.bytes_per_expert = 8;
  const auto plan = MigrationPlan::make(old, next, {}, options);
  const RankStepOps ops = rank_step_ops(plan, 0, 0);
  EXPECT_EQ(ops.staging_slots, 1u);
  LocalTransportHub hub(2);
  std::vector<std::byte> weights(8), staging(4);
  const SlotBytes slot = [&](std::uint32_t, std::uint32_t) { return std::span(weights); };
  EXPECT_THROW(run_migration_step(ops, slot, staging, 8, hub.endpoint(0)), Error);
  EXPECT_THROW((void)rank_step_ops(plan, 0, 2), Error);
  EXPECT_THROW((void)hub.endpoint(2), Error);
}

// Like an NCCL group, nothing moves before wait(): a send's data is read at wait() and a
// receive's buffer is written at wait(), so step logic that relied on eager copies fails here.
TEST(LocalTransport, DataMovesAtWaitLikeAnNcclGroup) {
  LocalTransportHub hub(2);
  std::vector<std::byte> sent(4, std::byte{1}), received(4, std::byte{9});
  hub.endpoint(1).recv(0, received);
  hub.endpoint(0).send(1, sent);
  EXPECT_EQ(hub.undelivered(), 2U);  // posted, not waited for
  sent.assign(4, std::byte{2});      // changed after posting: NCCL would send this
  hub.endpoint(0).wait();
  EXPECT_EQ(received, std::vector<std::byte>(4, std::byte{9})) << "written before wait()";
  hub.endpoint(1).wait();
  EXPECT_EQ(received, std::vector<std::byte>(4, std::byte{2}));
  EXPECT_EQ(hub.undelivered(), 0U);

  hub.endpoint(1).send(0, sent);  // never received
  hub.endpoint(1).wait();
  EXPECT_EQ(hub.undelivered(), 1U);
  EXPECT_THROW(hub.endpoint(0).send(2, sent), Error);  // a bad peer fails when posted

  // A receive into memory the same group sends from is undefined under NCCL: refused.
  LocalTransportHub self(1);
  std::vector<std::byte> both(8, std::byte{3});
  self.endpoint(0).send(0, std::span(both).first(6));
  self.endpoint(0).recv(0, std::span(both).last(4));
  EXPECT_THROW(self.endpoint(0).wait(), Error);
}

}  // namespace
}  // namespace eplb
