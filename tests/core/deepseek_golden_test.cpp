// libeplb's deepseek mode against outputs of the reference implementation itself
// (tests/data/deepseek_goldens.json, made by tests/data/make_deepseek_goldens.py from
// deepseek-ai/EPLB's eplb.py under torch). Every array must match exactly: phy2log, replica
// counts and log2phy in replica-rank order, on tie-free inputs and on tie-heavy ones.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "planner.hpp"

namespace eplb {
namespace {

nlohmann::json load_goldens() {
  std::ifstream in(std::string(EPLB_TEST_DATA_DIR) + "/deepseek_goldens.json");
  EXPECT_TRUE(in.good()) << "missing tests/data/deepseek_goldens.json";
  return nlohmann::json::parse(in);
}

std::vector<std::int32_t> flatten(const nlohmann::json& rows) {
  std::vector<std::int32_t> out;
  for (const auto& row : rows) {
    if (row.is_array()) {
      for (auto value : flatten(row)) out.push_back(value);
    } else {
      out.push_back(row.get<std::int32_t>());
    }
  }
  return out;
}

TEST(DeepseekGoldenFile, HasEveryKindOfCase) {
  const auto goldens = load_goldens();
  int tie_free = 0;
  int ties = 0;
  int published = 0;
  for (const auto& c : goldens["cases"]) {
    tie_free += c["kind"] == "tie_free" ? 1 : 0;
    ties += c["kind"] == "ties" ? 1 : 0;
    published += c["kind"] == "published" ? 1 : 0;
  }
  EXPECT_GE(tie_free, 8);
  EXPECT_GE(ties, 8);
  EXPECT_EQ(published, 3);
}

TEST(DeepseekGoldenFile, EveryCaseMatchesTheReference) {
  const auto goldens = load_goldens();
  for (const auto& c : goldens["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const auto& rows = c["loads"];
    Topology topology;
    topology.num_layers = static_cast<std::uint32_t>(rows.size());
    topology.num_logical = static_cast<std::uint32_t>(rows[0].size());
    topology.num_physical = c["num_physical_experts"];
    topology.num_groups = c["num_groups"];
    topology.num_nodes = c["num_nodes"];
    topology.num_gpus = c["num_gpus"];
    std::vector<double> loads;
    for (const auto& row : rows) {
      for (const auto& v : row) loads.push_back(v.get<double>());
    }
    Planner planner(topology, static_cast<std::uint32_t>(Algorithm::deepseek));
    const Placement placement = planner.plan(loads);
    const auto phy2log = flatten(c["phy2log"]);
    const auto counts = flatten(c["replica_counts"]);
    const auto log2phy = flatten(c["log2phy"]);
    ASSERT_EQ(std::vector<std::int32_t>(placement.phy2log().begin(), placement.phy2log().end()),
              phy2log);
    ASSERT_EQ(std::vector<std::int32_t>(placement.replica_counts().begin(),
                                        placement.replica_counts().end()),
              counts);
    ASSERT_EQ(placement.log2phy_width(), c["log2phy"][0][0].size());
    ASSERT_EQ(std::vector<std::int32_t>(placement.log2phy().begin(), placement.log2phy().end()),
              log2phy);
  }
}

}  // namespace
}  // namespace eplb
