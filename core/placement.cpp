#include "placement.hpp"

#include <algorithm>
#include <utility>

#include "error.hpp"

namespace eplb {

namespace {

[[noreturn, gnu::cold]] void fail_log2phy_entry(std::size_t layer, std::size_t expert,
                                                std::size_t rank, std::int32_t slot,
                                                bool listed_twice) {
  if (listed_twice) fail(Errc::corrupt, "log2phy layer ", layer, " lists slot ", slot, " twice");
  fail(Errc::corrupt, "log2phy[", layer, "][", expert, "][", rank, "] = ", slot,
       " is not a slot of expert ", expert, " in layer ", layer);
}

[[noreturn, gnu::cold]] void fail_log2phy_padding(std::size_t layer, std::size_t expert,
                                                  std::size_t rank, std::int32_t value,
                                                  std::size_t count) {
  fail(Errc::corrupt, "log2phy[", layer, "][", expert, "][", rank, "] = ", value, " but expert ",
       expert, " has ", count, " replicas (padding must be -1)");
}

}  // namespace

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
}

void Placement::allocate_log2phy() {
  log2phy_.assign(checked_mul(topology_.load_count(), log2phy_width_, "log2phy size"), -1);
}

Placement Placement::from_ranked_slots(const Topology& topology, std::vector<std::int32_t> phy2log,
                                       std::span<const std::int32_t> replica_rank,
                                       const Provenance& provenance) {
  EPLB_ASSERT(phy2log.size() == topology.slot_count());
  EPLB_ASSERT(replica_rank.size() == topology.slot_count());
  Placement placement(topology, std::move(phy2log), provenance);
  placement.count_replicas();
  placement.allocate_log2phy();
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
  placement.allocate_log2phy();
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

Placement Placement::from_stored(const Topology& topology, std::vector<std::int32_t> phy2log,
                                 std::span<const std::int32_t> replica_counts,
                                 std::vector<std::int32_t> log2phy, std::uint32_t log2phy_width,
                                 const Provenance& provenance) {
  const std::size_t num_physical = topology.num_physical;
  const std::size_t num_logical = topology.num_logical;
  if (phy2log.size() != topology.slot_count() || replica_counts.size() != topology.load_count()) {
    fail(Errc::corrupt, "phy2log has ", phy2log.size(), " entries and replica_counts ",
         replica_counts.size(), " but the shape needs ", topology.slot_count(), " and ",
         topology.load_count());
  }
  for (std::size_t layer = 0; layer < topology.num_layers; ++layer) {
    for (std::size_t slot = 0; slot < num_physical; ++slot) {
      const std::int32_t expert = phy2log[layer * num_physical + slot];
      if (expert < 0 || static_cast<std::uint32_t>(expert) >= topology.num_logical) {
        fail(Errc::corrupt, "phy2log[", layer, "][", slot, "] = ", expert,
             " is not a logical expert id in [0, ", topology.num_logical, ")");
      }
    }
  }
  Placement placement(topology, std::move(phy2log), provenance);
  placement.count_replicas();
  for (std::size_t layer = 0; layer < topology.num_layers; ++layer) {
    const auto counts = placement.replica_counts_layer(layer);
    for (std::size_t expert = 0; expert < num_logical; ++expert) {
      if (counts[expert] == 0) {
        fail(Errc::corrupt, "phy2log layer ", layer, " has no slot for logical expert ", expert);
      }
      const std::int32_t stored = replica_counts[layer * num_logical + expert];
      if (stored != counts[expert]) {
        fail(Errc::corrupt, "replica_counts[", layer, "][", expert, "] = ", stored, " but phy2log ",
             "places expert ", expert, " in ", counts[expert], " slots of layer ", layer);
      }
    }
  }
  if (log2phy_width != placement.log2phy_width_) {
    fail(Errc::corrupt, "log2phy width ", log2phy_width, " is not the largest replica count (",
         placement.log2phy_width_, ")");
  }
  const std::size_t log2phy_size = topology.load_count() * std::size_t{log2phy_width};
  if (log2phy.size() != log2phy_size) {
    fail(Errc::corrupt, "log2phy has ", log2phy.size(), " entries but the shape needs ",
         log2phy_size);
  }
  // The hot loop stays small: failures are reported by cold helpers.
  const std::size_t width = log2phy_width;
  std::vector<std::uint32_t> listed_in(num_physical, 0);  // layer + 1 that listed the slot
  for (std::size_t layer = 0; layer < topology.num_layers; ++layer) {
    const auto row = placement.phy2log_layer(layer);
    const auto counts = placement.replica_counts_layer(layer);
    const auto stamp = static_cast<std::uint32_t>(layer + 1);
    for (std::size_t expert = 0; expert < num_logical; ++expert) {
      const std::int32_t* entries = log2phy.data() + (layer * num_logical + expert) * width;
      const auto count = static_cast<std::size_t>(counts[expert]);
      for (std::size_t rank = 0; rank < count; ++rank) {
        const auto slot = static_cast<std::uint32_t>(entries[rank]);  // -1 becomes huge
        if (slot >= num_physical || row[slot] != static_cast<std::int32_t>(expert) ||
            listed_in[slot] == stamp) [[unlikely]] {
          fail_log2phy_entry(layer, expert, rank, entries[rank],
                             slot < num_physical && listed_in[slot] == stamp);
        }
        listed_in[slot] = stamp;
      }
      for (std::size_t rank = count; rank < width; ++rank) {
        if (entries[rank] != -1) [[unlikely]] {
          fail_log2phy_padding(layer, expert, rank, entries[rank], count);
        }
      }
    }
  }
  placement.log2phy_ = std::move(log2phy);
  return placement;
}

std::span<const std::int32_t> Placement::phy2log_layer(std::size_t layer) const {
  return std::span(phy2log_).subspan(layer * topology_.num_physical, topology_.num_physical);
}

std::span<const std::int32_t> Placement::replica_counts_layer(std::size_t layer) const {
  return std::span(replica_counts_).subspan(layer * topology_.num_logical, topology_.num_logical);
}

}  // namespace eplb
