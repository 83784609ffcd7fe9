#include "replica_split.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "error.hpp"

namespace eplb {
namespace {

void validate_terms(const Topology& topology, const SplitGpuTerms& terms) {
  const std::size_t gpus = topology.num_gpus;
  if (!terms.weights.empty() && terms.weights.size() != gpus) {
    fail_invalid("gpu_weights has ", terms.weights.size(), " entries, expected num_gpus = ", gpus);
  }
  if (!terms.extra.empty() && terms.extra.size() != gpus) {
    fail_invalid("gpu_extra_load has ", terms.extra.size(), " entries, expected num_gpus = ", gpus);
  }
  for (std::size_t g = 0; g < terms.weights.size(); ++g) {
    const double w = terms.weights[g];
    if (!std::isfinite(w) || w <= 0.0) {
      fail_invalid("gpu_weights[", g, "] = ", w, " must be finite and > 0");
    }
  }
  for (std::size_t g = 0; g < terms.extra.size(); ++g) {
    const double x = terms.extra[g];
    if (!std::isfinite(x) || x < 0.0) {
      fail_invalid("gpu_extra_load[", g, "] = ", x, " must be finite and >= 0");
    }
  }
}

double weight_of(const SplitGpuTerms& terms, std::size_t gpu) {
  return terms.weights.empty() ? 1.0 : terms.weights[gpu];
}

// The level L at which pouring `amount` tokens over `gpus` (current tokens `load`, weights
// `weight`) makes every receiving GPU's weighted load equal L, fractionally. Sorts `gpus`.
double water_level(std::vector<std::int32_t>& gpus, std::span<const double> load,
                   std::span<const double> weight, double amount) {
  auto level_of = [&](std::int32_t g) { return weight[g] * load[g]; };
  std::sort(gpus.begin(), gpus.end(), [&](std::int32_t a, std::int32_t b) {
    const double la = level_of(a);
    const double lb = level_of(b);
    return la != lb ? la < lb : a < b;
  });
  double sum_inv = 0.0;   // sum of 1 / w over the GPUs below the level
  double sum_base = 0.0;  // sum of load over the same GPUs
  double level = level_of(gpus.front());
  for (std::size_t j = 0; j < gpus.size(); ++j) {
    const std::int32_t g = gpus[j];
    sum_inv += 1.0 / weight[g];
    sum_base += load[g];
    level = (amount + sum_base) / sum_inv;
    if (j + 1 == gpus.size() || level <= level_of(gpus[j + 1])) break;
  }
  return level;
}

}  // namespace

std::int64_t gpu_token_room(double weight, double extra, std::int64_t fixed, double bound,
                            bool strict, std::int64_t cap) {
  const auto fits = [&](std::int64_t n) {
    const double load = split_gpu_load(weight, extra, fixed + n);
    return strict ? load < bound : load <= bound;
  };
  if (!fits(0)) return -1;
  if (fits(cap)) return cap;
  // fits() is monotone in n (rounding is), true at 0 and false at cap. The real-valued estimate
  // is almost always the answer or next to it; otherwise bisect with fits(lo) and !fits(hi).
  std::int64_t lo = 0;
  std::int64_t hi = cap;
  const double guess = std::floor(bound / weight - extra - static_cast<double>(fixed));
  if (guess > 0.0 && guess < static_cast<double>(cap)) {
    const auto g = static_cast<std::int64_t>(guess);
    if (fits(g)) {
      if (!fits(g + 1)) return g;
      lo = g + 1;
    } else {
      if (fits(g - 1)) return g - 1;
      hi = g - 1;
    }
  }
  while (hi - lo > 1) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

void split_gpu_loads(const Topology& topology, std::span<const std::int32_t> quotas,
                     const SplitGpuTerms& terms, std::span<double> gpu_loads) {
  validate_terms(topology, terms);
  if (quotas.size() != topology.num_physical) {
    fail_invalid("quotas has ", quotas.size(), " entries, expected ", topology.num_physical);
  }
  if (gpu_loads.size() != topology.num_gpus) {
    fail_invalid("gpu_loads has ", gpu_loads.size(), " entries, expected ", topology.num_gpus);
  }
  std::vector<std::int64_t> tokens(gpu_loads.size(), 0);
  for (std::size_t s = 0; s < quotas.size(); ++s) {
    tokens[topology.gpu_of_slot(static_cast<std::uint32_t>(s))] += quotas[s];
  }
  for (std::size_t g = 0; g < gpu_loads.size(); ++g) {
    gpu_loads[g] =
        split_gpu_load(weight_of(terms, g), terms.extra.empty() ? 0.0 : terms.extra[g], tokens[g]);
  }
}

void SplitWorkspace::add_edge(std::int32_t from, std::int32_t to, std::int64_t capacity) {
  auto push = [&](std::int32_t a, std::int32_t b, std::int64_t c) {
    to_.push_back(b);
    cap_.push_back(c);
    next_.push_back(head_[static_cast<std::size_t>(a)]);
    head_[static_cast<std::size_t>(a)] = static_cast<std::int32_t>(to_.size() - 1);
  };
  push(from, to, capacity);
  push(to, from, 0);
}

std::int64_t SplitWorkspace::augment(std::int32_t node, std::int64_t limit) {
  if (node == sink_) return limit;
  for (std::int32_t& e = iter_[static_cast<std::size_t>(node)]; e != -1;
       e = next_[static_cast<std::size_t>(e)]) {
    const auto ei = static_cast<std::size_t>(e);
    const std::int32_t v = to_[ei];
    if (cap_[ei] <= 0 ||
        level_[static_cast<std::size_t>(v)] != level_[static_cast<std::size_t>(node)] + 1) {
      continue;
    }
    const std::int64_t pushed = augment(v, std::min(limit, cap_[ei]));
    if (pushed > 0) {
      cap_[ei] -= pushed;
      cap_[ei ^ 1U] += pushed;
      return pushed;
    }
  }
  return 0;
}

std::int64_t SplitWorkspace::max_flow() {
  std::int64_t flow = 0;
  const auto n = static_cast<std::size_t>(num_nodes_);
  while (true) {
    std::fill(level_.begin(), level_.begin() + static_cast<std::ptrdiff_t>(n), -1);
    std::size_t qh = 0;
    std::size_t qt = 0;
    queue_[qt++] = 0;
    level_[0] = 0;
    while (qh < qt) {
      const std::int32_t u = queue_[qh++];
      for (std::int32_t e = head_[static_cast<std::size_t>(u)]; e != -1;
           e = next_[static_cast<std::size_t>(e)]) {
        const std::int32_t v = to_[static_cast<std::size_t>(e)];
        if (cap_[static_cast<std::size_t>(e)] > 0 && level_[static_cast<std::size_t>(v)] < 0) {
          level_[static_cast<std::size_t>(v)] = level_[static_cast<std::size_t>(u)] + 1;
          queue_[qt++] = v;
        }
      }
    }
    if (level_[static_cast<std::size_t>(sink_)] < 0) return flow;
    std::copy(head_.begin(), head_.begin() + static_cast<std::ptrdiff_t>(n), iter_.begin());
    while (const std::int64_t pushed = augment(0, std::numeric_limits<std::int64_t>::max())) {
      flow += pushed;
    }
  }
}

// Can every split token be routed with each GPU's weighted load <= bound (< bound if strict)?
// On success the flow stays in cap_ (reverse edges hold the flow).
bool SplitWorkspace::feasible(double bound, bool strict) {
  const std::size_t gpus = weight_.size();
  std::int64_t room = 0;
  // Reset capacities: forward edges of the expert layer are "unbounded", reverse edges empty.
  for (std::size_t e = 0; e < cap_.size(); e += 2) {
    cap_[e] = split_total_;
    cap_[e + 1] = 0;
  }
  for (std::size_t i = 0; i < split_experts_.size(); ++i) {
    cap_[static_cast<std::size_t>(source_edge_[i])] = expert_cap_[i];
  }
  for (std::size_t g = 0; g < gpus; ++g) {
    const std::int64_t cap =
        gpu_token_room(weight_[g], extra_[g], fixed_[g], bound, strict, split_total_);
    if (cap < 0) return false;
    cap_[static_cast<std::size_t>(gpu_edge_[g])] = cap;
    room += cap;
  }
  if (room < split_total_) return false;
  return max_flow() == split_total_;
}

SplitResult SplitWorkspace::solve(const Placement& placement, std::size_t layer,
                                  std::span<const std::int32_t> counts, const SplitGpuTerms& terms,
                                  std::span<std::int32_t> quotas) {
  const Topology& t = placement.topology();
  if (layer >= t.num_layers) {
    fail_invalid("layer (", layer, ") must be below num_layers (", t.num_layers, ")");
  }
  if (counts.size() != t.num_logical) {
    fail_invalid("counts has ", counts.size(),
                 " entries, expected num_logical_experts = ", t.num_logical);
  }
  if (quotas.size() != t.num_physical) {
    fail_invalid("quotas has ", quotas.size(),
                 " entries, expected num_physical_experts = ", t.num_physical);
  }
  validate_terms(t, terms);
  for (std::size_t e = 0; e < counts.size(); ++e) {
    if (counts[e] < 0) fail_invalid("counts[", e, "] = ", counts[e], " must be >= 0");
  }

  const std::size_t gpus = t.num_gpus;
  const std::size_t experts = t.num_logical;
  const std::size_t slots = t.num_physical;
  const auto row = placement.phy2log_layer(layer);
  const auto replicas = placement.replica_counts_layer(layer);

  weight_.resize(gpus);
  extra_.resize(gpus);
  fixed_.assign(gpus, 0);
  for (std::size_t g = 0; g < gpus; ++g) {
    weight_[g] = weight_of(terms, g);
    extra_[g] = terms.extra.empty() ? 0.0 : terms.extra[g];
  }
  split_experts_.clear();
  expert_node_.assign(experts, -1);
  split_total_ = 0;
  for (std::size_t s = 0; s < slots; ++s) {
    const auto e = static_cast<std::size_t>(row[s]);
    if (replicas[e] == 1) {
      quotas[s] = counts[e];
      fixed_[t.gpu_of_slot(static_cast<std::uint32_t>(s))] += counts[e];
    } else {
      quotas[s] = 0;
      if (counts[e] > 0 && expert_node_[e] < 0) {
        expert_node_[e] = static_cast<std::int32_t>(split_experts_.size()) + 1;
        split_experts_.push_back(static_cast<std::int32_t>(e));
        split_total_ += counts[e];
      }
    }
  }

  base_.resize(gpus);
  for (std::size_t g = 0; g < gpus; ++g) base_[g] = extra_[g] + static_cast<double>(fixed_[g]);
  auto weighted_max = [&](std::span<const double> tokens) {
    double worst = 0.0;
    for (std::size_t g = 0; g < gpus; ++g) worst = std::max(worst, weight_[g] * tokens[g]);
    return worst;
  };
  // The reported load: split_gpu_load over each GPU's split tokens `flow`.
  auto max_load_of = [&](std::span<const std::int64_t> flow) {
    double worst = 0.0;
    for (std::size_t g = 0; g < gpus; ++g) {
      worst = std::max(worst, split_gpu_load(weight_[g], extra_[g], fixed_[g] + flow[g]));
    }
    return worst;
  };

  // Sums best_flow_ per GPU into gpu_flow_ and returns the load every check and the result use.
  auto load_of_best_flow = [&] {
    gpu_flow_.assign(gpus, 0);
    for (std::size_t s = 0; s < best_flow_.size(); ++s) {
      gpu_flow_[t.gpu_of_slot(static_cast<std::uint32_t>(s))] += best_flow_[s];
    }
    return max_load_of(gpu_flow_);
  };

  SplitResult result;
  if (split_experts_.empty()) {  // nothing to split: the placement decides everything
    best_flow_.clear();
    result.max_load = result.heuristic_load = load_of_best_flow();
    return result;
  }

  // Warm start: water-fill each replicated expert over its GPUs, heaviest expert first.
  const std::size_t width = placement.log2phy_width();
  const auto log2phy = placement.log2phy().subspan(layer * experts * width, experts * width);
  heur_load_.assign(base_.begin(), base_.end());
  heur_quota_.assign(slots, 0);
  order_.assign(split_experts_.begin(), split_experts_.end());
  std::sort(order_.begin(), order_.end(), [&](std::int32_t a, std::int32_t b) {
    return counts[static_cast<std::size_t>(a)] != counts[static_cast<std::size_t>(b)]
               ? counts[static_cast<std::size_t>(a)] > counts[static_cast<std::size_t>(b)]
               : a < b;
  });
  for (const std::int32_t expert : order_) {
    const auto e = static_cast<std::size_t>(expert);
    gpus_.clear();
    for (std::size_t r = 0; r < static_cast<std::size_t>(replicas[e]); ++r) {
      const auto g = static_cast<std::int32_t>(
          t.gpu_of_slot(static_cast<std::uint32_t>(log2phy[e * width + r])));
      if (std::find(gpus_.begin(), gpus_.end(), g) == gpus_.end()) gpus_.push_back(g);
    }
    const double level = water_level(gpus_, heur_load_, weight_, counts[e]);
    std::int64_t left = counts[e];
    auto first_slot_on = [&](std::int32_t g) {
      for (std::size_t r = 0;; ++r) {
        const std::int32_t s = log2phy[e * width + r];
        if (static_cast<std::int32_t>(t.gpu_of_slot(static_cast<std::uint32_t>(s))) == g) {
          return static_cast<std::size_t>(s);
        }
      }
    };
    for (const std::int32_t g : gpus_) {
      const auto gi = static_cast<std::size_t>(g);
      const double want = std::floor(level / weight_[gi] - heur_load_[gi]);
      const std::int64_t take =
          std::clamp<std::int64_t>(want > 0.0 ? static_cast<std::int64_t>(want) : 0, 0, left);
      heur_quota_[first_slot_on(g)] += take;
      heur_load_[gi] += static_cast<double>(take);
      left -= take;
    }
    // Rounding leaves fewer than |gpus| tokens; loads so large that the level cannot resolve a
    // token (extra loads far above the counts) leave more: an even share each first, so the
    // one-by-one loop below stays short.
    if (left >= 2 * static_cast<std::int64_t>(gpus_.size())) {
      const std::int64_t each = left / static_cast<std::int64_t>(gpus_.size());
      for (const std::int32_t g : gpus_) {
        heur_quota_[first_slot_on(g)] += each;
        heur_load_[static_cast<std::size_t>(g)] += static_cast<double>(each);
        left -= each;
      }
    }
    while (left > 0) {  // fewer than |gpus| tokens: one each to the least loaded after taking it
      std::int32_t best = gpus_.front();
      for (const std::int32_t g : gpus_) {
        const auto gi = static_cast<std::size_t>(g);
        const auto bi = static_cast<std::size_t>(best);
        if (weight_[gi] * (heur_load_[gi] + 1) < weight_[bi] * (heur_load_[bi] + 1)) best = g;
      }
      heur_quota_[first_slot_on(best)] += 1;
      heur_load_[static_cast<std::size_t>(best)] += 1;
      --left;
    }
  }
  best_flow_.assign(heur_quota_.begin(), heur_quota_.end());
  double hi = load_of_best_flow();
  result.heuristic_load = hi;

  // Lower bound: the fractional level over all GPUs, and the fixed loads.
  gpus_.resize(gpus);
  for (std::size_t g = 0; g < gpus; ++g) gpus_[g] = static_cast<std::int32_t>(g);
  double lo = std::max(weighted_max(base_),
                       water_level(gpus_, base_, weight_, static_cast<double>(split_total_)));

  // The flow graph (structure fixed for this solve; capacities reset by each check).
  const auto n = static_cast<std::int32_t>(split_experts_.size());
  gpu_node0_ = n + 1;
  sink_ = gpu_node0_ + static_cast<std::int32_t>(gpus);
  num_nodes_ = sink_ + 1;
  head_.assign(static_cast<std::size_t>(num_nodes_), -1);
  level_.resize(static_cast<std::size_t>(num_nodes_));
  iter_.resize(static_cast<std::size_t>(num_nodes_));
  queue_.resize(static_cast<std::size_t>(num_nodes_));
  to_.clear();
  cap_.clear();
  next_.clear();
  expert_cap_.clear();
  source_edge_.clear();
  for (std::int32_t i = 0; i < n; ++i) {
    source_edge_.push_back(static_cast<std::int32_t>(to_.size()));
    expert_cap_.push_back(
        counts[static_cast<std::size_t>(split_experts_[static_cast<std::size_t>(i)])]);
    add_edge(0, i + 1, expert_cap_.back());
  }
  slot_edge_.assign(slots, -1);
  for (std::size_t s = 0; s < slots; ++s) {
    const auto e = static_cast<std::size_t>(row[s]);
    if (expert_node_[e] < 0) continue;
    slot_edge_[s] = static_cast<std::int32_t>(to_.size());
    add_edge(expert_node_[e],
             gpu_node0_ + static_cast<std::int32_t>(t.gpu_of_slot(static_cast<std::uint32_t>(s))),
             split_total_);
  }
  gpu_edge_.resize(gpus);
  for (std::size_t g = 0; g < gpus; ++g) {
    gpu_edge_[g] = static_cast<std::int32_t>(to_.size());
    add_edge(gpu_node0_ + static_cast<std::int32_t>(g), sink_, 0);
  }

  // The expression gpu_token_room bounds, so the load a check admitted is the load reported.
  // (Slots of unsplit experts keep the warm start's 0.)
  auto take_flow = [&] {
    for (std::size_t s = 0; s < slots; ++s) {
      if (slot_edge_[s] >= 0) best_flow_[s] = cap_[static_cast<std::size_t>(slot_edge_[s]) ^ 1U];
    }
    return load_of_best_flow();
  };

  // Bisection until each GPU has at most one candidate value (a multiple of its weight) left in
  // (lo, hi], or no double lies between them (loads far above the counts, where a token is below
  // their precision); then strict checks walk hi down through the remaining candidates.
  const double min_weight = *std::min_element(weight_.begin(), weight_.end());
  for (int i = 0; i < 200 && hi - lo >= min_weight * (1 - 1e-12); ++i) {
    const double mid = lo + (hi - lo) / 2;
    if (!(mid > lo && mid < hi)) break;
    ++result.flow_checks;
    if (feasible(mid, false)) {
      hi = take_flow();
    } else {
      lo = mid;
    }
  }
  for (std::size_t i = 0;; ++i) {
    EPLB_ASSERT(i <= 4 * gpus + 8);
    ++result.flow_checks;
    if (!feasible(hi, true)) break;
    hi = take_flow();
  }
  for (std::size_t s = 0; s < slots; ++s) {
    if (expert_node_[static_cast<std::size_t>(row[s])] >= 0) {
      quotas[s] = static_cast<std::int32_t>(best_flow_[s]);
    }
  }
  result.max_load = hi;
  return result;
}

}  // namespace eplb
