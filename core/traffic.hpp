// The traffic metric "nodes touched per token": how many distinct nodes a token's top-k experts
// are served from, the number of cross-node sends of a DeepEP-style dispatch (which sends a token
// once per destination node) plus one. Each expert's replica is chosen by this rule:
//   1. experts whose replicas all lie on one node fix that node;
//   2. then an expert with a replica on an already chosen node uses it;
//   3. otherwise the node holding replicas of the most still-uncovered experts is chosen (lowest
//      node index on ties), and step 2 repeats.
// Masked slots (-1) and repeated ids are ignored; a row with no valid id touches no node and is
// left out of the means. The lower bound is 1 per token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "placement.hpp"
#include "tracker.hpp"

namespace eplb {

// The rule above for one layer of a placement; reusable across rows (holds scratch space).
class NodesTouched {
 public:
  NodesTouched(const Placement& placement, std::uint32_t layer);

  // Nodes touched by one row of logical ids (trusted to be in [-1, E)).
  [[nodiscard]] std::uint32_t count(std::span<const std::int32_t> row);

 private:
  std::vector<std::uint32_t> offsets_;  // [E + 1] into nodes_
  std::vector<std::uint32_t> nodes_;    // distinct nodes of each expert, ascending
  std::vector<std::uint64_t> expert_stamp_, node_stamp_;
  std::vector<std::uint32_t> node_votes_;
  std::vector<std::uint32_t> experts_, uncovered_;
  std::uint64_t stamp_ = 0;
};

struct NodesTouchedSummary {
  double mean = 0;         // over rows with at least one valid id; 0 when there are none
  std::uint64_t rows = 0;  // rows counted
};

// Validates `rows` ([num_rows][top_k], ids in [-1, E); the message names row, slot and value) and
// averages the rule over them.
[[nodiscard]] NodesTouchedSummary nodes_touched(const Placement& placement, std::uint32_t layer,
                                                std::span<const std::int32_t> rows,
                                                std::size_t num_rows, std::uint32_t top_k);

struct TrafficReport {
  std::vector<double> layer_mean;         // per layer, over its sampled rows
  std::vector<std::uint64_t> layer_rows;  // sampled rows counted per layer
  double mean = 0;         // over all counted (layer, row) pairs, i.e. weighted by rows
  double lower_bound = 1;  // one node per token
};

// Nodes touched per token over the tracker's reservoir samples; the placement must have the
// tracker's layers and experts.
[[nodiscard]] TrafficReport nodes_touched(const Placement& placement, const Tracker& tracker);

}  // namespace eplb
