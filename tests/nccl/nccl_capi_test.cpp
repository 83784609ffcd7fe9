// The NCCL part of the C API as a user sees it (eplb.h and libeplb.so only): the status without
// NCCL, unique ids, communicator creation without a GPU, and, where a GPU is present, one-rank
// all-reduces and a migration step executed over NCCL.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "eplb/eplb.h"
#include "support/gpu_test_support.hpp"
#include "support/scoped_env.hpp"
#include "support/token_exchange_options.hpp"

namespace {

using eplb::test::have_gpu;
using eplb::test::ScopedEnv;

// NCCL loads (default path) and the build has NCCL support.
bool nccl_loads(std::string& why) {
  const ScopedEnv env("EPLB_NCCL_LIBRARY", nullptr);
  int32_t version = 0;
  if (eplb_nccl_version(&version) == EPLB_OK) return true;
  why = eplb_last_error_message();
  return false;
}

TEST(NcclCapi, MissingLibraryIsNoNcclNamingThePath) {
  const ScopedEnv env("EPLB_NCCL_LIBRARY", "/nonexistent/libnccl.so.2");
  int32_t version = -7;
  ASSERT_EQ(eplb_nccl_version(&version), EPLB_ERR_NO_NCCL);
  EXPECT_EQ(version, -7);
  const std::string message = eplb_last_error_message();
  unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES];
  ASSERT_EQ(eplb_comm_get_unique_id(id, sizeof(id)), EPLB_ERR_NO_NCCL);
  eplb_comm* comm = nullptr;
  EXPECT_EQ(eplb_comm_create(id, sizeof(id), 1, 0, -1, &comm), EPLB_ERR_NO_NCCL);
  EXPECT_EQ(comm, nullptr);
  int dummy = 0;
  EXPECT_EQ(eplb_comm_adopt(&dummy, &comm), EPLB_ERR_NO_NCCL);
  std::string last = eplb_last_error_message();
  if (message.find("built without NCCL") == std::string::npos) {
    EXPECT_NE(message.find("/nonexistent/libnccl.so.2"), std::string::npos) << message;
    EXPECT_NE(last.find("/nonexistent/libnccl.so.2"), std::string::npos) << last;
  }
  EXPECT_STREQ(eplb_status_string(EPLB_ERR_NO_NCCL), eplb_status_string(EPLB_ERR_NO_NCCL));
}

TEST(NcclCapi, VersionIsNccl2WhenItLoads) {
  std::string why;
  if (!nccl_loads(why)) GTEST_SKIP() << "NCCL does not load here: " << why;
  int32_t version = 0;
  ASSERT_EQ(eplb_nccl_version(&version), EPLB_OK);
  EXPECT_GE(version, 2000);
  EXPECT_LT(version, 30000);
}

TEST(NcclCapi, UniqueIdRoundTrip) {
  std::string why;
  if (!nccl_loads(why)) GTEST_SKIP() << "NCCL does not load here: " << why;
  const ScopedEnv env("EPLB_NCCL_LIBRARY", nullptr);
  unsigned char small[EPLB_COMM_UNIQUE_ID_BYTES - 1];
  EXPECT_EQ(eplb_comm_get_unique_id(small, sizeof(small)), EPLB_ERR_BUFFER_TOO_SMALL);
  std::vector<unsigned char> a(EPLB_COMM_UNIQUE_ID_BYTES + 8, 0xEE);
  const eplb_status status = eplb_comm_get_unique_id(a.data(), a.size());
  if (status != EPLB_OK) {
    ASSERT_EQ(status, EPLB_ERR_NCCL) << eplb_last_error_message();
    GTEST_SKIP() << "ncclGetUniqueId fails on this machine: " << eplb_last_error_message();
  }
  // Exactly EPLB_COMM_UNIQUE_ID_BYTES written, not all zero, and two ids differ.
  EXPECT_EQ(a[EPLB_COMM_UNIQUE_ID_BYTES], 0xEE);
  bool nonzero = false;
  for (size_t i = 0; i < EPLB_COMM_UNIQUE_ID_BYTES; ++i) nonzero |= a[i] != 0;
  EXPECT_TRUE(nonzero);
  std::vector<unsigned char> b(EPLB_COMM_UNIQUE_ID_BYTES);
  ASSERT_EQ(eplb_comm_get_unique_id(b.data(), b.size()), EPLB_OK);
  EXPECT_NE(std::memcmp(a.data(), b.data(), EPLB_COMM_UNIQUE_ID_BYTES), 0);
  // The serialised bytes travel as plain bytes: a copy is a valid id for eplb_comm_create
  // (which here fails only for lack of a GPU, not because of the id).
  std::vector<unsigned char> received(a.begin(), a.begin() + EPLB_COMM_UNIQUE_ID_BYTES);
  if (have_gpu()) return;  // creation with a GPU is the GPU tests' job
  eplb_comm* comm = nullptr;
  const eplb_status created = eplb_comm_create(received.data(), received.size(), 1, 0, -1, &comm);
  EXPECT_TRUE(created == EPLB_ERR_NO_DEVICE || created == EPLB_ERR_NCCL)
      << eplb_status_string(created) << ": " << eplb_last_error_message();
  EXPECT_EQ(comm, nullptr);
}

TEST(NcclCapi, CreateWithoutGpuIsNoDeviceOrNccl) {
  if (have_gpu()) GTEST_SKIP() << "a GPU is present: covered by the GPU tests";
  std::string why;
  if (!nccl_loads(why)) GTEST_SKIP() << "NCCL does not load here: " << why;
  const ScopedEnv env("EPLB_NCCL_LIBRARY", nullptr);
  const std::vector<unsigned char> id(EPLB_COMM_UNIQUE_ID_BYTES, 0);
  eplb_comm* comm = nullptr;
  const eplb_status status = eplb_comm_create(id.data(), id.size(), 1, 0, -1, &comm);
  EXPECT_TRUE(status == EPLB_ERR_NO_DEVICE || status == EPLB_ERR_NCCL)
      << eplb_status_string(status) << ": " << eplb_last_error_message();
  EXPECT_NE(std::string(eplb_last_error_message()), "");
  EXPECT_EQ(comm, nullptr);
  int dummy = 0;
  const eplb_status adopted = eplb_comm_adopt(&dummy, &comm);
  EXPECT_EQ(adopted, EPLB_ERR_NO_DEVICE) << eplb_last_error_message();
}

// --- token exchange: what a host checks
// ---------------------------------------------------------------------

TEST(NcclCapi, TokenExchangeOptionsAreCheckedBeforeTheCommunicator) {
  eplb_token_exchange_options defaults;
  std::memset(&defaults, 0xff, sizeof(defaults));
  eplb_token_exchange_options_init(&defaults);
  EXPECT_EQ(defaults.struct_size, sizeof(defaults));
  EXPECT_EQ(defaults.out_dtype, static_cast<uint32_t>(EPLB_ROW_DTYPE_FLOAT32));
  EXPECT_EQ(defaults.capacity, 0u);
  eplb_token_exchange* exchange = nullptr;
  const eplb_token_exchange_options valid = eplb::test::small_token_exchange_options();
  EXPECT_EQ(eplb_token_exchange_create(nullptr, nullptr, &exchange), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("options"), std::string::npos);
  EXPECT_EQ(eplb_token_exchange_create(nullptr, &valid, nullptr), EPLB_ERR_INVALID_ARGUMENT);
  // The options are checked before the (here NULL) communicator, naming the field.
  const std::vector<std::pair<std::string, void (*)(eplb_token_exchange_options&)>> bad = {
      {"row_bytes (20)", [](eplb_token_exchange_options& o) { o.row_bytes = 20; }},
      {"hidden (0)", [](eplb_token_exchange_options& o) { o.hidden = 0; }},
      {"top_k (0)", [](eplb_token_exchange_options& o) { o.top_k = 0; }},
      {"slots_per_rank (0)", [](eplb_token_exchange_options& o) { o.slots_per_rank = 0; }},
      // One rank of 8192 slots: its 8193 local slots (the shared expert's last) are not sortable.
      {"slots_per_rank (8192)", [](eplb_token_exchange_options& o) { o.slots_per_rank = 8192; }},
      {"max_tokens (0)", [](eplb_token_exchange_options& o) { o.max_tokens = 0; }},
      {"out_dtype (3)", [](eplb_token_exchange_options& o) { o.out_dtype = 3; }},
      {"struct_size (4)", [](eplb_token_exchange_options& o) { o.struct_size = 4; }},
  };
  for (const auto& [needle, spoil] : bad) {
    eplb_token_exchange_options o = valid;
    spoil(o);
    EXPECT_EQ(eplb_token_exchange_create(nullptr, &o, &exchange), EPLB_ERR_INVALID_ARGUMENT)
        << needle;
    EXPECT_NE(std::string(eplb_last_error_message()).find(needle), std::string::npos)
        << eplb_last_error_message();
  }
  EXPECT_EQ(eplb_token_exchange_create(nullptr, &valid, &exchange), EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(eplb_last_error_message()).find("comm is NULL"), std::string::npos);
  EXPECT_EQ(exchange, nullptr);
  uint64_t rows = 0;
  EXPECT_EQ(eplb_token_exchange_dispatch(nullptr, 0, nullptr, nullptr, nullptr, nullptr, nullptr,
                                         nullptr, nullptr, 0, nullptr, &rows, nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(eplb_token_exchange_combine(nullptr, nullptr, 0, nullptr, nullptr),
            EPLB_ERR_INVALID_ARGUMENT);
  eplb_token_exchange_destroy(nullptr);
}

// --- one rank on a GPU
// ------------------------------------------------------------------------------

#if EPLB_TEST_WITH_CUDA
class OneRank : public testing::Test {
 protected:
  void SetUp() override {
    if (!have_gpu()) {
      if (eplb::test::gpu_required()) FAIL() << "EPLB_REQUIRE_GPU=1 but libeplb finds no GPU";
      GTEST_SKIP() << "no GPU: the NCCL execution paths were not run";
    }
    std::string why;
    if (!nccl_loads(why)) GTEST_SKIP() << "NCCL does not load here: " << why;
    unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES];
    ASSERT_EQ(eplb_comm_get_unique_id(id, sizeof(id)), EPLB_OK) << eplb_last_error_message();
    ASSERT_EQ(eplb_comm_create(id, sizeof(id), 1, 0, 0, &comm_), EPLB_OK)
        << eplb_last_error_message();
    ASSERT_EQ(cudaStreamCreate(&stream_), cudaSuccess);
  }
  void TearDown() override {
    eplb_comm_destroy(comm_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  eplb_comm* comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

TEST_F(OneRank, RankAndSize) {
  int32_t rank = -1, size = -1;
  ASSERT_EQ(eplb_comm_get_rank(comm_, &rank), EPLB_OK);
  ASSERT_EQ(eplb_comm_get_size(comm_, &size), EPLB_OK);
  EXPECT_EQ(rank, 0);
  EXPECT_EQ(size, 1);
}

TEST_F(OneRank, DeviceAllReduceOfRecorderCounts) {
  const std::vector<int64_t> counts = {1, 2, 3, 1LL << 40};
  void* device = nullptr;
  ASSERT_EQ(cudaMalloc(&device, counts.size() * 8), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(device, counts.data(), counts.size() * 8, cudaMemcpyHostToDevice),
            cudaSuccess);
  ASSERT_EQ(
      eplb_comm_allreduce(comm_, device, counts.size(), EPLB_COMM_INT64, EPLB_COMM_SUM, stream_),
      EPLB_OK)
      << eplb_last_error_message();
  std::vector<int64_t> back(counts.size());
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(back.data(), device, back.size() * 8, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(back, counts);  // one rank: the sum is itself
  // Host memory is refused by name.
  EXPECT_EQ(
      eplb_comm_allreduce(comm_, back.data(), back.size(), EPLB_COMM_INT64, EPLB_COMM_SUM, stream_),
      EPLB_ERR_INVALID_ARGUMENT);
  cudaFree(device);
}

TEST_F(OneRank, TrackerAllReduceKeepsOneRanksStatistics) {
  eplb_tracker_options options;
  eplb_tracker_options_init(&options);
  options.num_layers = 2;
  options.num_logical_experts = 4;
  options.top_k = 2;
  eplb_tracker* local = nullptr;
  eplb_tracker* sum = nullptr;
  ASSERT_EQ(eplb_tracker_create(&options, &local), EPLB_OK);
  ASSERT_EQ(eplb_tracker_create(&options, &sum), EPLB_OK);
  const int32_t ids[] = {0, 1, 2, 3, 1, -1};
  ASSERT_EQ(eplb_tracker_record(local, 1, ids, 3, 2), EPLB_OK);
  ASSERT_EQ(eplb_comm_allreduce_tracker(comm_, local, sum), EPLB_OK) << eplb_last_error_message();
  double want[8], got[8];
  ASSERT_EQ(eplb_tracker_get_loads(local, want, 8), EPLB_OK);
  ASSERT_EQ(eplb_tracker_get_loads(sum, got, 8), EPLB_OK);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(got[i], want[i]);
  ASSERT_EQ(eplb_comm_allreduce_tracker(comm_, local, local), EPLB_OK);  // in place
  eplb_tracker_destroy(local);
  eplb_tracker_destroy(sum);
}

// One GPU: layer 0 goes from experts {0, 1, 2, 2} to {0, 1, 1, 2}, so one slot gets expert 1's
// two tensors by a device copy through staging.
TEST_F(OneRank, MigrationStepCopiesThroughStaging) {
  const int32_t old_map[] = {0, 1, 2, 2};
  const int32_t new_map[] = {0, 1, 1, 2};
  eplb_placement* old_placement = nullptr;
  eplb_placement* new_placement = nullptr;
  ASSERT_EQ(eplb_placement_create_from_phy2log(1, 3, 4, 1, 1, old_map, 4, &old_placement), EPLB_OK);
  ASSERT_EQ(eplb_placement_create_from_phy2log(1, 3, 4, 1, 1, new_map, 4, &new_placement), EPLB_OK);
  const uint64_t tensor_bytes[] = {1000, 24};
  eplb_migration_options options;
  eplb_migration_options_init(&options);
  options.bytes_per_expert = 1024;
  eplb_migration* migration = nullptr;
  ASSERT_EQ(eplb_migration_plan(old_placement, new_placement, nullptr, 0, &options, &migration),
            EPLB_OK);
  eplb_migration_summary summary;
  summary.struct_size = sizeof(summary);
  ASSERT_EQ(eplb_migration_get_summary(migration, &summary), EPLB_OK);
  ASSERT_EQ(summary.num_steps, 1u);
  ASSERT_EQ(summary.moved_experts, 1u);
  // Device tensors: slot s tensor t filled with the byte 16 * expert + t + 1.
  std::vector<void*> slots(4 * 2);
  for (int s = 0; s < 4; ++s) {
    for (int t = 0; t < 2; ++t) {
      ASSERT_EQ(cudaMalloc(&slots[s * 2 + t], tensor_bytes[t]), cudaSuccess);
      ASSERT_EQ(cudaMemset(slots[s * 2 + t], 16 * old_map[s] + t + 1, tensor_bytes[t]),
                cudaSuccess);
    }
  }
  void* staging = nullptr;
  const uint64_t staging_bytes = summary.max_staging_experts * (tensor_bytes[0] + tensor_bytes[1]);
  ASSERT_EQ(cudaMalloc(&staging, staging_bytes), cudaSuccess);
  ASSERT_EQ(eplb_migration_execute_step(migration, comm_, 0, slots.data(), slots.size(),
                                        tensor_bytes, 2, staging, staging_bytes, stream_),
            EPLB_OK)
      << eplb_last_error_message();
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  eplb_placement* after = nullptr;
  ASSERT_EQ(eplb_migration_get_step_placement(migration, 0, &after), EPLB_OK);
  int32_t after_map[4];
  ASSERT_EQ(eplb_placement_get_phy2log(after, after_map, 4), EPLB_OK);
  for (int s = 0; s < 4; ++s) {
    for (int t = 0; t < 2; ++t) {
      std::vector<unsigned char> bytes(tensor_bytes[t]);
      ASSERT_EQ(cudaMemcpy(bytes.data(), slots[s * 2 + t], bytes.size(), cudaMemcpyDeviceToHost),
                cudaSuccess);
      for (unsigned char b : bytes) {
        ASSERT_EQ(b, 16 * after_map[s] + t + 1) << "slot " << s << " tensor " << t;
      }
    }
  }
  // Staging too small is refused before anything is enqueued.
  EXPECT_EQ(eplb_migration_execute_step(migration, comm_, 0, slots.data(), slots.size(),
                                        tensor_bytes, 2, staging, 8, stream_),
            EPLB_ERR_INVALID_ARGUMENT);
  for (void* p : slots) cudaFree(p);
  cudaFree(staging);
  eplb_placement_destroy(after);
  eplb_migration_destroy(migration);
  eplb_placement_destroy(old_placement);
  eplb_placement_destroy(new_placement);
}
// One rank: every token's slots are on rank 0, so each token comes back to itself once; its
// combined row must be the weighted sum of the experts (expert s: x * (s + 1)) the test computes
// from what it received. Exact and padded variants.
TEST_F(OneRank, TokenDispatchAndCombineThroughSelf) {
  for (const uint32_t capacity : {0U, 6U}) {
    eplb_token_exchange_options o =
        eplb::test::small_token_exchange_options();  // 4 slots, top-2, fp32, hidden 8
    o.capacity = capacity;
    eplb_token_exchange* exchange = nullptr;
    ASSERT_EQ(eplb_token_exchange_create(comm_, &o, &exchange), EPLB_OK)
        << eplb_last_error_message();
    const size_t tokens = 5, k = 2, hidden = 8;
    const std::vector<int32_t> slots = {0, 1, 3, -1, 2, 2, -1, -1, 1, 3};
    const std::vector<float> weights = {0.5F, 0.25F, 1.0F, 9.0F, 0.5F,
                                        0.5F, 2.0F,  2.0F, 1.0F, 2.0F};
    std::vector<float> rows(tokens * hidden);
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i % 13) - 6.0F;
    const size_t capacity_rows = 16;
    void *d_slots = nullptr, *d_weights = nullptr, *d_rows = nullptr, *d_recv_rows = nullptr,
         *d_recv_slots = nullptr, *d_recv_weights = nullptr, *d_counts = nullptr,
         *d_dropped = nullptr, *d_expert = nullptr, *d_out = nullptr;
    CUDA_OK(cudaMalloc(&d_slots, slots.size() * 4));
    CUDA_OK(cudaMalloc(&d_weights, weights.size() * 4));
    CUDA_OK(cudaMalloc(&d_rows, rows.size() * 4));
    CUDA_OK(cudaMalloc(&d_recv_rows, capacity_rows * hidden * 4));
    CUDA_OK(cudaMalloc(&d_recv_slots, capacity_rows * k * 4));
    CUDA_OK(cudaMalloc(&d_recv_weights, capacity_rows * k * 4));
    CUDA_OK(cudaMalloc(&d_counts, 4));
    CUDA_OK(cudaMalloc(&d_dropped, 4));
    CUDA_OK(cudaMalloc(&d_expert, capacity_rows * hidden * 4));
    CUDA_OK(cudaMalloc(&d_out, tokens * hidden * 4));
    CUDA_OK(cudaMemcpy(d_slots, slots.data(), slots.size() * 4, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(d_weights, weights.data(), weights.size() * 4, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(d_rows, rows.data(), rows.size() * 4, cudaMemcpyHostToDevice));
    uint64_t used = 0;
    ASSERT_EQ(eplb_token_exchange_dispatch(
                  exchange, tokens, static_cast<int32_t*>(d_slots), static_cast<float*>(d_weights),
                  d_rows, d_recv_rows, static_cast<int32_t*>(d_recv_slots),
                  static_cast<float*>(d_recv_weights), static_cast<int32_t*>(d_counts),
                  capacity_rows, static_cast<int32_t*>(d_dropped), &used, stream_),
              EPLB_OK)
        << eplb_last_error_message();
    CUDA_OK(cudaStreamSynchronize(stream_));
    int32_t count = -1, dropped = -1;
    CUDA_OK(cudaMemcpy(&count, d_counts, 4, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(&dropped, d_dropped, 4, cudaMemcpyDeviceToHost));
    EXPECT_EQ(count, 4);  // token 3 has no slot
    EXPECT_EQ(dropped, 0);
    EXPECT_EQ(used, capacity == 0 ? 4u : 6u);
    std::vector<float> got_rows(used * hidden), got_weights(used * k), expert(used * hidden, 0.0F);
    std::vector<int32_t> got_slots(used * k);
    CUDA_OK(cudaMemcpy(got_rows.data(), d_recv_rows, got_rows.size() * 4, cudaMemcpyDeviceToHost));
    CUDA_OK(
        cudaMemcpy(got_slots.data(), d_recv_slots, got_slots.size() * 4, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(got_weights.data(), d_recv_weights, got_weights.size() * 4,
                       cudaMemcpyDeviceToHost));
    const size_t sent_tokens[] = {0, 1, 2, 4};
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(0, std::memcmp(&got_rows[i * hidden], &rows[sent_tokens[i] * hidden], hidden * 4));
      for (size_t j = 0; j < k; ++j) {
        EXPECT_EQ(got_slots[i * k + j], slots[sent_tokens[i] * k + j]);
        EXPECT_EQ(got_weights[i * k + j],
                  slots[sent_tokens[i] * k + j] < 0 ? 0.0F : weights[sent_tokens[i] * k + j]);
      }
    }
    for (size_t i = 0; i < used; ++i) {
      for (size_t j = 0; j < k; ++j) {
        const int32_t s = got_slots[i * k + j];
        if (s < 0) continue;
        for (size_t h = 0; h < hidden; ++h) {
          expert[i * hidden + h] +=
              got_weights[i * k + j] * got_rows[i * hidden + h] * static_cast<float>(s + 1);
        }
      }
    }
    CUDA_OK(cudaMemcpy(d_expert, expert.data(), expert.size() * 4, cudaMemcpyHostToDevice));
    ASSERT_EQ(eplb_token_exchange_combine(exchange, d_expert, used, d_out, stream_), EPLB_OK)
        << eplb_last_error_message();
    std::vector<float> out(tokens * hidden);
    CUDA_OK(cudaStreamSynchronize(stream_));
    CUDA_OK(cudaMemcpy(out.data(), d_out, out.size() * 4, cudaMemcpyDeviceToHost));
    for (size_t t = 0; t < tokens; ++t) {
      for (size_t h = 0; h < hidden; ++h) {
        double want = 0.0;
        for (size_t j = 0; j < k; ++j) {
          const int32_t s = slots[t * k + j];
          if (s >= 0) want += double{weights[t * k + j]} * rows[t * hidden + h] * (s + 1);
        }
        EXPECT_NEAR(out[t * hidden + h], want, 1e-4 * (1.0 + std::abs(want))) << t << ", " << h;
      }
    }
    // Host memory is refused by name, before anything is enqueued.
    EXPECT_EQ(eplb_token_exchange_dispatch(
                  exchange, tokens, slots.data(), weights.data(), rows.data(), d_recv_rows,
                  static_cast<int32_t*>(d_recv_slots), static_cast<float*>(d_recv_weights),
                  static_cast<int32_t*>(d_counts), capacity_rows, nullptr, &used, stream_),
              EPLB_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(eplb_last_error_message()).find("topk_slots"), std::string::npos)
        << eplb_last_error_message();
    for (void* p : {d_slots, d_weights, d_rows, d_recv_rows, d_recv_slots, d_recv_weights, d_counts,
                    d_dropped, d_expert, d_out}) {
      cudaFree(p);
    }
    eplb_token_exchange_destroy(exchange);
  }
}
// The padded variant under CUDA graph capture: dispatch and combine captured once and replayed
// give the eager run's outputs bit for bit (no host synchronisation inside the capture).
TEST_F(OneRank, PaddedTokenExchangeReplaysFromACudaGraph) {
  eplb_token_exchange_options o =
      eplb::test::small_token_exchange_options();  // 4 slots, top-2, fp32, hidden 8
  o.capacity = 8;
  eplb_token_exchange* exchange = nullptr;
  ASSERT_EQ(eplb_token_exchange_create(comm_, &o, &exchange), EPLB_OK) << eplb_last_error_message();
  const size_t tokens = 8, k = 2, hidden = 8, rows_cap = 8;
  std::vector<int32_t> slots(tokens * k);
  std::vector<float> weights(tokens * k), rows(tokens * hidden), expert(rows_cap * hidden);
  for (size_t i = 0; i < slots.size(); ++i) slots[i] = static_cast<int32_t>((i * 5) % 6) - 1;
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = 0.25F * static_cast<float>(i % 5);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i % 11) - 5.0F;
  for (size_t i = 0; i < expert.size(); ++i) expert[i] = static_cast<float>(i % 7) * 0.5F;
  std::vector<void*> buffers;
  const auto upload = [&](const void* host, size_t bytes) {
    void* device = nullptr;
    EXPECT_EQ(cudaMalloc(&device, bytes), cudaSuccess);
    if (host != nullptr) {
      EXPECT_EQ(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice), cudaSuccess);
    }
    buffers.push_back(device);
    return device;
  };
  auto* d_slots = static_cast<int32_t*>(upload(slots.data(), slots.size() * 4));
  auto* d_weights = static_cast<float*>(upload(weights.data(), weights.size() * 4));
  void* d_rows = upload(rows.data(), rows.size() * 4);
  void* d_recv_rows = upload(nullptr, rows_cap * hidden * 4);
  auto* d_recv_slots = static_cast<int32_t*>(upload(nullptr, rows_cap * k * 4));
  auto* d_recv_weights = static_cast<float*>(upload(nullptr, rows_cap * k * 4));
  auto* d_counts = static_cast<int32_t*>(upload(nullptr, 4));
  void* d_expert = upload(expert.data(), expert.size() * 4);
  void* d_out = upload(nullptr, tokens * hidden * 4);
  uint64_t used = 0;
  const auto step = [&] {
    ASSERT_EQ(eplb_token_exchange_dispatch(exchange, tokens, d_slots, d_weights, d_rows,
                                           d_recv_rows, d_recv_slots, d_recv_weights, d_counts,
                                           rows_cap, nullptr, &used, stream_),
              EPLB_OK)
        << eplb_last_error_message();
    ASSERT_EQ(eplb_token_exchange_combine(exchange, d_expert, used, d_out, stream_), EPLB_OK)
        << eplb_last_error_message();
  };
  step();
  CUDA_OK(cudaStreamSynchronize(stream_));
  std::vector<float> eager(tokens * hidden), replayed(tokens * hidden);
  CUDA_OK(cudaMemcpy(eager.data(), d_out, eager.size() * 4, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemset(d_out, 0xff, tokens * hidden * 4));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t instance = nullptr;
  CUDA_OK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal));
  step();
  CUDA_OK(cudaStreamEndCapture(stream_, &graph));
  CUDA_OK(cudaGraphInstantiate(&instance, graph, 0));
  CUDA_OK(cudaGraphLaunch(instance, stream_));
  CUDA_OK(cudaStreamSynchronize(stream_));
  CUDA_OK(cudaMemcpy(replayed.data(), d_out, replayed.size() * 4, cudaMemcpyDeviceToHost));
  EXPECT_EQ(0, std::memcmp(eager.data(), replayed.data(), eager.size() * 4));
  cudaGraphExecDestroy(instance);
  cudaGraphDestroy(graph);
  for (void* p : buffers) cudaFree(p);
  eplb_token_exchange_destroy(exchange);
}
#endif

}  // namespace
