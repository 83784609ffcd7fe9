// Folding physical slot ids to logical experts: every kernel this CPU runs against a plain
// per-id oracle, on layers of every size the AVX-512 kernel's chunks meet (and past its limit),
// with masked ids, bad ids anywhere (in the vector steps and in the scalar tail), and tables the
// 16-bit kernel cannot hold.
#include <gtest/gtest.h>

#include <cstdint>
#include <iostream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "slot_fold.hpp"

namespace eplb {
namespace {

constexpr FoldKernel kKernels[] = {FoldKernel::scalar, FoldKernel::avx2, FoldKernel::avx512};

std::string name_of(FoldKernel kernel) {
  switch (kernel) {
    case FoldKernel::scalar:
      return "scalar";
    case FoldKernel::avx2:
      return "avx2";
    case FoldKernel::avx512:
      return "avx512";
  }
  return "?";
}

// The oracle: the expert of each id, or -1; nullopt-like `ok = false` for a bad id.
struct Folded {
  std::vector<std::int32_t> experts;
  bool ok = true;
};
Folded fold_by_hand(const std::vector<std::int32_t>& ids,
                    const std::vector<std::int32_t>& phy2log) {
  Folded f;
  for (const std::int32_t id : ids) {
    if (id == -1) {
      f.experts.push_back(-1);
    } else if (id >= 0 && static_cast<std::size_t>(id) < phy2log.size()) {
      f.experts.push_back(phy2log[static_cast<std::size_t>(id)]);
    } else {
      f.ok = false;
      f.experts.push_back(0);  // unspecified
    }
  }
  return f;
}

// Checks one case with every supported kernel; returns how many kernels ran.
int check_all(const std::vector<std::int32_t>& ids, const std::vector<std::int32_t>& phy2log,
              const std::string& what) {
  const Folded expected = fold_by_hand(ids, phy2log);
  int ran = 0;
  for (const FoldKernel kernel : kKernels) {
    if (!fold_kernel_supported(kernel)) continue;
    ++ran;
    std::vector<std::int32_t> out(ids.size(), 12345);
    const bool ok = fold_slots_with(kernel, ids, phy2log, out.data());
    EXPECT_EQ(ok, expected.ok) << name_of(kernel) << ": " << what;
    if (!expected.ok || !ok) continue;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (out[i] != expected.experts[i]) {
        ADD_FAILURE() << name_of(kernel) << ": " << what << ", id " << ids[i] << " at " << i
                      << " folded to " << out[i] << ", not " << expected.experts[i];
        break;
      }
    }
  }
  std::vector<std::int32_t> out(ids.size());
  EXPECT_EQ(fold_slots(ids, phy2log, out.data()), expected.ok) << "fastest: " << what;
  if (expected.ok) {
    EXPECT_EQ(out, expected.experts) << "fastest: " << what;
  }
  return ran;
}

TEST(SlotFold, TheScalarKernelAlwaysRunsAndTheFastestIsSupported) {
  EXPECT_TRUE(fold_kernel_supported(FoldKernel::scalar));
  EXPECT_TRUE(fold_kernel_supported(fastest_fold_kernel()));
  if (fold_kernel_supported(FoldKernel::avx512)) {
    EXPECT_EQ(fastest_fold_kernel(), FoldKernel::avx512);
  }
}

TEST(SlotFold, EveryKernelMatchesTheOracleOnRandomLayers) {
  std::mt19937_64 rng(7);
  // Slot counts at and around each 64-slot chunk the AVX-512 kernel instantiates, DeepSeek-V3's
  // 288, its 1024-slot limit and past it (gathers).
  const std::uint32_t slot_counts[] = {1,   2,   31,  32,  63,   64,   65,   127,  128, 129,
                                       255, 256, 288, 320, 352,  384,  448,  511,  512, 513,
                                       700, 767, 768, 769, 1000, 1023, 1024, 1025, 4096};
  int kernels_ran = 0;
  for (const std::uint32_t slots : slot_counts) {
    for (const std::size_t n :
         {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{31}, std::size_t{32},
          std::size_t{33}, std::size_t{64 * 8 + 5}, std::size_t{8192}}) {
      // Experts up to 65535, the 16-bit kernel's limit.
      std::vector<std::int32_t> phy2log(slots);
      std::uniform_int_distribution<std::int32_t> expert(0, 65535);
      for (auto& e : phy2log) e = expert(rng);
      std::vector<std::int32_t> ids(n);
      for (auto& id : ids) {
        id = rng() % 10 == 0 ? -1 : static_cast<std::int32_t>(rng() % slots);
      }
      const std::string what = std::to_string(slots) + " slots, " + std::to_string(n) + " ids";
      kernels_ran = check_all(ids, phy2log, what);
      // One bad id, in the vector part and in the tail.
      if (n == 0) continue;
      const std::int32_t bad_ids[] = {
          -2, static_cast<std::int32_t>(slots), static_cast<std::int32_t>(slots) + 64,
          std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()};
      for (const std::size_t at : {std::size_t{0}, n / 2, n - 1}) {
        auto damaged = ids;
        damaged[at] = bad_ids[rng() % std::size(bad_ids)];
        check_all(damaged, phy2log,
                  what + ", bad id " + std::to_string(damaged[at]) + " at " + std::to_string(at));
      }
    }
  }
  if (kernels_ran < 3) {
    std::cout << "[ note ] this CPU runs " << kernels_ran
              << " of the 3 fold kernels; the others were not tested here\n";
  }
}

TEST(SlotFold, TablesBeyondSixteenBitsFallBackAndStayExact) {
  // Experts of 2^16 and more (and the largest int32), which the 16-bit table cannot hold.
  std::mt19937_64 rng(11);
  for (const std::uint32_t slots : {5u, 64u, 288u, 1024u}) {
    std::vector<std::int32_t> phy2log(slots);
    for (std::uint32_t s = 0; s < slots; ++s) phy2log[s] = static_cast<std::int32_t>(s);
    phy2log[slots / 2] = 65536;
    phy2log[slots - 1] = std::numeric_limits<std::int32_t>::max();
    std::vector<std::int32_t> ids(1000);
    for (auto& id : ids) id = rng() % 7 == 0 ? -1 : static_cast<std::int32_t>(rng() % slots);
    ids[3] = static_cast<std::int32_t>(slots - 1);
    check_all(ids, phy2log, std::to_string(slots) + " slots, large expert ids");
  }
}

TEST(SlotFold, AllMaskedAndEmptyLayers) {
  const std::vector<std::int32_t> phy2log = {4, 3, 2, 1};
  check_all(std::vector<std::int32_t>(100, -1), phy2log, "all masked");
  // A layer with no slots: only masked ids are good.
  check_all(std::vector<std::int32_t>(40, -1), {}, "no slots, all masked");
  check_all({-1, 0, -1}, {}, "no slots, id 0");
}

}  // namespace
}  // namespace eplb
