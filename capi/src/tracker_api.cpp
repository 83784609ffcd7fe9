// The tracker section of the C API: thin shims over eplb::Tracker (core/tracker.hpp) and the
// nodes-touched metric (core/traffic.hpp).
#include <algorithm>
#include <memory>
#include <span>

#include "../../core/traffic.hpp"
#include "guard.hpp"
#include "handles.hpp"
#include "struct_io.hpp"

namespace {

constexpr std::size_t kTrackerOptionsV1Size = sizeof(eplb_tracker_options);

eplb_tracker_options default_options() {
  eplb_tracker_options o{};
  o.struct_size = sizeof(o);
  o.window = EPLB_WINDOW_CUMULATIVE;
  o.window_batches = 64;
  o.decay = 0.99;
  o.reservoir_capacity = 4096;
  return o;
}

// NULL is allowed for an empty array.
template <typename T>
std::span<const T> input(const T* data, std::size_t count, std::size_t width, const char* name) {
  if (data == nullptr && count > 0) eplb::fail_invalid(name, " is NULL");
  if (data == nullptr) return {};
  return std::span<const T>(data, eplb::checked_mul(count, width, name));
}

}  // namespace

extern "C" {

void eplb_tracker_options_init(eplb_tracker_options* options) {
  if (options != nullptr) *options = default_options();
}

eplb_status eplb_tracker_create(const eplb_tracker_options* options, eplb_tracker** out_tracker) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(options, "options");
    eplb::capi::require_not_null(out_tracker, "out_tracker");
    const auto o =
        eplb::capi::read_struct(options, default_options(), kTrackerOptionsV1Size, "options");
    if (o.reserved0 != 0) eplb::fail_invalid("options->reserved0 (", o.reserved0, ") must be 0");
    eplb::TrackerOptions t;
    t.num_layers = o.num_layers;
    t.num_experts = o.num_logical_experts;
    t.top_k = o.top_k;
    t.window = static_cast<eplb::TrackerWindow>(o.window);
    t.window_batches = o.window_batches;
    t.decay = o.decay;
    t.reservoir_capacity = o.reservoir_capacity;
    t.seed = o.seed;
    *out_tracker = std::make_unique<eplb_tracker>(eplb::Tracker(t)).release();
  });
}

void eplb_tracker_destroy(eplb_tracker* tracker) { delete tracker; }  // NOLINT: owning C handle

eplb_status eplb_tracker_clone(const eplb_tracker* tracker, eplb_tracker** out_tracker) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(tracker, "tracker");
    eplb::capi::require_not_null(out_tracker, "out_tracker");
    *out_tracker = std::make_unique<eplb_tracker>(eplb::Tracker(tracker->value)).release();
  });
}

eplb_status eplb_tracker_record(eplb_tracker* tracker, uint32_t layer, const int32_t* topk_ids,
                                size_t num_tokens, uint32_t top_k) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(tracker, "tracker");
    if (top_k == 0) eplb::fail_invalid("top_k (0) must be at least 1");
    tracker->value.record(layer, input(topk_ids, num_tokens, top_k, "topk_ids"), num_tokens, top_k);
  });
}

eplb_status eplb_tracker_record_physical(eplb_tracker* tracker, const eplb_placement* placement,
                                         uint32_t layer, const int32_t* topk_ids, size_t num_tokens,
                                         uint32_t top_k) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(tracker, "tracker");
    eplb::capi::require_not_null(placement, "placement");
    if (top_k == 0) eplb::fail_invalid("top_k (0) must be at least 1");
    tracker->value.record_physical(
        placement->value, layer, input(topk_ids, num_tokens, top_k, "topk_ids"), num_tokens, top_k);
  });
}

eplb_status eplb_tracker_merge(eplb_tracker* dst, const eplb_tracker* src) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(dst, "dst");
    eplb::capi::require_not_null(src, "src");
    dst->value.merge(src->value);
  });
}

eplb_status eplb_tracker_reset(eplb_tracker* tracker) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(tracker, "tracker");
    tracker->value.reset();
  });
}

eplb_status eplb_tracker_get_loads(const eplb_tracker* tracker, double* out, size_t out_len) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(tracker, "tracker");
    eplb::capi::require_not_null(out, "out");
    const auto& o = tracker->value.options();
    const std::size_t needed = static_cast<std::size_t>(o.num_layers) * o.num_experts;
    if (out_len < needed) {
      eplb::fail(eplb::Errc::buffer_too_small, "loads need ", needed,
                 " elements (num_layers * num_logical_experts) but out_len is ", out_len);
    }
    tracker->value.loads(std::span(out, needed));
  });
}

eplb_status eplb_tracker_get_coactivation(const eplb_tracker* tracker, uint32_t layer, double* out,
                                          size_t out_len) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(tracker, "tracker");
    eplb::capi::require_not_null(out, "out");
    const auto& o = tracker->value.options();
    if (layer >= o.num_layers) {
      eplb::fail_invalid("layer (", layer, ") must be below num_layers (", o.num_layers, ")");
    }
    const std::size_t needed = eplb::pair_count(o.num_experts);
    if (out_len < needed) {
      eplb::fail(eplb::Errc::buffer_too_small, "co-activation needs ", needed,
                 " elements (E*(E-1)/2) but out_len is ", out_len);
    }
    tracker->value.coactivation(layer, std::span(out, needed));
  });
}

eplb_status eplb_tracker_get_samples(const eplb_tracker* tracker, uint32_t layer, int32_t* out,
                                     size_t out_len, size_t* out_rows) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(tracker, "tracker");
    eplb::capi::require_not_null(out_rows, "out_rows");
    if (out == nullptr && out_len > 0) eplb::fail_invalid("out is NULL but out_len is ", out_len);
    const auto& o = tracker->value.options();
    if (layer >= o.num_layers) {
      eplb::fail_invalid("layer (", layer, ") must be below num_layers (", o.num_layers, ")");
    }
    const auto samples = tracker->value.samples(layer);
    if (out != nullptr || out_len > 0) {
      if (out_len < samples.size()) {
        eplb::fail(eplb::Errc::buffer_too_small, "samples need ", samples.size(), " elements (",
                   samples.size() / o.top_k, " rows * top_k ", o.top_k, ") but out_len is ",
                   out_len);
      }
      std::copy(samples.begin(), samples.end(), out);
    }
    *out_rows = samples.size() / o.top_k;
  });
}

eplb_status eplb_tracker_get_options(const eplb_tracker* tracker,
                                     eplb_tracker_options* out_options) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(tracker, "tracker");
    eplb::capi::require_not_null(out_options, "out_options");
    const eplb::TrackerOptions& t = tracker->value.options();
    eplb_tracker_options o = default_options();
    o.num_layers = t.num_layers;
    o.num_logical_experts = t.num_experts;
    o.top_k = t.top_k;
    o.window = static_cast<uint32_t>(t.window);
    o.window_batches = t.window_batches;
    o.decay = t.decay;
    o.reservoir_capacity = t.reservoir_capacity;
    o.reserved0 = 0;
    o.seed = t.seed;
    eplb::capi::write_struct(out_options, o, kTrackerOptionsV1Size, "out_options");
  });
}

eplb_status eplb_tracker_get_layer_counts(const eplb_tracker* tracker, uint32_t layer,
                                          uint64_t* out_batches, uint64_t* out_tokens) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(tracker, "tracker");
    const auto& o = tracker->value.options();
    if (layer >= o.num_layers) {
      eplb::fail_invalid("layer (", layer, ") must be below num_layers (", o.num_layers, ")");
    }
    if (out_batches != nullptr) *out_batches = tracker->value.batches(layer);
    if (out_tokens != nullptr) *out_tokens = tracker->value.tokens_seen(layer);
  });
}

eplb_status eplb_metrics_nodes_touched(const eplb_placement* placement, uint32_t layer,
                                       const int32_t* rows, size_t num_rows, uint32_t top_k,
                                       double* out_mean) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    eplb::capi::require_not_null(out_mean, "out_mean");
    if (top_k == 0) eplb::fail_invalid("top_k (0) must be at least 1");
    const auto summary = eplb::nodes_touched(placement->value, layer,
                                             input(rows, num_rows, top_k, "rows"), num_rows, top_k);
    *out_mean = summary.mean;
  });
}

}  // extern "C"
