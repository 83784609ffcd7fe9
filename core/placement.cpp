#include "placement.hpp"

#include <algorithm>
#include <utility>

#include "error.hpp"

namespace eplb {

Placement::Placement(const Topology& topology, std::vector<std::int32_t> phy2log,
                     const Provenance& provenance)
    : topology_(topology), provenance_(provenance), phy2log_(std::move(phy2log)) {}

void Placement::count_replicas() {
  const std::size_t num_logical = topology_.num_logical;
  replica_counts_.assign(topology_.load_count(), 0);
  std::int32_t widest = 0;
  for (std::size_t layer = 0; layer < topology_.num_layers; ++layer) {
    auto counts = std::span(replica_counts_).subspan(layer * num_logical, num_logical);
    for (std::int32_t expert : phy2log_layer(layer)) ++counts[static_cast<std::size_t>(expert)];
    widest = std::max(widest, *std::max_element(counts.begin(), counts.end()));
  }
  log2phy_width_ = static_cast<std::uint32_t>(widest);
  log2phy_.assign(checked_mul(topology_.load_count(), log2phy_width_, "log2phy size"), -1);
}

Placement Placement::from_ranked_slots(const Topology& topology, std::vector<std::int32_t> phy2log,
                                       std::span<const std::int32_t> replica_rank,
                                       const Provenance& provenance) {
  EPLB_ASSERT(phy2log.size() == topology.slot_count());
  EPLB_ASSERT(replica_rank.size() == topology.slot_count());
  Placement placement(topology, std::move(phy2log), provenance);
  placement.count_replicas();
  const std::size_t width = placement.log2phy_width_;
  const std::size_t num_physical = topology.num_physical;
  for (std::size_t layer = 0; layer < topology.num_layers; ++layer) {
    const auto row = placement.phy2log_layer(layer);
    const auto counts = placement.replica_counts_layer(layer);
    for (std::size_t slot = 0; slot < num_physical; ++slot) {
      const auto expert = static_cast<std::size_t>(row[slot]);
      const std::int32_t rank = replica_rank[layer * num_physical + slot];
      EPLB_ASSERT(rank >= 0 && rank < counts[expert]);
      std::int32_t& cell = placement.log2phy_[(layer * topology.num_logical + expert) * width +
                                              static_cast<std::size_t>(rank)];
      EPLB_ASSERT(cell == -1);  // each rank exactly once
      cell = static_cast<std::int32_t>(slot);
    }
  }
  return placement;
}

Placement Placement::from_phy2log(const Topology& topology, std::vector<std::int32_t> phy2log) {
  if (phy2log.size() != topology.slot_count()) {
    fail_invalid("phy2log has ", phy2log.size(), " entries but num_layers (", topology.num_layers,
                 ") * num_physical_experts (", topology.num_physical,
                 ") = ", topology.slot_count());
  }
  const std::size_t num_physical = topology.num_physical;
  for (std::size_t layer = 0; layer < topology.num_layers; ++layer) {
    for (std::size_t slot = 0; slot < num_physical; ++slot) {
      const std::int32_t expert = phy2log[layer * num_physical + slot];
      if (expert < 0 || static_cast<std::uint32_t>(expert) >= topology.num_logical) {
        fail_invalid("phy2log[", layer, "][", slot, "] = ", expert,
                     " is not a logical expert id in [0, ", topology.num_logical, ")");
      }
    }
  }
  Placement placement(topology, std::move(phy2log), Provenance{});
  placement.count_replicas();
  const std::size_t width = placement.log2phy_width_;
  std::vector<std::int32_t> next_rank(topology.num_logical);
  for (std::size_t layer = 0; layer < topology.num_layers; ++layer) {
    const auto counts = placement.replica_counts_layer(layer);
    for (std::size_t expert = 0; expert < topology.num_logical; ++expert) {
      if (counts[expert] == 0) {
        fail_invalid("phy2log layer ", layer, " has no slot for logical expert ", expert,
                     ": every expert must be placed");
      }
    }
    std::fill(next_rank.begin(), next_rank.end(), 0);
    const auto row = placement.phy2log_layer(layer);
    for (std::size_t slot = 0; slot < num_physical; ++slot) {
      const auto expert = static_cast<std::size_t>(row[slot]);
      const auto rank = static_cast<std::size_t>(next_rank[expert]++);
      placement.log2phy_[(layer * topology.num_logical + expert) * width + rank] =
          static_cast<std::int32_t>(slot);
    }
  }
  return placement;
}

std::span<const std::int32_t> Placement::phy2log_layer(std::size_t layer) const {
  return std::span(phy2log_).subspan(layer * topology_.num_physical, topology_.num_physical);
}

std::span<const std::int32_t> Placement::replica_counts_layer(std::size_t layer) const {
  return std::span(replica_counts_).subspan(layer * topology_.num_logical, topology_.num_logical);
}

}  // namespace eplb
