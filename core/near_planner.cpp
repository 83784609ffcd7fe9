#include "near_planner.hpp"

#include <algorithm>
#include <iterator>
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

// Slots of `to` whose expert its GPU does not hold in `from` (with multiplicity): what moving to
// `to` costs without relabeling.
std::size_t moved_without_relabeling(const Topology& topology, std::span<const std::int32_t> from,
                                     std::span<const std::int32_t> to) {
  const std::uint32_t per_gpu = topology.slots_per_gpu();
  std::vector<std::int32_t> a(per_gpu), b(per_gpu), kept;
  std::size_t moved = 0;
  for (std::uint32_t gpu = 0; gpu < topology.num_gpus; ++gpu) {
    const std::size_t first = std::size_t{gpu} * per_gpu;
    std::copy_n(from.begin() + static_cast<std::ptrdiff_t>(first), per_gpu, a.begin());
    std::copy_n(to.begin() + static_cast<std::ptrdiff_t>(first), per_gpu, b.begin());
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    kept.clear();
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(kept));
    moved += per_gpu - kept.size();
  }
  return moved;
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
  const std::size_t fresh_cost = moved_without_relabeling(topology, current, fresh);
  if (rebalance_layer_toward(topology, out, loads, target, local, fresh_cost, bound_changes)) {
    return NearOutcome::rebalanced;
  }
  std::copy(fresh.begin(), fresh.end(), out.begin());
  return NearOutcome::replanned;
}

}  // namespace eplb
