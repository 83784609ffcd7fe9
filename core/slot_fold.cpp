#include "slot_fold.hpp"

#include <algorithm>
#include <array>
#include <limits>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define EPLB_FOLD_X86 1
#include <immintrin.h>
#endif

namespace eplb {
namespace {

bool fold_scalar(const std::int32_t* ids, std::size_t n, const std::int32_t* phy2log,
                 std::uint32_t slots, std::int32_t* out) {
  bool bad = false;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t v = ids[i];
    bad |= v < -1 || (v >= 0 && static_cast<std::uint32_t>(v) >= slots);
    out[i] = v >= 0 && static_cast<std::uint32_t>(v) < slots ? phy2log[v] : -1;
  }
  return !bad;
}

#ifdef EPLB_FOLD_X86

// Slots one AVX-512 permute of two registers of 16-bit ids covers, and the most slots the
// avx512 kernel takes (beyond that it does more work than the gathers: BENCHMARKS.md, Tracker).
constexpr std::uint32_t kPermuteSlots = 64;
constexpr std::uint32_t kMaxPermuteSlots = 1024;

// 8 ids per step: a masked gather from the table (masked and bad ids read nothing), and the
// bad-id test accumulated in one register. Returns the ids it folded (a multiple of 8).
__attribute__((target("avx2"))) std::size_t fold_avx2(const std::int32_t* ids, std::size_t n,
                                                      const std::int32_t* phy2log,
                                                      std::uint32_t slots, std::int32_t* out,
                                                      bool& bad_out) {
  const __m256i minus_one = _mm256_set1_epi32(-1);
  const __m256i limit = _mm256_set1_epi32(static_cast<std::int32_t>(slots));
  __m256i bad = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ids + i));
    const __m256i below = _mm256_cmpgt_epi32(minus_one, v);         // v < -1
    const __m256i non_negative = _mm256_cmpgt_epi32(v, minus_one);  // v >= 0
    const __m256i below_limit = _mm256_cmpgt_epi32(limit, v);       // v < slots
    const __m256i in_range = _mm256_and_si256(non_negative, below_limit);
    const __m256i above = _mm256_andnot_si256(below_limit, non_negative);  // v >= slots
    bad = _mm256_or_si256(bad, _mm256_or_si256(below, above));
    const __m256i mapped = _mm256_mask_i32gather_epi32(minus_one, phy2log, v, in_range, 4);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), mapped);
  }
  bad_out = _mm256_testz_si256(bad, bad) == 0;
  return i;
}

// 32 ids per step, no memory read that depends on an id: the table's 16-bit ids sit in
// 2 * Chunks registers, and each permute looks up the 64 slots of one chunk for all 32 ids (the
// slot's low 6 bits pick the id), kept where the slot's chunk (its higher bits) is that one.
// `table` holds Chunks * 64 ids (padding past the layer's slots is never kept: those slots are
// bad). Returns the ids it folded (a multiple of 32).
template <std::uint32_t Chunks>
__attribute__((target("avx512f,avx512bw"))) std::size_t fold_avx512(
    const std::int32_t* ids, std::size_t n, const std::uint16_t* table, std::uint32_t slots,
    std::int32_t* out, bool& bad_out) {
  __m512i low[Chunks], high[Chunks];  // slots 64c .. 64c+31 and 64c+32 .. 64c+63
  for (std::uint32_t c = 0; c < Chunks; ++c) {
    low[c] = _mm512_loadu_si512(table + kPermuteSlots * c);
    high[c] = _mm512_loadu_si512(table + kPermuteSlots * c + kPermuteSlots / 2);
  }
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i zero = _mm512_setzero_si512();
  const __m512i minus_one = _mm512_set1_epi32(-1);
  const __m512i limit = _mm512_set1_epi32(static_cast<std::int32_t>(slots));
  __mmask16 bad = 0;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    // id + 1 as unsigned: 0 for a masked id, 1..slots for a good one, above slots for a bad one.
    const __m512i a = _mm512_add_epi32(_mm512_loadu_si512(ids + i), one);
    const __m512i b = _mm512_add_epi32(_mm512_loadu_si512(ids + i + 16), one);
    bad |= static_cast<__mmask16>(_mm512_cmpgt_epu32_mask(a, limit) |
                                  _mm512_cmpgt_epu32_mask(b, limit));
    // The slots as 16-bit lanes (a masked id saturates to 0, its result is replaced below). The
    // pack interleaves a and b by 128-bit lanes; the unpacks below undo it.
    const __m512i slot = _mm512_packus_epi32(_mm512_sub_epi32(a, one), _mm512_sub_epi32(b, one));
    const __m512i chunk = _mm512_srli_epi16(slot, 6);
    __m512i expert = _mm512_permutex2var_epi16(low[0], slot, high[0]);
    for (std::uint32_t c = 1; c < Chunks; ++c) {
      const __mmask32 here =
          _mm512_cmpeq_epi16_mask(chunk, _mm512_set1_epi16(static_cast<short>(c)));
      expert =
          _mm512_mask_mov_epi16(expert, here, _mm512_permutex2var_epi16(low[c], slot, high[c]));
    }
    __m512i expert_a = _mm512_unpacklo_epi16(expert, zero);
    __m512i expert_b = _mm512_unpackhi_epi16(expert, zero);
    expert_a = _mm512_mask_mov_epi32(expert_a, _mm512_cmpeq_epi32_mask(a, zero), minus_one);
    expert_b = _mm512_mask_mov_epi32(expert_b, _mm512_cmpeq_epi32_mask(b, zero), minus_one);
    _mm512_storeu_si512(out + i, expert_a);
    _mm512_storeu_si512(out + i + 16, expert_b);
  }
  bad_out = bad != 0;
  return i;
}

// The avx512 kernel for a layer of `slots` slots, whose 16-bit table (zero past the slots) is
// `table`: the smallest instantiation that holds it (exact up to 8 chunks, the common layouts).
std::size_t fold_avx512_chunks(const std::int32_t* ids, std::size_t n, const std::uint16_t* table,
                               std::uint32_t slots, std::int32_t* out, bool& bad) {
  switch ((slots + kPermuteSlots - 1) / kPermuteSlots) {
    case 1:
      return fold_avx512<1>(ids, n, table, slots, out, bad);
    case 2:
      return fold_avx512<2>(ids, n, table, slots, out, bad);
    case 3:
      return fold_avx512<3>(ids, n, table, slots, out, bad);
    case 4:
      return fold_avx512<4>(ids, n, table, slots, out, bad);
    case 5:
      return fold_avx512<5>(ids, n, table, slots, out, bad);
    case 6:
      return fold_avx512<6>(ids, n, table, slots, out, bad);
    case 7:
      return fold_avx512<7>(ids, n, table, slots, out, bad);
    case 8:
      return fold_avx512<8>(ids, n, table, slots, out, bad);
    case 9:
    case 10:
    case 11:
    case 12:
      return fold_avx512<12>(ids, n, table, slots, out, bad);
    default:
      return fold_avx512<kMaxPermuteSlots / kPermuteSlots>(ids, n, table, slots, out, bad);
  }
}

#endif  // EPLB_FOLD_X86

}  // namespace

bool fold_kernel_supported(FoldKernel kernel) {
  switch (kernel) {
    case FoldKernel::scalar:
      return true;
#ifdef EPLB_FOLD_X86
    case FoldKernel::avx2: {
      static const bool has = __builtin_cpu_supports("avx2") != 0;
      return has;
    }
    case FoldKernel::avx512: {
      static const bool has =
          __builtin_cpu_supports("avx512f") != 0 && __builtin_cpu_supports("avx512bw") != 0;
      return has;
    }
#else
    case FoldKernel::avx2:
    case FoldKernel::avx512:
      return false;
#endif
  }
  return false;
}

FoldKernel fastest_fold_kernel() {
  static const FoldKernel fastest = fold_kernel_supported(FoldKernel::avx512) ? FoldKernel::avx512
                                    : fold_kernel_supported(FoldKernel::avx2) ? FoldKernel::avx2
                                                                              : FoldKernel::scalar;
  return fastest;
}

bool fold_slots_with(FoldKernel kernel, std::span<const std::int32_t> ids,
                     std::span<const std::int32_t> phy2log, std::int32_t* out) {
  const std::int32_t* in = ids.data();
  const std::size_t n = ids.size();
  // (A layer has fewer than 2^31 slots: ids are int32.)
  const auto slots = static_cast<std::uint32_t>(
      std::min<std::size_t>(phy2log.size(), std::numeric_limits<std::int32_t>::max()));
  std::size_t done = 0;
  bool bad = false;
#ifdef EPLB_FOLD_X86
  // The permute kernel takes whole steps of 32 ids (its table costs a pass over the slots); the
  // gathers take what it leaves, then the scalar loop the last few.
  if (kernel == FoldKernel::avx512 && slots <= kMaxPermuteSlots && n >= 32) {
    std::array<std::uint16_t, kMaxPermuteSlots> table{};
    bool fits = true;
    for (std::uint32_t s = 0; s < slots; ++s) {
      const std::int32_t e = phy2log[s];
      fits &= e >= 0 && e <= std::numeric_limits<std::uint16_t>::max();
      table[s] = static_cast<std::uint16_t>(e);
    }
    if (fits) done = fold_avx512_chunks(in, n, table.data(), slots, out, bad);
  }
  if (kernel != FoldKernel::scalar) {
    bool bad_gathered = false;
    done += fold_avx2(in + done, n - done, phy2log.data(), slots, out + done, bad_gathered);
    bad |= bad_gathered;
  }
#else
  static_cast<void>(kernel);
#endif
  const bool tail_ok = fold_scalar(in + done, n - done, phy2log.data(), slots, out + done);
  return !bad && tail_ok;
}

bool fold_slots(std::span<const std::int32_t> ids, std::span<const std::int32_t> phy2log,
                std::int32_t* out) {
  return fold_slots_with(fastest_fold_kernel(), ids, phy2log, out);
}

}  // namespace eplb
