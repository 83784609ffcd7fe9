// The registry of placement algorithms: stable ids (the C API's eplb_algorithm), names for the
// CLI and bindings, one-line descriptions.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace eplb {

enum class Algorithm : std::uint32_t {
  default_choice = 0,  // resolved by resolve_algorithm()
  deepseek = 1,
  trivial = 2,
  balanced = 3,
  balanced_hierarchical = 4,
  balanced_relaxed = 5,
};

struct AlgorithmInfo {
  Algorithm id;
  std::string_view name;
  std::string_view description;
};

// Every concrete algorithm, in id order (ids 1..N).
[[nodiscard]] std::span<const AlgorithmInfo> algorithm_registry();
// nullptr for an unknown id; id 0 maps to the "default" entry.
[[nodiscard]] const AlgorithmInfo* find_algorithm(std::uint32_t id);
// nullptr for an unknown name.
[[nodiscard]] const AlgorithmInfo* find_algorithm(std::string_view name);
// The concrete algorithm behind `default_choice`; other ids are returned unchanged.
[[nodiscard]] Algorithm resolve_algorithm(Algorithm algorithm);

}  // namespace eplb
