// The workload simulator behind the C API (core/workload_simulator.hpp).
#include <algorithm>
#include <cstddef>
#include <memory>

#include "../../core/topology.hpp"
#include "../../core/workload_simulator.hpp"
#include "eplb/eplb.h"
#include "guard.hpp"
#include "struct_io.hpp"

struct eplb_workload {
  explicit eplb_workload(eplb::WorkloadSimulator s) : value(std::move(s)) {}
  eplb::WorkloadSimulator value;
};

namespace {

eplb_workload_options default_options() {
  const eplb::WorkloadParams p;
  eplb_workload_options o{};
  o.struct_size = sizeof(eplb_workload_options);
  o.num_layers = p.num_layers;
  o.num_experts = p.num_experts;
  o.top_k = p.top_k;
  o.num_groups = p.num_groups;
  o.topk_groups = p.topk_groups;
  o.num_topics = p.num_topics;
  o.topic_experts = p.topic_experts;
  o.sigma_min = p.sigma_min;
  o.sigma_max = p.sigma_max;
  o.topic_zipf = p.topic_zipf;
  o.boost = p.boost;
  o.topic_persistence = p.topic_persistence;
  o.drift_rho = p.drift_rho;
  o.noise_scale = p.noise_scale;
  o.seed = p.seed;
  return o;
}

}  // namespace

extern "C" {

void eplb_workload_options_init(eplb_workload_options* options) {
  if (options != nullptr) *options = default_options();
}

eplb_status eplb_workload_create(const eplb_workload_options* options,
                                 eplb_workload** out_workload) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(options, "options");
    eplb::capi::require_not_null(out_workload, "out_workload");
    const auto o = eplb::capi::read_struct(options, default_options(),
                                           sizeof(eplb_workload_options), "options");
    eplb::WorkloadParams p;
    p.num_layers = o.num_layers;
    p.num_experts = o.num_experts;
    p.top_k = o.top_k;
    p.num_groups = o.num_groups;
    p.topk_groups = o.topk_groups;
    p.num_topics = o.num_topics;
    p.topic_experts = o.topic_experts;
    p.sigma_min = o.sigma_min;
    p.sigma_max = o.sigma_max;
    p.topic_zipf = o.topic_zipf;
    p.boost = o.boost;
    p.topic_persistence = o.topic_persistence;
    p.drift_rho = o.drift_rho;
    p.noise_scale = o.noise_scale;
    p.seed = o.seed;
    *out_workload = std::make_unique<eplb_workload>(eplb::WorkloadSimulator(p)).release();
  });
}

void eplb_workload_destroy(eplb_workload* workload) { delete workload; }  // NOLINT: C handle

eplb_status eplb_workload_next_batch(eplb_workload* workload, size_t num_tokens, int32_t* out,
                                     size_t out_len) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(workload, "workload");
    eplb::capi::require_not_null(out, "out");
    if (num_tokens == 0) eplb::fail_invalid("num_tokens (0) must be at least 1");
    const auto& p = workload->value.params();
    const std::size_t needed =
        eplb::checked_mul(eplb::checked_mul(p.num_layers, num_tokens, "num_layers * num_tokens"),
                          p.top_k, "num_layers * num_tokens * top_k");
    if (out_len < needed) {
      eplb::fail(eplb::Errc::buffer_too_small, "the batch needs ", needed,
                 " ids (num_layers * num_tokens * top_k) but out_len is ", out_len);
    }
    const auto ids = workload->value.next_batch(num_tokens);
    std::copy(ids.begin(), ids.end(), out);
  });
}

}  // extern "C"
