#include "eplb/placement_json.hpp"

#include <nlohmann/json.hpp>

#include "eplb/library.hpp"

namespace eplb_cli {

std::string sglang_placement_json(const eplb_placement* placement) {
  const auto info = info_of(placement);
  const auto map = phy2log_of(placement);
  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t layer = 0; layer < info.num_layers; ++layer) {
    const auto* begin = map.data() + layer * info.num_physical_experts;
    rows.push_back(std::vector<std::int32_t>(begin, begin + info.num_physical_experts));
  }
  nlohmann::json document = nlohmann::json::object();
  document["physical_to_logical_map"] = std::move(rows);
  return document.dump() + "\n";
}

}  // namespace eplb_cli
