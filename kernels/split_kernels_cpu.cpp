// Host side of the per-batch balancing kernels: packing the split tables, argument validation and
// the CPU references. Compiled with -ffp-contract=off (kernels/CMakeLists.txt) so that its
// floating-point expressions round exactly like the kernel's.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "../core/error.hpp"
#include "../core/topology.hpp"
#include "argument_checks.hpp"
#include "device.hpp"
#include "split_kernels.hpp"
#include "split_solver.hpp"
#include "waterfill_rule.hpp"

namespace eplb::kernels {

std::vector<std::int32_t> build_split_tables(const std::int32_t* phy2log, std::int32_t first_layer,
                                             std::int32_t num_layers, std::int32_t num_experts,
                                             std::int32_t num_slots, std::int32_t num_gpus,
                                             SplitTableShape& shape) {
  namespace L = split_layout;
  const std::int32_t spg = num_slots / num_gpus;
  std::vector<std::int32_t> out(static_cast<std::size_t>(L::kHeader + L::kLayerHeader * num_layers),
                                0);
  out[0] = L::kMagic;
  out[1] = first_layer;
  out[2] = num_layers;
  out[3] = num_experts;
  out[4] = num_slots;
  out[5] = num_gpus;
  out[6] = spg;
  shape = SplitTableShape{first_layer, num_layers, num_experts, num_slots, num_gpus, 0, 0};

  const auto experts = static_cast<std::size_t>(num_experts);
  std::vector<std::vector<std::int32_t>> first_slots(experts);  // first slot on each distinct GPU
  std::vector<std::int32_t> movable_of(experts);
  for (std::int32_t l = 0; l < num_layers; ++l) {
    const std::int32_t* row = phy2log + static_cast<std::ptrdiff_t>(l) * num_slots;
    for (auto& f : first_slots) f.clear();
    for (std::int32_t s = 0; s < num_slots; ++s) {  // ascending slots: ascending GPUs
      auto& f = first_slots[static_cast<std::size_t>(row[s])];
      if (f.empty() || f.back() / spg != s / spg) f.push_back(s);
    }
    std::vector<std::int32_t> slot_role(static_cast<std::size_t>(num_slots), L::kZero);
    std::vector<std::int32_t> mov_edge_begin{0};
    std::vector<std::int32_t> edge_gpu;
    std::vector<std::int32_t> edge_mov;
    std::vector<std::int32_t> edge_expert;
    std::int32_t movable = 0;
    for (std::size_t e = 0; e < experts; ++e) {
      const auto& f = first_slots[e];
      if (f.size() < 2) {
        movable_of[e] = -1;
        if (!f.empty()) slot_role[static_cast<std::size_t>(f.front())] = L::kWholeCount;
        continue;
      }
      movable_of[e] = movable;
      for (const std::int32_t s : f) {
        slot_role[static_cast<std::size_t>(s)] = static_cast<std::int32_t>(edge_gpu.size());
        edge_gpu.push_back(s / spg);
        edge_mov.push_back(movable);
        edge_expert.push_back(static_cast<std::int32_t>(e));
      }
      mov_edge_begin.push_back(static_cast<std::int32_t>(edge_gpu.size()));
      ++movable;
    }
    const auto edges = static_cast<std::int32_t>(edge_gpu.size());
    std::vector<std::int32_t> gpu_edge_begin(static_cast<std::size_t>(num_gpus) + 1, 0);
    for (const std::int32_t g : edge_gpu) ++gpu_edge_begin[static_cast<std::size_t>(g) + 1];
    for (std::size_t g = 1; g < gpu_edge_begin.size(); ++g) {
      gpu_edge_begin[g] += gpu_edge_begin[g - 1];
    }
    std::vector<std::int32_t> gpu_edges(static_cast<std::size_t>(edges));
    std::vector<std::int32_t> fill(gpu_edge_begin.begin(), gpu_edge_begin.end() - 1);
    for (std::int32_t k = 0; k < edges; ++k) {  // edges in movable order: each GPU's list too
      gpu_edges[static_cast<std::size_t>(fill[static_cast<std::size_t>(edge_gpu[k])]++)] = k;
    }

    std::int32_t* h = out.data() + L::kHeader + L::kLayerHeader * l;
    h[0] = movable;
    h[1] = edges;
    auto append = [&out](std::int32_t slot_in_header, const std::int32_t* data, std::size_t n,
                         std::int32_t layer) {
      const auto offset = static_cast<std::int32_t>(out.size());
      out.insert(out.end(), data, data + n);
      out[static_cast<std::size_t>(L::kHeader + L::kLayerHeader * layer + slot_in_header)] = offset;
    };
    append(2, row, static_cast<std::size_t>(num_slots), l);
    append(3, slot_role.data(), slot_role.size(), l);
    append(4, mov_edge_begin.data(), mov_edge_begin.size(), l);
    append(5, edge_gpu.data(), edge_gpu.size(), l);
    append(6, edge_mov.data(), edge_mov.size(), l);
    append(7, edge_expert.data(), edge_expert.size(), l);
    append(8, gpu_edge_begin.data(), gpu_edge_begin.size(), l);
    append(9, gpu_edges.data(), gpu_edges.size(), l);
    shape.max_movable = std::max(shape.max_movable, movable);
    shape.max_edges = std::max(shape.max_edges, edges);
  }
  if (out.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    fail(Errc::out_of_memory, "the split tables of ", num_layers, " layers exceed 2^31 entries");
  }
  return out;
}

std::size_t split_workspace_bytes(const SplitTableShape& shape) {
  return split_state_bytes(shape.max_movable, shape.max_edges, shape.num_gpus);
}

void validate_split_solve(const SplitSolveArgs& a) {
  if (a.tables == nullptr) fail_invalid("tables is NULL");
  if (a.layer < a.shape.first_layer || a.layer - a.shape.first_layer >= a.shape.num_layers) {
    fail_invalid("layer (", a.layer, ") is not in the tables' layers [", a.shape.first_layer, ", ",
                 a.shape.first_layer + a.shape.num_layers, ")");
  }
  if (a.counts == nullptr) fail_invalid("counts is NULL");
  if (a.quotas == nullptr) fail_invalid("out_quotas is NULL");
  require_element_aligned(a.counts, "counts");
  require_element_aligned(a.quotas, "out_quotas");
  require_element_aligned(a.gpu_weights, "gpu_weights");
  require_element_aligned(a.gpu_extra, "gpu_extra_load");
  require_element_aligned(a.max_load, "out_max_load");
  const std::size_t need = split_workspace_bytes(a.shape);
  if (a.workspace_bytes < need) {
    fail_invalid("workspace_bytes (", a.workspace_bytes, ") is below the required ", need,
                 " (eplb_kernel_split_solve_workspace_size)");
  }
  if (need > 0 && a.workspace == nullptr) fail_invalid("workspace is NULL");
  require_aligned(a.workspace, 8, "workspace", "the kernel keeps 8-byte values in it");
}

void split_solve_cpu(const SplitSolveArgs& a) {
  validate_split_solve(a);
  const SplitTableShape& sh = a.shape;
  for (std::int32_t e = 0; e < sh.num_experts; ++e) {
    if (a.counts[e] < 0) fail_invalid("counts[", e, "] = ", a.counts[e], " must be >= 0");
  }
  for (std::int32_t g = 0; g < sh.num_gpus; ++g) {
    if (a.gpu_weights != nullptr && !(std::isfinite(a.gpu_weights[g]) && a.gpu_weights[g] > 0.0)) {
      fail_invalid("gpu_weights[", g, "] = ", a.gpu_weights[g], " must be finite and > 0");
    }
    if (a.gpu_extra != nullptr && !(std::isfinite(a.gpu_extra[g]) && a.gpu_extra[g] >= 0.0)) {
      fail_invalid("gpu_extra_load[", g, "] = ", a.gpu_extra[g], " must be finite and >= 0");
    }
  }
  const SplitLayerView v = split_layer_view(a.tables, a.layer);
  SplitState s = split_state_carve(a.workspace, sh.max_movable, sh.max_edges, sh.num_gpus);
  // Exactly the kernel's steps (split_kernels.cu), one after another.
  for (std::int32_t g = 0; g < v.num_gpus; ++g) {
    std::int64_t fixed = 0;
    for (std::int32_t slot = g * v.slots_per_gpu; slot < (g + 1) * v.slots_per_gpu; ++slot) {
      if (v.slot_role[slot] == split_layout::kWholeCount) fixed += a.counts[v.slot_expert[slot]];
    }
    s.x[g] = (a.gpu_extra != nullptr ? a.gpu_extra[g] : 0.0) + static_cast<double>(fixed);
    s.w[g] = a.gpu_weights != nullptr ? a.gpu_weights[g] : 1.0;
  }
  const double max_load = SplitSolver<SerialExec>(v, a.counts, s, SerialExec{}).run();
  for (std::int32_t slot = 0; slot < v.num_slots; ++slot) {
    const std::int32_t role = v.slot_role[slot];
    a.quotas[slot] = role >= 0                           ? s.flow[role]
                     : role == split_layout::kWholeCount ? a.counts[v.slot_expert[slot]]
                                                         : 0;
  }
  if (a.max_load != nullptr) *a.max_load = max_load;
}

void check_split_solve_device_pointers(const SplitSolveArgs& a) {
  require_device_pointer(a.tables, "tables (device copy)");
  require_device_pointer(a.counts, "counts");
  require_device_pointer(a.quotas, "out_quotas");
  if (a.gpu_weights != nullptr) require_device_pointer(a.gpu_weights, "gpu_weights");
  if (a.gpu_extra != nullptr) require_device_pointer(a.gpu_extra, "gpu_extra_load");
  if (a.max_load != nullptr) require_device_pointer(a.max_load, "out_max_load");
  if (split_workspace_bytes(a.shape) > 0) require_device_pointer(a.workspace, "workspace");
}

// --- shared-expert waterfill ------------------------------------------------------------------

std::size_t waterfill_workspace_bytes(std::uint32_t num_tokens, std::uint32_t num_gpus) {
  return waterfill::workspace_bytes(num_tokens, num_gpus);
}

void validate_shared_waterfill(const WaterfillKernelArgs& a) {
  if (a.top_k == 0) fail_invalid("top_k (0) must be >= 1");
  // The kernels count a block's 512 rows of top_k entries in int counters and index rows with
  // top_k + 1 in 32 bits: 1024 keeps every counter far from overflow (shared with the CPU
  // reference, so both reject the same arguments).
  if (a.top_k > 1024) fail_invalid("top_k (", a.top_k, ") must be at most 1024");
  if (a.num_tokens > 0 && a.topk_slots == nullptr) fail_invalid("topk_slots is NULL");
  if (a.num_tokens > 0 && a.out_topk == nullptr) fail_invalid("out_topk is NULL");
  require_element_aligned(a.topk_slots, "topk_slots");
  require_element_aligned(a.out_topk, "out_topk");
  require_element_aligned(a.source_gpu, "source_gpu");
  require_element_aligned(a.gpu_weights, "gpu_weights");
  require_element_aligned(a.gpu_loads, "gpu_loads");
  require_element_aligned(a.out_gpu_loads, "out_gpu_loads");
  if (a.num_tokens > static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max())) {
    fail_invalid("num_tokens (", a.num_tokens, ") must be below 2^31");
  }
  if (a.num_gpus == 0 || a.num_gpus > waterfill::kMaxGpus) {
    fail_invalid("num_gpus (", a.num_gpus, ") must be in [1, ", waterfill::kMaxGpus,
                 "] for the waterfill kernel");
  }
  (void)checked_mul(a.num_tokens, std::size_t{a.top_k} + 1, "num_tokens * (top_k + 1)");
  const std::size_t need = waterfill_workspace_bytes(a.num_tokens, a.num_gpus);
  if (a.workspace_bytes < need) {
    fail_invalid("workspace_bytes (", a.workspace_bytes, ") is below the required ", need,
                 " (eplb_kernel_shared_waterfill_workspace_size)");
  }
  if (a.workspace == nullptr) fail_invalid("workspace is NULL");
  require_aligned(a.workspace, 8, "workspace", "the kernel keeps 8-byte values in it");
}

void check_shared_waterfill_device_pointers(const WaterfillKernelArgs& a) {
  if (a.num_tokens > 0) {
    require_device_pointer(a.topk_slots, "topk_slots");
    require_device_pointer(a.out_topk, "out_topk");
  }
  if (a.source_gpu != nullptr) require_device_pointer(a.source_gpu, "source_gpu");
  if (a.gpu_weights != nullptr) require_device_pointer(a.gpu_weights, "gpu_weights");
  if (a.gpu_loads != nullptr) require_device_pointer(a.gpu_loads, "gpu_loads");
  if (a.out_gpu_loads != nullptr) require_device_pointer(a.out_gpu_loads, "out_gpu_loads");
  require_device_pointer(a.workspace, "workspace");
}

namespace {

// The per-GPU state of the rule (the kernel keeps the same arrays in shared memory).
struct WaterfillGpuState {
  std::array<double, waterfill::kMaxGpus> load{};  // input loads
  std::array<double, waterfill::kMaxGpus> weight{};
  std::array<double, waterfill::kMaxGpus> cur{};  // load + taken, for a phase's level
  std::array<std::int64_t, waterfill::kMaxGpus> taken{};
  std::array<std::int64_t, waterfill::kMaxGpus> rem{};
  std::array<std::int64_t, waterfill::kMaxGpus> round{};  // accepted this round
  std::array<std::int64_t, waterfill::kMaxGpus> fallback{};
  std::array<std::int32_t, waterfill::kMaxGpus> order{};
  std::array<std::uint64_t, waterfill::kMaxGpus + 1> prefix{};
};

}  // namespace

void shared_waterfill_cpu(const WaterfillKernelArgs& a) {
  namespace W = waterfill;
  validate_shared_waterfill(a);
  const auto gpus = static_cast<std::int32_t>(a.num_gpus);
  const auto physical = static_cast<std::int32_t>(a.num_physical);
  const std::int32_t spg = physical / gpus;
  const std::size_t k = a.top_k;
  const std::size_t tokens = a.num_tokens;
  for (std::size_t i = 0; i < tokens * k; ++i) {
    const std::int32_t s = a.topk_slots[i];
    if (s < -1 || s >= physical) {
      fail_invalid("topk_slots[", i, "] = ", s, " must be -1 or a slot below num_physical (",
                   physical, ")");
    }
  }
  for (std::size_t t = 0; a.source_gpu != nullptr && t < tokens; ++t) {
    if (a.source_gpu[t] < 0 || a.source_gpu[t] >= gpus) {
      fail_invalid("source_gpu[", t, "] = ", a.source_gpu[t], " must be in [0, num_gpus = ", gpus,
                   ")");
    }
  }
  {  // the workspace holds what the kernels carve from it (unused here)
    const auto w =
        W::carve_workspace(a.workspace, a.num_tokens, a.num_gpus, W::kernel_blocks(a.num_tokens));
    EPLB_ASSERT(reinterpret_cast<unsigned char*>(w.rank) + 4 * std::size_t{a.num_tokens} <=
                static_cast<unsigned char*>(a.workspace) + a.workspace_bytes);
  }
  auto st = std::make_unique<WaterfillGpuState>();
  for (std::int32_t g = 0; g < gpus; ++g) {
    if (a.gpu_weights != nullptr && !(std::isfinite(a.gpu_weights[g]) && a.gpu_weights[g] > 0.0)) {
      fail_invalid("gpu_weights[", g, "] = ", a.gpu_weights[g], " must be finite and > 0");
    }
    if (a.gpu_loads != nullptr && !(std::isfinite(a.gpu_loads[g]) && a.gpu_loads[g] >= 0.0)) {
      fail_invalid("gpu_loads[", g, "] = ", a.gpu_loads[g], " must be finite and >= 0");
    }
    st->weight[static_cast<std::size_t>(g)] = a.gpu_weights != nullptr ? a.gpu_weights[g] : 1.0;
  }
  std::array<std::int64_t, W::kMaxGpus> counted{};
  auto row = [&](std::size_t t) { return a.topk_slots + t * k; };
  auto source = [&](std::size_t t) { return a.source_gpu != nullptr ? a.source_gpu[t] : -1; };
  auto col = [&](std::size_t t) -> std::int32_t& { return a.out_topk[t * (k + 1) + k]; };
  for (std::size_t t = 0; t < tokens; ++t) {
    bool valid = false;
    for (std::size_t j = 0; j < k; ++j) {
      const std::int32_t s = row(t)[j];
      a.out_topk[t * (k + 1) + j] = s;
      if (s >= 0 && s < physical) {
        valid = true;
        ++counted[static_cast<std::size_t>(s / spg)];
      }
    }
    col(t) = valid ? W::kUnplaced : -1;
  }
  for (std::int32_t g = 0; g < gpus; ++g) {
    const auto gi = static_cast<std::size_t>(g);
    st->load[gi] = a.gpu_loads != nullptr ? a.gpu_loads[g] : static_cast<double>(counted[gi]);
  }

  for (int phase = 0; phase < W::kPhases; ++phase) {
    std::int64_t left = 0;
    for (std::size_t t = 0; t < tokens; ++t) left += col(t) == W::kUnplaced ? 1 : 0;
    for (std::int32_t g = 0; g < gpus; ++g) {
      const auto gi = static_cast<std::size_t>(g);
      st->cur[gi] = st->load[gi] + static_cast<double>(st->taken[gi]);
    }
    for (std::int32_t g = 0; g < gpus; ++g) {
      st->order[static_cast<std::size_t>(
          W::level_rank(g, gpus, st->cur.data(), st->weight.data()))] = g;
    }
    const double level = W::water_level(st->order.data(), gpus, st->cur.data(), st->weight.data(),
                                        static_cast<double>(left));
    for (std::int32_t g = 0; g < gpus; ++g) {
      const auto gi = static_cast<std::size_t>(g);
      st->rem[gi] = W::phase_capacity(level, st->cur[gi], st->weight[gi], left);
    }
    for (int r = 0; r < W::kRounds; ++r) {
      st->prefix[0] = 0;
      for (std::int32_t g = 0; g < gpus; ++g) {
        const auto gi = static_cast<std::size_t>(g);
        st->prefix[gi + 1] =
            st->prefix[gi] + static_cast<std::uint64_t>(std::max<std::int64_t>(st->rem[gi], 0));
        st->round[gi] = 0;
      }
      for (std::size_t t = 0; t < tokens; ++t) {
        if (col(t) != W::kUnplaced) continue;
        const std::int32_t g =
            a.any_gpu ? W::propose_any(st->prefix.data(), gpus, static_cast<std::uint32_t>(t))
                      : W::propose_restricted(row(t), a.top_k, source(t), spg, physical, gpus,
                                              st->rem.data(), static_cast<std::uint32_t>(t));
        if (g < 0) continue;
        const auto gi = static_cast<std::size_t>(g);
        if (st->round[gi] < st->rem[gi]) col(t) = g;  // rank in token order below capacity
        ++st->round[gi];
      }
      for (std::int32_t g = 0; g < gpus; ++g) {
        const auto gi = static_cast<std::size_t>(g);
        const std::int64_t accepted = std::min(st->round[gi], st->rem[gi]);
        st->rem[gi] -= accepted;
        st->taken[gi] += accepted;
      }
    }
  }
  for (std::size_t t = 0; t < tokens; ++t) {
    if (col(t) != W::kUnplaced) continue;
    const std::int32_t g =
        W::least_loaded(row(t), a.top_k, source(t), spg, physical, gpus, a.any_gpu, st->load.data(),
                        st->taken.data(), st->weight.data());
    ++st->fallback[static_cast<std::size_t>(g)];
    col(t) = g;
  }
  for (std::size_t t = 0; t < tokens; ++t) {
    if (col(t) >= 0) col(t) += physical;
  }
  for (std::int32_t g = 0; a.out_gpu_loads != nullptr && g < gpus; ++g) {
    const auto gi = static_cast<std::size_t>(g);
    a.out_gpu_loads[g] = st->load[gi] + static_cast<double>(st->taken[gi] + st->fallback[gi]);
  }
}

}  // namespace eplb::kernels
