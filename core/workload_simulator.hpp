// A synthetic MoE routing workload: top-k expert ids per layer per token, with lognormal expert
// popularity, latent topics that make experts co-activate, temporal locality and drift. The model
// of ../shared/research/real-data.md §6, calibrated to the real data of §5:
//   score(token, layer, e) = ln p[layer][e] + (boost if e is one of the token's topic's experts in
//                            that layer) + noise_scale * Gumbel noise,
// and the token takes the top_k scores (with num_groups > 1 and topk_groups > 0, DeepSeek's
// group-limited routing first keeps the topk_groups groups with the largest sum of their two best
// scores). Because Gumbel-top-k is sampling without replacement proportional to exp(score), loads
// follow popularity, and counts come from simulated tokens so batch-size effects are real.
//   - Popularity: ln p[layer][e] ~ Normal(0, sigma_layer), sigma_layer uniform in
//     [sigma_min, sigma_max] (DeepSeek-V3: 0.5-0.9 gives per-layer max/mean load 4-10).
//   - Topics: each token has a topic z in 0..num_topics-1 (Zipf(topic_zipf) popularity); z is
//     shared by all layers of the token (modest inter-layer affinity) and boosts topic_experts
//     experts per layer (a random subset drawn once per topic and layer).
//   - Temporal locality: a batch is a contiguous stretch of one token stream; each token keeps the
//     previous token's topic with probability topic_persistence, else draws a new one.
//   - Drift: after each batch, ln p <- drift_rho * ln p + sqrt(1 - drift_rho^2) * sigma * N(0, 1)
//     (1 = no drift; 0.95 / 0.9 / 0.75 reproduce the workload shifts of §5.1 in one step).
// Deterministic for a seed on every platform (own RNG and transforms, no <random> distributions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace eplb {

struct WorkloadParams {
  std::uint32_t num_layers = 1;
  std::uint32_t num_experts = 256;
  std::uint32_t top_k = 8;
  std::uint32_t num_groups = 1;   // expert groups (DeepSeek-V3: 8); 1 = no group-limited routing
  std::uint32_t topk_groups = 0;  // groups a token may use (DeepSeek-V3: 4); 0 = all
  double sigma_min = 0.5;         // per-layer σ of ln popularity, drawn uniform in [min, max]
  double sigma_max = 0.9;
  std::uint32_t num_topics = 32;    // K latent topics; 0 = none
  double topic_zipf = 1.0;          // topic z has weight 1 / (z + 1)^topic_zipf
  std::uint32_t topic_experts = 0;  // experts boosted per topic and layer; 0 = 2 * top_k
  double boost = 1.0;               // Δ added to a boosted expert's log score
  double topic_persistence = 0.8;   // P(a token keeps the previous token's topic)
  double drift_rho = 1.0;           // per-batch correlation of ln popularity (1 = frozen)
  double noise_scale = 1.0;         // scale of the Gumbel noise
  std::uint64_t seed = 0;

  // Throws Error(invalid_argument) naming the first bad field.
  void validate() const;
};

class WorkloadSimulator {
 public:
  explicit WorkloadSimulator(const WorkloadParams& params);

  [[nodiscard]] const WorkloadParams& params() const { return params_; }

  // The next batch: [num_layers][num_tokens][top_k] logical expert ids (never -1; distinct within
  // a row). Drifts the popularity afterwards.
  [[nodiscard]] std::vector<std::int32_t> next_batch(std::size_t num_tokens);

  // Current ln popularity of a layer (E values) and the layer's σ.
  [[nodiscard]] std::span<const double> log_popularity(std::uint32_t layer) const;
  [[nodiscard]] double sigma(std::uint32_t layer) const { return sigma_[layer]; }

 private:
  [[nodiscard]] double uniform();  // (0, 1)
  [[nodiscard]] double normal();   // N(0, 1)
  [[nodiscard]] std::uint32_t draw_topic();
  void route(std::uint32_t layer, std::uint32_t topic, std::int32_t* out);

  WorkloadParams params_;
  std::uint32_t topic_experts_ = 0;
  std::uint64_t rng_ = 0;
  std::vector<double> sigma_;           // [layers]
  std::vector<double> log_p_;           // [layers][E]
  std::vector<std::uint32_t> boosted_;  // [topics][layers][topic_experts_]
  std::vector<double> topic_cdf_;       // [topics]
  std::uint32_t topic_ = 0;             // the stream's current topic
  bool has_topic_ = false;
  std::vector<double> scores_;                // scratch [E]
  std::vector<double> group_scores_;          // scratch [groups]
  std::vector<std::uint32_t> group_order_;    // scratch [groups]
  std::vector<unsigned char> group_allowed_;  // scratch [groups]
};

}  // namespace eplb
