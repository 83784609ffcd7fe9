#include "planner.hpp"

#include <cfloat>
#include <exception>
#include <thread>
#include <vector>

#include "error.hpp"
#include "loads.hpp"
#include "trivial_planner.hpp"

namespace eplb {

namespace {

constexpr std::uint32_t kMaxThreads = 256;

void require_float32_range(std::span<const double> loads, std::uint32_t num_logical) {
  for (std::size_t i = 0; i < loads.size(); ++i) {
    if (loads[i] > static_cast<double>(FLT_MAX)) {
      fail_invalid("loads[", i / num_logical, "][", i % num_logical, "] = ", loads[i],
                   " exceeds FLT_MAX; the deepseek algorithm computes in float32 like the "
                   "reference");
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
  settings_.num_threads = std::max<std::uint32_t>(1, settings.num_threads);
  workers_.resize(std::min<std::uint32_t>(settings_.num_threads, topology_.num_layers));
}

template <typename PlanOne>
void Planner::for_each_layer(PlanOne&& plan_one) {
  // Layers are independent, so the result does not depend on the number of threads.
  const std::size_t layers = topology_.num_layers;
  const std::size_t threads = workers_.size();
  if (threads <= 1) {
    for (std::size_t layer = 0; layer < layers; ++layer) plan_one(layer, workers_.front());
    return;
  }
  std::vector<std::exception_ptr> errors(threads);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      try {
        for (std::size_t layer = layers * t / threads; layer < layers * (t + 1) / threads;
             ++layer) {
          plan_one(layer, workers_[t]);
        }
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
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
  validate_loads(loads, topology_, "loads");
  if (algorithm_ == Algorithm::deepseek) require_float32_range(loads, topology_.num_logical);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::int32_t> phy2log(topology_.slot_count());
  std::vector<std::int32_t> replica_rank(topology_.slot_count());
  const std::size_t num_logical = topology_.num_logical;
  const std::size_t num_physical = topology_.num_physical;
  const BalancedSettings balanced = balanced_settings(algorithm_, settings_.cross_node_budget);
  for_each_layer([&](std::size_t layer, Worker& worker) {
    const auto layer_loads = loads.subspan(layer * num_logical, num_logical);
    const auto layer_map = std::span(phy2log).subspan(layer * num_physical, num_physical);
    const auto layer_rank = std::span(replica_rank).subspan(layer * num_physical, num_physical);
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
  return finish(std::move(phy2log), replica_rank, start);
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
