// SGLang's and vLLM-Ascend's JSON files: round trips between the formats on random placements
// (with and without dense layers, with inferred expert counts, with duplicates on one GPU), the
// documents' exact structure (checked with an independent JSON parser), and every malformed-input
// path with the status and the message naming key, row, column and value.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "error.hpp"
#include "json_formats.hpp"
#include "placement.hpp"
#include "support/random_cases.hpp"

namespace eplb {
namespace {

using nlohmann::json;

// A random valid map: every expert once per layer, the extra slots random experts (duplicates on
// one GPU included), shuffled.
Placement random_placement(std::mt19937_64& rng, const Topology& t) {
  std::vector<std::int32_t> map;
  std::uniform_int_distribution<std::int32_t> any(0, static_cast<std::int32_t>(t.num_logical) - 1);
  for (std::uint32_t layer = 0; layer < t.num_layers; ++layer) {
    std::vector<std::int32_t> row(t.num_logical);
    std::iota(row.begin(), row.end(), 0);
    while (row.size() < t.num_physical) row.push_back(any(rng));
    std::shuffle(row.begin(), row.end(), rng);
    map.insert(map.end(), row.begin(), row.end());
  }
  return Placement::from_phy2log(t, map);
}

void expect_same(const Placement& a, const Placement& b) {
  const Topology& x = a.topology();
  const Topology& y = b.topology();
  ASSERT_EQ(x.num_layers, y.num_layers);
  ASSERT_EQ(x.num_logical, y.num_logical);
  ASSERT_EQ(x.num_physical, y.num_physical);
  ASSERT_EQ(x.num_gpus, y.num_gpus);
  ASSERT_EQ(x.num_nodes, y.num_nodes);
  ASSERT_TRUE(std::ranges::equal(a.phy2log(), b.phy2log()));
  ASSERT_TRUE(std::ranges::equal(a.replica_counts(), b.replica_counts()));
  ASSERT_TRUE(std::ranges::equal(a.log2phy(), b.log2phy()));
  EXPECT_EQ(b.provenance().algorithm, 0U);  // imported
}

TEST(JsonFormats, RoundTripsOnRandomPlacements) {
  std::mt19937_64 rng(2024);
  for (int trial = 0; trial < 300; ++trial) {
    Topology t = test::random_topology(rng, false);
    t.num_groups = 1;
    SCOPED_TRACE(::testing::Message()
                 << "trial " << trial << ": L=" << t.num_layers << " E=" << t.num_logical
                 << " R=" << t.num_physical << " G=" << t.num_gpus << " N=" << t.num_nodes);
    const Placement original = random_placement(rng, t);
    const auto dense = static_cast<std::uint32_t>(trial % 4);

    const std::string sglang = to_sglang_json(original, dense);
    // The expert count given, or inferred from the largest id (every expert is present).
    const std::uint32_t given = trial % 2 == 0 ? t.num_logical : 0;
    const Placement from_sglang = from_sglang_json(sglang, given, t.num_nodes, t.num_gpus, dense);
    expect_same(original, from_sglang);

    const std::string vllm = to_vllm_ascend_json(from_sglang);
    const Placement from_vllm = from_vllm_ascend_json(vllm, given, t.num_nodes);
    expect_same(original, from_vllm);

    // Writing again gives the same bytes: the formats are canonical.
    EXPECT_EQ(to_sglang_json(from_vllm, dense), sglang);
    EXPECT_EQ(to_vllm_ascend_json(from_vllm), vllm);
  }
}

TEST(JsonFormats, SglangDocumentHasOneKeyAndDenseRowsFirst) {
  // DeepSeek-V3's shape in miniature: 3 dense layers before the MoE layers.
  Topology t;
  t.num_layers = 2;
  t.num_logical = 4;
  t.num_physical = 6;
  t.num_gpus = 3;
  const Placement p = Placement::from_phy2log(t, {3, 2, 1, 0, 3, 3, 0, 1, 2, 3, 0, 0});
  const json document = json::parse(to_sglang_json(p, 3));
  ASSERT_TRUE(document.is_object());
  ASSERT_EQ(document.size(), 1U);
  const json& rows = document.at("physical_to_logical_map");
  ASSERT_EQ(rows.size(), 5U);
  for (int row = 0; row < 3; ++row) EXPECT_EQ(rows[row], json({0, 1, 2, 3, 0, 1})) << row;
  EXPECT_EQ(rows[3], json({3, 2, 1, 0, 3, 3}));
  EXPECT_EQ(rows[4], json({0, 1, 2, 3, 0, 0}));
  // Without dense layers, one row per MoE layer.
  EXPECT_EQ(json::parse(to_sglang_json(p, 0)).at("physical_to_logical_map").size(), 2U);
}

TEST(JsonFormats, DeepseekV3ShapeHas61Rows) {
  Topology t;
  t.num_layers = 58;
  t.num_logical = 256;
  t.num_physical = 288;
  t.num_gpus = 32;
  t.num_nodes = 4;
  std::mt19937_64 rng(3);
  const Placement p = random_placement(rng, t);
  const std::string text = to_sglang_json(p, 3);
  const json rows = json::parse(text).at("physical_to_logical_map");
  ASSERT_EQ(rows.size(), 61U);
  for (const json& row : rows) ASSERT_EQ(row.size(), 288U);
  expect_same(p, from_sglang_json(text, 256, 4, 32, 3));
}

TEST(JsonFormats, VllmAscendDocumentStructure) {
  Topology t;
  t.num_layers = 2;
  t.num_logical = 4;
  t.num_physical = 6;
  t.num_gpus = 3;
  const Placement p = Placement::from_phy2log(t, {3, 2, 1, 0, 3, 3, 0, 1, 2, 3, 0, 0});
  const json document = json::parse(to_vllm_ascend_json(p));
  EXPECT_EQ(document.at("moe_layer_count"), 2);
  const json& layers = document.at("layer_list");
  ASSERT_EQ(layers.size(), 2U);
  for (std::size_t l = 0; l < 2; ++l) {
    EXPECT_EQ(layers[l].at("layer_id"), l);
    EXPECT_EQ(layers[l].at("device_count"), 3);
    ASSERT_EQ(layers[l].at("device_list").size(), 3U);
    for (std::size_t d = 0; d < 3; ++d) {
      EXPECT_EQ(layers[l]["device_list"][d].at("device_id"), d);
    }
  }
  EXPECT_EQ(layers[0]["device_list"][0]["device_expert"], json({3, 2}));
  EXPECT_EQ(layers[0]["device_list"][2]["device_expert"], json({3, 3}));  // a duplicate
  EXPECT_EQ(layers[1]["device_list"][1]["device_expert"], json({2, 3}));
}

TEST(JsonFormats, VllmAscendOptionalKeysAndExtraKeys) {
  // vLLM-Ascend's own test file omits layer_id and device_id; unknown keys are ignored.
  const std::string text = R"({"moe_layer_count": 2, "strategy_version": 1, "layer_list": [
      {"device_count": 2, "device_list": [{"device_expert": [0, 1]}, {"device_expert": [2, 3]}]},
      {"device_list": [{"device_expert": [3, 2], "note": "x"}, {"device_expert": [1, 0]}]}]})";
  const Placement p = from_vllm_ascend_json(text, 0, 2);
  EXPECT_EQ(p.topology().num_layers, 2U);
  EXPECT_EQ(p.topology().num_logical, 4U);
  EXPECT_EQ(p.topology().num_gpus, 2U);
  EXPECT_EQ(p.topology().num_nodes, 2U);
  EXPECT_TRUE(std::ranges::equal(p.phy2log(), std::vector<std::int32_t>{0, 1, 2, 3, 3, 2, 1, 0}));
}

TEST(JsonFormats, ExplicitExpertCountLargerThanLargestId) {
  // Given E = 3 for a map whose ids are only 0..1: expert 2 is missing, which is corrupt.
  try {
    (void)from_sglang_json(R"({"physical_to_logical_map": [[0, 1, 1, 0]]})", 3, 1, 2, 0);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), Errc::corrupt);
    EXPECT_STREQ(error.what(),
                 "physical_to_logical_map[0] has no slot for logical expert 2 (every expert must "
                 "be placed in every MoE layer)");
  }
}

// -0 is a JSON integer equal to 0 (RFC 8259's grammar allows the sign): expert 0, not a negative
// id.
TEST(JsonFormats, MinusZeroIsZero) {
  const Placement p =
      from_sglang_json(R"({"physical_to_logical_map": [[-0, 1, 1, 0]]})", 0, 1, 2, 0);
  EXPECT_EQ(std::vector<std::int32_t>(p.phy2log().begin(), p.phy2log().end()),
            (std::vector<std::int32_t>{0, 1, 1, 0}));
}

TEST(JsonFormats, LoadsTwoAndThreeDimensions) {
  const LoadMatrix two = loads_from_sglang_json(R"({"logical_count": [[1, 2.5], [0, 4]]})");
  EXPECT_EQ(two.num_layers, 2U);
  EXPECT_EQ(two.num_experts, 2U);
  EXPECT_EQ(two.num_steps, 1U);
  EXPECT_EQ(two.loads, (std::vector<double>{1, 2.5, 0, 4}));

  const LoadMatrix three = loads_from_sglang_json(
      R"({"other": {"x": 1}, "logical_count": [[[1, 2, 3]], [[10, 20, 30]]], "rank": 0})");
  EXPECT_EQ(three.num_layers, 1U);
  EXPECT_EQ(three.num_experts, 3U);
  EXPECT_EQ(three.num_steps, 2U);
  EXPECT_EQ(three.loads, (std::vector<double>{11, 22, 33}));
}

// ------------------------------------------------------------------------------------------------
// Malformed input: every path, with its status and message.
// ------------------------------------------------------------------------------------------------

struct BadCase {
  const char* name;
  std::string text;
  Errc code;
  std::string message;  // a fragment of the message
};

template <typename Read>
void expect_rejected(const BadCase& c, const Read& read) {
  SCOPED_TRACE(c.name);
  try {
    read(c.text);
    ADD_FAILURE() << "accepted: " << c.text;
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), c.code) << error.what();
    EXPECT_NE(std::string(error.what()).find(c.message), std::string::npos)
        << "message: " << error.what() << "\nexpected to contain: " << c.message;
  }
}

TEST(JsonFormats, MalformedSglangMaps) {
  const Errc corrupt = Errc::corrupt;
  const Errc invalid = Errc::invalid_argument;
  const std::vector<BadCase> cases = {
      {"empty input", "", corrupt, "not a valid JSON document (SGLang placement map)"},
      {"truncated", R"({"physical_to_logical_map": [[0, 1])", corrupt, "not a valid JSON"},
      // nlohmann's lexer would stop at the NUL and accept the document before it.
      {"NUL after the document",
       std::string(R"({"physical_to_logical_map": [[0, 1]]})") + std::string(1, '\0') + "junk",
       corrupt, "a NUL byte at offset 37"},
      {"huge number", R"({"physical_to_logical_map": [[1e400]]})", corrupt,
       "not a valid JSON document (SGLang placement map): number overflow parsing '1e400'"},
      {"not an object", "[[0, 1]]", corrupt,
       "expected a JSON object with the single key physical_to_logical_map, found an array"},
      {"the map twice",
       R"({"physical_to_logical_map": [[0, 1]], "physical_to_logical_map": [[1, 0]]})", corrupt,
       "the key 'physical_to_logical_map' appears twice in one object"},
      {"extra key", R"({"physical_to_logical_map": [[0, 1]], "logical_count": [[1, 2]]})", corrupt,
       "unexpected key 'logical_count': SGLang's placement file holds exactly one key"},
      {"long extra key",
       R"({"physical_to_logical_map": [[0]], ")" + std::string(100, 'k') + R"(": 1})", corrupt,
       "'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...'"},
      {"empty object", "{}", corrupt, "no physical_to_logical_map key (the object is empty)"},
      {"map not a list", R"({"physical_to_logical_map": {"0": [0]}})", corrupt,
       "physical_to_logical_map is an object, expected a list of rows"},
      {"empty map", R"({"physical_to_logical_map": []})", corrupt,
       "physical_to_logical_map is an empty list"},
      {"row not a list", R"({"physical_to_logical_map": [[0, 1], 7]})", corrupt,
       "physical_to_logical_map[1] is a number, expected a list of expert ids"},
      {"empty row", R"({"physical_to_logical_map": [[]]})", corrupt,
       "physical_to_logical_map[0] is an empty list"},
      {"ragged", R"({"physical_to_logical_map": [[0, 1], [1, 0], [0]]})", corrupt,
       "physical_to_logical_map[2] has 1 slots, expected 2 (as row 0)"},
      {"string id", R"({"physical_to_logical_map": [[0, "1"]]})", corrupt,
       "physical_to_logical_map[0][1] is a string, expected an integer expert id"},
      {"null id", R"({"physical_to_logical_map": [[0, 1], [null, 1]]})", corrupt,
       "physical_to_logical_map[1][0] is null, expected an integer expert id"},
      {"float id", R"({"physical_to_logical_map": [[0, 1.5]]})", corrupt,
       "physical_to_logical_map[0][1] = 1.5 is not an integer"},
      {"negative id", R"({"physical_to_logical_map": [[0, 1], [1, -1]]})", corrupt,
       "physical_to_logical_map[1][1] = -1 is negative, not an expert id"},
      {"id above int32", R"({"physical_to_logical_map": [[0, 2147483648]]})", corrupt,
       "physical_to_logical_map[0][1] = 2147483648 is too large for an expert id"},
      {"inferred E above width", R"({"physical_to_logical_map": [[0, 1], [0, 5]]})", corrupt,
       "physical_to_logical_map[1][1] = 5 implies at least 6 logical experts, more than the 2 "
       "slots of a row"},
      {"missing expert", R"({"physical_to_logical_map": [[0, 1], [1, 1]]})", corrupt,
       "physical_to_logical_map[1] has no slot for logical expert 0"},
  };
  for (const auto& c : cases) {
    expect_rejected(c, [](const std::string& text) { (void)from_sglang_json(text, 0, 1, 1, 0); });
  }
  // Against the caller's expert count and topology.
  const std::string map = R"({"physical_to_logical_map": [[0, 1, 2, 3], [3, 2, 1, 0]]})";
  expect_rejected({"id out of range", map, corrupt,
                   "physical_to_logical_map[0][3] = 3 is not a logical expert id in [0, 3)"},
                  [](const std::string& text) { (void)from_sglang_json(text, 3, 1, 1, 0); });
  expect_rejected(
      {"E above width", map, invalid, "num_logical_experts (5) exceeds the 4 slots of a row"},
      [](const std::string& text) { (void)from_sglang_json(text, 5, 1, 1, 0); });
  expect_rejected({"width not a multiple of GPUs", map, invalid,
                   "the map's rows have 4 slots, not a multiple of num_gpus (3)"},
                  [](const std::string& text) { (void)from_sglang_json(text, 0, 1, 3, 0); });
  expect_rejected({"no GPUs", map, invalid, "num_gpus must be at least 1 (got 0)"},
                  [](const std::string& text) { (void)from_sglang_json(text, 0, 1, 0, 0); });
  expect_rejected({"no nodes", map, invalid, "num_nodes must be at least 1 (got 0)"},
                  [](const std::string& text) { (void)from_sglang_json(text, 0, 0, 1, 0); });
  expect_rejected({"GPUs not a multiple of nodes", map, invalid,
                   "num_gpus (2) must be a multiple of num_nodes (3)"},
                  [](const std::string& text) { (void)from_sglang_json(text, 0, 3, 2, 0); });
  expect_rejected({"dense layers swallow every row", map, invalid,
                   "num_dense_layers (2) leaves no MoE layer: physical_to_logical_map has 2 rows"},
                  [](const std::string& text) { (void)from_sglang_json(text, 0, 1, 1, 2); });
  // Dense rows are checked for shape and ids, not for completeness.
  const std::string dense = R"({"physical_to_logical_map": [[0, 0, 0, 0], [3, 2, 1, 0]]})";
  EXPECT_EQ(from_sglang_json(dense, 0, 1, 2, 1).topology().num_layers, 1U);
  expect_rejected(
      {"dense row id out of range", R"({"physical_to_logical_map": [[0, 9, 0, 0], [3, 2, 1, 0]]})",
       corrupt, "physical_to_logical_map[0][1] = 9 is not a logical expert id in [0, 4)"},
      [](const std::string& text) { (void)from_sglang_json(text, 0, 1, 2, 1); });
}

TEST(JsonFormats, MalformedVllmAscendMaps) {
  const Errc corrupt = Errc::corrupt;
  const auto layer = [](const std::string& devices) {
    return R"({"moe_layer_count": 1, "layer_list": [{"layer_id": 0, "device_count": 2, )"
           R"("device_list": )" +
           devices + "}]}";
  };
  const std::string ok_devices =
      R"([{"device_id": 0, "device_expert": [0, 1]}, {"device_id": 1, "device_expert": [2, 3]}])";
  ASSERT_NO_THROW((void)from_vllm_ascend_json(layer(ok_devices), 0, 1));
  const std::vector<BadCase> cases = {
      {"not JSON", "{", corrupt, "not a valid JSON document (vLLM-Ascend expert map)"},
      {"not an object", "7", corrupt,
       "expected a JSON object with moe_layer_count and layer_list, found a number"},
      {"no count", R"({"layer_list": []})", corrupt, "no moe_layer_count key"},
      {"count negative", R"({"moe_layer_count": -1, "layer_list": []})", corrupt,
       "moe_layer_count = -1 is negative"},
      {"count float", R"({"moe_layer_count": 1.5, "layer_list": []})", corrupt,
       "moe_layer_count = 1.5 is not an integer"},
      {"count string", R"({"moe_layer_count": "1", "layer_list": []})", corrupt,
       "moe_layer_count is a string, expected an integer"},
      {"no list", R"({"moe_layer_count": 1})", corrupt, "no layer_list key"},
      {"list not a list", R"({"moe_layer_count": 1, "layer_list": {}})", corrupt,
       "layer_list is an object, expected a list of layers"},
      {"empty list", R"({"moe_layer_count": 0, "layer_list": []})", corrupt,
       "layer_list is an empty list"},
      {"count mismatch", R"({"moe_layer_count": 2, "layer_list": [{}]})", corrupt,
       "layer_list has 1 layers but moe_layer_count is 2"},
      {"layer not an object", R"({"moe_layer_count": 1, "layer_list": [[]]})", corrupt,
       "layer_list[0] is an array, expected an object"},
      {"layer id wrong", R"({"moe_layer_count": 1, "layer_list": [{"layer_id": 3}]})", corrupt,
       "layer_list[0].layer_id = 3, expected 0 (layers are listed in order"},
      {"no device list", R"({"moe_layer_count": 1, "layer_list": [{"layer_id": 0}]})", corrupt,
       "layer_list[0] has no device_list key"},
      {"device list not a list", layer("3"), corrupt,
       "layer_list[0].device_list is a number, expected a list"},
      {"empty device list", layer("[]"), corrupt, "layer_list[0].device_list is an empty list"},
      {"device count mismatch", layer(R"([{"device_expert": [0, 1, 2, 3]}])"), corrupt,
       "layer_list[0].device_count = 2 but its device_list has 1 devices"},
      {"device not an object", layer(R"([{"device_expert": [0, 1]}, null])"), corrupt,
       "layer_list[0].device_list[1] is null, expected an object"},
      {"device id wrong",
       layer(R"([{"device_expert": [0, 1]}, {"device_id": 0, "device_expert": [2, 3]}])"), corrupt,
       "layer_list[0].device_list[1].device_id = 0, expected 1"},
      {"no device_expert", layer(R"([{"device_expert": [0, 1]}, {"device_id": 1}])"), corrupt,
       "layer_list[0].device_list[1] has no device_expert key"},
      {"device_expert not a list", layer(R"([{"device_expert": [0, 1]}, {"device_expert": 2}])"),
       corrupt, "layer_list[0].device_list[1].device_expert is a number, expected a list"},
      {"empty device_expert", layer(R"([{"device_expert": []}, {"device_expert": []}])"), corrupt,
       "layer_list[0].device_list[0].device_expert is an empty list"},
      {"uneven devices", layer(R"([{"device_expert": [0, 1]}, {"device_expert": [2, 3, 0]}])"),
       corrupt,
       "layer_list[0].device_list[1].device_expert has 3 experts, expected 2 (every device holds "
       "the same number)"},
      {"bad id", layer(R"([{"device_expert": [0, 1]}, {"device_expert": [2, true]}])"), corrupt,
       "layer_list[0].device_list[1].device_expert[1] is a boolean, expected an integer expert id"},
      {"missing expert", layer(R"([{"device_expert": [0, 1]}, {"device_expert": [3, 3]}])"),
       corrupt, "layer_list[0] has no slot for logical expert 2"},
      {"uneven layers",
       R"({"moe_layer_count": 2, "layer_list": [{"device_list": [{"device_expert": [0]}]},)"
       R"({"device_list": [{"device_expert": [0]}, {"device_expert": [0]}]}]})",
       corrupt, "layer_list[1].device_list has 2 devices, expected 1 (as layer 0)"},
  };
  for (const auto& c : cases) {
    expect_rejected(c, [](const std::string& text) { (void)from_vllm_ascend_json(text, 0, 1); });
  }
  expect_rejected({"id out of range", layer(ok_devices), corrupt,
                   "layer_list[0].device_list[1].device_expert[1] = 3 is not a logical expert id "
                   "in [0, 3)"},
                  [](const std::string& text) { (void)from_vllm_ascend_json(text, 3, 1); });
  expect_rejected({"devices not a multiple of nodes", layer(ok_devices), Errc::invalid_argument,
                   "the map's 2 devices are not a multiple of num_nodes (4)"},
                  [](const std::string& text) { (void)from_vllm_ascend_json(text, 0, 4); });
  expect_rejected({"no nodes", layer(ok_devices), Errc::invalid_argument,
                   "num_nodes must be at least 1 (got 0)"},
                  [](const std::string& text) { (void)from_vllm_ascend_json(text, 0, 0); });
}

TEST(JsonFormats, MalformedLoadFiles) {
  const Errc corrupt = Errc::corrupt;
  const std::vector<BadCase> cases = {
      {"not JSON", "{\"logical_count\": [[1, 2]", corrupt,
       "not a valid JSON document (SGLang load file)"},
      {"not an object", "[[1, 2]]", corrupt,
       "expected a JSON object with a logical_count key, found an array"},
      {"no key", R"({"counts": [[1]], "rank": 0})", corrupt,
       "no logical_count key (keys present: 'counts', 'rank')"},
      {"no key, empty", "{}", corrupt, "no logical_count key (keys present: none)"},
      {"a key twice in a nested object", R"({"logical_count": [[1]], "meta": {"a": 1, "a": 2}})",
       corrupt, "the key 'a' appears twice in one object"},
      {"not a list", R"({"logical_count": 3})", corrupt,
       "logical_count is a number, expected a list"},
      {"empty", R"({"logical_count": []})", corrupt, "logical_count is an empty list"},
      {"empty row", R"({"logical_count": [[]]})", corrupt, "logical_count[0] is an empty list"},
      {"ragged 2-D", R"({"logical_count": [[1, 2], [3]]})", corrupt,
       "logical_count[1] has 1 experts, expected 2 (as the first row)"},
      {"row not a list 2-D", R"({"logical_count": [[1, 2], 3]})", corrupt,
       "logical_count[1] is a number, expected a list"},
      {"string value", R"({"logical_count": [[1, "2"]]})", corrupt,
       "logical_count[0][1] is a string, expected a number"},
      {"nested value in 2-D", R"({"logical_count": [[1, [2]]]})", corrupt,
       "logical_count[0][1] is an array, expected a number"},
      {"negative", R"({"logical_count": [[1, 2], [3, -4.5]]})", corrupt,
       "logical_count[1][1] = -4.5 is negative"},
      {"huge", R"({"logical_count": [[1e999]]})", corrupt, "not a valid JSON document"},
      {"3-D steps disagree", R"({"logical_count": [[[1], [2]], [[3]]]})", corrupt,
       "logical_count[1] has 1 layers, expected 2 (as step 0)"},
      {"3-D ragged", R"({"logical_count": [[[1, 2]], [[3]]]})", corrupt,
       "logical_count[1][0] has 1 experts, expected 2 (as the first row)"},
      {"3-D step not a list", R"({"logical_count": [[[1]], 5]})", corrupt,
       "logical_count[1] is a number, expected a list"},
      {"3-D negative", R"({"logical_count": [[[1]], [[-1]]]})", corrupt,
       "logical_count[1][0][0] = -1 is negative"},
      {"3-D sum overflows", R"({"logical_count": [[[1e308]], [[1e308]]]})", corrupt,
       "logical_count[1][0][0]: the sum over steps of layer 0, expert 0 is not finite"},
  };
  for (const auto& c : cases) {
    expect_rejected(c, [](const std::string& text) { (void)loads_from_sglang_json(text); });
  }
}

TEST(JsonFormats, RaggedDocumentsDoNotAllocateWhatTheirFirstRowImplies) {
  // A 100000-wide first row and 100000 empty rows would be 10^10 ids (40 GB) if the reader sized
  // its arrays from the first row; it must fail on row 1 instead, as corrupt, not out of memory.
  std::string wide = "[0";
  for (int i = 1; i < 100000; ++i) wide += ",0";
  wide += "]";
  std::string rows;
  for (int i = 0; i < 100000; ++i) rows += ",[]";
  const auto expect_corrupt = [](const std::function<void()>& read, const std::string& message) {
    try {
      read();
      ADD_FAILURE() << "accepted";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), Errc::corrupt) << error.what();
      EXPECT_NE(std::string(error.what()).find(message), std::string::npos) << error.what();
    }
  };
  expect_corrupt(
      [&] {
        (void)from_sglang_json(R"({"physical_to_logical_map": [)" + wide + rows + "]}", 0, 1, 1, 0);
      },
      "physical_to_logical_map[1] has 0 slots, expected 100000 (as row 0)");
  expect_corrupt(
      [&] { (void)loads_from_sglang_json(R"({"logical_count": [)" + wide + rows + "]}"); },
      "logical_count[1] is an empty list");
}

TEST(JsonFormats, WriterRejectsTooManyRows) {
  Topology t;
  t.num_layers = 2;
  t.num_logical = 2;
  t.num_physical = 2;
  t.num_gpus = 1;
  const Placement p = Placement::from_phy2log(t, {0, 1, 1, 0});
  try {
    (void)to_sglang_json(p, 0x7fffffffU);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), Errc::invalid_argument);
    EXPECT_NE(std::string(error.what()).find("exceeds INT32_MAX rows"), std::string::npos);
  }
}

}  // namespace
}  // namespace eplb
