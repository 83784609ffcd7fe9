#include "near_planner.hpp"

#include <algorithm>
#include <numeric>
#include <vector>

#include "balanced_planner.hpp"
#include "migration_plan.hpp"

namespace eplb {

namespace {

// Replicas of `row` that are not on their group's node.
std::uint32_t off_home_replicas(const Topology& topology, std::span<const std::int32_t> row) {
  const std::vector<std::uint32_t> home = group_home_nodes(topology, row);
  std::uint32_t off = 0;
  for (std::uint32_t slot = 0; slot < row.size(); ++slot) {
    const std::uint32_t node = topology.node_of_gpu(topology.gpu_of_slot(slot));
    if (home[static_cast<std::size_t>(row[slot])] != node) ++off;
  }
  return off;
}

}  // namespace

NearOutcome plan_layer_near(const Topology& topology, const NearSettings& settings,
                            std::span<const std::int32_t> current, std::span<const double> loads,
                            std::span<const std::int32_t> fresh, std::span<std::int32_t> out,
                            bool bound_changes) {
  const bool local = settings.locality != NearLocality::global;
  if (local) {
    const std::uint32_t allowed =
        settings.locality == NearLocality::relaxed ? settings.cross_node_budget : 0;
    if (off_home_replicas(topology, current) > allowed) {
      std::copy(fresh.begin(), fresh.end(), out.begin());
      // (An idle layer's fresh plan is the trivial map, which may be what it holds already.)
      return std::equal(fresh.begin(), fresh.end(), current.begin()) ? NearOutcome::kept
                                                                     : NearOutcome::replanned;
    }
  }
  const double target = max_gpu_load(topology, loads, fresh) / settings.min_balance;
  if (max_gpu_load(topology, loads, current) <= target) {
    std::copy(current.begin(), current.end(), out.begin());
    return NearOutcome::kept;
  }
  std::copy(current.begin(), current.end(), out.begin());
  // A rebalance that changes as many slots as the fresh plan would is not worth finishing.
  // (Moving to `fresh` without relabeling: the slots whose expert their GPU lacks now.)
  std::vector<std::uint32_t> same_gpus(topology.num_gpus);
  std::iota(same_gpus.begin(), same_gpus.end(), 0u);
  const std::size_t fresh_cost =
      topology.num_physical - experts_kept(topology, current, fresh, same_gpus);
  if (rebalance_layer_toward(topology, out, loads, target, local, fresh_cost, bound_changes)) {
    return NearOutcome::rebalanced;
  }
  std::copy(fresh.begin(), fresh.end(), out.begin());
  return NearOutcome::replanned;
}

}  // namespace eplb
