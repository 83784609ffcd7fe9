#include "eplb/report.hpp"

#include "eplb/library.hpp"
#include "eplb/table.hpp"

namespace eplb_cli {

nlohmann::json metrics_json(const eplb_metrics& m) {
  return {
      {"layers", m.num_layers},
      {"loaded_layers", m.loaded_layers},
      {"balancedness", m.balancedness},
      {"min_balancedness", m.min_balancedness},
      {"node_balancedness", m.node_balancedness},
      {"max_over_mean", m.max_over_mean},
      {"max_load_over_bound", m.max_load_over_bound},
      {"worst_max_load_over_bound", m.worst_max_load_over_bound},
      {"max_load_over_node_bound", m.max_load_over_node_bound},
      {"duplicate_pairs", m.duplicate_pairs},
      {"cross_node_replicas", m.cross_node_replicas},
      {"max_replicas", m.max_replicas},
  };
}

nlohmann::json plan_report(const eplb_placement* placement, const std::vector<double>& loads) {
  const auto info = info_of(placement);
  nlohmann::json layers = nlohmann::json::array();
  for (std::uint32_t layer = 0; layer < info.num_layers; ++layer) {
    eplb_layer_metrics m{};
    m.struct_size = sizeof(m);
    check(eplb_metrics_compute_layer(placement, layer,
                                     loads.data() + std::size_t{layer} * info.num_logical_experts,
                                     info.num_logical_experts, &m),
          "");
    double optimum = -1;
    check(eplb_metrics_exact_optimum(placement,
                                     loads.data() + std::size_t{layer} * info.num_logical_experts,
                                     info.num_logical_experts, &optimum),
          "");
    layers.push_back({
        {"exact_optimum", optimum >= 0 ? nlohmann::json(optimum) : nlohmann::json(nullptr)},
        {"layer", layer},
        // The summary's means and sums cover the loaded layers only (a dense layer's row of a
        // logical_count file has no load).
        {"loaded", m.total_load > 0},
        {"total_load", m.total_load},
        {"mean_gpu_load", m.mean_gpu_load},
        {"max_gpu_load", m.max_gpu_load},
        {"lower_bound", m.lower_bound},
        {"balancedness", m.balancedness},
        {"node_balancedness", m.node_balancedness},
        {"max_load_over_bound", m.max_load_over_bound},
        {"node_bound", m.node_bound},
        {"duplicate_gpus", m.duplicate_gpus},
        {"cross_node_replicas", m.cross_node_replicas},
        {"max_replicas", m.max_replicas},
    });
  }
  return {
      {"algorithm", algorithm_name(info.algorithm)},
      {"policy", info.hierarchical != 0 ? "hierarchical" : "global"},
      {"num_layers", info.num_layers},
      {"num_logical_experts", info.num_logical_experts},
      {"num_physical_experts", info.num_physical_experts},
      {"num_gpus", info.num_gpus},
      {"num_nodes", info.num_nodes},
      {"num_groups", info.num_groups},
      {"plan_seconds", info.plan_seconds},
      {"summary", metrics_json(metrics_of(placement, loads))},
      {"layers", std::move(layers)},
  };
}

Table metrics_table(const eplb_metrics& m) {
  Table table({"metric", "value"});
  table.add_row(
      {"GPU balancedness (mean/max, mean over layers with load)", fixed(m.balancedness, 4)});
  table.add_row({"worst layer balancedness", fixed(m.min_balancedness, 4)});
  table.add_row({"node balancedness", fixed(m.node_balancedness, 4)});
  table.add_row({"max / mean GPU load", fixed(m.max_over_mean, 4)});
  table.add_row({"max GPU load / lower bound", fixed(m.max_load_over_bound, 4)});
  table.add_row({"worst layer max / lower bound", fixed(m.worst_max_load_over_bound, 4)});
  table.add_row({"max GPU load / node ceiling", fixed(m.max_load_over_node_bound, 4)});
  table.add_row({"(layer, GPU) pairs with a duplicate", std::to_string(m.duplicate_pairs)});
  table.add_row({"replicas off their expert's main node", std::to_string(m.cross_node_replicas)});
  table.add_row({"most replicas of one expert", std::to_string(m.max_replicas)});
  if (m.loaded_layers == 0) {
    table.add_row({"layers without load (every layer: the metrics above say nothing)",
                   std::to_string(m.num_layers)});
  } else if (m.loaded_layers < m.num_layers) {
    table.add_row(
        {"layers without load (left out above)", std::to_string(m.num_layers - m.loaded_layers)});
  }
  return table;
}

}  // namespace eplb_cli
