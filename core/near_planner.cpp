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

// The smallest sets of nodes that hold every replica of their experts in both rows: nodes linked
// by an expert's replicas or its group's home node in either row (union-find). Under the
// hierarchical locality, sets of nodes that trade groups only among themselves. Returns each
// node's set as its lowest node.
std::vector<std::uint32_t> node_sets(const Topology& topology, std::span<const std::int32_t> a,
                                     std::span<const std::int32_t> b) {
  std::vector<std::uint32_t> parent(topology.num_nodes);
  std::iota(parent.begin(), parent.end(), 0u);
  const auto root = [&](std::uint32_t node) {
    while (parent[node] != node) node = parent[node] = parent[parent[node]];
    return node;
  };
  const auto join = [&](std::uint32_t x, std::uint32_t y) {
    x = root(x), y = root(y);
    parent[std::max(x, y)] = std::min(x, y);
  };
  const std::vector<std::uint32_t> home_a = group_home_nodes(topology, a);
  const std::vector<std::uint32_t> home_b = group_home_nodes(topology, b);
  for (std::size_t e = 0; e < home_a.size(); ++e) join(home_a[e], home_b[e]);
  for (std::uint32_t slot = 0; slot < a.size(); ++slot) {
    const std::uint32_t node = topology.node_of_gpu(topology.gpu_of_slot(slot));
    join(node, home_a[static_cast<std::size_t>(a[slot])]);
    join(node, home_b[static_cast<std::size_t>(b[slot])]);
  }
  for (std::uint32_t node = 0; node < topology.num_nodes; ++node) parent[node] = root(node);
  return parent;
}

// Whether every expert keeps a replica and, under the relaxed locality, at most the budget are
// off their group's node.
bool keeps_locality(const Topology& topology, const NearSettings& settings,
                    std::span<const std::int32_t> row) {
  std::vector<char> placed(topology.num_logical, 0);
  for (std::int32_t e : row) placed[static_cast<std::size_t>(e)] = 1;
  if (std::find(placed.begin(), placed.end(), 0) != placed.end()) return false;
  const std::uint32_t allowed =
      settings.locality == NearLocality::relaxed ? settings.cross_node_budget : 0;
  return off_home_replicas(topology, row) <= allowed;
}

// For a local policy, when the rebalance of `current` (now in `out`) fell short: the fresh plan,
// relabeled to keep the most experts on their GPU, and `out` split into the same sets of nodes
// (node_sets). Each set keeps `out`'s content where all its GPUs meet `target` and that keeps at
// least as many experts on their GPU as the fresh plan's content, and takes the fresh plan's
// otherwise. Returns whether the mix has sets of both kinds, keeps the locality and differs from
// the relabeled fresh plan beyond slot order (`out` is then the mix; else unchanged). `same_gpus`
// is the identity GPU map.
bool mix_node_sets(const Topology& topology, const NearSettings& settings,
                   std::span<const std::int32_t> current, std::span<const double> loads,
                   std::span<const std::int32_t> fresh, double target,
                   std::span<const std::uint32_t> same_gpus, std::span<std::int32_t> out) {
  if (topology.num_nodes < 2) return false;
  const std::uint32_t per_gpu = topology.slots_per_gpu();
  const std::vector<std::uint32_t> gpu_map =
      relabel_gpus(topology, current, fresh, MigrationRelabel::nodes_and_gpus);
  std::vector<std::int32_t> relabeled(fresh.size());
  for (std::uint32_t b = 0; b < topology.num_gpus; ++b) {
    std::copy_n(fresh.begin() + std::ptrdiff_t{b} * per_gpu, per_gpu,
                relabeled.begin() + std::ptrdiff_t{gpu_map[b]} * per_gpu);
  }
  // Each set holds all replicas of its experts in both rows (even off their group's node under
  // the relaxed locality), so its GPUs' loads do not depend on the other sets' content.
  const std::vector<std::uint32_t> sets = node_sets(topology, out, relabeled);
  const auto kept_rebalanced = experts_kept_per_gpu(topology, current, out, same_gpus);
  const auto kept_fresh = experts_kept_per_gpu(topology, current, relabeled, same_gpus);
  const std::vector<double> gpu_loads = gpu_loads_of(topology, loads, out);
  // Per set (indexed by its lowest node): whether all its GPUs meet the target, and the experts
  // each content keeps on their GPU.
  std::vector<char> meets(topology.num_nodes, 1);
  std::vector<std::int64_t> margin(topology.num_nodes, 0);  // kept rebalanced - kept fresh
  for (std::uint32_t gpu = 0; gpu < topology.num_gpus; ++gpu) {
    const std::uint32_t set = sets[topology.node_of_gpu(gpu)];
    if (gpu_loads[gpu] > target) meets[set] = 0;
    margin[set] += std::int64_t{kept_rebalanced[gpu]} - std::int64_t{kept_fresh[gpu]};
  }
  std::vector<std::int32_t> mixed(out.begin(), out.end());
  bool any_rebalanced = false, any_fresh = false;
  for (std::uint32_t gpu = 0; gpu < topology.num_gpus; ++gpu) {
    const std::uint32_t set = sets[topology.node_of_gpu(gpu)];
    if (meets[set] && margin[set] >= 0) {
      any_rebalanced = true;
    } else {
      any_fresh = true;
      std::copy_n(relabeled.begin() + std::ptrdiff_t{gpu} * per_gpu, per_gpu,
                  mixed.begin() + std::ptrdiff_t{gpu} * per_gpu);
    }
  }
  // (A mix whose GPUs hold what the relabeled fresh plan's do is that plan: its migration moves
  // the same experts.)
  if (!any_rebalanced || !any_fresh || !keeps_locality(topology, settings, mixed) ||
      experts_kept(topology, relabeled, mixed, same_gpus) == topology.num_physical) {
    return false;
  }
  std::copy(mixed.begin(), mixed.end(), out.begin());
  return true;
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
  if (local && mix_node_sets(topology, settings, current, loads, fresh, target, same_gpus, out)) {
    return NearOutcome::partly_replanned;
  }
  std::copy(fresh.begin(), fresh.end(), out.begin());
  return NearOutcome::replanned;
}

}  // namespace eplb
