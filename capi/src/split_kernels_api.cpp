// C API: per-batch balancing on the GPU (issue #9): the split tables, eplb_kernel_split_solve and
// eplb_kernel_shared_waterfill with their CPU references. GPU entry points validate host-checkable
// arguments first, then require a device, then check that the arrays are device memory, then
// launch; the _cpu references run the same validation and compute on host memory.
#include <memory>
#include <vector>

#include "../../kernels/device.hpp"
#include "../../kernels/split_kernels.hpp"
#include "guard.hpp"
#include "handles.hpp"

namespace k = eplb::kernels;

struct eplb_split_tables {
  std::vector<std::int32_t> host;  // packed tables (split_solver.hpp)
  k::SplitTableShape shape;
  std::int32_t* device = nullptr;  // device copy, or null with EPLB_SPLIT_TABLES_HOST_ONLY

  eplb_split_tables() = default;
  eplb_split_tables(const eplb_split_tables&) = delete;
  eplb_split_tables& operator=(const eplb_split_tables&) = delete;
  ~eplb_split_tables() {
#if EPLB_HAVE_CUDA
    k::free_split_tables(device);
#endif
  }
};

#if !EPLB_HAVE_CUDA
// The launchers live in split_kernels.cu; a build without CUDA never reaches them
// (require_device() has thrown), but keeps the same code path.
namespace eplb::kernels {
void launch_split_solve(const SplitSolveArgs& /*args*/, void* /*stream*/) { require_device(); }
void launch_shared_waterfill(const WaterfillKernelArgs& /*args*/, void* /*stream*/) {
  require_device();
}
std::int32_t* upload_split_tables(const std::vector<std::int32_t>& /*packed*/, void* /*stream*/) {
  require_device();
  return nullptr;
}
}  // namespace eplb::kernels
#endif

namespace {

k::SplitSolveArgs split_args(const eplb_split_tables* tables, bool on_device, uint32_t layer,
                             const int32_t* counts, const double* gpu_weights,
                             const double* gpu_extra_load, int32_t* out_quotas,
                             double* out_max_load, void* workspace, size_t workspace_bytes) {
  eplb::capi::require_not_null(tables, "tables");
  if (on_device && tables->device == nullptr) {
    eplb::fail_invalid(
        "tables were created with EPLB_SPLIT_TABLES_HOST_ONLY: only "
        "eplb_kernel_split_solve_cpu can use them");
  }
  if (layer > static_cast<uint32_t>(INT32_MAX)) {
    eplb::fail_invalid("layer (", layer, ") is not in the tables' layers");
  }
  k::SplitSolveArgs a;
  a.tables = on_device ? tables->device : tables->host.data();
  a.shape = tables->shape;
  a.layer = static_cast<std::int32_t>(layer);
  a.counts = counts;
  a.gpu_weights = gpu_weights;
  a.gpu_extra = gpu_extra_load;
  a.quotas = out_quotas;
  a.max_load = out_max_load;
  a.workspace = workspace;
  a.workspace_bytes = workspace_bytes;
  k::validate_split_solve(a);
  return a;
}

k::WaterfillKernelArgs waterfill_args(const eplb_placement* placement, const int32_t* topk_slots,
                                      size_t num_tokens, uint32_t top_k, const int32_t* source_gpu,
                                      const double* gpu_weights, const double* gpu_loads,
                                      uint32_t flags, int32_t* out_topk, double* out_gpu_loads,
                                      void* workspace, size_t workspace_bytes) {
  eplb::capi::require_not_null(placement, "placement");
  if ((flags & ~EPLB_WATERFILL_ANY_GPU) != 0) {
    eplb::fail_invalid("flags (", flags, ") has unknown bits");
  }
  if (num_tokens > static_cast<size_t>(INT32_MAX)) {
    eplb::fail_invalid("num_tokens (", num_tokens, ") must be below 2^31");
  }
  const auto& t = placement->value.topology();
  k::WaterfillKernelArgs a;
  a.topk_slots = topk_slots;
  a.num_tokens = static_cast<std::uint32_t>(num_tokens);
  a.top_k = top_k;
  a.source_gpu = source_gpu;
  a.gpu_weights = gpu_weights;
  a.gpu_loads = gpu_loads;
  a.num_physical = t.num_physical;
  a.num_gpus = t.num_gpus;
  a.any_gpu = (flags & EPLB_WATERFILL_ANY_GPU) != 0;
  a.out_topk = out_topk;
  a.out_gpu_loads = out_gpu_loads;
  a.workspace = workspace;
  a.workspace_bytes = workspace_bytes;
  k::validate_shared_waterfill(a);
  return a;
}

}  // namespace

extern "C" {

eplb_status eplb_split_tables_create(const eplb_placement* placement, uint32_t first_layer,
                                     uint32_t num_layers, uint32_t flags, void* stream,
                                     eplb_split_tables** out_tables) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    eplb::capi::require_not_null(out_tables, "out_tables");
    if ((flags & ~EPLB_SPLIT_TABLES_HOST_ONLY) != 0) {
      eplb::fail_invalid("flags (", flags, ") has unknown bits");
    }
    const auto& p = placement->value;
    const auto& t = p.topology();
    if (first_layer >= t.num_layers) {
      eplb::fail_invalid("first_layer (", first_layer, ") must be below num_layers (", t.num_layers,
                         ")");
    }
    const uint32_t count = num_layers == 0 ? t.num_layers - first_layer : num_layers;
    if (count > t.num_layers - first_layer) {
      eplb::fail_invalid("first_layer + num_layers (", std::size_t{first_layer} + num_layers,
                         ") must be at most num_layers (", t.num_layers, ")");
    }
    const bool host_only = (flags & EPLB_SPLIT_TABLES_HOST_ONLY) != 0;
    if (!host_only) k::require_device();
    auto tables = std::make_unique<eplb_split_tables>();
    tables->host = k::build_split_tables(
        p.phy2log().data() + static_cast<std::size_t>(first_layer) * t.num_physical,
        static_cast<std::int32_t>(first_layer), static_cast<std::int32_t>(count),
        static_cast<std::int32_t>(t.num_logical), static_cast<std::int32_t>(t.num_physical),
        static_cast<std::int32_t>(t.num_gpus), tables->shape);
    if (!host_only) tables->device = k::upload_split_tables(tables->host, stream);
    *out_tables = tables.release();
  });
}

void eplb_split_tables_destroy(eplb_split_tables* tables) {
  std::unique_ptr<eplb_split_tables> owned(tables);
}

eplb_status eplb_kernel_split_solve_workspace_size(const eplb_split_tables* tables,
                                                   size_t* out_bytes) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(tables, "tables");
    eplb::capi::require_not_null(out_bytes, "out_bytes");
    *out_bytes = k::split_workspace_bytes(tables->shape);
  });
}

eplb_status eplb_kernel_split_solve(const eplb_split_tables* tables, uint32_t layer,
                                    const int32_t* counts, const double* gpu_weights,
                                    const double* gpu_extra_load, int32_t* out_quotas,
                                    double* out_max_load, void* workspace, size_t workspace_bytes,
                                    void* stream) {
  return eplb::capi::guard([&] {
    const auto args = split_args(tables, true, layer, counts, gpu_weights, gpu_extra_load,
                                 out_quotas, out_max_load, workspace, workspace_bytes);
    k::require_device();
    k::check_split_solve_device_pointers(args);
    k::launch_split_solve(args, stream);
  });
}

eplb_status eplb_kernel_split_solve_cpu(const eplb_split_tables* tables, uint32_t layer,
                                        const int32_t* counts, const double* gpu_weights,
                                        const double* gpu_extra_load, int32_t* out_quotas,
                                        double* out_max_load, void* workspace,
                                        size_t workspace_bytes, void* /*stream*/) {
  return eplb::capi::guard([&] {
    const auto args = split_args(tables, false, layer, counts, gpu_weights, gpu_extra_load,
                                 out_quotas, out_max_load, workspace, workspace_bytes);
    // Results go to scratch first: outputs are written only on success.
    const auto& sh = tables->shape;
    std::vector<std::int32_t> quotas(static_cast<std::size_t>(sh.num_slots));
    double max_load = 0.0;
    auto scratch = args;
    scratch.quotas = quotas.data();
    scratch.max_load = &max_load;
    k::split_solve_cpu(scratch);
    std::copy(quotas.begin(), quotas.end(), out_quotas);
    if (out_max_load != nullptr) *out_max_load = max_load;
  });
}

eplb_status eplb_kernel_shared_waterfill_workspace_size(const eplb_placement* placement,
                                                        size_t num_tokens, size_t* out_bytes) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    eplb::capi::require_not_null(out_bytes, "out_bytes");
    if (num_tokens > static_cast<size_t>(INT32_MAX)) {
      eplb::fail_invalid("num_tokens (", num_tokens, ") must be below 2^31");
    }
    *out_bytes = k::waterfill_workspace_bytes(static_cast<std::uint32_t>(num_tokens),
                                              placement->value.topology().num_gpus);
  });
}

eplb_status eplb_kernel_shared_waterfill(const eplb_placement* placement, const int32_t* topk_slots,
                                         size_t num_tokens, uint32_t top_k,
                                         const int32_t* source_gpu, const double* gpu_weights,
                                         const double* gpu_loads, uint32_t flags, int32_t* out_topk,
                                         double* out_gpu_loads, void* workspace,
                                         size_t workspace_bytes, void* stream) {
  return eplb::capi::guard([&] {
    const auto args =
        waterfill_args(placement, topk_slots, num_tokens, top_k, source_gpu, gpu_weights, gpu_loads,
                       flags, out_topk, out_gpu_loads, workspace, workspace_bytes);
    k::require_device();
    k::check_shared_waterfill_device_pointers(args);
    k::launch_shared_waterfill(args, stream);
  });
}

eplb_status eplb_kernel_shared_waterfill_cpu(const eplb_placement* placement,
                                             const int32_t* topk_slots, size_t num_tokens,
                                             uint32_t top_k, const int32_t* source_gpu,
                                             const double* gpu_weights, const double* gpu_loads,
                                             uint32_t flags, int32_t* out_topk,
                                             double* out_gpu_loads, void* workspace,
                                             size_t workspace_bytes, void* /*stream*/) {
  return eplb::capi::guard([&] {
    const auto args =
        waterfill_args(placement, topk_slots, num_tokens, top_k, source_gpu, gpu_weights, gpu_loads,
                       flags, out_topk, out_gpu_loads, workspace, workspace_bytes);
    // Results go to scratch first: outputs are written only on success.
    std::vector<std::int32_t> topk(num_tokens * (std::size_t{top_k} + 1));
    std::vector<double> loads(args.num_gpus);
    auto scratch = args;
    scratch.out_topk = topk.data();
    scratch.out_gpu_loads = loads.data();
    k::shared_waterfill_cpu(scratch);
    std::copy(topk.begin(), topk.end(), out_topk);
    if (out_gpu_loads != nullptr) std::copy(loads.begin(), loads.end(), out_gpu_loads);
  });
}

}  // extern "C"
