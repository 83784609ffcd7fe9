// GPU-vs-CPU parity of the token exchange's kernels (kernels/token_exchange.hpp): the pack, the
// receive counts and the combine on random layouts of several ranks, exact and padded, fp32,
// fp16 and bf16, bit for bit. One GPU is enough: the kernels do not communicate. Skips with a
// message where there is no GPU.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../kernels/device.hpp"
#include "../kernels/dispatch.hpp"
#include "../kernels/token_exchange.hpp"
#include "error.hpp"

#if EPLB_TEST_WITH_CUDA
#include "support/gpu_test_support.hpp"
#endif

namespace eplb::kernels {
namespace {

bool have_device(std::string& why) {
  try {
    require_device();
    return true;
  } catch (const Error& e) {
    why = e.what();
    return false;
  }
}

TEST(TokenKernels, PackCountsAndCombineMatchTheCpuReferenceBitForBit) {
  std::string why;
  if (!have_device(why)) GTEST_SKIP() << "no CUDA device (" << why << "): parity not checked";
#if EPLB_TEST_WITH_CUDA
  using test::DeviceArray;
  std::mt19937_64 rng(17);
  // 24 small random trials, then two that reach the strided paths: production-sized rows and
  // hidden (several y-blocks in combine), and more ranks than a block has threads with padded
  // slabs large enough that the fill blocks stride.
  for (int trial = 0; trial < 26; ++trial) {
    auto ranks = static_cast<uint32_t>(1 + rng() % 40);
    auto slots = static_cast<uint32_t>(1 + rng() % 8);
    size_t k = 1 + rng() % 8;
    size_t tokens = rng() % 300;
    uint32_t capacity = trial % 2 == 0 ? 0 : static_cast<uint32_t>(1 + rng() % 40);
    auto dtype = static_cast<RowDtype>(trial % 3);
    size_t hidden = 8 * (1 + rng() % 4);
    size_t row_bytes = 16 * (1 + rng() % 5);
    if (trial == 24) {  // exact, 7 KiB rows, bf16 outputs of hidden 4096
      ranks = 200, slots = 2, k = 8, tokens = 64, capacity = 0;
      dtype = RowDtype::bfloat16, hidden = 4096, row_bytes = 7168;
    } else if (trial == 25) {  // padded, 256 ranks, 1.2M slot entries to fill
      ranks = 256, slots = 2, k = 8, tokens = 300, capacity = 600;
      dtype = RowDtype::float32, hidden = 8, row_bytes = 32;
    }
    const uint32_t experts = ranks * slots;
    std::vector<int32_t> ids(tokens * k);
    // Masked and invalid ids, physical slots, and the shared expert's slots experts + r.
    for (auto& id : ids) id = static_cast<int32_t>(rng() % (experts + ranks + 3)) - 2;
    std::vector<float> weights(tokens * k);
    for (auto& w : weights) w = static_cast<float>(rng() % 1000) / 7.0F;
    std::vector<uint8_t> rows(tokens * row_bytes);
    for (auto& b : rows) b = static_cast<uint8_t>(rng());

    // The layout on the CPU, shared by both sides.
    std::vector<int32_t> per_expert(experts), per_rank(ranks), per_node(1), offsets(tokens * ranks);
    std::vector<uint8_t> in_rank(tokens * ranks);
    std::vector<std::byte> workspace(layout_workspace_bytes(tokens, k, experts, ranks, 1) + 4);
    LayoutArgs layout;
    layout.topk_ids = ids.data();
    layout.num_tokens = tokens;
    layout.top_k = k;
    layout.num_experts = experts;
    layout.num_ranks = ranks;
    layout.num_nodes = 1;
    layout.tokens_per_expert = per_expert.data();
    layout.tokens_per_rank = per_rank.data();
    layout.tokens_per_node = per_node.data();
    layout.is_token_in_rank = in_rank.data();
    layout.send_offsets = offsets.data();
    layout.workspace = workspace.data();
    layout.workspace_size = workspace.size();
    dispatch_layout_cpu(layout);

    const size_t send_rows = capacity > 0 ? size_t{ranks} * capacity : tokens * ranks + 1;
    ExchangeGeometry g;
    g.num_tokens = tokens;
    g.num_ranks = ranks;
    g.slots_per_rank = slots;
    g.top_k = k;
    g.capacity = capacity;
    std::vector<uint8_t> cpu_rows(send_rows * row_bytes, 0xcd);
    std::vector<int32_t> cpu_slots(send_rows * k, 0x5a5a5a5a), cpu_message(ranks + 1);
    std::vector<float> cpu_weights(send_rows * k, -3.0F);
    int32_t cpu_dropped = -1;
    TokenPackArgs pack;
    pack.geometry = g;
    pack.geometry.tokens_per_rank = per_rank.data();
    pack.geometry.send_offsets = offsets.data();
    pack.topk_slots = ids.data();
    pack.topk_weights = weights.data();
    pack.rows = rows.data();
    pack.row_bytes = row_bytes;
    pack.recv_capacity = 1234;
    pack.send_rows = cpu_rows.data();
    pack.send_slots = cpu_slots.data();
    pack.send_weights = cpu_weights.data();
    pack.count_message = cpu_message.data();
    pack.dropped = &cpu_dropped;
    token_pack_cpu(pack);

    const DeviceArray<int32_t> d_ids(ids), d_per_rank(per_rank), d_offsets(offsets);
    const DeviceArray<float> d_weights(weights);
    const DeviceArray<uint8_t> d_rows(rows);
    DeviceArray<uint8_t> d_send_rows(cpu_rows.size());
    DeviceArray<int32_t> d_send_slots(cpu_slots.size()), d_message(ranks + 1), d_dropped(1);
    DeviceArray<float> d_send_weights(cpu_weights.size());
    // What the kernel leaves alone must match too: start from the CPU side's initial bytes.
    d_send_rows.from_host(std::vector<uint8_t>(cpu_rows.size(), 0xcd));
    d_send_slots.from_host(std::vector<int32_t>(cpu_slots.size(), 0x5a5a5a5a));
    d_send_weights.from_host(std::vector<float>(cpu_weights.size(), -3.0F));
    TokenPackArgs gpu = pack;
    gpu.geometry.tokens_per_rank = d_per_rank.pointer;
    gpu.geometry.send_offsets = d_offsets.pointer;
    gpu.topk_slots = d_ids.pointer;
    gpu.topk_weights = d_weights.pointer;
    gpu.rows = d_rows.pointer;
    gpu.send_rows = d_send_rows.pointer;
    gpu.send_slots = d_send_slots.pointer;
    gpu.send_weights = d_send_weights.pointer;
    gpu.count_message = d_message.pointer;
    gpu.dropped = d_dropped.pointer;
    launch_token_pack(gpu, nullptr);
    CUDA_OK(cudaDeviceSynchronize());
    const std::string where = "trial " + std::to_string(trial);
    EXPECT_EQ(d_send_rows.to_host(), cpu_rows) << where;
    EXPECT_EQ(d_send_slots.to_host(), cpu_slots) << where;
    EXPECT_EQ(d_send_weights.to_host(), cpu_weights) << where;
    EXPECT_EQ(d_message.to_host(), cpu_message) << where;
    EXPECT_EQ(d_dropped.to_host()[0], cpu_dropped) << where;

    // Receive counts of a random rank out of a random gathered matrix.
    std::vector<int32_t> gathered(size_t{ranks} * (ranks + 1));
    for (auto& c : gathered) c = static_cast<int32_t>(rng() % 100);
    const auto me = static_cast<uint32_t>(rng() % ranks);
    std::vector<int32_t> cpu_counts(ranks);
    RecvCountsArgs counts{gathered.data(), ranks, me, cpu_counts.data()};
    recv_counts_cpu(counts);
    const DeviceArray<int32_t> d_gathered(gathered);
    DeviceArray<int32_t> d_counts(ranks);
    launch_recv_counts({d_gathered.pointer, ranks, me, d_counts.pointer}, nullptr);
    CUDA_OK(cudaDeviceSynchronize());
    EXPECT_EQ(d_counts.to_host(), cpu_counts) << where;

    // Combine of random partial rows (including -0 and NaN-free extremes).
    const size_t element = row_dtype_bytes(dtype);
    std::vector<uint8_t> partial(send_rows * hidden * element);
    for (auto& b : partial) b = static_cast<uint8_t>(rng());
    if (dtype == RowDtype::float32) {  // keep fp32 values finite: random bits make NaNs
      auto* f = reinterpret_cast<float*>(partial.data());
      for (size_t i = 0; i < send_rows * hidden; ++i)
        f[i] = static_cast<float>(rng() % 2001) / 3.0F - 333.0F;
    }
    // Every 7th element -0: a token with one destination keeps it only if the sum starts from -0.
    for (size_t i = 0; i < send_rows * hidden; i += 7) {
      if (dtype == RowDtype::float32) {
        const float negative_zero = -0.0F;
        std::memcpy(&partial[i * 4], &negative_zero, 4);
      } else {
        const uint16_t negative_zero = 0x8000;
        std::memcpy(&partial[i * 2], &negative_zero, 2);
      }
    }
    std::vector<uint8_t> cpu_out(tokens * hidden * element + 16);
    TokenCombineArgs combine;
    combine.geometry = pack.geometry;
    combine.partial = partial.data();
    combine.dtype = dtype;
    combine.hidden = hidden;
    combine.out = cpu_out.data();
    token_combine_cpu(combine);
    const DeviceArray<uint8_t> d_partial(partial);
    DeviceArray<uint8_t> d_out(cpu_out.size());
    TokenCombineArgs gpu_combine = combine;
    gpu_combine.geometry = gpu.geometry;
    gpu_combine.partial = d_partial.pointer;
    gpu_combine.out = d_out.pointer;
    launch_token_combine(gpu_combine, nullptr);
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<uint8_t> out = d_out.to_host();
    const size_t used = tokens * hidden * element;
    // Half-precision NaN payloads may differ between the CPU's and the GPU's rounding; compare
    // every element, treating two NaNs as equal.
    size_t mismatches = 0;
    for (size_t i = 0; i < used; i += element) {
      if (std::memcmp(&out[i], &cpu_out[i], element) == 0) continue;
      float a = 0, b = 0;
      if (dtype == RowDtype::float32) {
        std::memcpy(&a, &out[i], 4);
        std::memcpy(&b, &cpu_out[i], 4);
      } else {
        uint16_t x = 0, y = 0;
        std::memcpy(&x, &out[i], 2);
        std::memcpy(&y, &cpu_out[i], 2);
        a = dtype == RowDtype::bfloat16 ? bf16_to_float(x) : fp16_to_float(x);
        b = dtype == RowDtype::bfloat16 ? bf16_to_float(y) : fp16_to_float(y);
      }
      if (!(a != a && b != b)) ++mismatches;
    }
    EXPECT_EQ(mismatches, 0u) << where;
  }
#endif
}

}  // namespace
}  // namespace eplb::kernels
