#include "eplb/synthetic_workload.hpp"

#include <cmath>
#include <random>

namespace eplb_cli {

std::vector<double> synthetic_loads(const WorkloadSpec& spec) {
  std::mt19937_64 rng(spec.seed);
  std::uniform_real_distribution<double> sigma_of_layer(spec.sigma_min, spec.sigma_max);
  std::normal_distribution<double> normal(0.0, 1.0);
  const std::uint32_t group_size = spec.num_groups > 0 ? spec.num_experts / spec.num_groups : 1;
  std::vector<double> loads(static_cast<std::size_t>(spec.num_layers) * spec.num_experts);
  std::vector<double> popularity(spec.num_experts);
  std::vector<double> group_factor(spec.num_groups > 0 ? spec.num_groups : 1);
  const double picks = static_cast<double>(spec.tokens) * spec.top_k;
  for (std::uint32_t layer = 0; layer < spec.num_layers; ++layer) {
    const double sigma = sigma_of_layer(rng);
    for (double& f : group_factor) f = std::exp(spec.group_sigma * normal(rng));
    double total = 0;
    for (std::uint32_t e = 0; e < spec.num_experts; ++e) {
      const std::uint32_t group = group_size > 0 ? e / group_size : 0;
      popularity[e] = std::exp(sigma * normal(rng)) * group_factor[group % group_factor.size()];
      total += popularity[e];
    }
    // Counts: the expected share of all picks plus Poisson-like noise, rounded to whole tokens.
    for (std::uint32_t e = 0; e < spec.num_experts; ++e) {
      const double expected = picks * popularity[e] / total;
      std::poisson_distribution<std::int64_t> count(expected);
      loads[std::size_t{layer} * spec.num_experts + e] = static_cast<double>(count(rng));
    }
  }
  return loads;
}

}  // namespace eplb_cli
