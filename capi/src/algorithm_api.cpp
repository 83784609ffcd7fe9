#include <string>

#include "../../core/algorithms.hpp"
#include "guard.hpp"

extern "C" {

uint32_t eplb_algorithm_count(void) {
  return static_cast<uint32_t>(eplb::algorithm_registry().size());
}

const char* eplb_algorithm_name(uint32_t algorithm) {
  const auto* info = eplb::find_algorithm(algorithm);
  return info == nullptr ? nullptr : info->name.data();  // registry strings are literals
}

const char* eplb_algorithm_description(uint32_t algorithm) {
  const auto* info = eplb::find_algorithm(algorithm);
  return info == nullptr ? nullptr : info->description.data();
}

uint32_t eplb_algorithm_default(void) {
  return static_cast<uint32_t>(eplb::resolve_algorithm(eplb::Algorithm::default_choice));
}

eplb_status eplb_algorithm_from_name(const char* name, uint32_t* out_algorithm) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(name, "name");
    eplb::capi::require_not_null(out_algorithm, "out_algorithm");
    const auto* info = eplb::find_algorithm(std::string_view(name));
    if (info == nullptr) {
      std::string known = "default";
      for (const auto& entry : eplb::algorithm_registry()) known += ", " + std::string(entry.name);
      eplb::fail_invalid("unknown algorithm \"", name, "\" (known: ", known, ")");
    }
    *out_algorithm = static_cast<uint32_t>(info->id);
  });
}

}  // extern "C"
