#include "shared_waterfill.hpp"

#include <algorithm>
#include <cmath>

#include "error.hpp"

namespace eplb {

void WaterfillWorkspace::assign(const Topology& topology, const WaterfillInput& input,
                                std::span<double> gpu_loads, std::span<std::int32_t> out_topk) {
  const std::size_t gpus = topology.num_gpus;
  const std::size_t k = input.top_k;
  if (k == 0) fail_invalid("top_k (0) must be >= 1");
  if (input.topk_slots.size() % k != 0) {
    fail_invalid("topk_slots has ", input.topk_slots.size(), " entries, not a multiple of top_k (",
                 k, ")");
  }
  const std::size_t tokens = input.topk_slots.size() / k;
  if (out_topk.size() != tokens * (k + 1)) {
    fail_invalid("out_topk has ", out_topk.size(),
                 " entries, expected num_tokens * (top_k + 1) = ", tokens * (k + 1));
  }
  if (!input.source_gpu.empty() && input.source_gpu.size() != tokens) {
    fail_invalid("source_gpu has ", input.source_gpu.size(),
                 " entries, expected num_tokens = ", tokens);
  }
  if (gpu_loads.size() != gpus) {
    fail_invalid("gpu_loads has ", gpu_loads.size(), " entries, expected num_gpus = ", gpus);
  }
  if (!input.gpu_weights.empty() && input.gpu_weights.size() != gpus) {
    fail_invalid("gpu_weights has ", input.gpu_weights.size(),
                 " entries, expected num_gpus = ", gpus);
  }
  for (std::size_t g = 0; g < gpus; ++g) {
    if (!std::isfinite(gpu_loads[g]) || gpu_loads[g] < 0.0) {
      fail_invalid("gpu_loads[", g, "] = ", gpu_loads[g], " must be finite and >= 0");
    }
    if (!input.gpu_weights.empty() &&
        (!std::isfinite(input.gpu_weights[g]) || input.gpu_weights[g] <= 0.0)) {
      fail_invalid("gpu_weights[", g, "] = ", input.gpu_weights[g], " must be finite and > 0");
    }
  }
  for (std::size_t i = 0; i < input.topk_slots.size(); ++i) {
    const std::int32_t s = input.topk_slots[i];
    if (s < -1 || s >= static_cast<std::int64_t>(topology.num_physical)) {
      fail_invalid("topk_slots[", i, "] = ", s, " must be -1 or a slot below num_physical (",
                   topology.num_physical, ")");
    }
  }
  for (std::size_t i = 0; i < input.source_gpu.size(); ++i) {
    const std::int32_t g = input.source_gpu[i];
    if (g < 0 || static_cast<std::size_t>(g) >= gpus) {
      fail_invalid("source_gpu[", i, "] = ", g, " must be in [0, num_gpus = ", gpus, ")");
    }
  }

  auto weight = [&](std::size_t g) {
    return input.gpu_weights.empty() ? 1.0 : input.gpu_weights[g];
  };
  auto row = [&](std::size_t token) { return input.topk_slots.subspan(token * k, k); };

  // Candidate counts (distinct GPUs, plus the source); 0 marks padding.
  candidates_.assign(tokens, 0);
  stamp_.assign(gpus, 0);
  std::uint32_t widest = 0;
  for (std::size_t i = 0; i < tokens; ++i) {
    std::uint32_t count = 0;
    bool routed = false;
    for (const std::int32_t s : row(i)) {
      if (s < 0) continue;
      routed = true;
      const std::size_t g = topology.gpu_of_slot(static_cast<std::uint32_t>(s));
      if (stamp_[g] != i + 1) {
        stamp_[g] = i + 1;
        ++count;
      }
    }
    if (!input.source_gpu.empty()) {
      const auto g = static_cast<std::size_t>(input.source_gpu[i]);
      if (stamp_[g] != i + 1) ++count;
    }
    if (input.any_gpu) count = static_cast<std::uint32_t>(gpus);
    candidates_[i] = routed ? count : 0;
    widest = std::max(widest, candidates_[i]);
  }
  offsets_.assign(static_cast<std::size_t>(widest) + 2, 0);
  for (const std::uint32_t c : candidates_) ++offsets_[c + 1];
  for (std::size_t c = 1; c < offsets_.size(); ++c) offsets_[c] += offsets_[c - 1];
  order_.resize(tokens);
  for (std::size_t i = 0; i < tokens; ++i) {
    order_[offsets_[candidates_[i]]++] = static_cast<std::uint32_t>(i);
  }

  for (std::size_t i = 0; i < tokens; ++i) {
    std::copy_n(row(i).begin(), k, out_topk.begin() + static_cast<std::ptrdiff_t>(i * (k + 1)));
  }
  const auto shared_base = static_cast<std::int32_t>(topology.num_physical);
  for (const std::uint32_t token : order_) {
    std::int32_t& out = out_topk[token * (k + 1) + k];
    if (candidates_[token] == 0) {
      out = -1;
      continue;
    }
    const std::int64_t source = input.source_gpu.empty() ? -1 : input.source_gpu[token];
    std::size_t best = gpus;
    double best_load = 0.0;
    auto consider = [&](std::size_t g) {
      const double load = weight(g) * (gpu_loads[g] + 1.0);
      const bool better = best == gpus || load < best_load ||
                          (load == best_load && static_cast<std::int64_t>(best) != source &&
                           (static_cast<std::int64_t>(g) == source || g < best));
      if (better) {
        best = g;
        best_load = load;
      }
    };
    if (input.any_gpu) {
      for (std::size_t g = 0; g < gpus; ++g) consider(g);
    } else {
      for (const std::int32_t s : row(token)) {
        if (s >= 0) consider(topology.gpu_of_slot(static_cast<std::uint32_t>(s)));
      }
      if (source >= 0) consider(static_cast<std::size_t>(source));
    }
    gpu_loads[best] += 1.0;
    out = shared_base + static_cast<std::int32_t>(best);
  }
}

}  // namespace eplb
