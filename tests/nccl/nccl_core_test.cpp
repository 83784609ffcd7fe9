// The NCCL layer below the C API: the run-time loader, the step logic the NCCL executor shares
// with the CPU transport (multi-tensor experts over LocalTransport, one thread per rank, and the
// exact op sequence a transport sees), the tracker counters the all-reduce sums, and, only where
// a GPU is present, the communicator itself with one rank (NCCL supports send/recv to self).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "communicator.hpp"
#include "error.hpp"
#include "local_transport.hpp"
#include "migration_exchange.hpp"
#include "migration_plan.hpp"
#include "nccl_api.hpp"
#include "placement.hpp"
#include "support/gpu_required.hpp"
#include "support/migration_ranks.hpp"
#include "support/scoped_env.hpp"
#include "tracker.hpp"

#if EPLB_HAVE_NCCL
#include <cuda_runtime_api.h>
#endif

namespace eplb {
namespace {

// --- loader -------------------------------------------------------------------------------------

using eplb::test::ScopedEnv;

TEST(NcclLoader, MissingLibraryIsNoNcclNamingThePath) {
  const ScopedEnv env("EPLB_NCCL_LIBRARY", "/nonexistent/libnccl.so.2");
  EXPECT_EQ(nccl::library_path(), "/nonexistent/libnccl.so.2");
  try {
    (void)nccl::api();
    FAIL() << "loading /nonexistent succeeded";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), Errc::no_nccl);
    EXPECT_NE(std::string(error.what()).find("/nonexistent/libnccl.so.2"), std::string::npos)
        << error.what();
  }
  // Still failing on the next call (a failed load is retried, not cached as success).
  EXPECT_THROW((void)nccl::api(), Error);
}

TEST(NcclLoader, LibraryWithoutNcclSymbolsIsNoNccl) {
  const ScopedEnv env("EPLB_NCCL_LIBRARY", "libzstd.so.1");  // loaded by libeplb's core anyway
  try {
    (void)nccl::api();
    FAIL() << "libzstd was accepted as NCCL";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), Errc::no_nccl);
    EXPECT_NE(std::string(error.what()).find("ncclGetVersion"), std::string::npos) << error.what();
  }
}

TEST(NcclLoader, DefaultPathLoadsNcclWhenInstalled) {
  const ScopedEnv env("EPLB_NCCL_LIBRARY", nullptr);
  EXPECT_EQ(nccl::library_path(), "libnccl.so.2");
  try {
    const nccl::NcclApi& api = nccl::api();
    EXPECT_GE(api.version, 2000);
    EXPECT_EQ(&api, &nccl::api());  // loaded once, reused
  } catch (const Error& error) {
    ASSERT_EQ(error.code(), Errc::no_nccl) << error.what();
    GTEST_SKIP() << "NCCL is not installed here: " << error.what();
  }
}

// check(): the call, NCCL's error string, the result code and where to find NCCL's reason.
TEST(NcclLoader, ErrorsNameTheCallAndNcclsErrorString) {
  nccl::NcclApi fake;
  fake.GetErrorString = [](nccl::ncclResult_t) { return "invalid usage"; };
  const auto message_of = [&](nccl::ncclResult_t result) -> std::string {
    try {
      nccl::check(fake, result, "ncclSend");
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), Errc::nccl);
      return error.what();
    }
    return "no error";
  };
  EXPECT_EQ(message_of(nccl::ncclSuccess), "no error");
  EXPECT_EQ(message_of(nccl::ncclInvalidUsage),
            "ncclSend failed: invalid usage (ncclResult_t 5; NCCL_DEBUG=WARN prints NCCL's "
            "reason)");
  EXPECT_TRUE(nccl::check_enqueue(fake, nccl::ncclInProgress, "ncclSend"));
  EXPECT_FALSE(nccl::check_enqueue(fake, nccl::ncclSuccess, "ncclSend"));
  EXPECT_THROW((void)nccl::check_enqueue(fake, nccl::ncclRemoteError, "ncclSend"), Error);
}

// --- the step logic, multi-tensor, over the CPU transport ----------------------------------------

using eplb::test::random_placement;

std::byte weight_byte(std::uint32_t layer, std::int32_t expert, std::uint32_t tensor,
                      std::size_t i) {
  std::uint64_t x = (std::uint64_t{layer} * 1000003u + static_cast<std::uint64_t>(expert)) *
                        0x9E3779B97F4A7C15ull +
                    (tensor + 1) * 0x94D049BB133111EBull + i * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 31;
  return static_cast<std::byte>(x ^ (x >> 17));
}

// A rank's weights as separate tensors per slot (each its own allocation, as on a GPU).
struct Rank {
  std::vector<std::vector<std::byte>> tensors;  // [layer][slot][tensor]
  std::vector<std::byte> staging;
};

std::vector<Rank> load(const Placement& placement, const std::vector<std::size_t>& sizes,
                       std::size_t staging_bytes) {
  std::vector<Rank> ranks(placement.topology().num_gpus);
  for (Rank& rank : ranks) rank.staging.resize(staging_bytes);
  for (const test::SlotExpert& s : test::slots_of(placement)) {
    for (std::uint32_t k = 0; k < sizes.size(); ++k) {
      std::vector<std::byte> bytes(sizes[k]);
      for (std::size_t i = 0; i < bytes.size(); ++i)
        bytes[i] = weight_byte(s.layer, s.expert, k, i);
      ranks[s.gpu].tensors.push_back(std::move(bytes));
    }
  }
  return ranks;
}

void expect_holds(const std::vector<Rank>& ranks, const Placement& placement,
                  const std::vector<std::size_t>& sizes) {
  const std::uint32_t per_gpu = placement.topology().slots_per_gpu();
  for (const test::SlotExpert& s : test::slots_of(placement)) {
    for (std::uint32_t k = 0; k < sizes.size(); ++k) {
      const auto& bytes =
          ranks[s.gpu].tensors[(std::size_t{s.layer} * per_gpu + s.slot) * sizes.size() + k];
      for (std::size_t i = 0; i < bytes.size(); ++i) {
        ASSERT_EQ(bytes[i], weight_byte(s.layer, s.expert, k, i))
            << "gpu " << s.gpu << " layer " << s.layer << " slot " << s.slot << " tensor " << k;
      }
    }
  }
}

ExpertTensors tensors_of(Rank& rank, const std::vector<std::size_t>& sizes, std::uint32_t per_gpu) {
  ExpertTensors weights;
  weights.tensor_bytes = sizes;
  weights.address = [&rank, &sizes, per_gpu](std::uint32_t layer, std::uint32_t slot,
                                             std::uint32_t k) {
    return rank.tensors[(std::size_t{layer} * per_gpu + slot) * sizes.size() + k].data();
  };
  return weights;
}

TEST(NcclExecutorLogic, MultiTensorExpertsReachTheirNewSlotsOverThreads) {
  std::mt19937_64 rng(2024);
  for (int trial = 0; trial < 16; ++trial) {
    const Topology t = test::trial_topology(trial, 2 + trial % 2);
    const std::vector<std::size_t> sizes = {static_cast<std::size_t>(5 + trial), 16, 3};
    const std::size_t expert_bytes = 24 + trial;
    const Placement old = random_placement(rng, t);
    const Placement next = random_placement(rng, t);
    MigrationOptions options;
    options.bytes_per_expert = expert_bytes;
    options.max_layers_per_step = trial % 2 ? 1 : 0;
    options.max_bytes_per_step = trial % 3 == 0 ? expert_bytes * 4 : 0;
    const auto plan = MigrationPlan::make(old, next, {}, options);
    auto ranks = load(old, sizes, plan.summary().max_staging_slots * expert_bytes);
    SCOPED_TRACE(testing::Message() << "trial " << trial);
    for (std::uint32_t step = 0; step < plan.summary().num_steps; ++step) {
      LocalTransportHub hub(t.num_gpus);
      test::run_rank_threads(t.num_gpus, [&](std::uint32_t rank) {
        const ExpertTensors weights = tensors_of(ranks[rank], sizes, t.slots_per_gpu());
        run_migration_step(rank_step_ops(plan, step, rank), weights, ranks[rank].staging,
                           hub.endpoint(rank));
      });
      EXPECT_EQ(hub.undelivered(), 0U) << "step " << step << ": an unmatched send or receive";
      expect_holds(ranks, plan.placement_after_step(step), sizes);
    }
    expect_holds(ranks, plan.target(), sizes);
  }
}

// Records what a transport is asked to do, in order.
class RecordingTransport final : public MigrationTransport {
 public:
  std::vector<std::string> log;
  void send(std::uint32_t peer, std::span<const std::byte> data) override {
    log.push_back("send " + std::to_string(peer) + " " + std::to_string(data.size()));
  }
  void recv(std::uint32_t peer, std::span<std::byte> data) override {
    log.push_back("recv " + std::to_string(peer) + " " + std::to_string(data.size()));
  }
  void wait() override { log.emplace_back("wait"); }
  void copy(std::span<std::byte> to, std::span<const std::byte> from) override {
    log.push_back("copy " + std::to_string(from.size()));
    MigrationTransport::copy(to, from);
  }
};

// Two GPUs trade experts and GPU 0 also copies one locally: the sequence the NCCL transport
// turns into memcpy, ncclGroupStart, sends, receives, ncclGroupEnd, memcpy.
TEST(NcclExecutorLogic, OpSequenceIsCopiesSendsRecvsWaitCommits) {
  const Topology t = test::one_layer_topology(3, 4, 2);
  const Placement old = Placement::from_phy2log(t, {0, 2, 1, 1});
  const Placement next = Placement::from_phy2log(t, {1, 0, 2, 0});
  MigrationOptions options;
  options.relabel = MigrationRelabel::none;
  const auto plan = MigrationPlan::make(old, next, {}, options);
  ASSERT_EQ(plan.summary().num_steps, 1u);
  const std::vector<std::size_t> sizes = {4, 2};
  auto ranks = load(old, sizes, 8 * plan.summary().max_staging_slots);
  RecordingTransport transport;
  const RankStepOps ops = rank_step_ops(plan, 0, 0);
  run_migration_step(ops, tensors_of(ranks[0], sizes, 2), ranks[0].staging, transport);
  const auto first = [&](const std::string& prefix) {
    return std::find_if(transport.log.begin(), transport.log.end(),
                        [&](const std::string& s) { return s.rfind(prefix, 0) == 0; }) -
           transport.log.begin();
  };
  const auto last = [&](const std::string& prefix) {
    const auto it = std::find_if(transport.log.rbegin(), transport.log.rend(),
                                 [&](const std::string& s) { return s.rfind(prefix, 0) == 0; });
    return transport.log.rend() - it - 1;
  };
  ASSERT_EQ(std::count(transport.log.begin(), transport.log.end(), "wait"), 1);
  const auto wait = first("wait");
  EXPECT_LT(last("send"), wait);
  EXPECT_LT(last("recv"), wait);
  EXPECT_LT(last("send"), first("recv"));
  // Every transfer moves each tensor separately: 2 entries per expert.
  std::size_t transfers = 0;
  for (const auto& entry : transport.log) transfers += entry != "wait";
  EXPECT_EQ(transfers % 2, 0u);
  EXPECT_EQ(transfers,
            2 * (ops.copies.size() + ops.sends.size() + ops.recvs.size() + ops.commits.size()));
  // Copies into staging come before the group, commits after it.
  if (!ops.copies.empty()) {
    EXPECT_EQ(first("copy"), 0);
  }
  ASSERT_FALSE(ops.commits.empty());
  EXPECT_GT(last("copy"), wait);
  EXPECT_EQ(transport.log.size() - 1 - static_cast<std::size_t>(wait), 2 * ops.commits.size());
}

TEST(NcclExecutorLogic, BadWeightsFailBeforeAnyTransfer) {
  const Topology t = test::one_layer_topology(2, 2, 2);
  const auto plan =
      MigrationPlan::make(Placement::from_phy2log(t, {0, 1}), Placement::from_phy2log(t, {1, 0}),
                          {}, MigrationOptions{.relabel = MigrationRelabel::none});
  const RankStepOps ops = rank_step_ops(plan, 0, 0);
  std::vector<std::byte> staging(64);
  const std::vector<std::size_t> sizes = {8, 8};
  ExpertTensors weights;
  weights.tensor_bytes = sizes;
  weights.address = [](std::uint32_t, std::uint32_t, std::uint32_t k) -> std::byte* {
    static std::byte memory[8];
    return k == 1 ? nullptr : memory;
  };
  RecordingTransport transport;
  EXPECT_THROW(run_migration_step(ops, weights, staging, transport), Error);
  EXPECT_TRUE(transport.log.empty());
  const std::vector<std::size_t> zero = {8, 0};
  weights.tensor_bytes = zero;
  EXPECT_THROW(run_migration_step(ops, weights, staging, transport), Error);
  weights.tensor_bytes = {};
  EXPECT_THROW(run_migration_step(ops, weights, staging, transport), Error);
  EXPECT_TRUE(transport.log.empty());
}

// --- tracker counters: the sum over ranks equals a merge
// -------------------------------------------

void record_random(Tracker& tracker, std::mt19937_64& rng, int batches) {
  const TrackerOptions& o = tracker.options();
  std::uniform_int_distribution<std::int32_t> id(-1, static_cast<std::int32_t>(o.num_experts) - 1);
  for (int b = 0; b < batches; ++b) {
    for (std::uint32_t layer = 0; layer < o.num_layers; ++layer) {
      std::vector<std::int32_t> ids(std::size_t{7} * o.top_k);
      for (auto& v : ids) v = id(rng);
      tracker.record(layer, ids, 7, o.top_k);
    }
  }
}

TEST(NcclTrackerCounters, SumOfRanksEqualsMerge) {
  for (const TrackerWindow window :
       {TrackerWindow::cumulative, TrackerWindow::sliding, TrackerWindow::decay}) {
    TrackerOptions o;
    o.num_layers = 2;
    o.num_experts = 6;
    o.top_k = 3;
    o.window = window;
    o.window_batches = 4;
    o.decay = 0.9;
    std::mt19937_64 rng(5 + static_cast<int>(window));
    Tracker a(o), b(o), c(o);
    record_random(a, rng, 3);
    record_random(b, rng, 6);
    record_random(c, rng, 1);
    Tracker merged = a;
    merged.merge(b);
    merged.merge(c);
    // What allreduce_tracker does, with the all-reduce done by hand.
    auto sum = a.counters();
    for (const Tracker* other : {&b, &c}) {
      const auto more = other->counters();
      ASSERT_EQ(more.counts.size(), sum.counts.size());
      for (std::size_t i = 0; i < sum.counts.size(); ++i) sum.counts[i] += more.counts[i];
      for (std::size_t i = 0; i < sum.weights.size(); ++i) sum.weights[i] += more.weights[i];
      for (std::size_t i = 0; i < sum.batches.size(); ++i) {
        sum.batches[i] = std::max(sum.batches[i], more.batches[i]);
      }
    }
    Tracker reduced(o);
    reduced.set_counters(sum);
    std::vector<double> want(o.num_layers * o.num_experts), got(want.size());
    merged.loads(want);
    reduced.loads(got);
    for (std::size_t i = 0; i < want.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 1e-9 * (1 + want[i]));
    for (std::uint32_t layer = 0; layer < o.num_layers; ++layer) {
      std::vector<double> pw(pair_count(o.num_experts)), pg(pw.size());
      merged.coactivation(layer, pw);
      reduced.coactivation(layer, pg);
      for (std::size_t i = 0; i < pw.size(); ++i) EXPECT_NEAR(pg[i], pw[i], 1e-9 * (1 + pw[i]));
      EXPECT_EQ(reduced.batches(layer), merged.batches(layer));
    }
    // Recording on continues identically (sliding windows retire the summed deltas).
    std::mt19937_64 same(99);
    std::mt19937_64 same2(99);
    record_random(merged, same, 5);
    record_random(reduced, same2, 5);
    merged.loads(want);
    reduced.loads(got);
    for (std::size_t i = 0; i < want.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 1e-9 * (1 + want[i]));
  }
}

TEST(NcclTrackerCounters, WrongLayoutIsRejectedWithoutChange) {
  TrackerOptions o;
  o.num_layers = 1;
  o.num_experts = 4;
  o.top_k = 2;
  Tracker t(o);
  auto c = t.counters();
  c.counts.pop_back();
  EXPECT_THROW(t.set_counters(c), Error);
  TrackerOptions other = o;
  other.top_k = 3;
  Tracker u(other);
  EXPECT_THROW(nccl::check_tracker_pair(t, u), Error);
}

// --- the communicator, one rank, only with a GPU
// ----------------------------------------------------

#if EPLB_HAVE_NCCL
bool have_gpu_and_nccl(std::string& why) {
  try {
    (void)nccl::api();
    nccl::Communicator::require_device_pointer(nullptr, "probe");
  } catch (const Error& error) {
    if (error.code() == Errc::invalid_argument) return true;  // the device exists; NULL refused
    why = error.what();
    return false;
  }
  return true;
}

// Skips the calling test without a GPU or NCCL; without a GPU it fails instead when
// EPLB_REQUIRE_GPU=1 (a missing NCCL stays a skip).
#define SKIP_WITHOUT_GPU_AND_NCCL()                                               \
  do {                                                                            \
    std::string why_;                                                             \
    if (!have_gpu_and_nccl(why_)) {                                               \
      if (eplb::test::gpu_required() && why_.find("NCCL") == std::string::npos) { \
        FAIL() << "EPLB_REQUIRE_GPU=1 but libeplb finds no GPU: " << why_;        \
      }                                                                           \
      GTEST_SKIP() << "no GPU or NCCL: " << why_;                                 \
    }                                                                             \
  } while (false)
#endif

TEST(NcclCommunicator, CreationWithoutGpuIsNoDeviceOrNccl) {
  std::string why;
#if EPLB_HAVE_NCCL
  if (have_gpu_and_nccl(why)) GTEST_SKIP() << "a GPU is present: covered by the GPU tests";
#endif
  nccl::UniqueId id{};
  try {
    (void)nccl::Communicator::create(id, 1, 0, -1);
    FAIL() << "a communicator was created without a GPU";
  } catch (const Error& error) {
    EXPECT_TRUE(error.code() == Errc::no_device || error.code() == Errc::nccl ||
                error.code() == Errc::no_nccl)
        << error.what();
  }
}

#if EPLB_HAVE_NCCL
// NCCL supports send/recv to self: one rank exchanges bytes with itself through the transport
// the executor uses (grouped ncclSend/ncclRecv, then a device copy).
TEST(NcclCommunicator, TransportSendsToSelfOnOneGpu) {
  SKIP_WITHOUT_GPU_AND_NCCL();
  const auto comm = nccl::Communicator::create(nccl::make_unique_id(), 1, 0, 0);
  ASSERT_EQ(comm->size(), 1);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  constexpr std::size_t kBytes = 1 << 20;
  void* a = nullptr;
  void* b = nullptr;
  void* c = nullptr;
  ASSERT_EQ(cudaMalloc(&a, kBytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&b, kBytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&c, kBytes), cudaSuccess);
  ASSERT_EQ(cudaMemset(a, 0x5A, kBytes), cudaSuccess);
  ASSERT_EQ(cudaMemset(b, 0, kBytes), cudaSuccess);
  {
    const auto transport = comm->transport(stream);
    transport->send(0, std::span(static_cast<const std::byte*>(a), kBytes));
    transport->recv(0, std::span(static_cast<std::byte*>(b), kBytes));
    transport->wait();
    transport->copy(std::span(static_cast<std::byte*>(c), kBytes),
                    std::span(static_cast<const std::byte*>(b), kBytes));
  }
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  std::vector<unsigned char> back(kBytes);
  ASSERT_EQ(cudaMemcpy(back.data(), c, kBytes, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(std::count(back.begin(), back.end(), 0x5A), static_cast<std::ptrdiff_t>(kBytes));
  // Host all-reduce through the staging buffer (one rank: unchanged), twice to reuse it.
  std::vector<std::uint64_t> counts = {1, 2, 3};
  comm->allreduce_host(counts, nccl::ReduceOp::sum);
  comm->allreduce_host(counts, nccl::ReduceOp::max);
  EXPECT_EQ(counts, (std::vector<std::uint64_t>{1, 2, 3}));
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  cudaStreamDestroy(stream);
}

// The executor's own step logic over NCCL on one GPU: a rank that sends two multi-tensor experts
// to itself (grouped ncclSend/ncclRecv into staging), copies a third through staging, and
// commits all three, against the same ops over the CPU transport on host memory.
TEST(NcclCommunicator, MigrationStepSendsToSelfOnOneGpu) {
  SKIP_WITHOUT_GPU_AND_NCCL();
  const auto comm = nccl::Communicator::create(nccl::make_unique_id(), 1, 0, 0);
  RankStepOps ops;
  ops.sends = {{0, 0, 0}, {0, 0, 1}};               // slots 0 and 1 to self
  ops.recvs = {{0, 0}, {0, 1}};                     // into staging 0 and 1, in send order
  ops.copies = {{0, 2, 2}};                         // slot 2 through staging 2
  ops.commits = {{0, 0, 1}, {1, 0, 2}, {2, 0, 0}};  // a rotation: 0 -> 1 -> 2 -> 0
  ops.staging_slots = 3;
  const std::vector<std::size_t> sizes = {1000, 24};
  constexpr std::size_t kSlots = 3, kExpert = 1024;
  std::vector<std::byte> host(kSlots * kExpert);
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = static_cast<std::byte>(i * 7 + i / 997);
  const auto tensors = [&sizes](std::byte* base) {
    ExpertTensors weights;
    weights.tensor_bytes = sizes;
    weights.address = [base, &sizes](std::uint32_t, std::uint32_t slot, std::uint32_t t) {
      return base + slot * kExpert + (t == 0 ? 0 : sizes[0]);
    };
    return weights;
  };

  // The oracle: one rank over the CPU transport.
  std::vector<std::byte> expected = host, host_staging(kSlots * kExpert);
  LocalTransportHub hub(1);
  run_migration_step(ops, tensors(expected.data()), host_staging, hub.endpoint(0));
  ASSERT_EQ(hub.undelivered(), 0U);

  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  void* weights = nullptr;
  void* staging = nullptr;
  ASSERT_EQ(cudaMalloc(&weights, host.size()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&staging, kSlots * kExpert), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(weights, host.data(), host.size(), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemset(staging, 0xee, kSlots * kExpert), cudaSuccess);
  {
    const auto transport = comm->transport(stream);
    run_migration_step(ops, tensors(static_cast<std::byte*>(weights)),
                       std::span(static_cast<std::byte*>(staging), kSlots * kExpert), *transport);
  }
  comm->synchronize(stream);
  std::vector<std::byte> got(host.size());
  ASSERT_EQ(cudaMemcpy(got.data(), weights, got.size(), cudaMemcpyDeviceToHost), cudaSuccess);
  for (std::size_t slot = 0; slot < kSlots; ++slot) {
    // Only the tensors' bytes move (1024 bytes a slot, the first 1024 = 1000 + 24 of them).
    EXPECT_TRUE(std::equal(got.begin() + slot * kExpert, got.begin() + slot * kExpert + 1024,
                           expected.begin() + slot * kExpert))
        << "slot " << slot;
  }
  EXPECT_EQ(expected[1 * kExpert], host[0]) << "the oracle rotated slot 0 into slot 1";
  cudaFree(weights);
  cudaFree(staging);
  cudaStreamDestroy(stream);
}
#endif

}  // namespace
}  // namespace eplb
