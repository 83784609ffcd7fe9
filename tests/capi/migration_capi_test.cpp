// The migration C API through libeplb.so only: the schedule replayed from the transfers the API
// returns reaches the target, the target keeps the new plan's metrics, caller and library-owned
// buffers agree, and bad input returns a status whose message names the value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "eplb/eplb.h"

namespace {

struct Placement {
  eplb_placement* handle = nullptr;
  Placement() = default;
  explicit Placement(eplb_placement* p) : handle(p) {}
  Placement(const Placement&) = delete;
  Placement& operator=(const Placement&) = delete;
  ~Placement() { eplb_placement_destroy(handle); }
};

struct Migration {
  eplb_migration* handle = nullptr;
  Migration() = default;
  Migration(const Migration&) = delete;
  Migration& operator=(const Migration&) = delete;
  ~Migration() { eplb_migration_destroy(handle); }
};

constexpr std::uint32_t kLayers = 3, kExperts = 20, kSlots = 32, kNodes = 2, kGpus = 8;

std::vector<std::int32_t> random_rows(std::mt19937_64& rng) {
  std::vector<std::int32_t> rows;
  std::uniform_int_distribution<std::int32_t> pick(0, kExperts - 1);
  for (std::uint32_t l = 0; l < kLayers; ++l) {
    std::vector<std::int32_t> row(kSlots);
    for (std::uint32_t s = 0; s < kSlots; ++s) {
      row[s] = s < kExperts ? static_cast<std::int32_t>(s) : pick(rng);
    }
    std::shuffle(row.begin(), row.end(), rng);
    rows.insert(rows.end(), row.begin(), row.end());
  }
  return rows;
}

eplb_placement* make_placement(const std::vector<std::int32_t>& rows,
                               std::uint32_t nodes = kNodes) {
  eplb_placement* p = nullptr;
  EXPECT_EQ(eplb_placement_create_from_phy2log(kLayers, kExperts, kSlots, nodes, kGpus, rows.data(),
                                               rows.size(), &p),
            EPLB_OK);
  return p;
}

std::vector<std::int32_t> phy2log(const eplb_placement* p) {
  std::vector<std::int32_t> out(std::size_t{kLayers} * kSlots);
  EXPECT_EQ(eplb_placement_get_phy2log(p, out.data(), out.size()), EPLB_OK);
  return out;
}

double balancedness(const eplb_placement* p, const std::vector<double>& loads) {
  eplb_metrics metrics{};
  metrics.struct_size = sizeof(metrics);
  EXPECT_EQ(eplb_metrics_compute(p, loads.data(), loads.size(), &metrics), EPLB_OK);
  return metrics.balancedness;
}

TEST(MigrationCapi, ScheduleReachesTheTargetWithTheNewPlansMetrics) {
  std::mt19937_64 rng(42);
  std::vector<double> loads(std::size_t{kLayers} * kExperts);
  std::uniform_real_distribution<double> draw(1, 100);
  for (double& x : loads) x = draw(rng);
  for (int trial = 0; trial < 10; ++trial) {
    const auto old_rows = random_rows(rng);
    Placement old(make_placement(old_rows));
    Placement next(make_placement(random_rows(rng)));
    eplb_migration_options options;
    eplb_migration_options_init(&options);
    options.bytes_per_expert = 44u << 20;
    options.max_bytes_per_step = options.bytes_per_expert * 4;
    Migration m;
    ASSERT_EQ(eplb_migration_plan(old.handle, next.handle, loads.data(), loads.size(), &options,
                                  &m.handle),
              EPLB_OK)
        << eplb_last_error_message();
    eplb_migration_summary summary{};
    summary.struct_size = sizeof(summary);
    ASSERT_EQ(eplb_migration_get_summary(m.handle, &summary), EPLB_OK);
    EXPECT_EQ(summary.complete, 1u);
    EXPECT_EQ(summary.has_loads, 1u);
    EXPECT_EQ(summary.naive_experts, std::uint64_t{kLayers} * kSlots);
    EXPECT_LE(summary.moved_experts, summary.same_gpu_rule_experts);
    EXPECT_EQ(summary.moved_bytes, summary.moved_experts * options.bytes_per_expert);
    EXPECT_LE(summary.max_step_bytes, options.max_bytes_per_step * 2);

    // Size query, caller buffer, library buffer.
    std::size_t count = 0;
    ASSERT_EQ(eplb_migration_get_transfers(m.handle, EPLB_MIGRATION_ALL_STEPS, nullptr, 0, &count),
              EPLB_OK);
    EXPECT_EQ(count, summary.moved_experts);
    std::vector<eplb_migration_transfer> transfers(count);
    ASSERT_EQ(eplb_migration_get_transfers(m.handle, EPLB_MIGRATION_ALL_STEPS, transfers.data(),
                                           transfers.size(), &count),
              EPLB_OK);
    eplb_migration_transfer* owned = nullptr;
    std::size_t owned_count = 0;
    ASSERT_EQ(
        eplb_migration_copy_transfers(m.handle, EPLB_MIGRATION_ALL_STEPS, &owned, &owned_count),
        EPLB_OK);
    ASSERT_EQ(owned_count, count);
    for (std::size_t i = 0; i < count; ++i) {
      EXPECT_EQ(owned[i].dst_slot, transfers[i].dst_slot);
      EXPECT_EQ(owned[i].src_slot, transfers[i].src_slot);
    }
    eplb_buffer_free(owned);

    // Replay step by step against the step placements.
    std::vector<std::int32_t> state = old_rows;
    std::size_t seen = 0;
    for (std::uint32_t step = 0; step < summary.num_steps; ++step) {
      std::size_t n = 0;
      ASSERT_EQ(eplb_migration_get_transfers(m.handle, step, nullptr, 0, &n), EPLB_OK);
      std::vector<eplb_migration_transfer> part(n);
      ASSERT_EQ(eplb_migration_get_transfers(m.handle, step, part.data(), n, &n), EPLB_OK);
      const auto before = state;
      for (const auto& t : part) {
        EXPECT_EQ(t.step, step);
        EXPECT_EQ(t.src_gpu, t.src_slot / (kSlots / kGpus));
        EXPECT_EQ(t.dst_gpu, t.dst_slot / (kSlots / kGpus));
        ASSERT_EQ(before[t.layer * kSlots + t.src_slot], static_cast<std::int32_t>(t.expert));
        state[t.layer * kSlots + t.dst_slot] = static_cast<std::int32_t>(t.expert);
      }
      seen += n;
      Placement after;
      ASSERT_EQ(eplb_migration_get_step_placement(m.handle, step, &after.handle), EPLB_OK);
      EXPECT_EQ(phy2log(after.handle), state);
    }
    EXPECT_EQ(seen, count);
    Placement target;
    ASSERT_EQ(eplb_migration_get_target(m.handle, &target.handle), EPLB_OK);
    EXPECT_EQ(phy2log(target.handle), state);
    EXPECT_NEAR(balancedness(target.handle, loads), balancedness(next.handle, loads), 1e-12);
    EXPECT_NEAR(summary.new_balancedness, balancedness(next.handle, loads), 1e-12);
    EXPECT_NEAR(summary.old_balancedness, balancedness(old.handle, loads), 1e-12);
    // A valid log2phy: every expert's listed slots hold it.
    eplb_placement_info info{};
    info.struct_size = sizeof(info);
    ASSERT_EQ(eplb_placement_get_info(target.handle, &info), EPLB_OK);
    std::vector<std::int32_t> log2phy(std::size_t{kLayers} * kExperts * info.log2phy_width);
    ASSERT_EQ(eplb_placement_get_log2phy(target.handle, log2phy.data(), log2phy.size()), EPLB_OK);
    for (std::uint32_t l = 0; l < kLayers; ++l) {
      for (std::uint32_t e = 0; e < kExperts; ++e) {
        for (std::uint32_t r = 0; r < info.log2phy_width; ++r) {
          const std::int32_t slot = log2phy[(l * kExperts + e) * info.log2phy_width + r];
          if (slot >= 0) {
            EXPECT_EQ(state[l * kSlots + static_cast<std::uint32_t>(slot)],
                      static_cast<std::int32_t>(e));
          }
        }
      }
    }
    std::vector<std::uint32_t> map(std::size_t{kLayers} * kGpus);
    EXPECT_EQ(eplb_migration_get_gpu_map(m.handle, map.data(), map.size()), EPLB_OK);
  }
}

TEST(MigrationCapi, WithoutLoadsAndDefaultOptions) {
  std::mt19937_64 rng(7);
  Placement old(make_placement(random_rows(rng)));
  Migration m;
  ASSERT_EQ(eplb_migration_plan(old.handle, old.handle, nullptr, 0, nullptr, &m.handle), EPLB_OK);
  eplb_migration_summary summary{};
  summary.struct_size = sizeof(summary);
  ASSERT_EQ(eplb_migration_get_summary(m.handle, &summary), EPLB_OK);
  EXPECT_EQ(summary.moved_experts, 0u);
  EXPECT_EQ(summary.num_steps, 0u);
  EXPECT_EQ(summary.worth_it, 0u);
  EXPECT_EQ(summary.has_loads, 0u);
  eplb_migration_transfer* owned = nullptr;
  std::size_t count = 1;
  ASSERT_EQ(eplb_migration_copy_transfers(m.handle, EPLB_MIGRATION_ALL_STEPS, &owned, &count),
            EPLB_OK);
  EXPECT_NE(owned, nullptr);
  EXPECT_EQ(count, 0u);
  eplb_buffer_free(owned);
}

TEST(MigrationCapi, RepackAndBudgetModes) {
  std::mt19937_64 rng(11);
  std::vector<double> loads(std::size_t{kLayers} * kExperts);
  std::uniform_real_distribution<double> draw(1, 100);
  for (double& x : loads) x = draw(rng);
  Placement old(make_placement(random_rows(rng)));
  Placement next(make_placement(random_rows(rng)));
  const auto run = [&](std::uint32_t relabel, std::uint64_t budget) {
    eplb_migration_options options;
    eplb_migration_options_init(&options);
    options.relabel = relabel;
    options.max_total_bytes = budget;
    Migration m;
    EXPECT_EQ(eplb_migration_plan(old.handle, next.handle, loads.data(), loads.size(), &options,
                                  &m.handle),
              EPLB_OK);
    eplb_migration_summary summary{};
    summary.struct_size = sizeof(summary);
    EXPECT_EQ(eplb_migration_get_summary(m.handle, &summary), EPLB_OK);
    Placement target;
    EXPECT_EQ(eplb_migration_get_target(m.handle, &target.handle), EPLB_OK);
    EXPECT_NEAR(summary.target_balancedness, balancedness(target.handle, loads), 1e-12);
    return summary;
  };
  const auto relabel = run(EPLB_MIGRATION_RELABEL_NODES_AND_GPUS, 0);
  const auto repack = run(EPLB_MIGRATION_RELABEL_REPACK_IN_NODE, 0);
  EXPECT_LE(repack.moved_experts, relabel.moved_experts);
  EXPECT_GE(repack.new_balancedness, relabel.new_balancedness - 1e-12);
  const auto budget = run(EPLB_MIGRATION_RELABEL_NODES_AND_GPUS, relabel.moved_bytes / 4);
  EXPECT_EQ(budget.complete, 0u);
  EXPECT_LE(budget.moved_bytes, relabel.moved_bytes / 4);
  EXPECT_GE(budget.gain, 0.0);
}

void expect_status(eplb_status got, eplb_status want, const char* text) {
  EXPECT_EQ(got, want) << text;
  EXPECT_NE(std::string(eplb_last_error_message()).find(text), std::string::npos)
      << eplb_last_error_message();
}

TEST(MigrationCapi, BadInputReturnsStatusNamingTheValue) {
  std::mt19937_64 rng(3);
  const auto rows = random_rows(rng);
  Placement a(make_placement(rows));
  Placement b(make_placement(random_rows(rng)));
  Placement other_nodes(make_placement(rows, 1));
  std::vector<double> loads(std::size_t{kLayers} * kExperts, 1.0);
  Migration m;
  const auto inv = EPLB_ERR_INVALID_ARGUMENT;
  expect_status(eplb_migration_plan(nullptr, b.handle, nullptr, 0, nullptr, &m.handle), inv,
                "old_placement");
  expect_status(eplb_migration_plan(a.handle, nullptr, nullptr, 0, nullptr, &m.handle), inv,
                "new_placement");
  expect_status(eplb_migration_plan(a.handle, b.handle, nullptr, 0, nullptr, nullptr), inv,
                "out_migration");
  expect_status(eplb_migration_plan(a.handle, other_nodes.handle, nullptr, 0, nullptr, &m.handle),
                inv, "num_nodes");
  expect_status(eplb_migration_plan(a.handle, b.handle, nullptr, 5, nullptr, &m.handle), inv,
                "loads_len is 5");
  expect_status(eplb_migration_plan(a.handle, b.handle, loads.data(), 7, nullptr, &m.handle), inv,
                "loads");
  loads[4] = -3;
  expect_status(
      eplb_migration_plan(a.handle, b.handle, loads.data(), loads.size(), nullptr, &m.handle), inv,
      "-3");
  eplb_migration_options options;
  eplb_migration_options_init(&options);
  options.bytes_per_expert = 0;
  expect_status(eplb_migration_plan(a.handle, b.handle, nullptr, 0, &options, &m.handle), inv,
                "bytes_per_expert");
  eplb_migration_options_init(&options);
  options.relabel = 9;
  expect_status(eplb_migration_plan(a.handle, b.handle, nullptr, 0, &options, &m.handle), inv,
                "relabel (9)");
  eplb_migration_options_init(&options);
  options.reserved0 = 1;
  expect_status(eplb_migration_plan(a.handle, b.handle, nullptr, 0, &options, &m.handle), inv,
                "reserved0");
  eplb_migration_options_init(&options);
  options.struct_size = 4;
  expect_status(eplb_migration_plan(a.handle, b.handle, nullptr, 0, &options, &m.handle), inv,
                "struct_size (4)");
  EXPECT_EQ(m.handle, nullptr);  // outputs untouched on failure

  ASSERT_EQ(eplb_migration_plan(a.handle, b.handle, nullptr, 0, nullptr, &m.handle), EPLB_OK);
  eplb_migration_summary summary{};
  summary.struct_size = sizeof(summary);
  ASSERT_EQ(eplb_migration_get_summary(m.handle, &summary), EPLB_OK);
  ASSERT_GT(summary.moved_experts, 1u);
  std::size_t count = 0;
  std::vector<eplb_migration_transfer> small(1);
  expect_status(
      eplb_migration_get_transfers(m.handle, EPLB_MIGRATION_ALL_STEPS, small.data(), 1, &count),
      EPLB_ERR_BUFFER_TOO_SMALL, "out_len is 1");
  EXPECT_EQ(count, summary.moved_experts);
  expect_status(eplb_migration_get_transfers(m.handle, summary.num_steps, nullptr, 0, &count), inv,
                "step");
  expect_status(eplb_migration_get_transfers(m.handle, 0, nullptr, 3, &count), inv, "out_len is 3");
  expect_status(eplb_migration_get_transfers(m.handle, 0, nullptr, 0, nullptr), inv, "out_count");
  expect_status(eplb_migration_get_transfers(nullptr, 0, nullptr, 0, &count), inv, "migration");
  eplb_migration_transfer* owned = nullptr;
  expect_status(eplb_migration_copy_transfers(m.handle, 0, &owned, nullptr), inv, "out_count");
  expect_status(eplb_migration_copy_transfers(m.handle, 0, nullptr, &count), inv, "out_transfers");
  std::vector<std::uint32_t> map(3);
  expect_status(eplb_migration_get_gpu_map(m.handle, map.data(), map.size()),
                EPLB_ERR_BUFFER_TOO_SMALL, "out_len is 3");
  expect_status(eplb_migration_get_gpu_map(m.handle, nullptr, 0), inv, "out");
  Placement p;
  expect_status(eplb_migration_get_step_placement(m.handle, summary.num_steps, &p.handle), inv,
                "step");
  expect_status(eplb_migration_get_target(m.handle, nullptr), inv, "out_placement");
  expect_status(eplb_migration_get_summary(m.handle, nullptr), inv, "out_summary");
  summary.struct_size = 3;
  expect_status(eplb_migration_get_summary(m.handle, &summary), inv, "struct_size (3)");
  eplb_migration_options_init(nullptr);  // no-op
  eplb_migration_destroy(nullptr);       // no-op
}

}  // namespace
