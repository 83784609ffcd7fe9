// SGLang's placement file: a JSON object with exactly one key, `physical_to_logical_map`, one
// row per layer (SGLang's --init-expert-location accepts it; any extra key would be rejected).
#pragma once

#include <string>

#include "eplb/eplb.h"

namespace eplb_cli {

[[nodiscard]] std::string sglang_placement_json(const eplb_placement* placement);

}  // namespace eplb_cli
