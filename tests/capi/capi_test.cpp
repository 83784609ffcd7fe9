// Behaviour of libeplb through its C ABI only: this file includes nothing from the library but
// "eplb/eplb.h" and links only libeplb.so. Expected values are either published (the DeepSeek
// README example) or recomputed here from first principles, independently of the library.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "eplb/eplb.h"
#include "support/capi_placement.hpp"

namespace {

// ----------------------------------------------------------------------------------------------
// Small RAII wrappers and helpers over the C API.
// ----------------------------------------------------------------------------------------------

using eplb::test::info_of;
using eplb::test::phy2log_of;
using eplb::test::PlacementPtr;

struct PlannerDeleter {
  void operator()(eplb_planner* p) const { eplb_planner_destroy(p); }
};
using PlannerPtr = std::unique_ptr<eplb_planner, PlannerDeleter>;

struct Shape {
  uint32_t layers = 1;
  uint32_t experts = 1;
  uint32_t physical = 1;
  uint32_t groups = 1;
  uint32_t nodes = 1;
  uint32_t gpus = 1;
  uint32_t algorithm = EPLB_ALGORITHM_DEFAULT;
};

eplb_planner_options options_for(const Shape& s) {
  eplb_planner_options o;
  eplb_planner_options_init(&o);
  o.algorithm = s.algorithm;
  o.num_layers = s.layers;
  o.num_logical_experts = s.experts;
  o.num_physical_experts = s.physical;
  o.num_groups = s.groups;
  o.num_nodes = s.nodes;
  o.num_gpus = s.gpus;
  return o;
}

PlannerPtr make_planner(const Shape& s) {
  const eplb_planner_options o = options_for(s);
  eplb_planner* raw = nullptr;
  const eplb_status st = eplb_planner_create(&o, &raw);
  EXPECT_EQ(st, EPLB_OK) << eplb_last_error_message();
  return PlannerPtr(raw);
}

PlacementPtr plan(eplb_planner* planner, const std::vector<double>& loads) {
  eplb_placement* raw = nullptr;
  const eplb_status st = eplb_planner_plan(planner, loads.data(), loads.size(), &raw);
  EXPECT_EQ(st, EPLB_OK) << eplb_last_error_message();
  return PlacementPtr(raw);
}

std::vector<int32_t> counts_of(const eplb_placement* p) {
  const eplb_placement_info info = info_of(p);
  std::vector<int32_t> out(static_cast<size_t>(info.num_layers) * info.num_logical_experts);
  EXPECT_EQ(eplb_placement_get_replica_counts(p, out.data(), out.size()), EPLB_OK);
  return out;
}

std::vector<int32_t> log2phy_of(const eplb_placement* p) {
  const eplb_placement_info info = info_of(p);
  std::vector<int32_t> out(static_cast<size_t>(info.num_layers) * info.num_logical_experts *
                           info.log2phy_width);
  EXPECT_EQ(eplb_placement_get_log2phy(p, out.data(), out.size()), EPLB_OK);
  return out;
}

std::vector<double> gpu_loads_of(const eplb_placement* p, const std::vector<double>& loads) {
  const eplb_placement_info info = info_of(p);
  std::vector<double> out(static_cast<size_t>(info.num_layers) * info.num_gpus, -1.0);
  EXPECT_EQ(eplb_metrics_gpu_loads(p, loads.data(), loads.size(), out.data(), out.size()), EPLB_OK)
      << eplb_last_error_message();
  return out;
}

eplb_metrics metrics_of(const eplb_placement* p, const std::vector<double>& loads) {
  eplb_metrics m;
  std::memset(&m, 0, sizeof(m));
  m.struct_size = sizeof(m);
  EXPECT_EQ(eplb_metrics_compute(p, loads.data(), loads.size(), &m), EPLB_OK)
      << eplb_last_error_message();
  return m;
}

eplb_layer_metrics layer_metrics_of(const eplb_placement* p, uint32_t layer,
                                    const double* layer_loads, size_t len) {
  eplb_layer_metrics m;
  std::memset(&m, 0, sizeof(m));
  m.struct_size = sizeof(m);
  EXPECT_EQ(eplb_metrics_compute_layer(p, layer, layer_loads, len, &m), EPLB_OK)
      << eplb_last_error_message();
  return m;
}

// ----------------------------------------------------------------------------------------------
// An independent model of the metrics, straight from the definitions in eplb.h.
// ----------------------------------------------------------------------------------------------

struct RefLayer {
  std::vector<double> gpu_loads;
  double total = 0;
  double mean = 0;
  double max_gpu = 0;
  double balancedness = 1;
  double node_balancedness = 1;
  double bound = 0;
  double over_bound = 1;
  uint32_t duplicate_gpus = 0;
  uint32_t max_replicas = 0;
};

// The smallest T such that every expert fits with count_e = min{c >= 1 : w_e / c <= T},
// count_e <= gpus and sum(count_e) <= R, searched over all candidate values w_e / c.
double brute_force_min_max_per_replica(const double* w, uint32_t experts, uint32_t physical,
                                       uint32_t gpus) {
  std::vector<double> candidates{0.0};
  for (uint32_t e = 0; e < experts; ++e) {
    for (uint32_t c = 1; c <= gpus; ++c) candidates.push_back(w[e] / c);
  }
  std::sort(candidates.begin(), candidates.end());
  for (double t : candidates) {
    uint64_t slots = 0;
    bool ok = true;
    for (uint32_t e = 0; e < experts && ok; ++e) {
      uint32_t c = 1;
      while (c <= gpus && w[e] / c > t) ++c;
      if (c > gpus) ok = false;
      slots += c;
    }
    if (ok && slots <= physical) return t;
  }
  ADD_FAILURE() << "no feasible candidate";
  return 0;
}

RefLayer reference_layer(const int32_t* phy2log_row, const double* w, uint32_t experts,
                         uint32_t physical, uint32_t nodes, uint32_t gpus) {
  RefLayer r;
  const uint32_t per_gpu = physical / gpus;
  const uint32_t gpus_per_node = gpus / nodes;
  std::vector<int> count(experts, 0);
  for (uint32_t s = 0; s < physical; ++s) ++count[static_cast<size_t>(phy2log_row[s])];
  r.gpu_loads.assign(gpus, 0.0);
  for (uint32_t s = 0; s < physical; ++s) {
    const auto e = static_cast<size_t>(phy2log_row[s]);
    r.gpu_loads[s / per_gpu] += w[e] / count[e];
  }
  for (uint32_t e = 0; e < experts; ++e) r.total += w[e];
  r.mean = r.total / gpus;
  r.max_gpu = *std::max_element(r.gpu_loads.begin(), r.gpu_loads.end());
  r.balancedness = r.max_gpu > 0 ? r.mean / r.max_gpu : 1.0;
  std::vector<double> node_loads(nodes, 0.0);
  for (uint32_t g = 0; g < gpus; ++g) node_loads[g / gpus_per_node] += r.gpu_loads[g];
  const double node_max = *std::max_element(node_loads.begin(), node_loads.end());
  r.node_balancedness = node_max > 0 ? (r.total / nodes) / node_max : 1.0;
  r.bound = std::max(r.mean, brute_force_min_max_per_replica(w, experts, physical, gpus));
  r.over_bound = r.bound > 0 ? r.max_gpu / r.bound : 1.0;
  for (uint32_t g = 0; g < gpus; ++g) {
    std::set<int32_t> seen;
    bool dup = false;
    for (uint32_t k = 0; k < per_gpu; ++k)
      dup = !seen.insert(phy2log_row[g * per_gpu + k]).second || dup;
    r.duplicate_gpus += dup ? 1U : 0U;
  }
  r.max_replicas = static_cast<uint32_t>(*std::max_element(count.begin(), count.end()));
  return r;
}

void expect_close(double actual, double expected, const char* what) {
  EXPECT_NEAR(actual, expected, 1e-12 * std::max(1.0, std::fabs(expected))) << what;
}

// Checks eplb_metrics_compute, eplb_metrics_compute_layer and eplb_metrics_gpu_loads of `p` under
// `loads` against the reference model.
void check_metrics_against_reference(const eplb_placement* p, const std::vector<double>& loads) {
  const eplb_placement_info info = info_of(p);
  const uint32_t E = info.num_logical_experts;
  const uint32_t R = info.num_physical_experts;
  const std::vector<int32_t> map = phy2log_of(p);
  const std::vector<double> gpu = gpu_loads_of(p, loads);
  const eplb_metrics all = metrics_of(p, loads);

  double bal = 0, node_bal = 0, over_bound = 0, over_mean = 0;
  double min_bal = 1, worst_over_bound = 1;
  const bool any_load = std::any_of(loads.begin(), loads.end(), [](double w) { return w > 0; });
  uint32_t counted = 0;  // layers in the aggregates: those with load, or all when none has any
  uint64_t dup_pairs = 0;
  uint32_t max_rep = 0;
  for (uint32_t layer = 0; layer < info.num_layers; ++layer) {
    const double* w = loads.data() + static_cast<size_t>(layer) * E;
    const RefLayer r = reference_layer(map.data() + static_cast<size_t>(layer) * R, w, E, R,
                                       info.num_nodes, info.num_gpus);
    for (uint32_t g = 0; g < info.num_gpus; ++g) {
      expect_close(gpu[static_cast<size_t>(layer) * info.num_gpus + g], r.gpu_loads[g], "gpu load");
    }
    const eplb_layer_metrics m = layer_metrics_of(p, layer, w, E);
    EXPECT_EQ(m.struct_size, sizeof(eplb_layer_metrics));
    {
      // Independent count of replicas off their expert's main node, and the node bound.
      const int32_t* row = map.data() + static_cast<size_t>(layer) * R;
      const uint32_t slots_per_node = R / info.num_nodes;
      uint32_t off_main = 0;
      for (uint32_t e = 0; e < E; ++e) {
        std::vector<uint32_t> on(info.num_nodes, 0);
        uint32_t total = 0;
        for (uint32_t s = 0; s < R; ++s) {
          if (row[s] == static_cast<int32_t>(e)) {
            ++on[s / slots_per_node];
            ++total;
          }
        }
        off_main += total - *std::max_element(on.begin(), on.end());
      }
      EXPECT_EQ(m.cross_node_replicas, off_main) << "layer " << layer;
      double busiest_node = 0;
      const uint32_t gpus_per_node = info.num_gpus / info.num_nodes;
      for (uint32_t n = 0; n < info.num_nodes; ++n) {
        double node = 0;
        for (uint32_t g = 0; g < gpus_per_node; ++g) node += r.gpu_loads[n * gpus_per_node + g];
        busiest_node = std::max(busiest_node, node);
      }
      expect_close(m.node_bound, busiest_node / gpus_per_node, "node_bound");
    }
    EXPECT_EQ(m.duplicate_gpus, r.duplicate_gpus) << "layer " << layer;
    EXPECT_EQ(m.max_replicas, r.max_replicas) << "layer " << layer;
    expect_close(m.total_load, r.total, "total_load");
    expect_close(m.mean_gpu_load, r.mean, "mean_gpu_load");
    expect_close(m.max_gpu_load, r.max_gpu, "max_gpu_load");
    expect_close(m.lower_bound, r.bound, "lower_bound");
    expect_close(m.balancedness, r.balancedness, "balancedness");
    expect_close(m.node_balancedness, r.node_balancedness, "node_balancedness");
    expect_close(m.max_load_over_bound, r.over_bound, "max_load_over_bound");
    // Bound sanity: never above what this placement achieves, never below the mean.
    EXPECT_LE(m.lower_bound, m.max_gpu_load * (1 + 1e-12));
    EXPECT_GE(m.lower_bound, m.mean_gpu_load * (1 - 1e-12));
    EXPECT_GT(m.balancedness, 0.0);
    EXPECT_LE(m.balancedness, 1.0 + 1e-12);
    EXPECT_GE(m.max_load_over_bound, 1.0 - 1e-12);

    if (r.total <= 0 && any_load) continue;  // eplb_metrics leaves layers without load out
    ++counted;
    bal += r.balancedness;
    node_bal += r.node_balancedness;
    over_bound += r.over_bound;
    over_mean += r.mean > 0 ? r.max_gpu / r.mean : 1.0;
    min_bal = std::min(min_bal, r.balancedness);
    worst_over_bound = std::max(worst_over_bound, r.over_bound);
    dup_pairs += r.duplicate_gpus;
    max_rep = std::max(max_rep, r.max_replicas);
  }
  const double n = counted;
  EXPECT_EQ(all.struct_size, sizeof(eplb_metrics));
  EXPECT_EQ(all.num_layers, info.num_layers);
  EXPECT_EQ(all.loaded_layers, any_load ? counted : 0U);
  EXPECT_EQ(all.max_replicas, max_rep);
  if (counted == info.num_layers) {
    EXPECT_EQ(all.max_replicas, info.log2phy_width);
  }
  EXPECT_EQ(all.duplicate_pairs, dup_pairs);
  expect_close(all.balancedness, bal / n, "balancedness");
  expect_close(all.min_balancedness, min_bal, "min_balancedness");
  expect_close(all.node_balancedness, node_bal / n, "node_balancedness");
  expect_close(all.max_load_over_bound, over_bound / n, "max_load_over_bound");
  expect_close(all.worst_max_load_over_bound, worst_over_bound, "worst_max_load_over_bound");
  expect_close(all.max_over_mean, over_mean / n, "max_over_mean");
}

// Structural invariants of any placement: counts, phy2log and log2phy agree.
void check_structure(const eplb_placement* p) {
  const eplb_placement_info info = info_of(p);
  const uint32_t E = info.num_logical_experts;
  const uint32_t R = info.num_physical_experts;
  const uint32_t X = info.log2phy_width;
  EXPECT_EQ(info.slots_per_gpu, R / info.num_gpus);
  EXPECT_EQ(info.reserved0, 0U);
  const std::vector<int32_t> map = phy2log_of(p);
  const std::vector<int32_t> counts = counts_of(p);
  const std::vector<int32_t> l2p = log2phy_of(p);
  int32_t widest = 0;
  for (uint32_t layer = 0; layer < info.num_layers; ++layer) {
    std::vector<int32_t> recount(E, 0);
    for (uint32_t s = 0; s < R; ++s) {
      const int32_t e = map[static_cast<size_t>(layer) * R + s];
      ASSERT_GE(e, 0);
      ASSERT_LT(e, static_cast<int32_t>(E));
      ++recount[static_cast<size_t>(e)];
    }
    int64_t sum = 0;
    for (uint32_t e = 0; e < E; ++e) {
      const int32_t c = counts[static_cast<size_t>(layer) * E + e];
      EXPECT_GE(c, 1) << "layer " << layer << " expert " << e;
      EXPECT_EQ(c, recount[e]) << "layer " << layer << " expert " << e;
      sum += c;
      widest = std::max(widest, c);
      std::set<int32_t> slots;
      for (uint32_t k = 0; k < X; ++k) {
        const int32_t slot = l2p[(static_cast<size_t>(layer) * E + e) * X + k];
        if (static_cast<int32_t>(k) < c) {
          ASSERT_GE(slot, 0);
          ASSERT_LT(slot, static_cast<int32_t>(R));
          EXPECT_EQ(map[static_cast<size_t>(layer) * R + static_cast<uint32_t>(slot)],
                    static_cast<int32_t>(e));
          EXPECT_TRUE(slots.insert(slot).second) << "slot listed twice";
        } else {
          EXPECT_EQ(slot, -1);
        }
      }
    }
    EXPECT_EQ(sum, static_cast<int64_t>(R)) << "layer " << layer;
  }
  EXPECT_EQ(static_cast<uint32_t>(widest), X);
}

// ----------------------------------------------------------------------------------------------
// The DeepSeek README example (deepseek-ai/EPLB).
// ----------------------------------------------------------------------------------------------

const std::vector<double> kReadmeLoads = {
    90, 132, 40,  61, 104, 165, 39,  4,   73,  56, 183, 86,  //
    20, 107, 104, 64, 19,  197, 187, 157, 172, 86, 16,  27};

Shape readme_shape(uint32_t algorithm = EPLB_ALGORITHM_DEEPSEEK) {
  Shape s;
  s.layers = 2;
  s.experts = 12;
  s.physical = 16;
  s.groups = 4;
  s.nodes = 2;
  s.gpus = 8;
  s.algorithm = algorithm;
  return s;
}

const std::vector<int32_t> kReadmePhy2log = {5, 6,  5, 7, 8, 4,  3, 4, 10, 9, 10, 2, 0, 1, 11, 1,
                                             7, 10, 6, 8, 6, 11, 8, 9, 2,  4, 5,  1, 5, 0, 3,  1};
const std::vector<int32_t> kReadmeCounts = {1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1,
                                            1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1};
const std::vector<int32_t> kReadmeLog2phy = {
    12, -1, 15, 13, 11, -1, 6,  -1, 7, 5,  0,  2,  1, -1, 3, -1, 4, -1, 9, -1, 8, 10, 14, -1,
    13, -1, 15, 11, 8,  -1, 14, -1, 9, -1, 10, 12, 2, 4,  0, -1, 6, 3,  7, -1, 1, -1, 5,  -1};
const std::vector<double> kReadmeGpuLoads = {121.5, 86.5,  125.0, 113.0, 147.5, 131.5,
                                             156.0, 152.0, 173.0, 179.5, 120.5, 172.0,
                                             123.0, 152.0, 118.5, 117.5};

// The concrete algorithm EPLB_ALGORITHM_DEFAULT stands for in the loaded library, as reported by
// the placement it makes.
uint32_t resolved_default_algorithm() {
  const PlannerPtr planner = make_planner(readme_shape(EPLB_ALGORITHM_DEFAULT));
  if (planner == nullptr) return 0;
  const PlacementPtr p = plan(planner.get(), kReadmeLoads);
  return p == nullptr ? 0 : info_of(p.get()).algorithm;
}

// ----------------------------------------------------------------------------------------------
// Tests
// ----------------------------------------------------------------------------------------------

TEST(Version, MacrosMatchTheLoadedLibrary) {
  EXPECT_EQ(eplb_version_number(), static_cast<uint32_t>(EPLB_VERSION_NUMBER));
  ASSERT_NE(eplb_version_string(), nullptr);
  EXPECT_STREQ(eplb_version_string(), EPLB_VERSION_STRING);
  EXPECT_EQ(std::string(EPLB_VERSION_STRING), std::to_string(EPLB_VERSION_MAJOR) + "." +
                                                  std::to_string(EPLB_VERSION_MINOR) + "." +
                                                  std::to_string(EPLB_VERSION_PATCH));
  EXPECT_EQ(EPLB_VERSION_NUMBER,
            EPLB_VERSION_MAJOR * 10000 + EPLB_VERSION_MINOR * 100 + EPLB_VERSION_PATCH);
}

TEST(Algorithms, Registry) {
  const uint32_t count = eplb_algorithm_count();
  EXPECT_GE(count, 2U);
  EXPECT_STREQ(eplb_algorithm_name(EPLB_ALGORITHM_DEFAULT), "default");
  EXPECT_STREQ(eplb_algorithm_name(EPLB_ALGORITHM_DEEPSEEK), "deepseek");
  EXPECT_STREQ(eplb_algorithm_name(EPLB_ALGORITHM_TRIVIAL), "trivial");
  std::set<std::string> names;
  for (uint32_t id = 0; id <= count; ++id) {
    const char* name = eplb_algorithm_name(id);
    const char* description = eplb_algorithm_description(id);
    ASSERT_NE(name, nullptr) << id;
    ASSERT_NE(description, nullptr) << id;
    EXPECT_GT(std::strlen(name), 0U) << id;
    EXPECT_GT(std::strlen(description), 0U) << id;
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
    uint32_t back = 12345;
    EXPECT_EQ(eplb_algorithm_from_name(name, &back), EPLB_OK) << eplb_last_error_message();
    EXPECT_EQ(back, id) << name;
    EXPECT_STREQ(eplb_last_error_message(), "");
  }
  for (uint32_t id : {count + 1, count + 2, 999U, UINT32_MAX}) {
    EXPECT_EQ(eplb_algorithm_name(id), nullptr) << id;
    EXPECT_EQ(eplb_algorithm_description(id), nullptr) << id;
  }
  uint32_t id = 77;
  ASSERT_EQ(eplb_algorithm_from_name("default", &id), EPLB_OK);
  EXPECT_EQ(id, static_cast<uint32_t>(EPLB_ALGORITHM_DEFAULT));
}

TEST(Algorithms, DefaultNamesTheAlgorithmItsPlacementsReport) {
  const uint32_t id = eplb_algorithm_default();
  EXPECT_NE(id, static_cast<uint32_t>(EPLB_ALGORITHM_DEFAULT));
  ASSERT_NE(eplb_algorithm_name(id), nullptr) << id;
  EXPECT_EQ(id, resolved_default_algorithm()) << "a default plan reports another algorithm";
}

TEST(PlannerOptions, InitSetsDefaults) {
  eplb_planner_options o;
  std::memset(&o, 0xAB, sizeof(o));
  eplb_planner_options_init(&o);
  EXPECT_EQ(o.struct_size, sizeof(eplb_planner_options));
  EXPECT_EQ(o.algorithm, static_cast<uint32_t>(EPLB_ALGORITHM_DEFAULT));
  EXPECT_EQ(o.num_layers, 0U);
  EXPECT_EQ(o.num_logical_experts, 0U);
  EXPECT_EQ(o.num_physical_experts, 0U);
  EXPECT_EQ(o.num_groups, 1U);
  EXPECT_EQ(o.num_nodes, 1U);
  EXPECT_EQ(o.num_gpus, 0U);
  eplb_planner_options_init(nullptr);  // documented no-op
}

TEST(DeepseekReadme, PlacementMatchesThePublishedExample) {
  const PlannerPtr planner = make_planner(readme_shape());
  ASSERT_NE(planner, nullptr);
  const PlacementPtr p = plan(planner.get(), kReadmeLoads);
  ASSERT_NE(p, nullptr);
  EXPECT_STREQ(eplb_last_error_message(), "");

  const eplb_placement_info info = info_of(p.get());
  EXPECT_EQ(info.struct_size, sizeof(eplb_placement_info));
  EXPECT_EQ(info.num_layers, 2U);
  EXPECT_EQ(info.num_logical_experts, 12U);
  EXPECT_EQ(info.num_physical_experts, 16U);
  EXPECT_EQ(info.num_nodes, 2U);
  EXPECT_EQ(info.num_gpus, 8U);
  EXPECT_EQ(info.num_groups, 4U);
  EXPECT_EQ(info.slots_per_gpu, 2U);
  EXPECT_EQ(info.log2phy_width, 2U);
  EXPECT_EQ(info.algorithm, static_cast<uint32_t>(EPLB_ALGORITHM_DEEPSEEK));
  EXPECT_EQ(info.hierarchical, 1U);
  EXPECT_EQ(info.reserved0, 0U);
  EXPECT_GE(info.plan_seconds, 0.0);

  EXPECT_EQ(phy2log_of(p.get()), kReadmePhy2log);
  EXPECT_EQ(counts_of(p.get()), kReadmeCounts);
  EXPECT_EQ(log2phy_of(p.get()), kReadmeLog2phy);
  EXPECT_EQ(gpu_loads_of(p.get(), kReadmeLoads), kReadmeGpuLoads);
  check_structure(p.get());
  check_metrics_against_reference(p.get(), kReadmeLoads);

  // Buffers exactly the right size and larger both work; extra elements are left alone.
  std::vector<int32_t> big(kReadmePhy2log.size() + 3, 4242);
  ASSERT_EQ(eplb_placement_get_phy2log(p.get(), big.data(), big.size()), EPLB_OK);
  EXPECT_TRUE(std::equal(kReadmePhy2log.begin(), kReadmePhy2log.end(), big.begin()));
  EXPECT_EQ(big.back(), 4242);
  std::vector<double> gpu_big(17, -3.0);
  ASSERT_EQ(eplb_metrics_gpu_loads(p.get(), kReadmeLoads.data(), kReadmeLoads.size(),
                                   gpu_big.data(), gpu_big.size()),
            EPLB_OK);
  EXPECT_EQ(gpu_big[16], -3.0);
}

TEST(DeepseekReadme, DefaultAlgorithmIsAConcreteOne) {
  // EPLB_ALGORITHM_DEFAULT is "the recommended planner of this version": whichever it is, the
  // placement reports that concrete id and equals a plan made with the id named explicitly.
  const uint32_t resolved = resolved_default_algorithm();
  EXPECT_GE(resolved, 1U);
  EXPECT_LE(resolved, eplb_algorithm_count());
  const PlannerPtr by_default = make_planner(readme_shape(EPLB_ALGORITHM_DEFAULT));
  const PlannerPtr by_id = make_planner(readme_shape(resolved));
  const PlacementPtr a = plan(by_default.get(), kReadmeLoads);
  const PlacementPtr b = plan(by_id.get(), kReadmeLoads);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(phy2log_of(a.get()), phy2log_of(b.get()));
  EXPECT_EQ(log2phy_of(a.get()), log2phy_of(b.get()));
  check_structure(a.get());
  check_metrics_against_reference(a.get(), kReadmeLoads);
}

TEST(DeepseekReadme, PlannerIsReusableAcrossPlans) {
  const PlannerPtr planner = make_planner(readme_shape());
  const PlacementPtr first = plan(planner.get(), kReadmeLoads);
  std::vector<double> other(kReadmeLoads.rbegin(), kReadmeLoads.rend());
  const PlacementPtr middle = plan(planner.get(), other);
  const PlacementPtr again = plan(planner.get(), kReadmeLoads);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(phy2log_of(again.get()), kReadmePhy2log);
  EXPECT_EQ(log2phy_of(again.get()), kReadmeLog2phy);
  check_structure(middle.get());
}

TEST(DeepseekReadme, GlobalPolicyWhenGroupsDoNotDivideByNodes) {
  Shape s = readme_shape();
  s.groups = 3;  // 3 % 2 != 0: the reference falls back to its global policy
  const PlannerPtr planner = make_planner(s);
  const PlacementPtr p = plan(planner.get(), kReadmeLoads);
  ASSERT_NE(p, nullptr);
  const eplb_placement_info info = info_of(p.get());
  EXPECT_EQ(info.hierarchical, 0U);
  EXPECT_EQ(info.num_groups, 3U);
  check_structure(p.get());
  check_metrics_against_reference(p.get(), kReadmeLoads);
}

TEST(Trivial, SlotHoldsExpertModuloE) {
  Shape s;
  s.layers = 3;
  s.experts = 6;
  s.physical = 16;
  s.nodes = 2;
  s.gpus = 4;
  s.algorithm = EPLB_ALGORITHM_TRIVIAL;
  const PlannerPtr planner = make_planner(s);
  std::vector<double> loads(18);
  for (size_t i = 0; i < loads.size(); ++i) loads[i] = static_cast<double>(i * i % 7);
  loads[3] = 1e100;  // beyond float32: allowed for the trivial algorithm (up to 1e150 a layer)
  const PlacementPtr p = plan(planner.get(), loads);
  ASSERT_NE(p, nullptr);
  const std::vector<int32_t> map = phy2log_of(p.get());
  for (uint32_t layer = 0; layer < 3; ++layer) {
    for (uint32_t slot = 0; slot < 16; ++slot) {
      EXPECT_EQ(map[layer * 16 + slot], static_cast<int32_t>(slot % 6));
    }
  }
  const eplb_placement_info info = info_of(p.get());
  EXPECT_EQ(info.algorithm, static_cast<uint32_t>(EPLB_ALGORITHM_TRIVIAL));
  EXPECT_EQ(info.hierarchical, 0U);
  EXPECT_EQ(info.log2phy_width, 3U);
  check_structure(p.get());
  loads[3] = 5;  // keep the reference sums comparable in relative terms
  check_metrics_against_reference(p.get(), loads);
}

TEST(Deepseek, ZeroLoadLayerGetsTheTrivialPlacement) {
  Shape s = readme_shape();
  const PlannerPtr planner = make_planner(s);
  std::vector<double> loads = kReadmeLoads;
  std::fill(loads.begin() + 12, loads.end(), 0.0);
  const PlacementPtr p = plan(planner.get(), loads);
  ASSERT_NE(p, nullptr);
  const std::vector<int32_t> map = phy2log_of(p.get());
  EXPECT_TRUE(std::equal(kReadmePhy2log.begin(), kReadmePhy2log.begin() + 16, map.begin()));
  for (uint32_t slot = 0; slot < 16; ++slot)
    EXPECT_EQ(map[16 + slot], static_cast<int32_t>(slot % 12));
  eplb_layer_metrics m = layer_metrics_of(p.get(), 1, loads.data() + 12, 12);
  EXPECT_EQ(m.total_load, 0.0);
  EXPECT_EQ(m.balancedness, 1.0);
  EXPECT_EQ(m.node_balancedness, 1.0);
  EXPECT_EQ(m.lower_bound, 0.0);
  EXPECT_EQ(m.max_load_over_bound, 1.0);
  check_metrics_against_reference(p.get(), loads);
}

TEST(Metrics, AgreeWithBruteForceUnderOtherLoads) {
  // The metrics of a placement may be taken under any load of its shape, not just the planned one.
  const PlannerPtr planner = make_planner(readme_shape());
  const PlacementPtr p = plan(planner.get(), kReadmeLoads);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> dist(0.0, 1000.0);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<double> loads(24);
    for (double& v : loads) v = dist(rng);
    if (trial % 5 == 0) loads[static_cast<size_t>(trial) % 24] = 1e6;  // one very hot expert
    check_metrics_against_reference(p.get(), loads);
  }
}

TEST(Metrics, CountsDuplicateGpus) {
  // One layer, E=2, R=4 on 2 GPUs: GPU 0 holds expert 0 twice, GPU 1 holds expert 1 twice.
  const std::vector<int32_t> map = {0, 0, 1, 1};
  eplb_placement* raw = nullptr;
  ASSERT_EQ(eplb_placement_create_from_phy2log(1, 2, 4, 1, 2, map.data(), map.size(), &raw),
            EPLB_OK)
      << eplb_last_error_message();
  const PlacementPtr p(raw);
  const std::vector<double> loads = {10, 30};
  const eplb_metrics m = metrics_of(p.get(), loads);
  EXPECT_EQ(m.duplicate_pairs, 2U);
  EXPECT_EQ(m.max_replicas, 2U);
  EXPECT_DOUBLE_EQ(m.balancedness, 20.0 / 30.0);
  const eplb_layer_metrics lm = layer_metrics_of(p.get(), 0, loads.data(), loads.size());
  EXPECT_EQ(lm.duplicate_gpus, 2U);
  EXPECT_DOUBLE_EQ(lm.max_gpu_load, 30.0);
  EXPECT_DOUBLE_EQ(lm.mean_gpu_load, 20.0);
  // Best possible: expert 1 on both GPUs (15 each) -> max(mean 20, 15) = 20.
  EXPECT_DOUBLE_EQ(lm.lower_bound, 20.0);
  check_metrics_against_reference(p.get(), loads);
}

TEST(ImportedPlacement, RoundTripsThroughPhy2log) {
  const PlannerPtr planner = make_planner(readme_shape());
  const PlacementPtr planned = plan(planner.get(), kReadmeLoads);
  eplb_placement* raw = nullptr;
  ASSERT_EQ(eplb_placement_create_from_phy2log(2, 12, 16, 2, 8, kReadmePhy2log.data(),
                                               kReadmePhy2log.size(), &raw),
            EPLB_OK)
      << eplb_last_error_message();
  EXPECT_STREQ(eplb_last_error_message(), "");
  const PlacementPtr imported(raw);
  const eplb_placement_info info = info_of(imported.get());
  EXPECT_EQ(info.algorithm, 0U);
  EXPECT_EQ(info.hierarchical, 0U);
  EXPECT_EQ(info.plan_seconds, 0.0);
  EXPECT_EQ(info.num_groups, 1U);
  EXPECT_EQ(info.num_layers, 2U);
  EXPECT_EQ(info.num_nodes, 2U);
  EXPECT_EQ(info.num_gpus, 8U);
  EXPECT_EQ(info.log2phy_width, 2U);
  EXPECT_EQ(phy2log_of(imported.get()), kReadmePhy2log);
  EXPECT_EQ(counts_of(imported.get()), kReadmeCounts);

  // log2phy lists each expert's slots in ascending slot order.
  const std::vector<int32_t> l2p = log2phy_of(imported.get());
  for (size_t layer = 0; layer < 2; ++layer) {
    for (size_t e = 0; e < 12; ++e) {
      std::vector<int32_t> expected;
      for (int32_t slot = 0; slot < 16; ++slot) {
        if (kReadmePhy2log[layer * 16 + static_cast<size_t>(slot)] == static_cast<int32_t>(e)) {
          expected.push_back(slot);
        }
      }
      expected.resize(2, -1);
      const auto cell = l2p.begin() + static_cast<std::ptrdiff_t>((layer * 12 + e) * 2);
      EXPECT_EQ(std::vector<int32_t>(cell, cell + 2), expected) << layer << "," << e;
    }
  }
  // Same map, same loads: the same GPU loads and metrics as the planned placement.
  EXPECT_EQ(gpu_loads_of(imported.get(), kReadmeLoads), kReadmeGpuLoads);
  const eplb_metrics a = metrics_of(planned.get(), kReadmeLoads);
  const eplb_metrics b = metrics_of(imported.get(), kReadmeLoads);
  EXPECT_EQ(std::memcmp(&a, &b, sizeof(a)), 0);
  check_structure(imported.get());
}

TEST(StructSize, SmallerOptionsAreRejected) {
  // Smaller than the first published version (0.1, which ended at num_threads).
  const size_t first_version = offsetof(eplb_planner_options, affinity);
  eplb_planner_options o = options_for(readme_shape());
  o.struct_size = static_cast<uint32_t>(first_version - 4);
  eplb_planner* planner = nullptr;
  EXPECT_EQ(eplb_planner_create(&o, &planner), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(planner, nullptr);
  EXPECT_NE(std::string(eplb_last_error_message()).find(std::to_string(first_version - 4)),
            std::string::npos)
      << eplb_last_error_message();
  // The first version itself is accepted, with the later fields at their defaults.
  o.struct_size = static_cast<uint32_t>(first_version);
  o.affinity = 7;  // beyond the caller's struct: not read
  ASSERT_EQ(eplb_planner_create(&o, &planner), EPLB_OK) << eplb_last_error_message();
  eplb_planner_destroy(planner);
}

TEST(StructSize, LargerOptionsWithZeroTailAreAccepted) {
  // A caller built against a newer header: a bigger struct whose unknown fields are zero.
  const eplb_planner_options o = options_for(readme_shape());
  alignas(8) unsigned char buffer[sizeof(eplb_planner_options) + 24] = {};
  std::memcpy(buffer, &o, sizeof(o));
  const uint32_t size = sizeof(buffer);
  std::memcpy(buffer, &size, sizeof(size));
  eplb_planner* raw = nullptr;
  ASSERT_EQ(eplb_planner_create(reinterpret_cast<const eplb_planner_options*>(buffer), &raw),
            EPLB_OK)
      << eplb_last_error_message();
  const PlannerPtr planner(raw);
  const PlacementPtr p = plan(planner.get(), kReadmeLoads);
  EXPECT_EQ(phy2log_of(p.get()), kReadmePhy2log);

  // The same with a non-zero byte the library does not know: rejected, not silently ignored.
  for (size_t at : {sizeof(eplb_planner_options), sizeof(buffer) - 1}) {
    buffer[at] = 1;
    raw = nullptr;
    EXPECT_EQ(eplb_planner_create(reinterpret_cast<const eplb_planner_options*>(buffer), &raw),
              EPLB_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(raw, nullptr);
    EXPECT_NE(std::string(eplb_last_error_message()).find(std::to_string(size)), std::string::npos)
        << eplb_last_error_message();
    buffer[at] = 0;
  }
  // A non-zero byte beyond the declared struct_size is not the library's business.
  const uint32_t exact = sizeof(eplb_planner_options);
  std::memcpy(buffer, &exact, sizeof(exact));
  buffer[sizeof(buffer) - 1] = 0x5A;
  raw = nullptr;
  EXPECT_EQ(eplb_planner_create(reinterpret_cast<const eplb_planner_options*>(buffer), &raw),
            EPLB_OK)
      << eplb_last_error_message();
  eplb_planner_destroy(raw);
}

// Output structs: a larger struct_size gets the known fields plus a zeroed tail, even if the tail
// held garbage; struct_size is kept as the caller set it.
template <typename Struct, typename Call>
void check_larger_output_struct(Call call, const Struct& expected) {
  alignas(8) unsigned char buffer[sizeof(Struct) + 32];
  std::memset(buffer, 0xCD, sizeof(buffer));
  const uint32_t size = sizeof(Struct) + 16;
  std::memcpy(buffer, &size, sizeof(size));
  ASSERT_EQ(call(reinterpret_cast<Struct*>(buffer)), EPLB_OK) << eplb_last_error_message();
  uint32_t size_after = 0;
  std::memcpy(&size_after, buffer, sizeof(size_after));
  EXPECT_EQ(size_after, size);
  Struct got;
  std::memcpy(&got, buffer, sizeof(got));
  got.struct_size = expected.struct_size;
  EXPECT_EQ(std::memcmp(&got, &expected, sizeof(Struct)), 0);
  for (size_t i = sizeof(Struct); i < size; ++i) EXPECT_EQ(buffer[i], 0) << "byte " << i;
  for (size_t i = size; i < sizeof(buffer); ++i) EXPECT_EQ(buffer[i], 0xCD) << "byte " << i;
}

TEST(StructSize, LargerOutputStructsGetAZeroedTail) {
  const PlannerPtr planner = make_planner(readme_shape());
  const PlacementPtr p = plan(planner.get(), kReadmeLoads);
  const eplb_placement* placement = p.get();

  check_larger_output_struct<eplb_placement_info>(
      [&](eplb_placement_info* out) { return eplb_placement_get_info(placement, out); },
      info_of(placement));
  check_larger_output_struct<eplb_metrics>(
      [&](eplb_metrics* out) {
        return eplb_metrics_compute(placement, kReadmeLoads.data(), kReadmeLoads.size(), out);
      },
      metrics_of(placement, kReadmeLoads));
  check_larger_output_struct<eplb_layer_metrics>(
      [&](eplb_layer_metrics* out) {
        return eplb_metrics_compute_layer(placement, 1, kReadmeLoads.data() + 12, 12, out);
      },
      layer_metrics_of(placement, 1, kReadmeLoads.data() + 12, 12));
}

TEST(StructSize, SmallerOutputStructsAreRejectedAndUntouched) {
  const PlannerPtr planner = make_planner(readme_shape());
  const PlacementPtr p = plan(planner.get(), kReadmeLoads);
  const uint32_t small = 8;
  {
    eplb_placement_info info;
    std::memset(&info, 0x11, sizeof(info));
    info.struct_size = small;
    const eplb_placement_info before = info;
    EXPECT_EQ(eplb_placement_get_info(p.get(), &info), EPLB_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(std::memcmp(&info, &before, sizeof(info)), 0);
    EXPECT_NE(std::string(eplb_last_error_message()).find("struct_size (8)"), std::string::npos)
        << eplb_last_error_message();
  }
  {
    eplb_metrics m;
    std::memset(&m, 0x22, sizeof(m));
    m.struct_size = small;
    const eplb_metrics before = m;
    EXPECT_EQ(eplb_metrics_compute(p.get(), kReadmeLoads.data(), kReadmeLoads.size(), &m),
              EPLB_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(std::memcmp(&m, &before, sizeof(m)), 0);
    EXPECT_NE(std::string(eplb_last_error_message()).find("struct_size (8)"), std::string::npos)
        << eplb_last_error_message();
  }
  {
    eplb_layer_metrics m;
    std::memset(&m, 0x33, sizeof(m));
    m.struct_size = small;
    const eplb_layer_metrics before = m;
    EXPECT_EQ(eplb_metrics_compute_layer(p.get(), 0, kReadmeLoads.data(), 12, &m),
              EPLB_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(std::memcmp(&m, &before, sizeof(m)), 0);
    EXPECT_NE(std::string(eplb_last_error_message()).find("struct_size (8)"), std::string::npos)
        << eplb_last_error_message();
  }
}

// Memory the caller owns up to the end of a page, followed by a page that faults on any access:
// a struct placed at the end shows whether the library reads or writes past struct_size's cap.
class GuardedPage {
 public:
  GuardedPage() {
    page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    void* m = mmap(nullptr, 2 * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::runtime_error("mmap failed");
    base_ = static_cast<unsigned char*>(m);
    if (mprotect(base_ + page_, page_, PROT_NONE) != 0) throw std::runtime_error("mprotect");
  }
  GuardedPage(const GuardedPage&) = delete;
  GuardedPage& operator=(const GuardedPage&) = delete;
  ~GuardedPage() { munmap(base_, 2 * page_); }
  // `bytes` filled with `fill`, ending where the faulting page begins.
  unsigned char* tail(std::size_t bytes, unsigned char fill) {
    unsigned char* at = base_ + page_ - bytes;
    std::memset(at, fill, bytes);
    return at;
  }

 private:
  std::size_t page_ = 0;
  unsigned char* base_ = nullptr;
};

// An uninitialised struct_size (above 4096, the documented cap) is refused before the library
// reads or writes past the fields it knows: options filled with garbage, and output structs whose
// memory ends right after the struct, never crash and are not written; the message says the
// struct looks uninitialised and how to set it.
TEST(StructSize, ImplausibleSizesAreRefusedBeforeTouchingMemory) {
  GuardedPage guard;
  const auto message = [] { return std::string(eplb_last_error_message()); };
  const PlannerPtr planner = make_planner(readme_shape());
  const PlacementPtr p = plan(planner.get(), kReadmeLoads);
  for (const uint32_t size : {4097U, 0x10000U, 0xABABABABU, 0xFFFFFFFFU}) {
    // Options: a struct at the end of the caller's memory, every field garbage.
    auto* options =
        reinterpret_cast<eplb_planner_options*>(guard.tail(sizeof(eplb_planner_options), 0xAB));
    options->struct_size = size;
    eplb_planner* refused = nullptr;
    EXPECT_EQ(eplb_planner_create(options, &refused), EPLB_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(refused, nullptr);
    EXPECT_NE(message().find("options->struct_size (" + std::to_string(size) + ")"),
              std::string::npos)
        << message();
    EXPECT_NE(message().find("looks uninitialised"), std::string::npos) << message();
    EXPECT_NE(message().find("_init"), std::string::npos) << message();

    // Output: nothing is written, and the library stays within the caller's memory.
    auto* info =
        reinterpret_cast<eplb_placement_info*>(guard.tail(sizeof(eplb_placement_info), 0x5C));
    info->struct_size = size;
    std::vector<unsigned char> before(sizeof(eplb_placement_info));
    std::memcpy(before.data(), info, before.size());
    EXPECT_EQ(eplb_placement_get_info(p.get(), info), EPLB_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(std::memcmp(info, before.data(), before.size()), 0);
    EXPECT_NE(message().find("out_info->struct_size (" + std::to_string(size) + ")"),
              std::string::npos)
        << message();
    EXPECT_NE(message().find("sizeof"), std::string::npos) << message();

    // eplb_snapshot_inspect says so before it reads any file (not an I/O error for a bad path).
    auto* snapshot_info =
        reinterpret_cast<eplb_snapshot_info*>(guard.tail(sizeof(eplb_snapshot_info), 0x5C));
    snapshot_info->struct_size = size;
    EXPECT_EQ(eplb_snapshot_inspect("/nonexistent/x.eplb", snapshot_info),
              EPLB_ERR_INVALID_ARGUMENT);
    EXPECT_NE(message().find("out_info->struct_size (" + std::to_string(size) + ")"),
              std::string::npos)
        << message();
  }
  // The cap itself is a valid size: the whole 4096 bytes are the caller's, the tail is zeroed.
  unsigned char* buffer = guard.tail(4096, 0xCD);
  const uint32_t cap = 4096;
  std::memcpy(buffer, &cap, sizeof(cap));
  ASSERT_EQ(eplb_placement_get_info(p.get(), reinterpret_cast<eplb_placement_info*>(buffer)),
            EPLB_OK)
      << eplb_last_error_message();
  for (std::size_t i = sizeof(eplb_placement_info); i < cap; ++i) {
    ASSERT_EQ(buffer[i], 0) << "byte " << i;
  }
  // A garbage tail on an input struct whose size is plausible: named by its first non-zero byte.
  auto* options = reinterpret_cast<eplb_planner_options*>(guard.tail(256, 0));
  eplb_planner_options_init(options);
  options->struct_size = 256;
  reinterpret_cast<unsigned char*>(options)[200] = 9;
  eplb_planner* raw = nullptr;
  EXPECT_EQ(eplb_planner_create(options, &raw), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message().find("byte 200 is not zero"), std::string::npos) << message();
}

// Random shapes and loads through the ABI: every placement is structurally sound and its metrics
// agree with the reference model.
TEST(Properties, RandomShapesAndLoads) {
  const uint32_t resolved_default = resolved_default_algorithm();
  std::mt19937_64 rng(20240601);
  auto pick = [&](uint32_t lo, uint32_t hi) {
    return std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
  };
  for (int trial = 0; trial < 150; ++trial) {
    Shape s;
    s.nodes = pick(1, 3);
    s.gpus = s.nodes * pick(1, 4);
    s.groups = pick(1, 4);
    s.experts = s.groups * pick(1, 6);
    const uint32_t min_per_gpu = (s.experts + s.gpus - 1) / s.gpus;
    s.physical = s.gpus * (min_per_gpu + pick(0, 3));
    s.layers = pick(1, 4);
    s.algorithm = pick(0, eplb_algorithm_count());
    SCOPED_TRACE(::testing::Message()
                 << "trial " << trial << ": layers " << s.layers << " E " << s.experts << " R "
                 << s.physical << " groups " << s.groups << " nodes " << s.nodes << " gpus "
                 << s.gpus << " algorithm " << s.algorithm);
    const PlannerPtr planner = make_planner(s);
    ASSERT_NE(planner, nullptr);

    std::vector<double> loads(static_cast<size_t>(s.layers) * s.experts);
    const int style = static_cast<int>(pick(0, 3));
    for (double& v : loads) {
      switch (style) {
        case 0:
          v = static_cast<double>(pick(0, 200));
          break;  // integer counts
        case 1:
          v = std::exponential_distribution<double>(0.01)(rng);
          break;  // skewed
        case 2:
          v = pick(0, 4) == 0 ? 0.0 : std::uniform_real_distribution<double>(0, 1)(rng);
          break;
        default:
          v = 1.0;
          break;  // all equal
      }
    }
    if (s.layers > 1 && pick(0, 2) == 0) {  // a dense (all-zero) layer
      std::fill(loads.begin(), loads.begin() + s.experts, 0.0);
    }
    const PlacementPtr p = plan(planner.get(), loads);
    ASSERT_NE(p, nullptr);
    const eplb_placement_info info = info_of(p.get());
    EXPECT_EQ(info.num_layers, s.layers);
    EXPECT_EQ(info.num_logical_experts, s.experts);
    EXPECT_EQ(info.num_physical_experts, s.physical);
    EXPECT_EQ(info.num_gpus, s.gpus);
    EXPECT_EQ(info.num_nodes, s.nodes);
    EXPECT_EQ(info.num_groups, s.groups);
    EXPECT_EQ(info.algorithm,
              s.algorithm == EPLB_ALGORITHM_DEFAULT ? resolved_default : s.algorithm);
    EXPECT_GE(info.plan_seconds, 0.0);
    check_structure(p.get());
    check_metrics_against_reference(p.get(), loads);

    // The phy2log of any placement imports back to the same counts.
    const std::vector<int32_t> map = phy2log_of(p.get());
    eplb_placement* raw = nullptr;
    ASSERT_EQ(eplb_placement_create_from_phy2log(s.layers, s.experts, s.physical, s.nodes, s.gpus,
                                                 map.data(), map.size(), &raw),
              EPLB_OK)
        << eplb_last_error_message();
    const PlacementPtr imported(raw);
    EXPECT_EQ(counts_of(imported.get()), counts_of(p.get()));
    EXPECT_EQ(gpu_loads_of(imported.get(), loads), gpu_loads_of(p.get(), loads));
    check_structure(imported.get());
    if (HasFatalFailure() || HasNonfatalFailure()) return;  // one trace is enough
  }
}

// Scaling every load by a power of two is exact in floating point, so no algorithm may change
// its plan: loads near the largest accepted layer total (1e150; deepseek: FLT_MAX / 2) and tiny
// ones plan like ordinary counts. Catches sums or squares that overflow inside a planner, and
// absolute tolerances that only suit loads of a certain size.
TEST(Properties, PlansDoNotDependOnTheScaleOfTheLoads) {
  std::mt19937_64 rng(77);
  Shape s;
  s.layers = 3;
  s.experts = 24;
  s.groups = 4;
  s.nodes = 2;
  s.gpus = 8;
  s.physical = 32;
  std::vector<double> loads(static_cast<size_t>(s.layers) * s.experts);
  for (double& v : loads) v = std::floor(std::exponential_distribution<double>(0.01)(rng));
  for (uint32_t algorithm = 1; algorithm < eplb_algorithm_count(); ++algorithm) {
    s.algorithm = algorithm;
    const PlannerPtr planner = make_planner(s);
    ASSERT_NE(planner, nullptr);
    const PlacementPtr reference = plan(planner.get(), loads);
    ASSERT_NE(reference, nullptr);
    // 2^480 * (a total of a few thousand) stays under 1e150; deepseek is float32 throughout.
    const int exponent = algorithm == EPLB_ALGORITHM_DEEPSEEK ? 100 : 480;
    for (const int e : {exponent, -exponent}) {
      SCOPED_TRACE(::testing::Message() << "algorithm " << algorithm << ", loads x 2^" << e);
      std::vector<double> scaled = loads;
      for (double& v : scaled) v = std::ldexp(v, e);
      const PlacementPtr p = plan(planner.get(), scaled);
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(phy2log_of(p.get()), phy2log_of(reference.get()));
      EXPECT_EQ(counts_of(p.get()), counts_of(reference.get()));
      eplb_metrics m{}, r{};
      m.struct_size = r.struct_size = sizeof(eplb_metrics);
      ASSERT_EQ(eplb_metrics_compute(p.get(), scaled.data(), scaled.size(), &m), EPLB_OK);
      ASSERT_EQ(eplb_metrics_compute(reference.get(), loads.data(), loads.size(), &r), EPLB_OK);
      EXPECT_EQ(m.balancedness, r.balancedness);
    }
  }
}

// ----------------------------------------------------------------------------------------------
// Threads
// ----------------------------------------------------------------------------------------------

TEST(Threads, IndependentPlannersAndASharedConstPlacement) {
  const PlannerPtr planner = make_planner(readme_shape());
  const PlacementPtr shared_placement = plan(planner.get(), kReadmeLoads);
  const eplb_placement* shared = shared_placement.get();
  const eplb_metrics expected_metrics = metrics_of(shared, kReadmeLoads);
  const eplb_layer_metrics expected_layer =
      layer_metrics_of(shared, 1, kReadmeLoads.data() + 12, 12);

  constexpr int kThreads = 8;
  constexpr int kIterations = 200;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      int& bad = failures[static_cast<size_t>(t)];
      eplb_planner_options o = options_for(readme_shape());
      eplb_planner* own = nullptr;
      if (eplb_planner_create(&o, &own) != EPLB_OK) {
        ++bad;
        return;
      }
      std::vector<int32_t> map(32);
      std::vector<double> gpu(16);
      for (int i = 0; i < kIterations; ++i) {
        eplb_placement* mine = nullptr;
        if (eplb_planner_plan(own, kReadmeLoads.data(), kReadmeLoads.size(), &mine) != EPLB_OK) {
          ++bad;
          continue;
        }
        if (eplb_placement_get_phy2log(mine, map.data(), map.size()) != EPLB_OK ||
            map != kReadmePhy2log) {
          ++bad;
        }
        eplb_placement_destroy(mine);

        eplb_metrics m;
        std::memset(&m, 0, sizeof(m));
        m.struct_size = sizeof(m);
        if (eplb_metrics_compute(shared, kReadmeLoads.data(), kReadmeLoads.size(), &m) != EPLB_OK ||
            std::memcmp(&m, &expected_metrics, sizeof(m)) != 0) {
          ++bad;
        }
        eplb_layer_metrics lm;
        std::memset(&lm, 0, sizeof(lm));
        lm.struct_size = sizeof(lm);
        if (eplb_metrics_compute_layer(shared, 1, kReadmeLoads.data() + 12, 12, &lm) != EPLB_OK ||
            std::memcmp(&lm, &expected_layer, sizeof(lm)) != 0) {
          ++bad;
        }
        if (eplb_metrics_gpu_loads(shared, kReadmeLoads.data(), kReadmeLoads.size(), gpu.data(),
                                   gpu.size()) != EPLB_OK ||
            gpu != kReadmeGpuLoads) {
          ++bad;
        }
        if (eplb_placement_get_phy2log(shared, map.data(), map.size()) != EPLB_OK ||
            map != kReadmePhy2log) {
          ++bad;
        }
      }
      eplb_planner_destroy(own);
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(failures[static_cast<size_t>(t)], 0) << "thread " << t;
}

TEST(LastError, IsThreadLocalAndClearedBySuccess) {
  // Fail on this thread.
  EXPECT_EQ(eplb_planner_create(nullptr, nullptr), EPLB_ERR_INVALID_ARGUMENT);
  const std::string main_message = eplb_last_error_message();
  EXPECT_NE(main_message.find("options"), std::string::npos) << main_message;

  std::string fresh_message = "not read";
  std::string other_message;
  std::string other_after_success = "not read";
  std::thread other([&] {
    fresh_message = eplb_last_error_message();  // nothing failed on this thread yet
    uint32_t id = 0;
    EXPECT_EQ(eplb_algorithm_from_name("no-such-algorithm", &id), EPLB_ERR_INVALID_ARGUMENT);
    other_message = eplb_last_error_message();
    EXPECT_EQ(eplb_algorithm_from_name("trivial", &id), EPLB_OK);
    other_after_success = eplb_last_error_message();
  });
  other.join();
  EXPECT_EQ(fresh_message, "");
  EXPECT_NE(other_message.find("no-such-algorithm"), std::string::npos) << other_message;
  EXPECT_EQ(other_after_success, "");
  // The other thread's failure and success left this thread's message alone.
  EXPECT_EQ(std::string(eplb_last_error_message()), main_message);

  // The next successful call on this thread clears it.
  uint32_t id = 0;
  ASSERT_EQ(eplb_algorithm_from_name("deepseek", &id), EPLB_OK);
  EXPECT_STREQ(eplb_last_error_message(), "");

  // ... and so does every kind of successful fallible call.
  const PlannerPtr planner = make_planner(readme_shape());
  const PlacementPtr p = plan(planner.get(), kReadmeLoads);
  const auto fail_then = [&](auto&& succeed) {
    EXPECT_NE(eplb_placement_get_phy2log(nullptr, nullptr, 0), EPLB_OK);
    EXPECT_STRNE(eplb_last_error_message(), "");
    EXPECT_EQ(succeed(), EPLB_OK);
    EXPECT_STREQ(eplb_last_error_message(), "");
  };
  std::vector<int32_t> buf32(64);
  std::vector<double> bufd(16);
  fail_then([&] { return eplb_placement_get_phy2log(p.get(), buf32.data(), buf32.size()); });
  fail_then([&] { return eplb_placement_get_replica_counts(p.get(), buf32.data(), buf32.size()); });
  fail_then([&] { return eplb_placement_get_log2phy(p.get(), buf32.data(), buf32.size()); });
  fail_then([&] {
    return eplb_metrics_gpu_loads(p.get(), kReadmeLoads.data(), kReadmeLoads.size(), bufd.data(),
                                  bufd.size());
  });
  fail_then([&] {
    eplb_placement_info info;
    info.struct_size = sizeof(info);
    return eplb_placement_get_info(p.get(), &info);
  });
  fail_then([&] {
    eplb_placement* q = nullptr;
    const eplb_status st =
        eplb_planner_plan(planner.get(), kReadmeLoads.data(), kReadmeLoads.size(), &q);
    eplb_placement_destroy(q);
    return st;
  });
}

}  // namespace
