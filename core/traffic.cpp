#include "traffic.hpp"

#include <algorithm>

#include "error.hpp"

namespace eplb {

NodesTouched::NodesTouched(const Placement& placement, std::uint32_t layer) {
  const Topology& t = placement.topology();
  if (layer >= t.num_layers) {
    fail_invalid("layer (", layer, ") must be below num_layers (", t.num_layers, ")");
  }
  const auto phy2log = placement.phy2log_layer(layer);
  const std::uint32_t slots_per_node = t.num_physical / t.num_nodes;
  // Distinct nodes per expert: slots are in node order, so each expert's nodes come ascending.
  std::vector<std::vector<std::uint32_t>> per_expert(t.num_logical);
  for (std::uint32_t s = 0; s < t.num_physical; ++s) {
    auto& list = per_expert[static_cast<std::size_t>(phy2log[s])];
    const std::uint32_t node = s / slots_per_node;
    if (list.empty() || list.back() != node) list.push_back(node);
  }
  offsets_.assign(t.num_logical + 1, 0);
  for (std::uint32_t e = 0; e < t.num_logical; ++e) {
    offsets_[e + 1] = offsets_[e] + static_cast<std::uint32_t>(per_expert[e].size());
    nodes_.insert(nodes_.end(), per_expert[e].begin(), per_expert[e].end());
  }
  expert_stamp_.assign(t.num_logical, 0);
  node_stamp_.assign(t.num_nodes, 0);
  node_votes_.assign(t.num_nodes, 0);
}

std::uint32_t NodesTouched::count(std::span<const std::int32_t> row) {
  ++stamp_;
  experts_.clear();
  for (const std::int32_t v : row) {
    if (v < 0) continue;
    const auto e = static_cast<std::size_t>(v);
    if (expert_stamp_[e] == stamp_) continue;
    expert_stamp_[e] = stamp_;
    experts_.push_back(static_cast<std::uint32_t>(e));
  }
  std::uint32_t chosen = 0;
  auto choose = [&](std::uint32_t node) {
    if (node_stamp_[node] != stamp_) {
      node_stamp_[node] = stamp_;
      ++chosen;
    }
  };
  // 1. Single-node experts fix their node.
  for (const std::uint32_t e : experts_) {
    if (offsets_[e + 1] - offsets_[e] == 1) choose(nodes_[offsets_[e]]);
  }
  uncovered_.assign(experts_.begin(), experts_.end());
  while (true) {
    // 2. Experts with a replica on a chosen node use it.
    std::erase_if(uncovered_, [&](std::uint32_t e) {
      for (std::uint32_t i = offsets_[e]; i < offsets_[e + 1]; ++i) {
        if (node_stamp_[nodes_[i]] == stamp_) return true;
      }
      return false;
    });
    if (uncovered_.empty()) break;
    // 3. The node serving the most uncovered experts, lowest index on ties.
    std::uint32_t best = 0;
    std::uint32_t best_votes = 0;
    for (const std::uint32_t e : uncovered_) {
      for (std::uint32_t i = offsets_[e]; i < offsets_[e + 1]; ++i) ++node_votes_[nodes_[i]];
    }
    for (const std::uint32_t e : uncovered_) {
      for (std::uint32_t i = offsets_[e]; i < offsets_[e + 1]; ++i) {
        const std::uint32_t n = nodes_[i];
        const std::uint32_t v = node_votes_[n];
        if (v > best_votes || (v == best_votes && n < best)) {
          best = n;
          best_votes = v;
        }
      }
    }
    for (const std::uint32_t e : uncovered_) {
      for (std::uint32_t i = offsets_[e]; i < offsets_[e + 1]; ++i) node_votes_[nodes_[i]] = 0;
    }
    choose(best);
  }
  return chosen;
}

NodesTouchedSummary nodes_touched(const Placement& placement, std::uint32_t layer,
                                  std::span<const std::int32_t> rows, std::size_t num_rows,
                                  std::uint32_t top_k) {
  const Topology& t = placement.topology();
  if (layer >= t.num_layers) {
    fail_invalid("layer (", layer, ") must be below num_layers (", t.num_layers, ")");
  }
  if (top_k == 0) fail_invalid("top_k (0) must be at least 1");
  if (num_rows > rows.size() / top_k || rows.size() != num_rows * top_k) {
    fail_invalid("rows hold ", rows.size(), " values, not num_rows (", num_rows, ") * top_k (",
                 top_k, ")");
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::int32_t v = rows[i];
    if (v < -1 || v >= static_cast<std::int32_t>(t.num_logical)) {
      fail_invalid("expert id ", v, " at row ", i / top_k, ", slot ", i % top_k, " is outside [0, ",
                   t.num_logical, ") (and is not -1, masked)");
    }
  }
  NodesTouched rule(placement, layer);
  NodesTouchedSummary summary;
  std::uint64_t total = 0;
  for (std::size_t r = 0; r < num_rows; ++r) {
    const std::uint32_t n = rule.count(rows.subspan(r * top_k, top_k));
    if (n == 0) continue;
    total += n;
    ++summary.rows;
  }
  if (summary.rows > 0) {
    summary.mean = static_cast<double>(total) / static_cast<double>(summary.rows);
  }
  return summary;
}

TrafficReport nodes_touched(const Placement& placement, const Tracker& tracker) {
  const Topology& t = placement.topology();
  const TrackerOptions& o = tracker.options();
  if (t.num_layers != o.num_layers || t.num_logical != o.num_experts) {
    fail_invalid("placement has ", t.num_layers, " layers of ", t.num_logical,
                 " experts; the tracker has ", o.num_layers, " of ", o.num_experts);
  }
  TrafficReport report;
  report.layer_mean.assign(o.num_layers, 0.0);
  report.layer_rows.assign(o.num_layers, 0);
  double total = 0;
  std::uint64_t rows = 0;
  for (std::uint32_t layer = 0; layer < o.num_layers; ++layer) {
    const auto s = tracker.samples(layer);
    const auto summary = nodes_touched(placement, layer, s, s.size() / o.top_k, o.top_k);
    report.layer_mean[layer] = summary.mean;
    report.layer_rows[layer] = summary.rows;
    total += summary.mean * static_cast<double>(summary.rows);
    rows += summary.rows;
  }
  if (rows > 0) report.mean = total / static_cast<double>(rows);
  return report;
}

}  // namespace eplb
