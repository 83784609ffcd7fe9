// Topology validation: every inconsistent field is rejected with a message naming it and its value.
#include <gtest/gtest.h>

#include <string>

#include "error.hpp"
#include "planner.hpp"

namespace eplb {
namespace {

Topology deepseek_v3() {
  Topology t;
  t.num_layers = 58;
  t.num_logical = 256;
  t.num_physical = 288;
  t.num_groups = 8;
  t.num_nodes = 4;
  t.num_gpus = 32;
  return t;
}

std::string message_of(const Topology& t) {
  try {
    t.validate();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    return e.what();
  }
  return "";
}

TEST(Topology, AcceptsDeepseekV3) { EXPECT_EQ(message_of(deepseek_v3()), ""); }

TEST(Topology, RejectsEachInconsistency) {
  struct Case {
    void (*mutate)(Topology&);
    std::string expected;
  };
  const Case cases[] = {
      {[](Topology& t) { t.num_layers = 0; }, "num_layers must be at least 1 (got 0)"},
      {[](Topology& t) { t.num_logical = 0; }, "num_logical_experts must be at least 1 (got 0)"},
      {[](Topology& t) { t.num_physical = 0; }, "num_physical_experts must be at least 1 (got 0)"},
      {[](Topology& t) { t.num_nodes = 0; }, "num_nodes must be at least 1 (got 0)"},
      {[](Topology& t) { t.num_gpus = 0; }, "num_gpus must be at least 1 (got 0)"},
      {[](Topology& t) { t.num_groups = 0; }, "num_groups must be at least 1 (got 0)"},
      {[](Topology& t) { t.num_groups = 7; },
       "num_logical_experts (256) must be a multiple of num_groups (7)"},
      {[](Topology& t) { t.num_nodes = 3; }, "num_gpus (32) must be a multiple of num_nodes (3)"},
      {[](Topology& t) { t.num_physical = 300; },
       "num_physical_experts (300) must be a multiple of num_gpus (32)"},
      {[](Topology& t) { t.num_physical = 224; },
       "num_physical_experts (224) must be at least num_logical_experts (256)"},
      {[](Topology& t) { t.num_layers = 0x80000000U; },
       "num_layers (2147483648) exceeds INT32_MAX"},
  };
  for (const Case& c : cases) {
    Topology t = deepseek_v3();
    c.mutate(t);
    EXPECT_NE(message_of(t).find(c.expected), std::string::npos)
        << "expected '" << c.expected << "' in '" << message_of(t) << "'";
  }
}

TEST(Planner, RejectsUnknownAlgorithmAndBadLoads) {
  EXPECT_THROW(Planner(deepseek_v3(), 999), Error);
  Topology t = deepseek_v3();
  t.num_layers = 1;
  Planner planner(t, static_cast<std::uint32_t>(Algorithm::deepseek));
  std::vector<double> loads(256, 1.0);
  loads[17] = -2;
  try {
    (void)planner.plan(loads);
    FAIL() << "negative load accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("loads[0][17] = -2 is negative"), std::string::npos)
        << e.what();
  }
  loads[17] = 1e39;  // finite in double, not in float32
  EXPECT_THROW((void)planner.plan(loads), Error);
  loads.pop_back();
  EXPECT_THROW((void)planner.plan(loads), Error);
}

}  // namespace
}  // namespace eplb
