// An immutable expert placement: for every layer, which logical expert each physical slot holds,
// how many replicas each expert has, and where they are (log2phy, in replica-rank order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "topology.hpp"

namespace eplb {

// Where a placement came from. `algorithm` uses the C API's eplb_algorithm ids; 0 = imported.
struct Provenance {
  std::uint32_t algorithm = 0;
  bool hierarchical = false;
  double plan_seconds = 0.0;
  std::uint32_t cross_node_budget = 0;  // balanced-relaxed's option; 0 for other algorithms
};

class Placement {
 public:
  // From a planner: `phy2log` [layers][R] plus the replica rank of every slot; for each layer and
  // expert the ranks of its slots must be exactly 0..count-1 (checked; a violation is a bug).
  static Placement from_ranked_slots(const Topology& topology, std::vector<std::int32_t> phy2log,
                                     std::span<const std::int32_t> replica_rank,
                                     const Provenance& provenance);

  // From a caller's map (SGLang's physical_to_logical_map): replica order is ascending slot.
  // Throws Error(invalid_argument) naming the layer, slot and value of a bad entry, or the
  // first expert missing from a layer.
  static Placement from_phy2log(const Topology& topology, std::vector<std::int32_t> phy2log);

  // From stored arrays (a snapshot): `phy2log` [layers][R], `replica_counts` [layers][E] and
  // `log2phy` [layers][E][log2phy_width] exactly as replica_counts() and log2phy() return them,
  // so the replica-rank order is kept. `topology` must be valid. Throws Error(corrupt) naming
  // the layer, expert or slot of any inconsistency: an id out of range, an unplaced expert,
  // counts that disagree with phy2log, a width that is not the largest count, a log2phy entry
  // that is not a slot of its expert, a slot listed twice, or padding other than -1.
  static Placement from_stored(const Topology& topology, std::vector<std::int32_t> phy2log,
                               std::span<const std::int32_t> replica_counts,
                               std::vector<std::int32_t> log2phy, std::uint32_t log2phy_width,
                               const Provenance& provenance);

  [[nodiscard]] const Topology& topology() const { return topology_; }
  [[nodiscard]] const Provenance& provenance() const { return provenance_; }
  [[nodiscard]] std::uint32_t log2phy_width() const { return log2phy_width_; }

  [[nodiscard]] std::span<const std::int32_t> phy2log() const { return phy2log_; }
  [[nodiscard]] std::span<const std::int32_t> replica_counts() const { return replica_counts_; }
  [[nodiscard]] std::span<const std::int32_t> log2phy() const { return log2phy_; }

  [[nodiscard]] std::span<const std::int32_t> phy2log_layer(std::size_t layer) const;
  [[nodiscard]] std::span<const std::int32_t> replica_counts_layer(std::size_t layer) const;

 private:
  Placement(const Topology& topology, std::vector<std::int32_t> phy2log,
            const Provenance& provenance);
  void count_replicas();    // replica_counts_ and log2phy_width_ from phy2log_
  void allocate_log2phy();  // log2phy_ of the right size, all -1

  Topology topology_;
  Provenance provenance_;
  std::uint32_t log2phy_width_ = 0;
  std::vector<std::int32_t> phy2log_;         // [layers][R]
  std::vector<std::int32_t> replica_counts_;  // [layers][E]
  std::vector<std::int32_t> log2phy_;         // [layers][E][width], -1 padded
};

}  // namespace eplb
