#include "workload_simulator.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "error.hpp"

namespace eplb {
namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr double kPi = 3.14159265358979323846;

}  // namespace

void WorkloadParams::validate() const {
  if (num_layers == 0) fail_invalid("num_layers (0) must be at least 1");
  if (num_experts == 0) fail_invalid("num_experts (0) must be at least 1");
  if (top_k == 0 || top_k > num_experts) {
    fail_invalid("top_k (", top_k, ") must be in 1..num_experts (", num_experts, ")");
  }
  if (num_groups == 0 || num_experts % num_groups != 0) {
    fail_invalid("num_groups (", num_groups, ") must divide num_experts (", num_experts, ")");
  }
  if (topk_groups > num_groups) {
    fail_invalid("topk_groups (", topk_groups, ") must be at most num_groups (", num_groups, ")");
  }
  if (topk_groups > 0 && num_groups > 1 &&
      static_cast<std::uint64_t>(topk_groups) * (num_experts / num_groups) < top_k) {
    fail_invalid("topk_groups (", topk_groups, ") groups of ", num_experts / num_groups,
                 " experts cannot hold top_k (", top_k, ") experts");
  }
  if (!(sigma_min >= 0 && sigma_max >= sigma_min && std::isfinite(sigma_max))) {
    fail_invalid("sigma range [", sigma_min, ", ", sigma_max, "] must satisfy 0 <= min <= max");
  }
  if (topic_experts > num_experts) {
    fail_invalid("topic_experts (", topic_experts, ") must be at most num_experts (", num_experts,
                 ")");
  }
  if (!std::isfinite(boost)) fail_invalid("boost (", boost, ") must be finite");
  if (!(topic_zipf >= 0 && std::isfinite(topic_zipf))) {
    fail_invalid("topic_zipf (", topic_zipf, ") must be finite and >= 0");
  }
  if (!(topic_persistence >= 0 && topic_persistence <= 1)) {
    fail_invalid("topic_persistence (", topic_persistence, ") must be in [0, 1]");
  }
  if (!(drift_rho >= 0 && drift_rho <= 1)) {
    fail_invalid("drift_rho (", drift_rho, ") must be in [0, 1]");
  }
  if (!(noise_scale >= 0 && std::isfinite(noise_scale))) {
    fail_invalid("noise_scale (", noise_scale, ") must be finite and >= 0");
  }
}

WorkloadSimulator::WorkloadSimulator(const WorkloadParams& params) : params_(params) {
  params_.validate();
  rng_ = params_.seed;
  const std::uint32_t layers = params_.num_layers;
  const std::uint32_t e = params_.num_experts;
  topic_experts_ =
      params_.topic_experts != 0 ? params_.topic_experts : std::min(e, 2 * params_.top_k);
  sigma_.resize(layers);
  log_p_.resize(static_cast<std::size_t>(layers) * e);
  for (std::uint32_t l = 0; l < layers; ++l) {
    sigma_[l] = params_.sigma_min + (params_.sigma_max - params_.sigma_min) * uniform();
    for (std::uint32_t x = 0; x < e; ++x) {
      log_p_[static_cast<std::size_t>(l) * e + x] = sigma_[l] * normal();
    }
  }
  // Each topic boosts a random subset of experts per layer (partial Fisher-Yates).
  std::vector<std::uint32_t> perm(e);
  for (std::uint32_t t = 0; t < params_.num_topics; ++t) {
    for (std::uint32_t l = 0; l < layers; ++l) {
      std::iota(perm.begin(), perm.end(), 0U);
      for (std::uint32_t i = 0; i < topic_experts_; ++i) {
        const auto j = i + static_cast<std::uint32_t>(uniform() * (e - i));
        std::swap(perm[i], perm[std::min(j, e - 1)]);
        boosted_.push_back(perm[i]);
      }
    }
  }
  double sum = 0;
  for (std::uint32_t t = 0; t < params_.num_topics; ++t) {
    sum += 1.0 / std::pow(static_cast<double>(t) + 1.0, params_.topic_zipf);
    topic_cdf_.push_back(sum);
  }
  for (double& c : topic_cdf_) c /= sum;
  scores_.resize(e);
  group_scores_.resize(params_.num_groups);
  group_order_.resize(params_.num_groups);
  group_allowed_.resize(params_.num_groups);
}

double WorkloadSimulator::uniform() {
  // 53 random bits, shifted off zero: (0, 1).
  return (static_cast<double>(splitmix64(rng_) >> 11) + 0.5) * 0x1.0p-53;
}

double WorkloadSimulator::normal() {
  const double u = uniform();
  const double v = uniform();
  return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * kPi * v);
}

std::uint32_t WorkloadSimulator::draw_topic() {
  const double u = uniform();
  const auto it = std::lower_bound(topic_cdf_.begin(), topic_cdf_.end(), u);
  return static_cast<std::uint32_t>(std::min<std::ptrdiff_t>(
      it - topic_cdf_.begin(), static_cast<std::ptrdiff_t>(topic_cdf_.size()) - 1));
}

std::span<const double> WorkloadSimulator::log_popularity(std::uint32_t layer) const {
  const std::size_t e = params_.num_experts;
  return std::span<const double>(log_p_).subspan(layer * e, e);
}

void WorkloadSimulator::route(std::uint32_t layer, std::uint32_t topic, std::int32_t* out) {
  const std::uint32_t e = params_.num_experts;
  const std::uint32_t k = params_.top_k;
  const double* base = log_p_.data() + static_cast<std::size_t>(layer) * e;
  for (std::uint32_t x = 0; x < e; ++x) {
    scores_[x] = base[x] - params_.noise_scale * std::log(-std::log(uniform()));
  }
  if (params_.num_topics > 0) {
    const std::uint32_t* b =
        boosted_.data() +
        (static_cast<std::size_t>(topic) * params_.num_layers + layer) * topic_experts_;
    for (std::uint32_t i = 0; i < topic_experts_; ++i) scores_[b[i]] += params_.boost;
  }
  const std::uint32_t groups = params_.num_groups;
  if (groups > 1 && params_.topk_groups > 0 && params_.topk_groups < groups) {
    const std::uint32_t per = e / groups;
    for (std::uint32_t g = 0; g < groups; ++g) {
      double best = -HUGE_VAL;
      double second = -HUGE_VAL;
      for (std::uint32_t x = g * per; x < (g + 1) * per; ++x) {
        if (scores_[x] > best) {
          second = best;
          best = scores_[x];
        } else if (scores_[x] > second) {
          second = scores_[x];
        }
      }
      group_scores_[g] = per > 1 ? best + second : best;
    }
    std::iota(group_order_.begin(), group_order_.end(), 0U);
    std::partial_sort(group_order_.begin(), group_order_.begin() + params_.topk_groups,
                      group_order_.end(), [&](std::uint32_t a, std::uint32_t b) {
                        return group_scores_[a] > group_scores_[b] ||
                               (group_scores_[a] == group_scores_[b] && a < b);
                      });
    std::fill(group_allowed_.begin(), group_allowed_.end(), 0);
    for (std::uint32_t i = 0; i < params_.topk_groups; ++i) group_allowed_[group_order_[i]] = 1;
    for (std::uint32_t x = 0; x < e; ++x) {
      if (group_allowed_[x / per] == 0) scores_[x] = -HUGE_VAL;
    }
  }
  // Top-k by insertion into a sorted (descending) list of k.
  std::uint32_t m = 0;
  for (std::uint32_t x = 0; x < e; ++x) {
    const double s = scores_[x];
    if (m == k && !(s > scores_[static_cast<std::uint32_t>(out[k - 1])])) continue;
    std::uint32_t j = m < k ? m++ : k - 1;
    while (j > 0 && scores_[static_cast<std::uint32_t>(out[j - 1])] < s) {
      out[j] = out[j - 1];
      --j;
    }
    out[j] = static_cast<std::int32_t>(x);
  }
}

std::vector<std::int32_t> WorkloadSimulator::next_batch(std::size_t num_tokens) {
  const std::uint32_t layers = params_.num_layers;
  const std::uint32_t k = params_.top_k;
  std::vector<std::int32_t> out(static_cast<std::size_t>(layers) * num_tokens * k);
  for (std::size_t t = 0; t < num_tokens; ++t) {
    if (params_.num_topics > 0 && (!has_topic_ || uniform() >= params_.topic_persistence)) {
      topic_ = draw_topic();
      has_topic_ = true;
    }
    for (std::uint32_t l = 0; l < layers; ++l) {
      route(l, topic_, out.data() + (static_cast<std::size_t>(l) * num_tokens + t) * k);
    }
  }
  if (params_.drift_rho < 1.0) {
    const double keep = params_.drift_rho;
    const double fresh = std::sqrt(1.0 - keep * keep);
    const std::uint32_t e = params_.num_experts;
    for (std::uint32_t l = 0; l < layers; ++l) {
      for (std::uint32_t x = 0; x < e; ++x) {
        double& v = log_p_[static_cast<std::size_t>(l) * e + x];
        v = keep * v + fresh * sigma_[l] * normal();
      }
    }
  }
  return out;
}

}  // namespace eplb
