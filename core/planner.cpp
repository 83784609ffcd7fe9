#include "planner.hpp"

#include <cfloat>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

#include "error.hpp"
#include "loads.hpp"
#include "trivial_planner.hpp"

namespace eplb {

namespace {

constexpr std::uint32_t kMaxThreads = 256;

void require_float32_range(std::span<const double> loads, std::uint32_t num_logical) {
  double total = 0;
  for (std::size_t i = 0; i < loads.size(); ++i) {
    if (loads[i] > static_cast<double>(FLT_MAX)) {
      fail_invalid("loads[", i / num_logical, "][", i % num_logical, "] = ", loads[i],
                   " exceeds FLT_MAX; the deepseek algorithm computes in float32 like the "
                   "reference");
    }
    total += loads[i];
    if ((i + 1) % num_logical == 0) {
      // Its sums of groups and packs are float32 too; half of FLT_MAX leaves room for rounding.
      if (total > static_cast<double>(FLT_MAX) / 2) {
        fail_invalid("the loads of layer ", i / num_logical, " add up to ", total,
                     ", above FLT_MAX / 2; the deepseek algorithm sums them in float32 like the "
                     "reference");
      }
      total = 0;
    }
  }
}

bool is_balanced(Algorithm algorithm) {
  return algorithm == Algorithm::balanced || algorithm == Algorithm::balanced_hierarchical ||
         algorithm == Algorithm::balanced_relaxed;
}

BalancedSettings balanced_settings(Algorithm algorithm, std::uint32_t budget) {
  BalancedSettings settings;
  settings.policy = algorithm == Algorithm::balanced_hierarchical ? BalancedPolicy::hierarchical
                    : algorithm == Algorithm::balanced_relaxed    ? BalancedPolicy::relaxed
                                                                  : BalancedPolicy::global;
  settings.cross_node_budget = budget;
  return settings;
}

// Replica ranks for `map`, a layer of `current` with some slots changed: each expert's replicas
// that stayed in their slot keep their order of `current` (so a kept layer keeps its ranks), and
// the new ones follow in ascending slot order.
void keep_replica_ranks(const Placement& current, std::size_t layer,
                        std::span<const std::int32_t> map, std::span<std::int32_t> rank) {
  const Topology& t = current.topology();
  const std::size_t width = current.log2phy_width();
  const auto log2phy =
      current.log2phy().subspan(layer * t.num_logical * width, std::size_t{t.num_logical} * width);
  std::vector<std::int32_t> next(t.num_logical, 0);
  std::fill(rank.begin(), rank.end(), -1);
  for (std::size_t e = 0; e < t.num_logical; ++e) {
    for (std::size_t r = 0; r < width; ++r) {
      const std::int32_t slot = log2phy[e * width + r];
      if (slot >= 0 && map[static_cast<std::size_t>(slot)] == static_cast<std::int32_t>(e)) {
        rank[static_cast<std::size_t>(slot)] = next[e]++;
      }
    }
  }
  for (std::size_t s = 0; s < map.size(); ++s) {
    if (rank[s] < 0) rank[s] = next[static_cast<std::size_t>(map[s])]++;
  }
}

}  // namespace

Planner::Planner(const Topology& topology, const PlannerSettings& settings)
    : topology_(topology), algorithm_(Algorithm::default_choice), settings_(settings) {
  topology_.validate();
  const AlgorithmInfo* info = find_algorithm(settings.algorithm);
  if (info == nullptr) {
    fail_invalid("algorithm (", settings.algorithm, ") is not a known algorithm id");
  }
  algorithm_ = resolve_algorithm(info->id);
  if (settings.num_threads > kMaxThreads) {
    fail_invalid("num_threads (", settings.num_threads, ") exceeds ", kMaxThreads);
  }
  if (settings.cross_node_budget > topology_.num_physical) {
    fail_invalid("cross_node_budget (", settings.cross_node_budget,
                 ") exceeds num_physical_experts (", topology_.num_physical, ")");
  }
  if (settings.cross_node_budget > 0 && algorithm_ != Algorithm::balanced_relaxed) {
    fail_invalid("cross_node_budget (", settings.cross_node_budget,
                 ") applies only to balanced-relaxed; algorithm ", settings.algorithm, " (",
                 find_algorithm(static_cast<std::uint32_t>(algorithm_))->name,
                 ") would ignore it: set it to 0 or use balanced-relaxed");
  }
  if (!settings.affinity &&
      settings.affinity_min_balance != PlannerSettings{}.affinity_min_balance) {
    fail_invalid("affinity_min_balance (", settings.affinity_min_balance,
                 ") applies only with affinity = 1: set affinity, or leave it at its default (",
                 PlannerSettings{}.affinity_min_balance, ")");
  }
  if (settings.affinity) {
    if (!(settings.affinity_min_balance > 0.0 && settings.affinity_min_balance <= 1.0)) {
      fail_invalid("affinity_min_balance (", settings.affinity_min_balance, ") must be in (0, 1]");
    }
    if (topology_.num_nodes > 64) {
      fail_invalid("affinity planning supports at most 64 nodes (num_nodes = ", topology_.num_nodes,
                   ")");
    }
  }
  settings_.num_threads = std::max<std::uint32_t>(1, settings.num_threads);
  workers_.resize(std::min<std::uint32_t>(settings_.num_threads, topology_.num_layers));
}

void Planner::begin_plan(std::uint64_t passes) const {
  if (!control_) return;
  if (control_->cancelled()) {
    fail(Errc::cancelled,
         "the plan was not started: its plan control is cancelled (eplb_plan_control_cancel is "
         "sticky; attach a new control for new plans)");
  }
  control_->add_steps(passes * topology_.num_layers);
}

void Planner::stop_if_cancelled(std::size_t layer, const char* pass) const {
  if (control_ && control_->cancelled()) {
    fail(Errc::cancelled, "the plan was cancelled before layer ", layer, " of ",
         topology_.num_layers, pass, " (eplb_plan_control_cancel)");
  }
}

template <typename PlanOne>
void Planner::for_each_layer(PlanOne&& plan_one, const char* pass) {
  // Layers are independent, so the result does not depend on the number of threads.
  const std::size_t layers = topology_.num_layers;
  const std::size_t threads = workers_.size();
  const auto plan_layer = [&](std::size_t layer, Worker& worker) {
    stop_if_cancelled(layer, pass);
    plan_one(layer, worker);
    if (control_) control_->step_done();
  };
  if (threads <= 1) {
    for (std::size_t layer = 0; layer < layers; ++layer) plan_layer(layer, workers_.front());
    return;
  }
  std::vector<std::exception_ptr> errors(threads);
  const auto plan_share = [&](std::size_t t) {
    try {
      for (std::size_t layer = layers * t / threads; layer < layers * (t + 1) / threads; ++layer) {
        plan_layer(layer, workers_[t]);
      }
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  // The calling thread plans the last share. A thread the system refuses (a process or cgroup
  // limit) is not an error: its share is planned here, in turn.
  for (std::size_t t = 0; t + 1 < threads; ++t) {
    try {
      pool.emplace_back(plan_share, t);
    } catch (const std::system_error&) {
      plan_share(t);
    }
  }
  plan_share(threads - 1);
  for (auto& thread : pool) thread.join();
  for (const auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

Placement Planner::finish(std::vector<std::int32_t> phy2log,
                          std::span<const std::int32_t> replica_rank,
                          std::chrono::steady_clock::time_point start) const {
  Provenance provenance;
  provenance.algorithm = static_cast<std::uint32_t>(algorithm_);
  provenance.hierarchical = (algorithm_ == Algorithm::deepseek &&
                             deepseek_is_hierarchical(topology_) && topology_.num_nodes > 1) ||
                            ((algorithm_ == Algorithm::balanced_hierarchical ||
                              algorithm_ == Algorithm::balanced_relaxed) &&
                             balanced_is_hierarchical(topology_, BalancedPolicy::hierarchical));
  provenance.plan_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (algorithm_ == Algorithm::balanced_relaxed) {
    provenance.cross_node_budget = settings_.cross_node_budget;
  }
  return Placement::from_ranked_slots(topology_, std::move(phy2log), replica_rank, provenance);
}

Placement Planner::plan(std::span<const double> loads) {
  if (settings_.affinity) {
    fail_invalid(
        "affinity planning needs co-activation statistics: plan with a tracker "
        "(eplb_planner_plan_tracked)");
  }
  validate_loads(loads, topology_, "loads");
  if (algorithm_ == Algorithm::deepseek) require_float32_range(loads, topology_.num_logical);
  begin_plan(1);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::int32_t> phy2log(topology_.slot_count());
  std::vector<std::int32_t> replica_rank(topology_.slot_count());
  plan_slots(loads, phy2log, replica_rank);
  return finish(std::move(phy2log), replica_rank, start);
}

Placement Planner::plan_near(std::span<const double> loads, const Placement& current,
                             double min_balance, NearReport* report) {
  if (settings_.affinity) {
    fail_invalid(
        "plan_near does not plan for affinity (it needs co-activation statistics); create the "
        "planner with affinity = 0");
  }
  validate_loads(loads, topology_, "loads");
  if (algorithm_ == Algorithm::deepseek) require_float32_range(loads, topology_.num_logical);
  const Topology& now = current.topology();
  const auto check = [](const char* field, std::uint32_t value, std::uint32_t expected) {
    if (value != expected) {
      fail_invalid("the current placement's ", field, " (", value, ") differs from the planner's (",
                   expected, ")");
    }
  };
  check("num_layers", now.num_layers, topology_.num_layers);
  check("num_logical_experts", now.num_logical, topology_.num_logical);
  check("num_physical_experts", now.num_physical, topology_.num_physical);
  check("num_gpus", now.num_gpus, topology_.num_gpus);
  check("num_nodes", now.num_nodes, topology_.num_nodes);
  if (!(min_balance > 0.0 && min_balance <= 1.0)) {
    fail_invalid("min_balance (", min_balance, ") must be in (0, 1]");
  }
  begin_plan(2);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::int32_t> fresh(topology_.slot_count());
  std::vector<std::int32_t> replica_rank(topology_.slot_count());
  plan_slots(loads, fresh, replica_rank);
  NearSettings near;
  near.locality = near_locality();
  near.cross_node_budget = settings_.cross_node_budget;
  near.min_balance = min_balance;
  std::vector<std::int32_t> phy2log(topology_.slot_count());
  std::vector<NearOutcome> outcomes(topology_.num_layers);
  const std::size_t num_logical = topology_.num_logical;
  const std::size_t num_physical = topology_.num_physical;
  for_each_layer(
      [&](std::size_t layer, Worker&) {
        const auto slots = [&](auto& v) {
          return std::span(v).subspan(layer * num_physical, num_physical);
        };
        outcomes[layer] = plan_layer_near(topology_, near, current.phy2log_layer(layer),
                                          loads.subspan(layer * num_logical, num_logical),
                                          slots(fresh), slots(phy2log));
        if (outcomes[layer] != NearOutcome::replanned) {
          keep_replica_ranks(current, layer, slots(phy2log), slots(replica_rank));
        }
      },
      " of its near pass");
  if (report != nullptr) {
    *report = NearReport{};
    for (NearOutcome outcome : outcomes) {
      ++(outcome == NearOutcome::kept               ? report->kept
         : outcome == NearOutcome::rebalanced       ? report->rebalanced
         : outcome == NearOutcome::partly_replanned ? report->partly_replanned
                                                    : report->replanned);
    }
  }
  return finish(std::move(phy2log), replica_rank, start);
}

NearLocality Planner::near_locality() const {
  switch (affinity_scope()) {
    case AffinityScope::hierarchical:
      return NearLocality::hierarchical;
    case AffinityScope::relaxed:
      return NearLocality::relaxed;
    default:
      return NearLocality::global;
  }
}

Placement Planner::plan_tracked(std::span<const double> loads, const Tracker& stats) {
  const TrackerOptions& o = stats.options();
  if (o.num_layers != topology_.num_layers || o.num_experts != topology_.num_logical) {
    fail_invalid("the tracker's shape (", o.num_layers, " layers x ", o.num_experts,
                 " experts) does not match the planner's (", topology_.num_layers, " x ",
                 topology_.num_logical, ")");
  }
  std::vector<double> tracked;
  if (loads.empty()) {
    tracked.resize(topology_.load_count());
    stats.loads(tracked);
    loads = tracked;
  }
  validate_loads(loads, topology_, "loads");
  if (algorithm_ == Algorithm::deepseek) require_float32_range(loads, topology_.num_logical);
  if (settings_.affinity && o.reservoir_capacity == 0) {
    fail_invalid(
        "affinity planning needs sampled top-k rows, but the tracker keeps none "
        "(reservoir_capacity = 0)");
  }
  const bool improve = settings_.affinity && topology_.num_nodes > 1;
  begin_plan(improve ? 2 : 1);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::int32_t> phy2log(topology_.slot_count());
  std::vector<std::int32_t> replica_rank(topology_.slot_count());
  plan_slots(loads, phy2log, replica_rank);
  if (improve) {
    AffinitySettings affinity;
    affinity.scope = affinity_scope();
    affinity.cross_node_budget = settings_.cross_node_budget;
    affinity.min_balance_ratio = settings_.affinity_min_balance;
    const std::size_t num_logical = topology_.num_logical;
    const std::size_t num_physical = topology_.num_physical;
    for_each_layer(
        [&](std::size_t layer, Worker& worker) {
          const auto l = static_cast<std::uint32_t>(layer);
          worker.affinity.improve_layer(
              topology_, affinity, loads.subspan(layer * num_logical, num_logical),
              stats.samples(l), stats.sample_rows(l), o.top_k,
              std::span(phy2log).subspan(layer * num_physical, num_physical),
              std::span(replica_rank).subspan(layer * num_physical, num_physical));
        },
        " of its affinity pass");
  }
  return finish(std::move(phy2log), replica_rank, start);
}

AffinityScope Planner::affinity_scope() const {
  switch (algorithm_) {
    case Algorithm::balanced_hierarchical:
      return balanced_is_hierarchical(topology_, BalancedPolicy::hierarchical)
                 ? AffinityScope::hierarchical
                 : AffinityScope::global;
    case Algorithm::balanced_relaxed:
      return balanced_is_hierarchical(topology_, BalancedPolicy::relaxed) ? AffinityScope::relaxed
                                                                          : AffinityScope::global;
    case Algorithm::deepseek:
      return deepseek_is_hierarchical(topology_) && topology_.num_nodes > 1
                 ? AffinityScope::hierarchical
                 : AffinityScope::global;
    default:
      return AffinityScope::global;
  }
}

void Planner::plan_slots(std::span<const double> loads, std::span<std::int32_t> phy2log,
                         std::span<std::int32_t> replica_rank) {
  const std::size_t num_logical = topology_.num_logical;
  const std::size_t num_physical = topology_.num_physical;
  const BalancedSettings balanced = balanced_settings(algorithm_, settings_.cross_node_budget);
  for_each_layer([&](std::size_t layer, Worker& worker) {
    const auto layer_loads = loads.subspan(layer * num_logical, num_logical);
    const auto layer_map = phy2log.subspan(layer * num_physical, num_physical);
    const auto layer_rank = replica_rank.subspan(layer * num_physical, num_physical);
    switch (algorithm_) {
      case Algorithm::deepseek:
        deepseek_plan_layer(topology_, layer_loads, layer_map, layer_rank, worker.deepseek);
        break;
      case Algorithm::trivial:
        trivial_plan_layer(topology_, layer_map, layer_rank);
        break;
      case Algorithm::balanced:
      case Algorithm::balanced_hierarchical:
      case Algorithm::balanced_relaxed:
        worker.balanced.plan_layer(topology_, balanced, layer_loads, layer_map, layer_rank);
        break;
      case Algorithm::default_choice:
        fail(Errc::internal, "unresolved default algorithm");
    }
  });
}

Placement Planner::plan_windows(std::span<const double> loads, std::size_t num_windows) {
  validate_window_loads(loads, num_windows, topology_, "loads");
  const std::size_t per_window = topology_.load_count();
  if (num_windows == 1) return plan(loads);
  if (!is_balanced(algorithm_)) {
    std::vector<double> sum(per_window, 0.0);
    for (std::size_t w = 0; w < num_windows; ++w) {
      for (std::size_t i = 0; i < per_window; ++i) sum[i] += loads[w * per_window + i];
    }
    return plan(sum);
  }
  begin_plan(1);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::int32_t> phy2log(topology_.slot_count());
  std::vector<std::int32_t> replica_rank(topology_.slot_count());
  const std::size_t num_logical = topology_.num_logical;
  const std::size_t num_physical = topology_.num_physical;
  const BalancedSettings balanced = balanced_settings(algorithm_, settings_.cross_node_budget);
  for_each_layer([&](std::size_t layer, Worker& worker) {
    worker.window_loads.resize(num_windows * num_logical);
    for (std::size_t w = 0; w < num_windows; ++w) {
      const auto row = loads.subspan(w * per_window + layer * num_logical, num_logical);
      std::copy(row.begin(), row.end(),
                worker.window_loads.begin() + static_cast<std::ptrdiff_t>(w * num_logical));
    }
    worker.balanced.plan_layer_windows(
        topology_, balanced, worker.window_loads, num_windows,
        std::span(phy2log).subspan(layer * num_physical, num_physical),
        std::span(replica_rank).subspan(layer * num_physical, num_physical));
  });
  return finish(std::move(phy2log), replica_rank, start);
}

}  // namespace eplb
