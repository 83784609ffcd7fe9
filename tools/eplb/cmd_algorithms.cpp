// eplb algorithms: the placement algorithms this libeplb has.
#include <iostream>
#include <nlohmann/json.hpp>

#include "eplb/commands.hpp"
#include "eplb/eplb.h"
#include "eplb/json_output.hpp"
#include "eplb/library.hpp"
#include "eplb/table.hpp"

namespace eplb_cli {

void run_algorithms(const AlgorithmsArgs& args) {
  const uint32_t default_id = default_algorithm();
  if (args.json) {
    nlohmann::json list = nlohmann::json::array();
    for (uint32_t id = 1; id <= eplb_algorithm_count(); ++id) {
      list.push_back({{"id", id},
                      {"name", eplb_algorithm_name(id)},
                      {"description", eplb_algorithm_description(id)},
                      {"default", id == default_id}});
    }
    print_json(nlohmann::json{{"algorithms", list}});
    return;
  }
  Table table({"name", "description"});
  for (uint32_t id = 1; id <= eplb_algorithm_count(); ++id) {
    table.add_row({std::string(eplb_algorithm_name(id)) + (id == default_id ? " (default)" : ""),
                   eplb_algorithm_description(id)});
  }
  table.print(std::cout);
}

}  // namespace eplb_cli
