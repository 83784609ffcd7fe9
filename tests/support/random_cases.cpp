#include "support/random_cases.hpp"

#include <cmath>

namespace eplb::test {

namespace {

std::uint32_t pick(std::mt19937_64& rng, std::uint32_t lo, std::uint32_t hi) {
  return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
}

}  // namespace

Topology random_topology(std::mt19937_64& rng, bool hierarchical) {
  Topology t;
  t.num_layers = pick(rng, 1, 4);
  t.num_nodes = pick(rng, 1, 4);
  t.num_gpus = t.num_nodes * pick(rng, 1, 4);
  t.num_groups = hierarchical ? t.num_nodes * pick(rng, 1, 3) : pick(rng, 1, 5);
  const std::uint32_t group_size = pick(rng, 1, 6);
  t.num_logical = t.num_groups * group_size;
  // R: a multiple of the GPUs, at least E, and (hierarchical) at least E per node's share.
  const std::uint32_t min_per_gpu = (t.num_logical + t.num_gpus - 1) / t.num_gpus;
  t.num_physical = t.num_gpus * (min_per_gpu + pick(rng, 0, 3));
  return t;
}

std::vector<double> random_tie_free_loads(std::mt19937_64& rng, const Topology& topology) {
  std::lognormal_distribution<double> popularity(0.0, 1.0);
  std::vector<double> loads(topology.load_count());
  for (double& load : loads) {
    load = static_cast<double>(static_cast<float>(1000.0 * popularity(rng) + 1.0));
  }
  return loads;
}

std::vector<double> random_small_loads(std::mt19937_64& rng, const Topology& topology,
                                       int max_value) {
  std::uniform_int_distribution<int> value(0, max_value);
  std::vector<double> loads(topology.load_count());
  for (double& load : loads) load = value(rng);
  return loads;
}

}  // namespace eplb::test
