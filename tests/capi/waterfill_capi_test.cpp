// eplb_shared_expert_waterfill through the C ABI: a hand-checked example, padding, the loads
// counted from the batch when not given, and bad input answered with a status and a message.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "eplb/eplb.h"

namespace {

struct PlacementPtr {
  eplb_placement* p = nullptr;
  ~PlacementPtr() { eplb_placement_destroy(p); }
};

// One layer, 4 experts on 4 GPUs of one slot each: slot g is on GPU g.
PlacementPtr four_gpus() {
  PlacementPtr p;
  const std::vector<std::int32_t> phy2log{0, 1, 2, 3};
  EXPECT_EQ(eplb_placement_create_from_phy2log(1, 4, 4, 1, 4, phy2log.data(), 4, &p.p), EPLB_OK);
  return p;
}

TEST(WaterfillCapi, HandCheckedExample) {
  const PlacementPtr p = four_gpus();
  // Token 0 visits GPUs 0, 1; token 1 only GPU 2; token 2 is padding; token 3 visits 0, 3.
  const std::vector<std::int32_t> topk{0, 1, 2, -1, -1, -1, 0, 3};
  std::vector<double> loads{5, 3, 0, 3};
  std::vector<std::int32_t> out(4 * 3, 99);
  ASSERT_EQ(eplb_shared_expert_waterfill(p.p, topk.data(), 4, 2, nullptr, nullptr, loads.data(), 4,
                                         0, out.data(), out.size()),
            EPLB_OK)
      << eplb_last_error_message();
  // Fewest candidates first: token 1 -> GPU 2 (slot 4 + 2); token 0 -> GPU 1 (3 < 5); token 3 ->
  // GPU 3 (3 < 5).
  EXPECT_EQ(out, (std::vector<std::int32_t>{0, 1, 5, 2, -1, 6, -1, -1, -1, 0, 3, 7}));
  EXPECT_EQ(loads, (std::vector<double>{5, 4, 1, 4}));

  // Without loads they are counted from the batch: GPU loads {2, 1, 1, 1}.
  ASSERT_EQ(eplb_shared_expert_waterfill(p.p, topk.data(), 4, 2, nullptr, nullptr, nullptr, 0,
                                         EPLB_WATERFILL_ANY_GPU, out.data(), out.size()),
            EPLB_OK);
  // Any GPU: every token has 4 candidates, so token order: token 0 -> GPU 1 (the lowest id
  // among the least loaded {1, 2, 3}), token 1 -> GPU 2, token 3 -> GPU 3.
  EXPECT_EQ(out[2], 4 + 1);
  EXPECT_EQ(out[5], 4 + 2);
  EXPECT_EQ(out[11], 4 + 3);
}

TEST(WaterfillCapi, BadInputReturnsStatusAndNamesTheValue) {
  const PlacementPtr p = four_gpus();
  const std::vector<std::int32_t> topk{0, 1, 2, 7};
  std::vector<std::int32_t> out(6, 99);
  auto expect = [&](eplb_status st, const char* needle) {
    EXPECT_EQ(st, EPLB_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(eplb_last_error_message()).find(needle), std::string::npos)
        << eplb_last_error_message();
    EXPECT_EQ(out, std::vector<std::int32_t>(6, 99));
  };
  const std::vector<std::int32_t> good{0, 1, 2, 3};
  expect(eplb_shared_expert_waterfill(nullptr, good.data(), 2, 2, nullptr, nullptr, nullptr, 0, 0,
                                      out.data(), 6),
         "placement is NULL");
  expect(eplb_shared_expert_waterfill(p.p, topk.data(), 2, 2, nullptr, nullptr, nullptr, 0, 0,
                                      out.data(), 6),
         "topk_slots[3] = 7");
  expect(eplb_shared_expert_waterfill(p.p, good.data(), 2, 0, nullptr, nullptr, nullptr, 0, 0,
                                      out.data(), 6),
         "top_k (0)");
  expect(eplb_shared_expert_waterfill(p.p, good.data(), 2, 2, nullptr, nullptr, nullptr, 0, 8,
                                      out.data(), 6),
         "flags (8)");
  expect(eplb_shared_expert_waterfill(p.p, good.data(), 2, 2, nullptr, nullptr, nullptr, 0, 0,
                                      out.data(), 5),
         "out_topk_len (5)");
  const std::vector<std::int32_t> source{0, 4};
  expect(eplb_shared_expert_waterfill(p.p, good.data(), 2, 2, source.data(), nullptr, nullptr, 0, 0,
                                      out.data(), 6),
         "source_gpu[1] = 4");
  std::vector<double> loads{1, 2, 3};
  expect(eplb_shared_expert_waterfill(p.p, good.data(), 2, 2, nullptr, nullptr, loads.data(), 3, 0,
                                      out.data(), 6),
         "gpu_len (3)");
}

}  // namespace
