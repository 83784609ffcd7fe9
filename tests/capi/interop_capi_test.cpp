// The interop section of the C API (SGLang's and vLLM-Ascend's JSON files) through libeplb.so
// only: round trips, buffers owned by the caller, inputs that are not NUL-terminated, NULL
// arguments, and statuses with messages for bad documents. Documents are parsed back with an
// independent JSON parser (nlohmann), never with the library.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "eplb/eplb.h"
#include "support/capi_placement.hpp"

namespace {

using nlohmann::json;

using eplb::test::info_of;
using eplb::test::phy2log_of;
using eplb::test::PlacementPtr;

struct BufferDeleter {
  void operator()(void* p) const { eplb_buffer_free(p); }
};

// DeepSeek EPLB README example: 2 layers x 12 experts, 16 slots, 2 nodes, 8 GPUs.
const std::vector<double> kReadmeWeights = {
    90, 132, 40,  61, 104, 165, 39,  4,   73,  56, 183, 86,  //
    20, 107, 104, 64, 19,  197, 187, 157, 172, 86, 16,  27};
const std::vector<int32_t> kReadmePhy2log = {5, 6,  5, 7, 8, 4,  3, 4, 10, 9, 10, 2, 0, 1, 11, 1,
                                             7, 10, 6, 8, 6, 11, 8, 9, 2,  4, 5,  1, 5, 0, 3,  1};

PlacementPtr readme_placement() {
  eplb_placement* raw = nullptr;
  EXPECT_EQ(eplb_placement_create_from_phy2log(2, 12, 16, 2, 8, kReadmePhy2log.data(),
                                               kReadmePhy2log.size(), &raw),
            EPLB_OK)
      << eplb_last_error_message();
  return PlacementPtr(raw);
}

// Calls a writer, checks the buffer (NUL at out_len, no earlier NUL) and returns its text.
template <typename Write>
std::string written(const Write& write) {
  char* text = nullptr;
  size_t len = 0;
  EXPECT_EQ(write(&text, &len), EPLB_OK) << eplb_last_error_message();
  if (text == nullptr) return {};
  std::unique_ptr<char, BufferDeleter> owned(text);
  EXPECT_EQ(text[len], '\0');
  EXPECT_EQ(std::strlen(text), len);
  return {text, len};
}

std::string sglang_of(const eplb_placement* p, uint32_t dense) {
  return written(
      [&](char** text, size_t* len) { return eplb_placement_to_sglang_json(p, dense, text, len); });
}

std::string vllm_of(const eplb_placement* p) {
  return written(
      [&](char** text, size_t* len) { return eplb_placement_to_vllm_ascend_json(p, text, len); });
}

PlacementPtr from_sglang(const std::string& text, uint32_t experts, uint32_t nodes, uint32_t gpus,
                         uint32_t dense) {
  eplb_placement* raw = nullptr;
  EXPECT_EQ(
      eplb_placement_from_sglang_json(text.data(), text.size(), experts, nodes, gpus, dense, &raw),
      EPLB_OK)
      << eplb_last_error_message();
  return PlacementPtr(raw);
}

PlacementPtr from_vllm(const std::string& text, uint32_t experts, uint32_t nodes) {
  eplb_placement* raw = nullptr;
  EXPECT_EQ(eplb_placement_from_vllm_ascend_json(text.data(), text.size(), experts, nodes, &raw),
            EPLB_OK)
      << eplb_last_error_message();
  return PlacementPtr(raw);
}

TEST(Interop, SglangRoundTripWithDenseLayers) {
  const PlacementPtr planned = readme_placement();
  for (uint32_t dense : {0U, 3U}) {
    const std::string text = sglang_of(planned.get(), dense);
    const json document = json::parse(text);
    ASSERT_EQ(document.size(), 1U);
    const json& rows = document.at("physical_to_logical_map");
    ASSERT_EQ(rows.size(), 2U + dense);
    for (uint32_t row = 0; row < dense; ++row) {
      for (uint32_t slot = 0; slot < 16; ++slot) EXPECT_EQ(rows[row][slot], slot % 12);
    }
    const PlacementPtr back = from_sglang(text, 12, 2, 8, dense);
    ASSERT_NE(back, nullptr);
    EXPECT_EQ(phy2log_of(back.get()), kReadmePhy2log);
    const eplb_placement_info info = info_of(back.get());
    EXPECT_EQ(info.num_layers, 2U);
    EXPECT_EQ(info.num_logical_experts, 12U);
    EXPECT_EQ(info.num_nodes, 2U);
    EXPECT_EQ(info.num_gpus, 8U);
    EXPECT_EQ(info.algorithm, 0U);  // imported
    // The expert count inferred from the largest id gives the same placement.
    EXPECT_EQ(phy2log_of(from_sglang(text, 0, 2, 8, dense).get()), kReadmePhy2log);
  }
}

TEST(Interop, VllmAscendRoundTripAndCrossConversion) {
  const PlacementPtr original = readme_placement();
  const std::string vllm = vllm_of(original.get());
  const json document = json::parse(vllm);
  EXPECT_EQ(document.at("moe_layer_count"), 2);
  ASSERT_EQ(document.at("layer_list").size(), 2U);
  EXPECT_EQ(document["layer_list"][1]["device_list"][7]["device_expert"], json({3, 1}));

  const PlacementPtr back = from_vllm(vllm, 0, 2);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(phy2log_of(back.get()), kReadmePhy2log);
  EXPECT_EQ(info_of(back.get()).num_gpus, 8U);
  // SGLang -> placement -> vLLM-Ascend -> placement -> SGLang is the identity on the bytes.
  const std::string sglang = sglang_of(original.get(), 3);
  const PlacementPtr via_sglang = from_sglang(sglang, 12, 2, 8, 3);
  const PlacementPtr via_vllm = from_vllm(vllm_of(via_sglang.get()), 12, 2);
  EXPECT_EQ(sglang_of(via_vllm.get(), 3), sglang);
}

TEST(Interop, RandomPlacementsRoundTrip) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 50; ++trial) {
    const uint32_t nodes = 1 + static_cast<uint32_t>(rng() % 3);
    const uint32_t gpus = nodes * (1 + static_cast<uint32_t>(rng() % 4));
    const uint32_t experts = 1 + static_cast<uint32_t>(rng() % 20);
    const uint32_t per_gpu = (experts + gpus - 1) / gpus + static_cast<uint32_t>(rng() % 3);
    const uint32_t physical = per_gpu * gpus;
    const uint32_t layers = 1 + static_cast<uint32_t>(rng() % 5);
    std::vector<int32_t> map;
    for (uint32_t l = 0; l < layers; ++l) {
      std::vector<int32_t> row(experts);
      std::iota(row.begin(), row.end(), 0);
      while (row.size() < physical) row.push_back(static_cast<int32_t>(rng() % experts));
      std::shuffle(row.begin(), row.end(), rng);
      map.insert(map.end(), row.begin(), row.end());
    }
    eplb_placement* raw = nullptr;
    ASSERT_EQ(eplb_placement_create_from_phy2log(layers, experts, physical, nodes, gpus, map.data(),
                                                 map.size(), &raw),
              EPLB_OK)
        << eplb_last_error_message();
    const PlacementPtr p(raw);
    EXPECT_EQ(phy2log_of(from_sglang(sglang_of(p.get(), 1), 0, nodes, gpus, 1).get()), map);
    EXPECT_EQ(phy2log_of(from_vllm(vllm_of(p.get()), experts, nodes).get()), map);
  }
}

TEST(Interop, InputNeedNotBeNulTerminated) {
  const std::string text = R"({"physical_to_logical_map": [[1, 0]]}garbage that is not read)";
  const size_t len = text.find("garbage");
  eplb_placement* raw = nullptr;
  ASSERT_EQ(eplb_placement_from_sglang_json(text.data(), len, 0, 1, 1, 0, &raw), EPLB_OK)
      << eplb_last_error_message();
  const PlacementPtr p(raw);
  EXPECT_EQ(phy2log_of(p.get()), (std::vector<int32_t>{1, 0}));
  // With the garbage counted in, the document is not JSON.
  raw = nullptr;
  EXPECT_EQ(eplb_placement_from_sglang_json(text.data(), text.size(), 0, 1, 1, 0, &raw),
            EPLB_ERR_CORRUPT);
  EXPECT_EQ(raw, nullptr);
}

TEST(Interop, LoadsFromSglangJson) {
  const std::string two = R"({"logical_count": [[1, 2, 3], [4, 5.5, 0]], "rank": 3})";
  double* loads = nullptr;
  uint32_t layers = 0;
  uint32_t experts = 0;
  ASSERT_EQ(eplb_loads_from_sglang_json(two.data(), two.size(), &loads, &layers, &experts), EPLB_OK)
      << eplb_last_error_message();
  std::unique_ptr<double, BufferDeleter> owned(loads);
  EXPECT_EQ(layers, 2U);
  EXPECT_EQ(experts, 3U);
  EXPECT_EQ(std::vector<double>(loads, loads + 6), (std::vector<double>{1, 2, 3, 4, 5.5, 0}));

  // [steps][layers][experts] is summed over steps.
  const std::string three = R"({"logical_count": [[[1, 2]], [[3, 4]], [[5, 6]]]})";
  double* summed = nullptr;
  ASSERT_EQ(eplb_loads_from_sglang_json(three.data(), three.size(), &summed, &layers, &experts),
            EPLB_OK);
  std::unique_ptr<double, BufferDeleter> owned_summed(summed);
  EXPECT_EQ(layers, 1U);
  EXPECT_EQ(experts, 2U);
  EXPECT_EQ(summed[0], 9.0);
  EXPECT_EQ(summed[1], 12.0);
}

TEST(Interop, BadDocumentsAreCorruptWithMessages) {
  struct Case {
    std::string text;
    const char* message;
  };
  eplb_placement* untouched = readme_placement().release();
  const PlacementPtr keep(untouched);
  for (const Case& c : std::vector<Case>{
           {"not json", "not a valid JSON document (SGLang placement map)"},
           {R"({"physical_to_logical_map": [[0, 1]], "x": 1})", "unexpected key 'x'"},
           {R"({"physical_to_logical_map": [[0, 1], [0]]})",
            "physical_to_logical_map[1] has 1 slots, expected 2 (as row 0)"},
           {R"({"physical_to_logical_map": [[0, 1], [1, 1]]})",
            "physical_to_logical_map[1] has no slot for logical expert 0"},
       }) {
    eplb_placement* out = untouched;
    EXPECT_EQ(eplb_placement_from_sglang_json(c.text.data(), c.text.size(), 0, 1, 1, 0, &out),
              EPLB_ERR_CORRUPT);
    EXPECT_NE(std::string(eplb_last_error_message()).find(c.message), std::string::npos)
        << eplb_last_error_message();
    EXPECT_EQ(out, untouched);  // outputs are written only on success
  }
  const std::string vllm = R"({"moe_layer_count": 1, "layer_list": [{"device_list": [)"
                           R"({"device_expert": [0, 1]}, {"device_expert": [1]}]}]})";
  eplb_placement* out = untouched;
  EXPECT_EQ(eplb_placement_from_vllm_ascend_json(vllm.data(), vllm.size(), 0, 1, &out),
            EPLB_ERR_CORRUPT);
  EXPECT_STREQ(eplb_last_error_message(),
               "layer_list[0].device_list[1].device_expert has 1 experts, expected 2 (every "
               "device holds the same number)");
  EXPECT_EQ(out, untouched);

  const std::string counts = R"({"logical_count": [[1, -2]]})";
  double* loads = nullptr;
  uint32_t layers = 7;
  uint32_t experts = 7;
  EXPECT_EQ(eplb_loads_from_sglang_json(counts.data(), counts.size(), &loads, &layers, &experts),
            EPLB_ERR_CORRUPT);
  EXPECT_STREQ(eplb_last_error_message(), "logical_count[0][1] = -2 is negative");
  EXPECT_EQ(loads, nullptr);
  EXPECT_EQ(layers, 7U);
  EXPECT_EQ(experts, 7U);
}

TEST(Interop, InconsistentTopologyIsInvalidArgument) {
  const std::string text = R"({"physical_to_logical_map": [[0, 1, 2, 3]]})";
  eplb_placement* out = nullptr;
  EXPECT_EQ(eplb_placement_from_sglang_json(text.data(), text.size(), 0, 1, 3, 0, &out),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(eplb_last_error_message(),
               "the map's rows have 4 slots, not a multiple of num_gpus (3)");
  EXPECT_EQ(eplb_placement_from_sglang_json(text.data(), text.size(), 0, 2, 3, 0, &out),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(eplb_placement_from_sglang_json(text.data(), text.size(), 0, 1, 2, 1, &out),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(eplb_last_error_message(),
               "num_dense_layers (1) leaves no MoE layer: physical_to_logical_map has 1 rows");
  EXPECT_EQ(eplb_placement_from_sglang_json(text.data(), text.size(), 5, 1, 2, 0, &out),
            EPLB_ERR_INVALID_ARGUMENT);
  const std::string vllm = R"({"moe_layer_count": 1, "layer_list": [{"device_list": [)"
                           R"({"device_expert": [0]}, {"device_expert": [1]}]}]})";
  EXPECT_EQ(eplb_placement_from_vllm_ascend_json(vllm.data(), vllm.size(), 0, 0, &out),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(eplb_placement_from_vllm_ascend_json(vllm.data(), vllm.size(), 0, 4, &out),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(out, nullptr);
}

TEST(Interop, NullArguments) {
  const PlacementPtr p = readme_placement();
  char* text = nullptr;
  size_t len = 0;
  const auto expect_null = [](eplb_status status, const char* name) {
    EXPECT_EQ(status, EPLB_ERR_INVALID_ARGUMENT) << name;
    EXPECT_EQ(std::string(eplb_last_error_message()), std::string(name) + " is NULL");
  };
  expect_null(eplb_placement_to_sglang_json(nullptr, 0, &text, &len), "placement");
  expect_null(eplb_placement_to_sglang_json(p.get(), 0, nullptr, &len), "out_json");
  expect_null(eplb_placement_to_sglang_json(p.get(), 0, &text, nullptr), "out_len");
  expect_null(eplb_placement_to_vllm_ascend_json(nullptr, &text, &len), "placement");
  expect_null(eplb_placement_to_vllm_ascend_json(p.get(), nullptr, &len), "out_json");
  expect_null(eplb_placement_to_vllm_ascend_json(p.get(), &text, nullptr), "out_len");
  EXPECT_EQ(text, nullptr);
  EXPECT_EQ(len, 0U);

  const std::string map = R"({"physical_to_logical_map": [[0]]})";
  eplb_placement* out = nullptr;
  expect_null(eplb_placement_from_sglang_json(nullptr, 10, 0, 1, 1, 0, &out), "json");
  expect_null(eplb_placement_from_sglang_json(map.data(), map.size(), 0, 1, 1, 0, nullptr),
              "out_placement");
  expect_null(eplb_placement_from_vllm_ascend_json(nullptr, 10, 0, 1, &out), "json");
  expect_null(eplb_placement_from_vllm_ascend_json(map.data(), map.size(), 0, 1, nullptr),
              "out_placement");
  EXPECT_EQ(out, nullptr);

  const std::string counts = R"({"logical_count": [[1]]})";
  double* loads = nullptr;
  uint32_t layers = 0;
  uint32_t experts = 0;
  expect_null(eplb_loads_from_sglang_json(nullptr, 5, &loads, &layers, &experts), "json");
  expect_null(eplb_loads_from_sglang_json(counts.data(), counts.size(), nullptr, &layers, &experts),
              "out_loads");
  expect_null(eplb_loads_from_sglang_json(counts.data(), counts.size(), &loads, nullptr, &experts),
              "out_num_layers");
  expect_null(eplb_loads_from_sglang_json(counts.data(), counts.size(), &loads, &layers, nullptr),
              "out_num_experts");
  EXPECT_EQ(loads, nullptr);
  // A successful call clears the message.
  EXPECT_FALSE(sglang_of(p.get(), 0).empty());
  EXPECT_STREQ(eplb_last_error_message(), "");
}

TEST(Interop, DuplicatesOnOneGpuAreAValidPlacement) {
  // Expert 0 twice on GPU 0: a valid (if wasteful) placement in both formats.
  const std::string vllm =
      R"({"moe_layer_count": 1, "layer_list": [{"layer_id": 0, )"
      R"("device_count": 2, "device_list": [{"device_id": 0, )"
      R"("device_expert": [0, 0]}, {"device_id": 1, "device_expert": [1, 2]}]}]})";
  const PlacementPtr p = from_vllm(vllm, 0, 1);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(phy2log_of(p.get()), (std::vector<int32_t>{0, 0, 1, 2}));
  EXPECT_EQ(info_of(p.get()).log2phy_width, 2U);
  EXPECT_EQ(json::parse(sglang_of(p.get(), 0)),
            json::parse(R"({"physical_to_logical_map": [[0, 0, 1, 2]]})"));
}

}  // namespace
