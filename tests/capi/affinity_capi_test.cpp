// The C API of affinity-aware planning (eplb_planner_plan_tracked) and of the workload
// simulator: results checked against the balance-only plan and the traffic metric, and every
// error path.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "eplb/eplb.h"

namespace {

constexpr std::uint32_t kLayers = 3, kExperts = 64, kTopK = 4, kSlots = 80, kNodes = 4, kGpus = 16;
constexpr std::size_t kTokens = 2048;

struct Handles {
  eplb_workload* workload = nullptr;
  eplb_tracker* tracker = nullptr;
  ~Handles() {
    eplb_workload_destroy(workload);
    eplb_tracker_destroy(tracker);
  }
};

std::vector<std::int32_t> batch(eplb_workload* w, std::size_t tokens) {
  std::vector<std::int32_t> ids(std::size_t{kLayers} * tokens * kTopK);
  EXPECT_EQ(eplb_workload_next_batch(w, tokens, ids.data(), ids.size()), EPLB_OK)
      << eplb_last_error_message();
  return ids;
}

void make(Handles& h, std::uint32_t reservoir = 2048) {
  eplb_workload_options wo;
  eplb_workload_options_init(&wo);
  wo.num_layers = kLayers;
  wo.num_experts = kExperts;
  wo.top_k = kTopK;
  wo.num_topics = 8;
  wo.boost = 2.0;
  wo.seed = 17;
  ASSERT_EQ(eplb_workload_create(&wo, &h.workload), EPLB_OK) << eplb_last_error_message();
  eplb_tracker_options to;
  eplb_tracker_options_init(&to);
  to.num_layers = kLayers;
  to.num_logical_experts = kExperts;
  to.top_k = kTopK;
  to.reservoir_capacity = reservoir;
  ASSERT_EQ(eplb_tracker_create(&to, &h.tracker), EPLB_OK) << eplb_last_error_message();
  const auto ids = batch(h.workload, kTokens);
  for (std::uint32_t l = 0; l < kLayers; ++l) {
    ASSERT_EQ(eplb_tracker_record(h.tracker, l, ids.data() + std::size_t{l} * kTokens * kTopK,
                                  kTokens, kTopK),
              EPLB_OK)
        << eplb_last_error_message();
  }
}

eplb_planner_options options(std::uint32_t affinity) {
  eplb_planner_options o;
  eplb_planner_options_init(&o);
  o.algorithm = EPLB_ALGORITHM_BALANCED;
  o.num_layers = kLayers;
  o.num_logical_experts = kExperts;
  o.num_physical_experts = kSlots;
  o.num_nodes = kNodes;
  o.num_gpus = kGpus;
  o.affinity = affinity;
  return o;
}

eplb_placement* plan_tracked(const eplb_planner_options& o, const eplb_tracker* tracker) {
  eplb_planner* planner = nullptr;
  EXPECT_EQ(eplb_planner_create(&o, &planner), EPLB_OK) << eplb_last_error_message();
  eplb_placement* placement = nullptr;
  EXPECT_EQ(eplb_planner_plan_tracked(planner, nullptr, 0, tracker, &placement), EPLB_OK)
      << eplb_last_error_message();
  eplb_planner_destroy(planner);
  return placement;
}

double nodes_touched(const eplb_placement* p, const eplb_tracker* t) {
  double sum = 0;
  for (std::uint32_t l = 0; l < kLayers; ++l) {
    std::vector<std::int32_t> rows(std::size_t{2048} * kTopK);
    std::size_t n = 0;
    EXPECT_EQ(eplb_tracker_get_samples(t, l, rows.data(), rows.size(), &n), EPLB_OK);
    double mean = 0;
    EXPECT_EQ(eplb_metrics_nodes_touched(p, l, rows.data(), n, kTopK, &mean), EPLB_OK);
    sum += mean;
  }
  return sum / kLayers;
}

TEST(AffinityCapi, LowersNodesTouchedWithinTheBalanceBound) {
  Handles h;
  make(h);
  eplb_placement* base = plan_tracked(options(0), h.tracker);
  eplb_placement* improved = plan_tracked(options(1), h.tracker);
  ASSERT_NE(base, nullptr);
  ASSERT_NE(improved, nullptr);
  EXPECT_LT(nodes_touched(improved, h.tracker), nodes_touched(base, h.tracker) * 0.95);
  std::vector<double> loads(std::size_t{kLayers} * kExperts);
  ASSERT_EQ(eplb_tracker_get_loads(h.tracker, loads.data(), loads.size()), EPLB_OK);
  eplb_metrics mb{}, mi{};
  mb.struct_size = mi.struct_size = sizeof(eplb_metrics);
  ASSERT_EQ(eplb_metrics_compute(base, loads.data(), loads.size(), &mb), EPLB_OK);
  ASSERT_EQ(eplb_metrics_compute(improved, loads.data(), loads.size(), &mi), EPLB_OK);
  EXPECT_GE(mi.min_balancedness, 0.0);
  EXPECT_EQ(mi.duplicate_pairs, 0U);
  std::vector<std::int32_t> cb(std::size_t{kLayers} * kExperts), ci(cb.size());
  ASSERT_EQ(eplb_placement_get_replica_counts(base, cb.data(), cb.size()), EPLB_OK);
  ASSERT_EQ(eplb_placement_get_replica_counts(improved, ci.data(), ci.size()), EPLB_OK);
  EXPECT_EQ(cb, ci);
  // Per layer: the busiest GPU stays within 1 / 0.99 of the balance-only plan's.
  for (std::uint32_t l = 0; l < kLayers; ++l) {
    eplb_layer_metrics lb{}, li{};
    lb.struct_size = li.struct_size = sizeof(eplb_layer_metrics);
    const double* layer_loads = loads.data() + std::size_t{l} * kExperts;
    ASSERT_EQ(eplb_metrics_compute_layer(base, l, layer_loads, kExperts, &lb), EPLB_OK);
    ASSERT_EQ(eplb_metrics_compute_layer(improved, l, layer_loads, kExperts, &li), EPLB_OK);
    EXPECT_LE(li.max_gpu_load, lb.max_gpu_load / 0.99 * (1 + 1e-9)) << "layer " << l;
  }
  eplb_placement_destroy(base);
  eplb_placement_destroy(improved);
}

TEST(AffinityCapi, WithoutAffinityEqualsPlan) {
  Handles h;
  make(h);
  eplb_placement* tracked = plan_tracked(options(0), h.tracker);
  std::vector<double> loads(std::size_t{kLayers} * kExperts);
  ASSERT_EQ(eplb_tracker_get_loads(h.tracker, loads.data(), loads.size()), EPLB_OK);
  const auto o = options(0);
  eplb_planner* planner = nullptr;
  ASSERT_EQ(eplb_planner_create(&o, &planner), EPLB_OK);
  eplb_placement* planned = nullptr;
  ASSERT_EQ(eplb_planner_plan(planner, loads.data(), loads.size(), &planned), EPLB_OK);
  std::vector<std::int32_t> a(std::size_t{kLayers} * kSlots), b(a.size());
  ASSERT_EQ(eplb_placement_get_phy2log(tracked, a.data(), a.size()), EPLB_OK);
  ASSERT_EQ(eplb_placement_get_phy2log(planned, b.data(), b.size()), EPLB_OK);
  EXPECT_EQ(a, b);
  eplb_placement_destroy(tracked);
  eplb_placement_destroy(planned);
  eplb_planner_destroy(planner);
}

TEST(AffinityCapi, Errors) {
  Handles h;
  make(h);
  eplb_planner* planner = nullptr;
  auto o = options(1);
  ASSERT_EQ(eplb_planner_create(&o, &planner), EPLB_OK);
  eplb_placement* p = nullptr;
  std::vector<double> loads(std::size_t{kLayers} * kExperts, 1.0);
  // plan() refuses affinity.
  EXPECT_EQ(eplb_planner_plan(planner, loads.data(), loads.size(), &p), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("eplb_planner_plan_tracked"),
            std::string::npos);
  EXPECT_EQ(eplb_planner_plan_tracked(planner, nullptr, 0, nullptr, &p), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("tracker"), std::string::npos);
  EXPECT_EQ(eplb_planner_plan_tracked(planner, nullptr, 5, h.tracker, &p),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(eplb_planner_plan_tracked(planner, loads.data(), 7, h.tracker, &p),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(eplb_planner_plan_tracked(planner, nullptr, 0, h.tracker, nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(p, nullptr);
  eplb_planner_destroy(planner);
  // A tracker of another shape.
  eplb_tracker_options to;
  eplb_tracker_options_init(&to);
  to.num_layers = kLayers + 1;
  to.num_logical_experts = kExperts;
  to.top_k = kTopK;
  to.reservoir_capacity = 16;
  eplb_tracker* other = nullptr;
  ASSERT_EQ(eplb_tracker_create(&to, &other), EPLB_OK);
  ASSERT_EQ(eplb_planner_create(&o, &planner), EPLB_OK);
  EXPECT_EQ(eplb_planner_plan_tracked(planner, nullptr, 0, other, &p), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("shape"), std::string::npos);
  eplb_tracker_destroy(other);
  // A tracker without samples.
  Handles none;
  make(none, 0);
  EXPECT_EQ(eplb_planner_plan_tracked(planner, nullptr, 0, none.tracker, &p),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("reservoir_capacity"), std::string::npos);
  eplb_planner_destroy(planner);
  // Bad options.
  o.affinity = 2;
  EXPECT_EQ(eplb_planner_create(&o, &planner), EPLB_ERR_INVALID_ARGUMENT);
  o.affinity = 1;
  o.affinity_min_balance = 0.0;
  EXPECT_EQ(eplb_planner_create(&o, &planner), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("affinity_min_balance"), std::string::npos);
}

// A caller built against 0.1 passes the smaller struct: affinity stays off.
TEST(AffinityCapi, OldOptionsStructDefaultsAffinityOff) {
  auto o = options(1);
  o.struct_size = offsetof(eplb_planner_options, affinity);
  eplb_planner* planner = nullptr;
  ASSERT_EQ(eplb_planner_create(&o, &planner), EPLB_OK) << eplb_last_error_message();
  std::vector<double> loads(std::size_t{kLayers} * kExperts, 1.0);
  eplb_placement* p = nullptr;
  EXPECT_EQ(eplb_planner_plan(planner, loads.data(), loads.size(), &p), EPLB_OK);
  eplb_placement_destroy(p);
  eplb_planner_destroy(planner);
}

TEST(WorkloadCapi, DeterministicAndValidated) {
  Handles a, b;
  make(a);
  make(b);
  EXPECT_EQ(batch(a.workload, 64), batch(b.workload, 64));
  const auto ids = batch(a.workload, 32);
  for (const std::int32_t id : ids) {
    ASSERT_GE(id, 0);
    ASSERT_LT(id, static_cast<std::int32_t>(kExperts));
  }
  std::vector<std::int32_t> small(10);
  EXPECT_EQ(eplb_workload_next_batch(a.workload, 64, small.data(), small.size()),
            EPLB_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(eplb_workload_next_batch(a.workload, 0, small.data(), small.size()),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(eplb_workload_next_batch(nullptr, 1, small.data(), small.size()),
            EPLB_ERR_INVALID_ARGUMENT);
  eplb_workload_options wo;
  eplb_workload_options_init(&wo);
  wo.top_k = 0;
  eplb_workload* w = nullptr;
  EXPECT_EQ(eplb_workload_create(&wo, &w), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("top_k"), std::string::npos);
  EXPECT_EQ(eplb_workload_create(nullptr, &w), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(w, nullptr);
}

}  // namespace
