// C shims of per-batch balancing (issue #9): the replica-split solver and the shared-expert
// waterfill. Results go to scratch first and are copied out only on success.
#include <algorithm>
#include <memory>
#include <span>
#include <vector>

#include "../../core/rank_quotas.hpp"
#include "../../core/replica_split.hpp"
#include "../../core/replica_split_nodes.hpp"
#include "../../core/shared_waterfill.hpp"
#include "guard.hpp"
#include "handles.hpp"

struct eplb_split_workspace {
  eplb::SplitWorkspace value;
  eplb::NodeSplitWorkspace by_node;
  std::vector<std::int32_t> quotas;
};

namespace {

void check_gpu_len(const eplb::Topology& t, const void* a, const void* b, std::size_t gpu_len) {
  if ((a != nullptr || b != nullptr) && gpu_len != t.num_gpus) {
    eplb::fail_invalid("gpu_len (", gpu_len, ") must equal num_gpus (", t.num_gpus,
                       ") when a per-GPU array is given");
  }
}

template <typename T>
std::span<const T> optional_span(const T* data, std::size_t len) {
  return data == nullptr ? std::span<const T>{} : std::span<const T>(data, len);
}

}  // namespace

extern "C" {

eplb_status eplb_split_workspace_create(eplb_split_workspace** out_workspace) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(out_workspace, "out_workspace");
    *out_workspace = std::make_unique<eplb_split_workspace>().release();
  });
}

void eplb_split_workspace_destroy(eplb_split_workspace* workspace) {
  std::unique_ptr<eplb_split_workspace> owned(workspace);
}

eplb_status eplb_split_solve(eplb_split_workspace* workspace, const eplb_placement* placement,
                             uint32_t layer, const int32_t* counts, size_t counts_len,
                             const double* gpu_weights, const double* gpu_extra_load,
                             size_t gpu_len, int32_t* out_quotas, size_t out_quotas_len,
                             double* out_max_load) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    eplb::capi::require_not_null(counts, "counts");
    eplb::capi::require_not_null(out_quotas, "out_quotas");
    const auto& p = placement->value;
    const auto& t = p.topology();
    check_gpu_len(t, gpu_weights, gpu_extra_load, gpu_len);
    if (out_quotas_len != t.num_physical) {
      eplb::fail_invalid("out_quotas_len (", out_quotas_len, ") must equal num_physical_experts (",
                         t.num_physical, ")");
    }
    std::unique_ptr<eplb_split_workspace> temporary;
    if (workspace == nullptr) {
      temporary = std::make_unique<eplb_split_workspace>();
      workspace = temporary.get();
    }
    workspace->quotas.resize(t.num_physical);
    const eplb::SplitGpuTerms terms{optional_span(gpu_weights, gpu_len),
                                    optional_span(gpu_extra_load, gpu_len)};
    const auto result =
        workspace->value.solve(p, layer, std::span(counts, counts_len), terms, workspace->quotas);
    std::copy(workspace->quotas.begin(), workspace->quotas.end(), out_quotas);
    if (out_max_load != nullptr) *out_max_load = result.max_load;
  });
}

eplb_status eplb_split_solve_by_node(eplb_split_workspace* workspace,
                                     const eplb_placement* placement, uint32_t layer,
                                     const int32_t* counts_by_node, size_t counts_len,
                                     const double* gpu_weights, const double* gpu_extra_load,
                                     size_t gpu_len, double slack, int32_t* out_quotas,
                                     size_t out_quotas_len, double* out_max_load,
                                     int64_t* out_cross_node_tokens) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    eplb::capi::require_not_null(counts_by_node, "counts_by_node");
    eplb::capi::require_not_null(out_quotas, "out_quotas");
    const auto& p = placement->value;
    const auto& t = p.topology();
    check_gpu_len(t, gpu_weights, gpu_extra_load, gpu_len);
    const std::size_t expected = std::size_t{t.num_physical} * t.num_nodes;
    if (out_quotas_len != expected) {
      eplb::fail_invalid("out_quotas_len (", out_quotas_len,
                         ") must equal num_physical_experts x num_nodes (", expected, ")");
    }
    std::unique_ptr<eplb_split_workspace> temporary;
    if (workspace == nullptr) {
      temporary = std::make_unique<eplb_split_workspace>();
      workspace = temporary.get();
    }
    workspace->quotas.resize(expected);
    const eplb::SplitGpuTerms terms{optional_span(gpu_weights, gpu_len),
                                    optional_span(gpu_extra_load, gpu_len)};
    const auto result = workspace->by_node.solve(p, layer, std::span(counts_by_node, counts_len),
                                                 terms, slack, workspace->quotas);
    std::copy(workspace->quotas.begin(), workspace->quotas.end(), out_quotas);
    if (out_max_load != nullptr) *out_max_load = result.max_load;
    if (out_cross_node_tokens != nullptr) *out_cross_node_tokens = result.cross_node;
  });
}

eplb_status eplb_split_rank_quotas(const eplb_placement* placement, uint32_t layer,
                                   const int32_t* quotas, size_t quotas_len,
                                   const int32_t* rank_counts, size_t rank_counts_len,
                                   uint32_t num_ranks, uint32_t rank, int32_t* out_quotas,
                                   size_t out_quotas_len) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    eplb::capi::require_not_null(quotas, "quotas");
    eplb::capi::require_not_null(rank_counts, "rank_counts");
    eplb::capi::require_not_null(out_quotas, "out_quotas");
    // (rank_quotas writes out_quotas only once every check has passed.)
    eplb::rank_quotas(placement->value, layer, std::span(quotas, quotas_len),
                      std::span(rank_counts, rank_counts_len), num_ranks, rank,
                      std::span(out_quotas, out_quotas_len));
  });
}

eplb_status eplb_shared_expert_waterfill(const eplb_placement* placement, const int32_t* topk_slots,
                                         size_t num_tokens, uint32_t top_k,
                                         const int32_t* source_gpu, const double* gpu_weights,
                                         double* gpu_loads, size_t gpu_len, uint32_t flags,
                                         int32_t* out_topk, size_t out_topk_len) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    if (num_tokens > 0) eplb::capi::require_not_null(topk_slots, "topk_slots");
    eplb::capi::require_not_null(out_topk, "out_topk");
    const auto& t = placement->value.topology();
    if (top_k == 0) eplb::fail_invalid("top_k (0) must be >= 1");
    if ((flags & ~EPLB_WATERFILL_ANY_GPU) != 0) {
      eplb::fail_invalid("flags (", flags, ") has unknown bits");
    }
    check_gpu_len(t, gpu_weights, gpu_loads, gpu_len);
    const std::size_t entries = eplb::checked_mul(num_tokens, top_k, "num_tokens * top_k");
    const std::size_t out_entries =
        eplb::checked_mul(num_tokens, std::size_t{top_k} + 1, "num_tokens * (top_k + 1)");
    if (out_topk_len != out_entries) {
      eplb::fail_invalid("out_topk_len (", out_topk_len, ") must equal num_tokens * (top_k + 1) (",
                         out_entries, ")");
    }
    const auto slots = optional_span(topk_slots, entries);
    std::vector<double> loads(t.num_gpus, 0.0);
    if (gpu_loads != nullptr) {
      std::copy_n(gpu_loads, t.num_gpus, loads.begin());
    } else {
      for (const std::int32_t s : slots) {
        if (s >= 0 && static_cast<std::uint32_t>(s) < t.num_physical) {
          loads[t.gpu_of_slot(static_cast<std::uint32_t>(s))] += 1.0;
        }
      }
    }
    std::vector<std::int32_t> out(out_entries);
    eplb::WaterfillWorkspace workspace;
    workspace.assign(t,
                     eplb::WaterfillInput{slots, top_k, optional_span(source_gpu, num_tokens),
                                          optional_span(gpu_weights, gpu_len),
                                          (flags & EPLB_WATERFILL_ANY_GPU) != 0},
                     loads, out);
    std::copy(out.begin(), out.end(), out_topk);
    if (gpu_loads != nullptr) std::copy(loads.begin(), loads.end(), gpu_loads);
  });
}

}  // extern "C"
