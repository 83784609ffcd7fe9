#include "planner.hpp"

#include <cfloat>
#include <chrono>
#include <vector>

#include "error.hpp"
#include "loads.hpp"
#include "trivial_planner.hpp"

namespace eplb {

namespace {

void require_float32_range(std::span<const double> loads, std::uint32_t num_logical) {
  for (std::size_t i = 0; i < loads.size(); ++i) {
    if (loads[i] > static_cast<double>(FLT_MAX)) {
      fail_invalid("loads[", i / num_logical, "][", i % num_logical, "] = ", loads[i],
                   " exceeds FLT_MAX; the deepseek algorithm computes in float32 like the "
                   "reference");
    }
  }
}

}  // namespace

Planner::Planner(const Topology& topology, std::uint32_t algorithm)
    : topology_(topology), algorithm_(Algorithm::default_choice) {
  topology_.validate();
  const AlgorithmInfo* info = find_algorithm(algorithm);
  if (info == nullptr) fail_invalid("algorithm (", algorithm, ") is not a known algorithm id");
  algorithm_ = resolve_algorithm(info->id);
}

Placement Planner::plan(std::span<const double> loads) {
  validate_loads(loads, topology_, "loads");
  const auto start = std::chrono::steady_clock::now();
  const std::size_t num_logical = topology_.num_logical;
  const std::size_t num_physical = topology_.num_physical;
  std::vector<std::int32_t> phy2log(topology_.slot_count());
  std::vector<std::int32_t> replica_rank(topology_.slot_count());
  Provenance provenance;
  provenance.algorithm = static_cast<std::uint32_t>(algorithm_);

  for (std::size_t layer = 0; layer < topology_.num_layers; ++layer) {
    const auto layer_loads = loads.subspan(layer * num_logical, num_logical);
    const auto layer_map = std::span(phy2log).subspan(layer * num_physical, num_physical);
    const auto layer_rank = std::span(replica_rank).subspan(layer * num_physical, num_physical);
    switch (algorithm_) {
      case Algorithm::deepseek:
        if (layer == 0) require_float32_range(loads, topology_.num_logical);
        deepseek_plan_layer(topology_, layer_loads, layer_map, layer_rank, deepseek_scratch_);
        break;
      case Algorithm::trivial:
        trivial_plan_layer(topology_, layer_map, layer_rank);
        break;
      case Algorithm::default_choice:
        fail(Errc::internal, "unresolved default algorithm");
    }
  }
  provenance.hierarchical = algorithm_ == Algorithm::deepseek &&
                            deepseek_is_hierarchical(topology_) && topology_.num_nodes > 1;
  provenance.plan_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return Placement::from_ranked_slots(topology_, std::move(phy2log), replica_rank, provenance);
}

}  // namespace eplb
