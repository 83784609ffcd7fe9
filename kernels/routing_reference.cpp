// The host half of the routing kernels: device tables built from a placement (host copy, and the
// upload through routing.cu's helpers), and the CPU references of every routing operation. The
// per-entry rules are in routing_rules.hpp, shared with the CUDA kernels.
#include <algorithm>
#include <cstring>
#include <vector>

#include "../core/error.hpp"
#include "device.hpp"
#include "routing.hpp"

namespace eplb::kernels {

namespace {

TablesLayout layout_of(const Topology& t, std::uint32_t width) {
  const std::size_t le = static_cast<std::size_t>(t.num_layers) * t.num_logical;
  return TablesLayout{le, static_cast<std::size_t>(t.num_layers) * t.num_physical, le, le * width,
                      le};
}

}  // namespace

DeviceTables::DeviceTables(const Placement& placement, std::uint32_t gpu,
                           std::uint32_t max_replicas, std::uint32_t flags, void* stream)
    : topology_(placement.topology()), gpu_(gpu), flags_(flags) {
  if ((flags & ~tables_host_only) != 0) {
    fail_invalid("flags (", flags, ") has bits other than EPLB_DEVICE_TABLES_HOST_ONLY (1)");
  }
  if (gpu >= topology_.num_gpus) {
    fail_invalid("gpu (", gpu, ") must be below the placement's num_gpus (", topology_.num_gpus,
                 ")");
  }
  width_ = max_replicas == 0 ? placement.log2phy_width() : max_replicas;
  if (placement.log2phy_width() > width_) {
    fail_invalid("max_replicas (", max_replicas, ") is below the placement's log2phy width (",
                 placement.log2phy_width(), ")");
  }
  if (width_ > topology_.num_physical) {
    fail_invalid("max_replicas (", max_replicas, ") exceeds num_physical_experts (",
                 topology_.num_physical, ")");
  }
  if (!host_only()) require_device();
  build_host(placement);
  if (host_only()) return;
#if EPLB_HAVE_CUDA
  const std::size_t bytes = layout_of(topology_, width_).bytes();
  device_ = tables_device_alloc(bytes, &device_id_);
  try {
    upload(stream);
    tables_device_wait(stream);  // create is a setup call: its tables are ready for any stream
  } catch (...) {
    tables_device_free(device_);
    throw;
  }
#else
  static_cast<void>(stream);
  require_device();
#endif
}

DeviceTables::~DeviceTables() {
#if EPLB_HAVE_CUDA
  if (device_ != nullptr) tables_device_free(device_);
#endif
}

void DeviceTables::update(const Placement& placement, void* stream) {
  const Topology& t = placement.topology();
  if (t.num_layers != topology_.num_layers || t.num_logical != topology_.num_logical ||
      t.num_physical != topology_.num_physical || t.num_gpus != topology_.num_gpus ||
      t.num_nodes != topology_.num_nodes) {
    fail_invalid("the placement's shape (", t.num_layers, " layers, ", t.num_logical, " experts, ",
                 t.num_physical, " slots, ", t.num_gpus, " GPUs, ", t.num_nodes,
                 " nodes) differs from the tables' (", topology_.num_layers, ", ",
                 topology_.num_logical, ", ", topology_.num_physical, ", ", topology_.num_gpus,
                 ", ", topology_.num_nodes, ")");
  }
  if (placement.log2phy_width() > width_) {
    fail_invalid("the placement's log2phy width (", placement.log2phy_width(),
                 ") exceeds the tables' capacity (", width_,
                 "; create them with a larger max_replicas)");
  }
  std::vector<std::uint64_t> previous = host_;
  build_host(placement);
  if (host_only()) return;
  try {
    upload(stream);
  } catch (...) {
    host_ = std::move(previous);
    throw;
  }
}

void DeviceTables::upload(void* stream) {
#if EPLB_HAVE_CUDA
  tables_device_upload(device_, host_.data(), layout_of(topology_, width_).bytes(), stream);
#else
  static_cast<void>(stream);
  require_device();
#endif
}

void DeviceTables::build_host(const Placement& placement) {
  const Topology& t = topology_;
  const TablesLayout layout = layout_of(t, width_);
  std::vector<std::uint64_t> buffer((layout.bytes() + 7) / 8, 0);
  auto* node_mask = buffer.data();
  auto* phy2log = reinterpret_cast<std::int32_t*>(node_mask + layout.node_mask);
  auto* counts = phy2log + layout.phy2log;
  auto* log2phy = counts + layout.replica_count;
  auto* static_map = log2phy + layout.log2phy;

  const std::uint32_t W = placement.log2phy_width();
  const std::uint32_t spg = t.slots_per_gpu();
  const std::uint32_t slots_per_node = spg * t.gpus_per_node();
  const std::uint32_t my_node = gpu_ / t.gpus_per_node();
  std::copy(placement.phy2log().begin(), placement.phy2log().end(), phy2log);
  std::copy(placement.replica_counts().begin(), placement.replica_counts().end(), counts);
  std::fill(log2phy, log2phy + layout.log2phy, -1);
  const auto src = placement.log2phy();
  for (std::size_t row = 0; row < layout.replica_count; ++row) {
    const auto c = static_cast<std::size_t>(counts[row]);
    std::copy_n(src.begin() + static_cast<std::ptrdiff_t>(row * W), c, log2phy + row * width_);
    const std::int32_t* slots = log2phy + row * width_;
    std::uint64_t mask = 0;
    if (t.num_nodes <= max_node_aware_nodes) {
      for (std::size_t r = 0; r < c; ++r) mask |= std::uint64_t{1} << (slots[r] / slots_per_node);
    }
    node_mask[row] = mask;
    // Static map: a replica on this GPU, else the (gpu % m)-th of the m replicas on this node,
    // else the (gpu % count)-th of all replicas (log2phy order).
    std::int32_t chosen = -1;
    std::vector<std::int32_t> on_node;
    for (std::size_t r = 0; r < c; ++r) {
      const std::uint32_t slot = static_cast<std::uint32_t>(slots[r]);
      if (slot / spg == gpu_) {
        chosen = slots[r];
        break;
      }
      if (slot / slots_per_node == my_node) on_node.push_back(slots[r]);
    }
    if (chosen < 0 && !on_node.empty()) chosen = on_node[gpu_ % on_node.size()];
    if (chosen < 0) chosen = slots[gpu_ % c];
    static_map[row] = chosen;
  }
  host_ = std::move(buffer);
}

std::size_t DeviceTables::device_bytes() const { return layout_of(topology_, width_).bytes(); }

DeviceTables::Pointers DeviceTables::host_pointers() const {
  const TablesLayout layout = layout_of(topology_, width_);
  const auto* node_mask = host_.data();
  const auto* phy2log = reinterpret_cast<const std::int32_t*>(node_mask + layout.node_mask);
  const auto* counts = phy2log + layout.phy2log;
  const auto* log2phy = counts + layout.replica_count;
  return Pointers{phy2log, counts, log2phy, log2phy + layout.log2phy, node_mask};
}

DeviceTables::Pointers DeviceTables::device_pointers() const {
  if (device_ == nullptr) return Pointers{nullptr, nullptr, nullptr, nullptr, nullptr};
  const TablesLayout layout = layout_of(topology_, width_);
  const auto* node_mask = static_cast<const std::uint64_t*>(device_);
  const auto* phy2log = reinterpret_cast<const std::int32_t*>(node_mask + layout.node_mask);
  const auto* counts = phy2log + layout.phy2log;
  const auto* log2phy = counts + layout.replica_count;
  return Pointers{phy2log, counts, log2phy, log2phy + layout.log2phy, node_mask};
}

TablesView DeviceTables::view(const Pointers& p) const {
  TablesView v;
  v.phy2log = p.phy2log;
  v.replica_count = p.replica_count;
  v.log2phy = p.log2phy;
  v.static_map = p.static_map;
  v.node_mask = p.node_mask;
  v.num_layers = topology_.num_layers;
  v.num_logical = topology_.num_logical;
  v.num_physical = topology_.num_physical;
  v.width = width_;
  v.num_gpus = topology_.num_gpus;
  v.num_nodes = topology_.num_nodes;
  v.slots_per_gpu = topology_.slots_per_gpu();
  v.gpus_per_node = topology_.gpus_per_node();
  v.gpu = gpu_;
  return v;
}

namespace {

bool enabled(const std::int32_t* flag) { return flag == nullptr || *flag != 0; }

}  // namespace

void record_load_cpu(const RecordArgs& a) {
  if (!enabled(a.enable_flag)) return;
  std::int64_t* row = a.counts + static_cast<std::size_t>(a.layer) * a.num_experts;
  for (std::size_t i = 0; i < a.topk.entries(); ++i) {
    const std::int32_t e = load_id(a.topk.ids, a.topk.ids64, i, a.num_experts);
    if (e >= 0) ++row[e];
  }
}

void map_record_cpu(const TablesView& t, const MapArgs& a) {
  const bool record = a.counts != nullptr && enabled(a.enable_flag);
  std::int64_t* row =
      record ? a.counts + static_cast<std::size_t>(a.layer) * t.num_physical : nullptr;
  std::vector<std::int64_t> seen(a.mode == map_quota ? t.num_logical : 0, 0);
  const std::uint32_t k = a.topk.top_k;
  std::uint8_t picks[max_node_aware_nodes];
  for (std::size_t token = 0; token < a.topk.num_tokens; ++token) {
    const std::size_t start = token * k;
    std::uint64_t fixed = 0;
    std::uint32_t num_picks = 0;
    if (a.mode == map_node_aware) {
      static_cast<void>(node_aware_choice(t, a.layer, a.topk.ids, a.topk.ids64, start, k, &fixed,
                                          picks, &num_picks));
    }
    for (std::uint32_t j = 0; j < k; ++j) {
      const std::size_t i = start + j;
      const std::int32_t e = load_id(a.topk.ids, a.topk.ids64, i, t.num_logical);
      std::int32_t slot = -1;
      if (e >= 0) {
        if (a.mode == map_quota) {
          slot = quota_slot(t, a.layer, e, seen[static_cast<std::size_t>(e)]++, a.quotas);
        } else if (a.mode == map_node_aware) {
          slot = node_aware_slot(t, a.layer, e, i, fixed, picks, num_picks);
        } else {
          slot = simple_slot(t, a.mode, a.layer, e, i, a.seed);
        }
        if (record) ++row[slot];
      }
      a.out[i] = slot;
    }
  }
}

void fold_counts_cpu(const TablesView& t, const std::int64_t* physical, std::int64_t* logical) {
  for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
    for (std::uint32_t e = 0; e < t.num_logical; ++e) {
      const std::size_t row = static_cast<std::size_t>(layer) * t.num_logical + e;
      std::int64_t sum = 0;
      for (std::int32_t r = 0; r < t.replica_count[row]; ++r) {
        sum += physical[static_cast<std::size_t>(layer) * t.num_physical +
                        static_cast<std::size_t>(
                            t.log2phy[row * t.width + static_cast<std::size_t>(r)])];
      }
      logical[row] = sum;
    }
  }
}

void coactivation_cpu(const CoactivationArgs& a) {
  if (!enabled(a.enable_flag)) return;
  const std::uint32_t E = a.num_experts;
  const std::uint32_t k = a.topk.top_k;
  if (a.pair_counts != nullptr) {
    std::int64_t* row = a.pair_counts + static_cast<std::size_t>(a.layer) *
                                            (static_cast<std::size_t>(E) * (E - 1) / 2);
    for (std::size_t token = 0; token < a.topk.num_tokens; ++token) {
      const std::size_t start = token * k;
      for (std::uint32_t i = 0; i < k; ++i) {
        const std::int32_t x = load_id(a.topk.ids, a.topk.ids64, start + i, E);
        if (x < 0 || !first_occurrence(a.topk.ids, a.topk.ids64, start, i, x, E)) continue;
        for (std::uint32_t j = i + 1; j < k; ++j) {
          const std::int32_t y = load_id(a.topk.ids, a.topk.ids64, start + j, E);
          if (y < 0 || y == x || !first_occurrence(a.topk.ids, a.topk.ids64, start, j, y, E))
            continue;
          ++row[pair_index(E, std::min(x, y), std::max(x, y))];
        }
      }
    }
  }
  if (a.samples != nullptr) {
    const std::size_t rows =
        sampled_rows(a.topk.num_tokens, a.sample_stride, a.sample_offset, a.sample_capacity);
    for (std::size_t r = 0; r < a.sample_capacity; ++r) {
      for (std::uint32_t j = 0; j < k; ++j) {
        a.samples[r * k + j] = r < rows
                                   ? load_id(a.topk.ids, a.topk.ids64,
                                             (a.sample_offset + r * a.sample_stride) * k + j, E)
                                   : -1;
      }
    }
  }
}

}  // namespace eplb::kernels
