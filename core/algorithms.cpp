#include "algorithms.hpp"

#include <array>

namespace eplb {

namespace {

constexpr AlgorithmInfo kDefault{Algorithm::default_choice, "default",
                                 "the recommended planner of this libeplb version"};

constexpr std::array kRegistry{
    AlgorithmInfo{Algorithm::deepseek, "deepseek",
                  "DeepSeek EPLB, exact: groups to nodes, water-filled replicas, LPT to GPUs"},
    AlgorithmInfo{Algorithm::trivial, "trivial",
                  "no balancing: slot p holds expert p mod E (SGLang's trivial location)"},
    AlgorithmInfo{
        Algorithm::balanced, "balanced",
        "joint replica counts and packing, replicas anywhere, no avoidable duplicates on a GPU"},
    AlgorithmInfo{Algorithm::balanced_hierarchical, "balanced-hierarchical",
                  "balanced, keeping DeepSeek's locality (whole groups per node)"},
    AlgorithmInfo{Algorithm::balanced_relaxed, "balanced-relaxed",
                  "balanced-hierarchical plus a per-layer budget of cross-node replicas"},
};

}  // namespace

std::span<const AlgorithmInfo> algorithm_registry() { return kRegistry; }

const AlgorithmInfo* find_algorithm(std::uint32_t id) {
  if (id == 0) return &kDefault;
  for (const auto& info : kRegistry) {
    if (static_cast<std::uint32_t>(info.id) == id) return &info;
  }
  return nullptr;
}

const AlgorithmInfo* find_algorithm(std::string_view name) {
  if (name == kDefault.name) return &kDefault;
  for (const auto& info : kRegistry) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

Algorithm resolve_algorithm(Algorithm algorithm) {
  return algorithm == Algorithm::default_choice ? Algorithm::balanced : algorithm;
}

}  // namespace eplb
