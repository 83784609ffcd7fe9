// Migration schedules executed over the in-process transport, one thread per rank, with the step
// logic the NCCL executor uses: after every step each rank's slots hold, byte for byte, the
// weights of the experts the placement in force says they hold.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <random>
#include <thread>
#include <vector>

#include "error.hpp"
#include "local_transport.hpp"
#include "migration_exchange.hpp"
#include "migration_plan.hpp"
#include "placement.hpp"

namespace eplb {
namespace {

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
  for (std::uint32_t gpu = 0; gpu < t.num_gpus; ++gpu) {
    ranks[gpu].weights.resize(std::size_t{t.num_layers} * per_gpu * bytes);
    ranks[gpu].staging.resize(std::size_t{staging_slots} * bytes);
    for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
      for (std::uint32_t s = 0; s < per_gpu; ++s) {
        const std::int32_t expert = placement.phy2log_layer(layer)[gpu * per_gpu + s];
        for (std::size_t i = 0; i < bytes; ++i) {
          ranks[gpu].weights[(std::size_t{layer} * per_gpu + s) * bytes + i] =
              weight_byte(layer, expert, i);
        }
      }
    }
  }
  return ranks;
}

void expect_weights(const std::vector<Rank>& ranks, const Placement& placement, std::size_t bytes,
                    const char* when) {
  const Topology& t = placement.topology();
  const std::uint32_t per_gpu = t.slots_per_gpu();
  for (std::uint32_t gpu = 0; gpu < t.num_gpus; ++gpu) {
    for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
      for (std::uint32_t s = 0; s < per_gpu; ++s) {
        const std::int32_t expert = placement.phy2log_layer(layer)[gpu * per_gpu + s];
        for (std::size_t i = 0; i < bytes; ++i) {
          ASSERT_EQ(ranks[gpu].weights[(std::size_t{layer} * per_gpu + s) * bytes + i],
                    weight_byte(layer, expert, i))
              << when << ": gpu " << gpu << " layer " << layer << " slot " << s;
        }
      }
    }
  }
}

Placement random_placement(std::mt19937_64& rng, const Topology& t) {
  std::vector<std::int32_t> rows;
  std::uniform_int_distribution<std::int32_t> pick(0, static_cast<std::int32_t>(t.num_logical) - 1);
  for (std::uint32_t l = 0; l < t.num_layers; ++l) {
    std::vector<std::int32_t> row(t.num_physical);
    for (std::uint32_t s = 0; s < t.num_physical; ++s) {
      row[s] = s < t.num_logical ? static_cast<std::int32_t>(s) : pick(rng);
    }
    std::shuffle(row.begin(), row.end(), rng);
    rows.insert(rows.end(), row.begin(), row.end());
  }
  return Placement::from_phy2log(t, rows);
}

// Runs every step with one thread per rank; checks the weights after each step.
void run_threads(const MigrationPlan& plan, std::vector<Rank>& ranks, std::size_t bytes) {
  const Topology& t = plan.topology();
  const std::uint32_t per_gpu = t.slots_per_gpu();
  for (std::uint32_t step = 0; step < plan.summary().num_steps; ++step) {
    LocalTransportHub hub(t.num_gpus);
    std::vector<std::exception_ptr> errors(t.num_gpus);
    std::vector<std::thread> threads;
    for (std::uint32_t rank = 0; rank < t.num_gpus; ++rank) {
      threads.emplace_back([&, rank] {
        try {
          const RankStepOps ops = rank_step_ops(plan, step, rank);
          Rank& mine = ranks[rank];
          const SlotBytes slot = [&](std::uint32_t layer, std::uint32_t local) {
            return std::span(mine.weights)
                .subspan((std::size_t{layer} * per_gpu + local) * bytes, bytes);
          };
          run_migration_step(ops, slot, mine.staging, bytes, hub.endpoint(rank));
        } catch (...) {
          errors[rank] = std::current_exception();
        }
      });
    }
    for (auto& thread : threads) thread.join();
    for (const auto& error : errors) {
      if (error) std::rethrow_exception(error);
    }
    expect_weights(ranks, plan.placement_after_step(step), bytes, "after a step");
  }
}

TEST(LocalTransport, ExecutesSchedulesExactly) {
  std::mt19937_64 rng(77);
  for (int trial = 0; trial < 24; ++trial) {
    Topology t;
    t.num_layers = 1 + trial % 3;
    t.num_nodes = 1 + trial % 2;
    t.num_gpus = t.num_nodes * (2 + trial % 3);
    t.num_physical = t.num_gpus * (1 + trial % 3);
    t.num_logical = t.num_physical - trial % 3;
    t.validate();
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
  Topology t;
  t.num_layers = 1;
  t.num_logical = 2;
  t.num_physical = 2;
  t.num_gpus = 2;
  t.validate();
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

}  // namespace
}  // namespace eplb
