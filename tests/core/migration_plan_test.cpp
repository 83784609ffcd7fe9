// The migration planner against independent oracles: the Hungarian algorithm against brute force,
// the relabeling against every legal GPU permutation of small cases, and schedules replayed slot
// by slot (every rank ends with exactly its new experts, every intermediate placement keeps every
// expert, sources are the nearest available, budgets hold).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "assignment.hpp"
#include "error.hpp"
#include "metrics.hpp"
#include "migration_plan.hpp"
#include "placement.hpp"
#include "topology.hpp"

namespace eplb {
namespace {

Topology make_topology(std::uint32_t layers, std::uint32_t experts, std::uint32_t slots,
                       std::uint32_t gpus, std::uint32_t nodes) {
  Topology t;
  t.num_layers = layers;
  t.num_logical = experts;
  t.num_physical = slots;
  t.num_gpus = gpus;
  t.num_nodes = nodes;
  t.validate();
  return t;
}

// Every expert once, the remaining slots random experts, shuffled.
std::vector<std::int32_t> random_row(std::mt19937_64& rng, const Topology& t) {
  std::vector<std::int32_t> row(t.num_physical);
  std::uniform_int_distribution<std::int32_t> pick(0, static_cast<std::int32_t>(t.num_logical) - 1);
  for (std::uint32_t s = 0; s < t.num_physical; ++s) {
    row[s] = s < t.num_logical ? static_cast<std::int32_t>(s) : pick(rng);
  }
  std::shuffle(row.begin(), row.end(), rng);
  return row;
}

Placement random_placement(std::mt19937_64& rng, const Topology& t) {
  std::vector<std::int32_t> rows;
  for (std::uint32_t l = 0; l < t.num_layers; ++l) {
    const auto row = random_row(rng, t);
    rows.insert(rows.end(), row.begin(), row.end());
  }
  return Placement::from_phy2log(t, rows);
}

// `old` with nodes and GPUs within nodes permuted per layer, then `edits` random slot rewrites
// that keep every expert placed: a new plan whose best relabeling is far from the identity.
Placement perturbed(std::mt19937_64& rng, const Placement& old, std::uint32_t edits) {
  const Topology& t = old.topology();
  const std::uint32_t per_gpu = t.slots_per_gpu(), per_node = t.gpus_per_node();
  std::vector<std::int32_t> rows;
  for (std::uint32_t l = 0; l < t.num_layers; ++l) {
    const auto row = old.phy2log_layer(l);
    std::vector<std::uint32_t> nodes(t.num_nodes), gpus(per_node);
    std::iota(nodes.begin(), nodes.end(), 0u);
    std::shuffle(nodes.begin(), nodes.end(), rng);
    std::vector<std::int32_t> out(t.num_physical);
    for (std::uint32_t n = 0; n < t.num_nodes; ++n) {
      std::iota(gpus.begin(), gpus.end(), 0u);
      std::shuffle(gpus.begin(), gpus.end(), rng);
      for (std::uint32_t g = 0; g < per_node; ++g) {
        const std::uint32_t from = n * per_node + g, to = nodes[n] * per_node + gpus[g];
        std::vector<std::int32_t> slots(row.begin() + from * per_gpu,
                                        row.begin() + (from + 1) * per_gpu);
        std::shuffle(slots.begin(), slots.end(), rng);
        std::copy(slots.begin(), slots.end(), out.begin() + to * per_gpu);
      }
    }
    std::uniform_int_distribution<std::uint32_t> slot(0, t.num_physical - 1);
    std::uniform_int_distribution<std::int32_t> expert(
        0, static_cast<std::int32_t>(t.num_logical) - 1);
    for (std::uint32_t e = 0; e < edits; ++e) {
      const std::uint32_t s = slot(rng);
      if (std::count(out.begin(), out.end(), out[s]) >= 2) out[s] = expert(rng);
    }
    rows.insert(rows.end(), out.begin(), out.end());
  }
  return Placement::from_phy2log(t, rows);
}

std::vector<double> random_loads(std::mt19937_64& rng, const Topology& t) {
  std::lognormal_distribution<double> draw(0.0, 1.0);
  std::vector<double> loads(t.load_count());
  for (double& x : loads) x = std::round(draw(rng) * 1000.0);
  return loads;
}

std::span<const double> loads_row(const std::vector<double>& loads, const Topology& t,
                                  std::uint32_t layer) {
  return std::span(loads).subspan(std::size_t{layer} * t.num_logical, t.num_logical);
}

// ---------------------------------------------------------------------------------------------
// Hungarian algorithm

TEST(Assignment, MatchesBruteForceOnRandomMatrices) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t n = 1 + trial % 7;
    std::uniform_int_distribution<std::int64_t> value(trial % 2 ? -50 : 0, 50);
    std::vector<std::int64_t> w(n * n);
    for (auto& x : w) x = value(rng);
    std::vector<std::uint32_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0u);
    std::int64_t best = std::numeric_limits<std::int64_t>::min();
    do {
      std::int64_t sum = 0;
      for (std::size_t r = 0; r < n; ++r) sum += w[r * n + perm[r]];
      best = std::max(best, sum);
    } while (std::next_permutation(perm.begin(), perm.end()));
    const auto got = max_weight_assignment(w, n);
    std::set<std::uint32_t> columns(got.begin(), got.end());
    ASSERT_EQ(columns.size(), n);
    std::int64_t sum = 0;
    for (std::size_t r = 0; r < n; ++r) sum += w[r * n + got[r]];
    EXPECT_EQ(sum, best) << "trial " << trial;
  }
}

TEST(Assignment, RejectsWrongSize) {
  const std::vector<std::int64_t> w(5);
  EXPECT_THROW((void)max_weight_assignment(w, 2), Error);
  EXPECT_TRUE(max_weight_assignment({}, 0).empty());
}

// ---------------------------------------------------------------------------------------------
// Relabeling against brute force

// Is `map` (new GPU -> old GPU) a relabeling the mode allows?
bool legal(const Topology& t, const std::vector<std::uint32_t>& map, MigrationRelabel mode) {
  const std::uint32_t per_node = t.gpus_per_node();
  if (mode == MigrationRelabel::none) {
    for (std::uint32_t b = 0; b < map.size(); ++b) {
      if (map[b] != b) return false;
    }
    return true;
  }
  for (std::uint32_t b = 0; b < map.size(); ++b) {
    const std::uint32_t first = map[b / per_node * per_node] / per_node;
    if (map[b] / per_node != first) return false;  // a node maps to one node
    if (mode == MigrationRelabel::gpus_in_node && first != b / per_node) return false;
  }
  return true;
}

TEST(Relabel, KeepsTheBruteForceMaximumOfExpertsInPlace) {
  std::mt19937_64 rng(5);
  const MigrationRelabel modes[] = {MigrationRelabel::nodes_and_gpus,
                                    MigrationRelabel::gpus_in_node, MigrationRelabel::none};
  for (int trial = 0; trial < 120; ++trial) {
    const std::uint32_t nodes = 1 + trial % 3;
    const std::uint32_t gpus = nodes * (nodes == 3 ? 2 : 1 + trial % 3);  // at most 6
    const std::uint32_t per_gpu = 1 + trial % 3;
    const auto experts = static_cast<std::uint32_t>(
        std::max<std::int64_t>(1, std::int64_t{gpus} * per_gpu - trial % 3));
    const Topology t = make_topology(1, experts, gpus * per_gpu, gpus, nodes);
    const Placement old = random_placement(rng, t);
    const Placement next = trial % 2 ? random_placement(rng, t) : perturbed(rng, old, 2);
    for (const auto mode : modes) {
      std::vector<std::uint32_t> perm(gpus);
      std::iota(perm.begin(), perm.end(), 0u);
      std::uint64_t best = 0;
      do {
        if (legal(t, perm, mode)) {
          best = std::max(best, experts_kept(t, old.phy2log_layer(0), next.phy2log_layer(0), perm));
        }
      } while (std::next_permutation(perm.begin(), perm.end()));
      const auto map = relabel_gpus(t, old.phy2log_layer(0), next.phy2log_layer(0), mode);
      ASSERT_TRUE(legal(t, map, mode)) << "trial " << trial;
      EXPECT_EQ(experts_kept(t, old.phy2log_layer(0), next.phy2log_layer(0), map), best)
          << "trial " << trial << " mode " << static_cast<int>(mode);
      MigrationOptions options;
      options.relabel = mode;
      const auto plan = MigrationPlan::make(old, next, {}, options);
      EXPECT_EQ(plan.summary().full_migration_experts, t.num_physical - best);
    }
  }
}

TEST(Relabel, APurePermutationMovesNothing) {
  std::mt19937_64 rng(8);
  const Topology t = make_topology(4, 24, 32, 8, 2);
  const Placement old = random_placement(rng, t);
  const Placement next = perturbed(rng, old, 0);
  const auto plan = MigrationPlan::make(old, next, {}, {});
  EXPECT_EQ(plan.summary().moved_experts, 0u);
  EXPECT_EQ(plan.summary().num_steps, 0u);
  EXPECT_FALSE(plan.summary().worth_it);
  EXPECT_TRUE(std::equal(plan.target().phy2log().begin(), plan.target().phy2log().end(),
                         old.phy2log().begin()));
}

TEST(Relabel, KeepsEveryMetricOfTheNewPlan) {
  std::mt19937_64 rng(21);
  for (int trial = 0; trial < 30; ++trial) {
    const Topology t = make_topology(3, 12 + trial % 5, 24, 6 + 2 * (trial % 2 ? 3 : 0), 2);
    const Placement old = random_placement(rng, t);
    const Placement next = random_placement(rng, t);
    const auto loads = random_loads(rng, t);
    const auto plan = MigrationPlan::make(old, next, loads, {});
    const auto a = compute_metrics(next, loads);
    const auto b = compute_metrics(plan.relabeled(), loads);
    EXPECT_NEAR(a.balancedness, b.balancedness, 1e-12);
    EXPECT_NEAR(a.node_balancedness, b.node_balancedness, 1e-12);
    EXPECT_NEAR(a.min_balancedness, b.min_balancedness, 1e-12);
    EXPECT_EQ(a.duplicate_pairs, b.duplicate_pairs);
    EXPECT_EQ(a.cross_node_replicas, b.cross_node_replicas);
    EXPECT_EQ(a.max_replicas, b.max_replicas);
    // Each expert's replicas keep their ranks' order: replica r of the relabeled plan sits on
    // the GPU that replica r of the new plan was relabeled to.
    for (std::uint32_t l = 0; l < t.num_layers; ++l) {
      const auto map = plan.gpu_map().subspan(std::size_t{l} * t.num_gpus, t.num_gpus);
      for (std::uint32_t e = 0; e < t.num_logical; ++e) {
        const std::size_t base = (std::size_t{l} * t.num_logical + e);
        for (std::int32_t r = 0; r < next.replica_counts_layer(l)[e]; ++r) {
          const auto slot_new =
              next.log2phy()[base * next.log2phy_width() + static_cast<std::size_t>(r)];
          const auto slot_rel =
              plan.relabeled().log2phy()[base * plan.relabeled().log2phy_width() + r];
          EXPECT_EQ(map[t.gpu_of_slot(static_cast<std::uint32_t>(slot_new))],
                    t.gpu_of_slot(static_cast<std::uint32_t>(slot_rel)));
        }
      }
    }
  }
}

void check_schedule(const Placement& old, const MigrationPlan& plan);  // below

TEST(Relabel, RepackKeepsNodesAndNeverRaisesTheBusiestGpu) {
  std::mt19937_64 rng(23);
  int improved = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const std::uint32_t nodes = 1 + trial % 4;
    const Topology t = make_topology(3, nodes * 10, nodes * 12, nodes * 4, nodes);
    const Placement old = random_placement(rng, t);
    // A new plan without duplicates on a GPU: a permutation of the old one with a few edits.
    const Placement next = trial % 2 ? random_placement(rng, t) : perturbed(rng, old, 6);
    const auto loads = random_loads(rng, t);
    MigrationOptions options;
    const auto relabel = MigrationPlan::make(old, next, loads, options);
    options.relabel = MigrationRelabel::repack_in_node;
    const auto repack = MigrationPlan::make(old, next, loads, options);
    SCOPED_TRACE(testing::Message() << "trial " << trial);
    EXPECT_LE(repack.summary().full_migration_experts, relabel.summary().full_migration_experts);
    improved += repack.summary().full_migration_experts < relabel.summary().full_migration_experts;
    EXPECT_GE(repack.summary().new_balancedness, relabel.summary().new_balancedness - 1e-12);
    for (std::uint32_t l = 0; l < t.num_layers; ++l) {
      const auto row = loads_row(loads, t, l);
      const auto a = compute_layer_metrics(relabel.relabeled(), l, row);
      const auto b = compute_layer_metrics(repack.relabeled(), l, row);
      EXPECT_LE(b.max_gpu_load, a.max_gpu_load * (1 + 1e-12));
      EXPECT_NEAR(b.node_bound, a.node_bound, 1e-9 * (1 + a.node_bound));
      EXPECT_EQ(b.cross_node_replicas, a.cross_node_replicas);
      EXPECT_LE(b.duplicate_gpus, a.duplicate_gpus);
      // Each node holds the same replicas as in the relabeled plan.
      for (std::uint32_t node = 0; node < nodes; ++node) {
        std::multiset<std::int32_t> x, y;
        const std::uint32_t first = node * t.gpus_per_node() * t.slots_per_gpu();
        for (std::uint32_t s = first; s < first + t.gpus_per_node() * t.slots_per_gpu(); ++s) {
          x.insert(relabel.relabeled().phy2log_layer(l)[s]);
          y.insert(repack.relabeled().phy2log_layer(l)[s]);
        }
        EXPECT_EQ(x, y);
      }
    }
    check_schedule(old, repack);
  }
  EXPECT_GT(improved, 10);  // the exchanges do keep more experts in place
}

// ---------------------------------------------------------------------------------------------
// Schedules replayed

int tier(const Topology& t, std::uint32_t src, std::uint32_t dst) {
  const std::uint32_t a = t.gpu_of_slot(src), b = t.gpu_of_slot(dst);
  if (a == b) return 0;
  return t.node_of_gpu(a) == t.node_of_gpu(b) ? 1 : 2;
}

// Replays the schedule on phy2log and checks everything a schedule promises.
void check_schedule(const Placement& old, const MigrationPlan& plan) {
  const Topology& t = old.topology();
  const auto& s = plan.summary();
  const std::uint64_t bytes = plan.options().bytes_per_expert;
  std::vector<std::int32_t> state(old.phy2log().begin(), old.phy2log().end());
  std::set<std::pair<std::uint32_t, std::uint32_t>> written;
  std::uint64_t moved = 0, total_bytes = 0;
  for (std::uint32_t step = 0; step < s.num_steps; ++step) {
    const auto transfers = plan.step_transfers(step);
    ASSERT_FALSE(transfers.empty());
    std::set<std::uint32_t> layers;
    std::map<std::uint32_t, std::int64_t> balance;  // experts written minus overwritten
    const std::vector<std::int32_t> before = state;
    for (const Transfer& tr : transfers) {
      EXPECT_EQ(tr.step, step);
      const std::size_t base = std::size_t{tr.layer} * t.num_physical;
      ASSERT_EQ(before[base + tr.src_slot], static_cast<std::int32_t>(tr.expert))
          << "source does not hold the expert before the step";
      EXPECT_NE(before[base + tr.dst_slot], static_cast<std::int32_t>(tr.expert));
      EXPECT_TRUE(written.insert({tr.layer, tr.dst_slot}).second) << "a slot written twice";
      EXPECT_EQ(static_cast<int>(tr.kind), tier(t, tr.src_slot, tr.dst_slot));
      // No nearer source existed before the step.
      for (std::uint32_t slot = 0; slot < t.num_physical; ++slot) {
        if (before[base + slot] == static_cast<std::int32_t>(tr.expert)) {
          EXPECT_GE(tier(t, slot, tr.dst_slot), static_cast<int>(tr.kind));
        }
      }
      state[base + tr.dst_slot] = static_cast<std::int32_t>(tr.expert);
      layers.insert(tr.layer);
      ++balance[tr.layer * 100000u + tr.expert];
      --balance[tr.layer * 100000u + static_cast<std::uint32_t>(before[base + tr.dst_slot])];
    }
    const std::uint64_t step_bytes = transfers.size() * bytes;
    if (plan.options().max_bytes_per_step != 0 && step_bytes > plan.options().max_bytes_per_step) {
      // Only a cycle of last replicas may exceed the budget, alone in its step.
      EXPECT_EQ(layers.size(), 1u);
      for (const auto& [key, delta] : balance) EXPECT_EQ(delta, 0) << "step " << step;
    }
    if (plan.options().max_layers_per_step != 0) {
      EXPECT_LE(layers.size(), plan.options().max_layers_per_step);
    }
    moved += transfers.size();
    total_bytes += step_bytes;
    // Every expert keeps a replica, and the documented placement matches.
    const Placement after = plan.placement_after_step(step);
    EXPECT_TRUE(std::equal(state.begin(), state.end(), after.phy2log().begin()));
  }
  EXPECT_EQ(moved, s.moved_experts);
  EXPECT_EQ(s.same_gpu_experts + s.intra_node_experts + s.cross_node_experts, s.moved_experts);
  EXPECT_EQ(s.moved_bytes, moved * bytes);
  EXPECT_LE(s.moved_experts, s.naive_experts);
  if (plan.options().max_total_bytes != 0) {
    EXPECT_LE(total_bytes, plan.options().max_total_bytes);
  }
  // Every rank holds exactly the target's experts.
  EXPECT_TRUE(std::equal(state.begin(), state.end(), plan.target().phy2log().begin()));
  if (s.complete) {
    EXPECT_EQ(s.moved_experts, s.full_migration_experts);
    EXPECT_TRUE(std::equal(state.begin(), state.end(), plan.relabeled().phy2log().begin()));
  } else {
    EXPECT_LT(s.moved_experts, s.full_migration_experts);
  }
}

TEST(Schedule, ReplaysToTheNewPlanOnRandomPlacements) {
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 60; ++trial) {
    const std::uint32_t nodes = 1 + trial % 4, per_node = 1 + trial % 3;
    const std::uint32_t gpus = nodes * per_node, per_gpu = 1 + trial % 4;
    const auto experts = static_cast<std::uint32_t>(
        std::max<std::int64_t>(1, std::int64_t{gpus} * per_gpu - trial % 5));
    const Topology t = make_topology(1 + trial % 3, experts, gpus * per_gpu, gpus, nodes);
    const Placement old = random_placement(rng, t);
    const Placement next = trial % 3 ? random_placement(rng, t) : perturbed(rng, old, 3);
    MigrationOptions options;
    options.relabel = static_cast<MigrationRelabel>(trial % 4);
    options.bytes_per_expert = 1 + trial % 7;
    options.max_bytes_per_step = trial % 2 ? options.bytes_per_expert * (1 + trial % 4) : 0;
    options.max_layers_per_step = trial % 5 == 0 ? 1 : 0;
    const auto loads = random_loads(rng, t);
    for (const bool with_loads : {false, true}) {
      const auto plan = MigrationPlan::make(
          old, next, with_loads ? std::span<const double>(loads) : std::span<const double>(),
          options);
      SCOPED_TRACE(testing::Message() << "trial " << trial << " loads " << with_loads);
      check_schedule(old, plan);
      EXPECT_LE(plan.summary().moved_experts, plan.summary().same_gpu_rule_experts);
      EXPECT_TRUE(plan.summary().complete);
    }
  }
}

TEST(Schedule, RelabelingNeverMovesMoreThanTheSameGpuRule) {
  std::mt19937_64 rng(4);
  for (int trial = 0; trial < 20; ++trial) {
    const Topology t = make_topology(4, 32, 48, 8, 2);
    const Placement old = random_placement(rng, t);
    const Placement next = perturbed(rng, old, 4);
    std::uint64_t moved[3];
    for (std::uint32_t mode = 0; mode < 3; ++mode) {
      MigrationOptions options;
      options.relabel = static_cast<MigrationRelabel>(mode);
      moved[mode] = MigrationPlan::make(old, next, {}, options).summary().moved_experts;
    }
    EXPECT_LE(moved[0], moved[1]);
    EXPECT_LE(moved[1], moved[2]);
    EXPECT_LT(moved[0], moved[2]);  // the permutation is found
  }
}

TEST(Schedule, TotalBudgetStopsEarlyWithAServablePlacement) {
  std::mt19937_64 rng(9);
  for (int trial = 0; trial < 30; ++trial) {
    // A few replicas per expert, and many (where the planner bounds most moves instead of
    // scoring them).
    const Topology t =
        trial % 3 == 2 ? make_topology(3, 6, 48, 8, 2) : make_topology(5, 16, 24, 8, 2);
    const Placement old = random_placement(rng, t);
    const Placement next = random_placement(rng, t);
    const auto loads = random_loads(rng, t);
    MigrationOptions full_options;
    full_options.bytes_per_expert = 10;
    const auto full = MigrationPlan::make(old, next, loads, full_options);
    MigrationOptions options = full_options;
    options.max_total_bytes = full.summary().moved_bytes / 4 + 5;
    options.max_bytes_per_step = 30;
    const auto plan = MigrationPlan::make(old, next, loads, options);
    SCOPED_TRACE(testing::Message() << "trial " << trial);
    check_schedule(old, plan);
    EXPECT_LE(plan.summary().moved_bytes, options.max_total_bytes);
    EXPECT_FALSE(plan.summary().complete);
    // The predicted balancedness is the target's, computed independently.
    EXPECT_NEAR(plan.summary().target_balancedness,
                compute_metrics(plan.target(), loads).balancedness, 1e-12);
    EXPECT_NEAR(plan.summary().old_balancedness, compute_metrics(old, loads).balancedness, 1e-12);
    EXPECT_NEAR(plan.summary().new_balancedness, compute_metrics(next, loads).balancedness, 1e-12);
    // Under a budget the schedule never predicts a loss: a rebalance of the old placement that
    // only takes improving moves competes with the prefix toward the new plan.
    EXPECT_GE(plan.summary().gain, -1e-12);
  }
}

TEST(Schedule, SwapsOfLastReplicasStayInOneStep) {
  // Two GPUs trade their only experts: no order of single moves keeps both placed.
  const Topology t = make_topology(1, 4, 4, 2, 2);
  const Placement old = Placement::from_phy2log(t, {0, 1, 2, 3});
  const Placement next = Placement::from_phy2log(t, {0, 2, 1, 3});
  MigrationOptions options;
  options.max_bytes_per_step = 1;
  options.relabel = MigrationRelabel::none;
  const auto plan = MigrationPlan::make(old, next, {}, options);
  ASSERT_EQ(plan.summary().num_steps, 1u);
  EXPECT_EQ(plan.summary().moved_experts, 2u);
  EXPECT_EQ(plan.summary().cross_node_experts, 2u);
  check_schedule(old, plan);
}

TEST(Schedule, PrefersSourcesOnTheSameGpuThenNode) {
  // 2 nodes x 2 GPUs x 2 slots. Expert 0 lives on GPU 1 (node 0) and GPU 2 (node 1); GPU 0
  // must receive it: GPU 1 is the nearer source.
  const Topology t = make_topology(1, 5, 8, 4, 2);
  const Placement old = Placement::from_phy2log(t, {1, 2, 0, 3, 0, 4, 1, 2});
  const Placement next = Placement::from_phy2log(t, {0, 2, 0, 3, 0, 4, 1, 2});
  MigrationOptions options;
  options.relabel = MigrationRelabel::none;
  const auto plan = MigrationPlan::make(old, next, {}, options);
  ASSERT_EQ(plan.summary().moved_experts, 1u);
  EXPECT_EQ(plan.transfers()[0].src_slot, 2u);
  EXPECT_EQ(plan.transfers()[0].kind, TransferKind::intra_node);
  // GPU 0 wants a second copy of expert 1 and GPU 3 a second copy of expert 2, each already
  // on the GPU: both are local copies.
  const Placement next2 = Placement::from_phy2log(t, {1, 1, 0, 3, 0, 4, 2, 2});
  const auto plan2 = MigrationPlan::make(old, next2, {}, options);
  check_schedule(old, plan2);
  EXPECT_EQ(plan2.summary().same_gpu_experts, 2u);  // both GPUs 0 and 3 copy locally
}

TEST(Schedule, SpreadsTransfersAcrossSenders) {
  // Expert 0 on every GPU of node 0 (4 GPUs), wanted on all 4 GPUs of node 1: each sender
  // sends once.
  const Topology t = make_topology(1, 5, 16, 8, 2);
  std::vector<std::int32_t> old_row = {0, 1, 0, 2, 0, 3, 0, 4, 1, 2, 3, 4, 1, 2, 3, 4};
  std::vector<std::int32_t> new_row = {0, 1, 0, 2, 0, 3, 0, 4, 0, 2, 0, 4, 0, 2, 0, 4};
  const Placement old = Placement::from_phy2log(t, old_row);
  const Placement next = Placement::from_phy2log(t, new_row);
  MigrationOptions options;
  options.relabel = MigrationRelabel::none;
  const auto plan = MigrationPlan::make(old, next, {}, options);
  std::map<std::uint32_t, int> sent;
  for (const auto& tr : plan.transfers()) {
    if (tr.expert == 0) ++sent[t.gpu_of_slot(tr.src_slot)];
  }
  EXPECT_EQ(sent.size(), 4u);
  for (const auto& [gpu, count] : sent) EXPECT_EQ(count, 1) << "gpu " << gpu;
}

TEST(Schedule, LoadAwareOrderPutsTheGainFirst) {
  // With a total budget of one expert, compare with every single legal move toward the new plan
  // by brute force.
  std::mt19937_64 rng(13);
  for (int trial = 0; trial < 40; ++trial) {
    // As above, a few replicas per expert and many.
    const Topology t = trial % 2 ? make_topology(1, 5, 40, 8, 1) : make_topology(1, 8, 16, 4, 1);
    const Placement old = random_placement(rng, t);
    const Placement next = random_placement(rng, t);
    const auto loads = random_loads(rng, t);
    MigrationOptions options;
    options.max_total_bytes = 1;
    const auto plan = MigrationPlan::make(old, next, loads, options);
    check_schedule(old, plan);
    const auto relabeled = plan.relabeled().phy2log_layer(0);
    double best = -1;
    for (std::uint32_t s = 0; s < t.num_physical; ++s) {
      std::vector<std::int32_t> row(old.phy2log().begin(), old.phy2log().end());
      if (row[s] == relabeled[s] || std::count(row.begin(), row.end(), row[s]) < 2) continue;
      row[s] = relabeled[s];
      best = std::max(best, compute_metrics(Placement::from_phy2log(t, row), loads).balancedness);
    }
    // The schedule is at least as good as the best single move toward the new plan (it may
    // instead rebalance the old placement, which can do better).
    if (best > compute_metrics(old, loads).balancedness) {
      EXPECT_GE(plan.summary().target_balancedness, best - 1e-12) << "trial " << trial;
    }
  }
}

TEST(Schedule, BoundedScanChoosesExactlyAsTheFullScan) {
  // Where experts have several replicas, single changes are bounded before they are scored (in
  // the order and in the budget's rebalance). The choices must be the full scan's bit for bit:
  // same transfers, steps and predicted gain, on loads with ties, zeros and tiny magnitudes.
  struct Shape {
    std::uint32_t experts, slots, gpus, nodes;
  };
  const Shape shapes[] = {
      {3, 48, 8, 2}, {5, 40, 8, 1}, {4, 64, 16, 4}, {8, 96, 12, 3}, {2, 24, 6, 1}};
  std::mt19937_64 rng(21);
  int compared = 0;
  for (const Shape& shape : shapes) {
    const Topology t = make_topology(2, shape.experts, shape.slots, shape.gpus, shape.nodes);
    for (int kind = 0; kind < 5; ++kind) {
      for (int trial = 0; trial < 3; ++trial) {
        const Placement old = random_placement(rng, t);
        const Placement next = random_placement(rng, t);
        std::vector<double> loads = random_loads(rng, t);
        std::uniform_int_distribution<int> small(0, 3);
        for (double& x : loads) {
          if (kind == 1) x = small(rng);           // many ties
          if (kind == 2) x = 7;                    // all equal
          if (kind == 3) x *= 1e-160;              // squares below the normal range
          if (kind == 4 && small(rng) < 2) x = 0;  // zeros mixed in
        }
        for (const bool budget : {false, true}) {
          MigrationOptions options;
          options.max_bytes_per_step = 3;
          if (budget) {
            options.max_total_bytes =
                MigrationPlan::make(old, next, loads, options).summary().moved_bytes / 3 + 1;
          }
          const auto bounded = MigrationPlan::make(old, next, loads, options);
          options.bound_changes = false;
          const auto full = MigrationPlan::make(old, next, loads, options);
          SCOPED_TRACE(testing::Message() << shape.experts << " on " << shape.slots << " kind "
                                          << kind << " trial " << trial << " budget " << budget);
          ASSERT_EQ(bounded.transfers().size(), full.transfers().size());
          for (std::size_t i = 0; i < full.transfers().size(); ++i) {
            const Transfer& a = bounded.transfers()[i];
            const Transfer& b = full.transfers()[i];
            EXPECT_TRUE(a.step == b.step && a.layer == b.layer && a.expert == b.expert &&
                        a.src_slot == b.src_slot && a.dst_slot == b.dst_slot && a.kind == b.kind)
                << "transfer " << i;
          }
          EXPECT_EQ(bounded.summary().num_steps, full.summary().num_steps);
          EXPECT_EQ(bounded.summary().gain, full.summary().gain);
          ++compared;
        }
      }
    }
  }
  EXPECT_EQ(compared, 150);
}

TEST(WorthIt, GateFollowsGainAndBytes) {
  std::mt19937_64 rng(17);
  const Topology t = make_topology(4, 16, 24, 8, 2);
  const Placement old = random_placement(rng, t);
  const Placement next = random_placement(rng, t);
  auto loads = random_loads(rng, t);
  MigrationOptions options;
  auto plan = MigrationPlan::make(old, next, loads, options);
  const double gain = plan.summary().gain;
  EXPECT_EQ(plan.summary().worth_it, gain > 0);
  options.min_gain = gain + 1e-9;
  EXPECT_FALSE(MigrationPlan::make(old, next, loads, options).summary().worth_it);
  if (gain > 0) {
    options.min_gain = 0;
    const double gib = static_cast<double>(plan.summary().moved_bytes) / (1 << 30);
    options.min_gain_per_gib = gain / gib * 0.99;
    EXPECT_TRUE(MigrationPlan::make(old, next, loads, options).summary().worth_it);
    options.min_gain_per_gib = gain / gib * 1.01;
    EXPECT_FALSE(MigrationPlan::make(old, next, loads, options).summary().worth_it);
  }
  // Re-planning to the same placement moves nothing and is never worth it.
  EXPECT_FALSE(MigrationPlan::make(old, old, loads, {}).summary().worth_it);
}

TEST(BadInput, NamesTheOffendingValue) {
  std::mt19937_64 rng(1);
  const Topology t = make_topology(2, 8, 8, 4, 2);
  const Placement a = random_placement(rng, t);
  const Placement other = random_placement(rng, make_topology(2, 8, 8, 4, 1));
  const auto expect_error = [](auto&& call, const char* text) {
    try {
      call();
      ADD_FAILURE() << "no error, expected " << text;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), Errc::invalid_argument);
      EXPECT_NE(std::string(error.what()).find(text), std::string::npos) << error.what();
    }
  };
  expect_error([&] { (void)MigrationPlan::make(a, other, {}, {}); }, "num_nodes");
  MigrationOptions options;
  options.bytes_per_expert = 0;
  expect_error([&] { (void)MigrationPlan::make(a, a, {}, options); }, "bytes_per_expert");
  // 2 layers x 8 slots: byte counts up to 16 x bytes_per_expert must fit in 64 bits.
  options.bytes_per_expert = std::numeric_limits<std::uint64_t>::max() / 16 + 1;
  expect_error([&] { (void)MigrationPlan::make(a, a, {}, options); },
               "bytes_per_expert (1152921504606846976) x the 16 slots");
  options.bytes_per_expert = std::numeric_limits<std::uint64_t>::max() / 16;
  const auto largest = MigrationPlan::make(a, random_placement(rng, t), {}, options);
  EXPECT_EQ(largest.summary().moved_bytes,
            largest.summary().moved_experts * options.bytes_per_expert);
  options = {};
  options.relabel = static_cast<MigrationRelabel>(7);
  expect_error([&] { (void)MigrationPlan::make(a, a, {}, options); }, "relabel (7)");
  options = {};
  options.min_gain_per_gib = -1;
  expect_error([&] { (void)MigrationPlan::make(a, a, {}, options); }, "min_gain_per_gib");
  std::vector<double> loads(t.load_count(), 1.0);
  loads[3] = -2;
  expect_error([&] { (void)MigrationPlan::make(a, a, loads, {}); }, "-2");
  loads.pop_back();
  expect_error([&] { (void)MigrationPlan::make(a, a, loads, {}); }, "loads");
  const auto plan = MigrationPlan::make(a, random_placement(rng, t), {}, {});
  expect_error([&] { (void)plan.step_transfers(plan.summary().num_steps); }, "step");
}

}  // namespace
}  // namespace eplb
