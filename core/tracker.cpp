#include "tracker.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include "error.hpp"
#include "slot_fold.hpp"

namespace eplb {
namespace {

constexpr std::uint32_t kMaxTopK = 1024;
// Below this scale the decayed weights are folded back into the stored values, so that 1/scale
// never overflows.
constexpr double kMinScale = 1e-100;
// Tokens counted per pass into the 16-bit pair scratch: a token adds at most 1 to a pair and k
// to a load, so one chunk's counts fit it.
constexpr std::size_t kScratchChunkTokens = std::numeric_limits<std::uint16_t>::max();

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Uniform in [0, bound) (Lemire's multiply-shift; bias below bound / 2^64).
__extension__ typedef unsigned __int128 Uint128;
std::uint64_t uniform_below(std::uint64_t& state, std::uint64_t bound) {
  return static_cast<std::uint64_t>((static_cast<Uint128>(splitmix64(state)) * bound) >> 64);
}

const char* window_name(TrackerWindow w) {
  switch (w) {
    case TrackerWindow::cumulative:
      return "cumulative";
    case TrackerWindow::sliding:
      return "sliding";
    case TrackerWindow::decay:
      return "decay";
  }
  return "unknown";
}

// What one pass over a batch found: whether some token held an id outside [-1, E) (such tokens
// are skipped, and the caller throws), and how many tokens had no valid slot.
struct BatchScan {
  bool bad = false;
  std::size_t empty = 0;
};

enum class TokenKind { counted, empty, bad };

// Adds one token of k ids with weight w (loads) / pw (pairs), unless one of its ids is outside
// [-1, limit): then nothing is added. `row` is scratch for kMaxTopK ids.
template <typename L, typename P>
TokenKind add_token(const std::int32_t* in, std::uint32_t k, std::uint32_t limit,
                    const std::size_t* row_base, L* load, P* pair, L w, P pw, std::int32_t* row) {
  std::uint32_t worst = 0;
  for (std::uint32_t s = 0; s < k; ++s) {
    worst = std::max(worst, static_cast<std::uint32_t>(in[s]) + 1U);
  }
  if (worst > limit) return TokenKind::bad;
  std::uint32_t m = 0;
  for (std::uint32_t s = 0; s < k; ++s) {
    const std::int32_t v = in[s];
    if (v >= 0) {
      load[v] += w;
      row[m++] = v;
    }
  }
  if (m == 0) return TokenKind::empty;
  if (m < 2) return TokenKind::counted;
  if (m <= 16) {
    for (std::uint32_t i = 1; i < m; ++i) {
      const std::int32_t v = row[i];
      std::uint32_t j = i;
      while (j > 0 && row[j - 1] > v) {
        row[j] = row[j - 1];
        --j;
      }
      row[j] = v;
    }
  } else {
    std::sort(row, row + m);
  }
  for (std::uint32_t i = 0; i + 1 < m; ++i) {
    const std::int32_t a = row[i];
    if (a == row[i + 1]) continue;  // a duplicate: its last copy makes the pairs
    const std::size_t base = row_base[a];
    std::int32_t previous = a;
    for (std::uint32_t j = i + 1; j < m; ++j) {
      const std::int32_t b = row[j];
      if (b != previous) pair[base + static_cast<std::size_t>(b)] += pw;
      previous = b;
    }
  }
  return TokenKind::counted;
}

// Adds a batch token by token (any top_k, any weight); tokens with a bad id are skipped.
template <typename L, typename P>
BatchScan accumulate_generic(const std::int32_t* ids, std::size_t num_tokens, std::uint32_t top_k,
                             std::uint32_t limit, const std::size_t* row_base, L* load, P* pair,
                             L w, P pw) {
  std::array<std::int32_t, kMaxTopK> row{};
  BatchScan scan;
  for (std::size_t t = 0; t < num_tokens; ++t) {
    const TokenKind kind =
        add_token<L, P>(ids + t * top_k, top_k, limit, row_base, load, pair, w, pw, row.data());
    scan.bad |= kind == TokenKind::bad;
    scan.empty += kind == TokenKind::empty ? 1 : 0;
  }
  return scan;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define EPLB_TRACKER_AVX2 1

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") != 0;
  return has;
}

// One compare-exchange step of a sorting network on 8 lanes: each lane meets the lane `partner`
// names; lanes whose bit is set in Max keep the larger value, the others the smaller.
template <int Max>
__attribute__((target("avx2"), always_inline)) inline __m256i exchange(__m256i v, __m256i partner) {
  return _mm256_blend_epi32(_mm256_min_epi32(v, partner), _mm256_max_epi32(v, partner), Max);
}

// top_k = 8, counting with weight l1 (loads) / p1 (pairs): 1, or -1 modulo 2^64 to take a batch
// back out, or a decay window's weight. Per token, a bitonic network sorts the 8 ids in one AVX2
// register, one mask test finds the rare token with a masked slot, a duplicate or a bad id (it
// takes add_token), and the common token adds its 8 loads and 28 pairs without a branch.
// `Unit` is 1 or -1 for those two weights (immediate operands: the loop has no register to
// spare), 0 for the weights given.
template <typename L, typename P, int Unit>
__attribute__((target("avx2"))) BatchScan accumulate8_avx2(const std::int32_t* ids,
                                                           std::size_t num_tokens,
                                                           std::uint32_t limit,
                                                           const std::size_t* row_base, L* load,
                                                           P* pair, L w, P pw) {
  const L l1 = Unit == 0 ? w : static_cast<L>(Unit);  // unsigned: adding -1 subtracts 1
  const P p1 = Unit == 0 ? pw : static_cast<P>(Unit);
  std::array<std::int32_t, kMaxTopK> row{};
  BatchScan scan;
  const __m256i reverse = _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0);
  const __m256i next = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0);
  const __m256i top = _mm256_set1_epi32(static_cast<std::int32_t>(limit - 1));
  alignas(32) std::uint32_t sorted[8];
  for (std::size_t t = 0; t < num_tokens; ++t) {
    const std::int32_t* in = ids + t * 8;
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in));
    v = exchange<0xAA>(v, _mm256_shuffle_epi32(v, 0xB1));            // lanes i ^ 1
    v = exchange<0xCC>(v, _mm256_shuffle_epi32(v, 0x1B));            // i ^ 3
    v = exchange<0xAA>(v, _mm256_shuffle_epi32(v, 0xB1));            // i ^ 1
    v = exchange<0xF0>(v, _mm256_permutevar8x32_epi32(v, reverse));  // i ^ 7
    v = exchange<0xCC>(v, _mm256_shuffle_epi32(v, 0x4E));            // i ^ 2
    v = exchange<0xAA>(v, _mm256_shuffle_epi32(v, 0xB1));            // i ^ 1
    // Sign bit set in a lane if it is negative (masked or bad), above E - 1, or equal to the
    // next lane (lane 7 meets lane 0: equal only if all are).
    const __m256i odd =
        _mm256_or_si256(_mm256_or_si256(v, _mm256_cmpgt_epi32(v, top)),
                        _mm256_cmpeq_epi32(v, _mm256_permutevar8x32_epi32(v, next)));
    if (_mm256_movemask_ps(_mm256_castsi256_ps(odd)) != 0) [[unlikely]] {
      const TokenKind kind =
          add_token<L, P>(in, 8, limit, row_base, load, pair, l1, p1, row.data());
      scan.bad |= kind == TokenKind::bad;
      scan.empty += kind == TokenKind::empty ? 1 : 0;
      continue;
    }
    _mm256_store_si256(reinterpret_cast<__m256i*>(sorted), v);
    const std::size_t x0 = sorted[0], x1 = sorted[1], x2 = sorted[2], x3 = sorted[3];
    const std::size_t x4 = sorted[4], x5 = sorted[5], x6 = sorted[6], x7 = sorted[7];
    load[x0] += l1, load[x1] += l1, load[x2] += l1, load[x3] += l1;
    load[x4] += l1, load[x5] += l1, load[x6] += l1, load[x7] += l1;
    // Row a of the triangle, as an address: pair + row_base[a] wraps around for a = 0 (row_base
    // is unsigned), so it is formed as an integer; row(a)[b] is pair[pair_index(a, b)].
    const auto row_at = [pair, row_base](std::size_t a) {
      return reinterpret_cast<P*>(reinterpret_cast<std::uintptr_t>(pair) + row_base[a] * sizeof(P));
    };
    P* r = row_at(x0);
    r[x1] += p1, r[x2] += p1, r[x3] += p1, r[x4] += p1, r[x5] += p1, r[x6] += p1, r[x7] += p1;
    r = row_at(x1);
    r[x2] += p1, r[x3] += p1, r[x4] += p1, r[x5] += p1, r[x6] += p1, r[x7] += p1;
    r = row_at(x2);
    r[x3] += p1, r[x4] += p1, r[x5] += p1, r[x6] += p1, r[x7] += p1;
    r = row_at(x3);
    r[x4] += p1, r[x5] += p1, r[x6] += p1, r[x7] += p1;
    r = row_at(x4);
    r[x5] += p1, r[x6] += p1, r[x7] += p1;
    r = row_at(x5);
    r[x6] += p1, r[x7] += p1;
    row_at(x6)[x7] += p1;
  }
  return scan;
}
#endif

// Adds a batch with weight w (loads) / pw (pairs) into `load` / `pair`, through the fastest
// kernel for top_k (`Unit` as for accumulate8_avx2: 1 or -1 when those are the weights).
template <typename L, typename P, int Unit = 0>
BatchScan count_weighted(const std::int32_t* ids, std::size_t num_tokens, std::uint32_t top_k,
                         std::uint32_t limit, const std::size_t* row_base, L* load, P* pair, L w,
                         P pw) {
#ifdef EPLB_TRACKER_AVX2
  if (top_k == 8 && cpu_has_avx2()) {
    return accumulate8_avx2<L, P, Unit>(ids, num_tokens, limit, row_base, load, pair, w, pw);
  }
#endif
  return accumulate_generic<L, P>(ids, num_tokens, top_k, limit, row_base, load, pair, w, pw);
}

// Counts a batch with weight 1 into `load` / `pair` (Retire: takes a counted batch back out, the
// unsigned counts wrapping exactly).
template <typename L, typename P, bool Retire = false>
BatchScan count_batch(const std::int32_t* ids, std::size_t num_tokens, std::uint32_t top_k,
                      std::uint32_t limit, const std::size_t* row_base, L* load, P* pair) {
  static_assert(!Retire || (std::is_unsigned_v<L> && std::is_unsigned_v<P>));
  constexpr int kUnit = Retire ? -1 : 1;
  constexpr L l1 = static_cast<L>(kUnit);  // unsigned: adding -1 subtracts 1
  constexpr P p1 = static_cast<P>(kUnit);
  return count_weighted<L, P, kUnit>(ids, num_tokens, top_k, limit, row_base, load, pair, l1, p1);
}

// body(i) for i in [0, n): the passes over a layer's counts (committing a batch's scratch,
// retiring a window's delta), vectorised with AVX2 where the CPU has it (the library is built for
// baseline x86-64; `body`, inlined into the AVX2 loop, is compiled for it there).
#ifdef EPLB_TRACKER_AVX2
template <typename Body>
__attribute__((target("avx2"))) void for_each_count_avx2(std::size_t n, const Body& body) {
  for (std::size_t i = 0; i < n; ++i) body(i);
}
#endif
template <typename Body>
void for_each_count(std::size_t n, const Body& body) {
#ifdef EPLB_TRACKER_AVX2
  if (cpu_has_avx2()) {
    for_each_count_avx2(n, body);
    return;
  }
#endif
  for (std::size_t i = 0; i < n; ++i) body(i);
}

// total[i] += scratch[i], scratch[i] = 0: the cumulative commit.
template <typename S>
void commit_add(std::uint64_t* total, S* scratch, std::size_t n) {
  for_each_count(
      n, [=](std::size_t i)
             __attribute__((always_inline)) { total[i] += std::exchange(scratch[i], S{0}); });
}

// A double uniform in (0, 1].
double uniform_open0(std::uint64_t& state) {
  return static_cast<double>((splitmix64(state) >> 11) + 1) * 0x1.0p-53;
}

}  // namespace

void TrackerOptions::validate() const {
  if (num_layers == 0) fail_invalid("num_layers (0) must be at least 1");
  if (num_experts == 0) fail_invalid("num_logical_experts (0) must be at least 1");
  if (num_experts > static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max())) {
    fail_invalid("num_logical_experts (", num_experts, ") must be at most INT32_MAX");
  }
  if (top_k == 0 || top_k > kMaxTopK) {
    fail_invalid("top_k (", top_k, ") must be in 1..", kMaxTopK);
  }
  switch (window) {
    case TrackerWindow::cumulative:
      break;
    case TrackerWindow::sliding:
      if (window_batches == 0) fail_invalid("window_batches (0) must be at least 1 for sliding");
      break;
    case TrackerWindow::decay:
      if (!(decay > 0.0 && decay <= 1.0)) {
        fail_invalid("decay (", decay, ") must be in (0, 1]");
      }
      break;
    default:
      fail_invalid("window (", static_cast<std::uint32_t>(window),
                   ") is unknown; use 0 (cumulative), 1 (sliding) or 2 (decay)");
  }
}

std::size_t pair_count(std::uint32_t num_experts) {
  const std::size_t e = num_experts;
  return e * (e - (e > 0 ? 1 : 0)) / 2;
}

Tracker::Tracker(const TrackerOptions& options) : options_(options) {
  options_.validate();
  num_experts_ = options_.num_experts;
  num_pairs_ = pair_count(options_.num_experts);
  // Counts that each pass validate() can still multiply past size_t: refuse before allocating
  // anything (found by the bad-input matrix, tests/reliability/).
  std::size_t statistics_bytes = 0;
  if (__builtin_mul_overflow(num_pairs_ + num_experts_, sizeof(double) * options_.num_layers,
                             &statistics_bytes)) {
    fail(Errc::out_of_memory, "the statistics of num_layers (", options_.num_layers,
         ") x num_logical_experts (", options_.num_experts, ") overflow size_t");
  }
  // pair_index(a, b) = a*(2E-a-1)/2 + b - a - 1; unsigned wrap-around makes a = 0 work.
  row_base_.resize(num_experts_);
  for (std::size_t a = 0; a < num_experts_; ++a) {
    row_base_[a] = a * (2 * num_experts_ - a - 1) / 2 - a - 1;
  }
  try {
    reset();  // a sliding window's batches are allocated as they arrive
  } catch (const std::bad_alloc&) {
    if (options_.window == TrackerWindow::sliding) {
      fail(Errc::out_of_memory, "cannot allocate the sliding window of window_batches (",
           options_.window_batches, ") batches x num_layers (", options_.num_layers, ") besides ",
           statistics_bytes, " bytes for the statistics; lower window_batches");
    }
    fail(Errc::out_of_memory, "cannot allocate the statistics of num_layers (", options_.num_layers,
         ") x num_logical_experts (", options_.num_experts, "): at least ", statistics_bytes,
         " bytes");
  }
}

std::uint64_t Tracker::layer_seed(std::uint32_t layer) const {
  std::uint64_t s =
      options_.seed ^ (0xd1b54a32d192ed03ULL * (static_cast<std::uint64_t>(layer) + 1));
  return splitmix64(s);
}

void Tracker::reset() {
  std::vector<Layer> fresh(options_.num_layers);
  for (std::uint32_t i = 0; i < options_.num_layers; ++i) {
    Layer& l = fresh[i];
    if (options_.window == TrackerWindow::decay) {
      l.load_weight.assign(num_experts_, 0.0);
      l.pair_weight.assign(num_pairs_, 0.0);
    } else {
      l.load_count.assign(num_experts_, 0);
      l.pair_count.assign(num_pairs_, 0);
    }
    if (options_.window == TrackerWindow::sliding) l.ring.resize(options_.window_batches);
    (void)checked_mul(options_.reservoir_capacity, options_.top_k, "reservoir");
    l.rng_state = layer_seed(i);
  }
  layers_ = std::move(fresh);
}

void Tracker::check_layer(std::uint32_t layer, const char* what) const {
  if (layer >= options_.num_layers) {
    fail_invalid(what, ": layer (", layer, ") must be below num_layers (", options_.num_layers,
                 ")");
  }
}

void Tracker::check_batch(std::uint32_t layer, std::span<const std::int32_t> ids,
                          std::size_t num_tokens, std::uint32_t top_k) const {
  check_layer(layer, "record");
  if (top_k != options_.top_k) {
    fail_invalid("top_k (", top_k, ") differs from the tracker's top_k (", options_.top_k, ")");
  }
  if (num_tokens > ids.size() / top_k || ids.size() != num_tokens * top_k) {
    fail_invalid("ids hold ", ids.size(), " values, not num_tokens (", num_tokens, ") * top_k (",
                 top_k, ")");
  }
  if (options_.window == TrackerWindow::sliding &&
      ids.size() > std::numeric_limits<std::uint32_t>::max()) {
    fail_invalid("a batch of ", ids.size(), " ids is too large for a sliding window (at most ",
                 std::numeric_limits<std::uint32_t>::max(), " = 2^32-1 slots per batch)");
  }
}

void Tracker::record(std::uint32_t layer, std::span<const std::int32_t> ids, std::size_t num_tokens,
                     std::uint32_t top_k) {
  check_batch(layer, ids, num_tokens, top_k);
  record_ids(layer, ids, num_tokens, false);
}

void Tracker::check_ids(std::uint32_t layer, std::span<const std::int32_t> ids) const {
  // One branch-free pass finds whether any id is outside [-1, E); only then look for the first.
  const auto limit = static_cast<std::uint32_t>(num_experts_);
  const std::uint32_t k = options_.top_k;
  std::uint32_t worst = 0;
  for (const std::int32_t v : ids) worst = std::max(worst, static_cast<std::uint32_t>(v) + 1U);
  if (worst <= limit) return;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int32_t v = ids[i];
    if (v < -1 || v >= static_cast<std::int32_t>(limit)) {
      fail_invalid("expert id ", v, " at layer ", layer, ", token ", i / k, ", slot ", i % k,
                   " is outside [0, ", limit, ") (and is not -1, masked)");
    }
  }
}

void Tracker::record_physical(const Placement& placement, std::uint32_t layer,
                              std::span<const std::int32_t> ids, std::size_t num_tokens,
                              std::uint32_t top_k) {
  const Topology& t = placement.topology();
  if (t.num_layers != options_.num_layers || t.num_logical != options_.num_experts) {
    fail_invalid("placement has ", t.num_layers, " layers of ", t.num_logical,
                 " experts; the tracker has ", options_.num_layers, " of ", options_.num_experts);
  }
  check_batch(layer, ids, num_tokens, top_k);
  const auto phy2log = placement.phy2log_layer(layer);
  const auto slots = static_cast<std::uint32_t>(phy2log.size());
  scratch_.resize(ids.size());
  if (!fold_slots(ids, phy2log, scratch_.data())) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::int32_t v = ids[i];
      if (v != -1 && (v < 0 || static_cast<std::uint32_t>(v) >= slots)) {
        fail_invalid("physical id ", v, " at layer ", layer, ", token ", i / top_k, ", slot ",
                     i % top_k, " is outside [0, ", slots, ") (and is not -1, masked)");
      }
    }
  }
  record_ids(layer, scratch_, num_tokens, true);
}

void Tracker::renormalise(Layer& l) const {
  for (double& v : l.load_weight) v *= l.scale;
  for (double& v : l.pair_weight) v *= l.scale;
  l.scale = 1.0;
}

void Tracker::advance_decay(Layer& l) const {
  if (l.batches > 0) {
    l.scale *= options_.decay;
    if (l.scale < kMinScale) renormalise(l);
  }
}

void Tracker::record_ids(std::uint32_t layer, std::span<const std::int32_t> ids,
                         std::size_t num_tokens, bool checked) {
  Layer& l = layers_[layer];
  const std::uint32_t k = options_.top_k;
  const auto limit = static_cast<std::uint32_t>(num_experts_);
  const std::size_t pairs_per_token = static_cast<std::size_t>(k) * (k - 1) / 2;
  std::size_t empty = 0;
  // Before anything is counted, so that running out of memory records nothing of the batch.
  if (options_.reservoir_capacity > 0 && num_tokens > 0) reserve_reservoir(layer, l, num_tokens);
  const bool sliding = options_.window == TrackerWindow::sliding;
  const bool rows_delta = sliding && reserve_window_delta(layer, l, num_tokens);
  // Small batches (fewer pair increments than pairs; in a sliding window, those that keep their
  // rows) add straight into the totals after a validation pass. Larger ones count into per-batch
  // uint32 scratch (the ids validated in the same pass: a bad id only throws the scratch away),
  // committed with one vectorisable pass over the triangle.
  const bool direct =
      sliding ? rows_delta : pairs_per_token == 0 || num_tokens <= num_pairs_ / pairs_per_token;
  if (direct) {
    if (!checked) check_ids(layer, ids);
    if (options_.window != TrackerWindow::decay) {
      if (sliding) {
        // The oldest batch leaves the totals, this one takes its slot with its rows.
        l.ring_head = next_ring_slot(l);
        WindowDelta& d = l.ring[l.ring_head];
        retire(l, d);
        d.rows.assign(ids.begin(), ids.end());  // reserved: cannot throw
        d.tokens = num_tokens;
        if (d.dense) std::vector<std::uint32_t>().swap(d.counts);
        d.dense = false;
      }
      empty = count_batch<std::uint64_t, std::uint64_t>(ids.data(), num_tokens, k, limit,
                                                        row_base_.data(), l.load_count.data(),
                                                        l.pair_count.data())
                  .empty;
    } else {
      advance_decay(l);
      const double w = 1.0 / l.scale;
      empty = count_weighted<double, double>(ids.data(), num_tokens, k, limit, row_base_.data(),
                                             l.load_weight.data(), l.pair_weight.data(), w, w)
                  .empty;
    }
  } else {
    if (load_scratch_.size() != num_experts_) load_scratch_.assign(num_experts_, 0);
    if (pair_scratch_.size() != num_pairs_) pair_scratch_.assign(num_pairs_, 0);
    constexpr std::size_t chunk = kScratchChunkTokens;
    if (!checked && num_tokens > chunk) {
      check_ids(layer, ids);
      checked = true;
    }
    std::size_t from = 0;
    do {
      const std::size_t n = std::min(chunk, num_tokens - from);
      const BatchScan scan = count_batch<std::uint32_t, std::uint16_t>(
          ids.data() + from * k, n, k, limit, row_base_.data(), load_scratch_.data(),
          pair_scratch_.data());
      if (scan.bad) {
        std::fill(load_scratch_.begin(), load_scratch_.end(), 0U);
        std::fill(pair_scratch_.begin(), pair_scratch_.end(), std::uint16_t{0});
        check_ids(layer, ids);  // throws, naming the first bad id
      }
      empty += scan.empty;
      commit_scratch(l, from == 0);
      from += n;
    } while (from < num_tokens);
  }
  ++l.batches;
  if (options_.reservoir_capacity > 0) sample_batch(l, ids.data(), num_tokens, empty);
}

bool Tracker::reserve_window_delta(std::uint32_t layer, Layer& l, std::size_t num_tokens) {
  const std::size_t k = options_.top_k;
  const bool rows = WindowDelta::keeps_rows(num_tokens, k, delta_size());
  WindowDelta& d = l.ring[next_ring_slot(l)];
  try {
    if (rows) {
      d.rows.reserve(num_tokens * k);
    } else {
      d.counts.resize(delta_size());
    }
  } catch (const std::bad_alloc&) {
    fail(Errc::out_of_memory, "layer ", layer, ": cannot allocate this batch's sliding-window ",
         "delta (", (rows ? num_tokens * k : delta_size()) * 4, " bytes)");
  }
  return rows;
}

void Tracker::retire(Layer& l, const WindowDelta& d) const {
  std::uint64_t* load = l.load_count.data();
  std::uint64_t* pair = l.pair_count.data();
  if (!d.dense) {
    static_cast<void>(count_batch<std::uint64_t, std::uint64_t, true>(
        d.rows.data(), d.tokens, options_.top_k, static_cast<std::uint32_t>(num_experts_),
        row_base_.data(), load, pair));
    return;
  }
  const std::uint32_t* counts = d.counts.data();
  for_each_count(
      num_experts_, [=](std::size_t i) __attribute__((always_inline)) { load[i] -= counts[i]; });
  const std::uint32_t* pair_counts = counts + num_experts_;
  for_each_count(
      num_pairs_, [=](std::size_t i) __attribute__((always_inline)) { pair[i] -= pair_counts[i]; });
}

void Tracker::delta_counts(const WindowDelta& d, std::uint32_t* out) const {
  if (d.dense) {
    std::copy(d.counts.begin(), d.counts.end(), out);
    return;
  }
  std::fill(out, out + delta_size(), 0U);
  static_cast<void>(count_batch<std::uint32_t, std::uint32_t>(
      d.rows.data(), d.tokens, options_.top_k, static_cast<std::uint32_t>(num_experts_),
      row_base_.data(), out, out + num_experts_));
}

void Tracker::commit_scratch(Layer& l, bool first_chunk) {
  std::uint32_t* ls = load_scratch_.data();
  std::uint16_t* ps = pair_scratch_.data();
  const std::size_t e = num_experts_, p = num_pairs_;
  switch (options_.window) {
    case TrackerWindow::cumulative: {
      std::uint64_t* load = l.load_count.data();
      std::uint64_t* pair = l.pair_count.data();
      commit_add(load, ls, e);
      commit_add(pair, ps, p);
      break;
    }
    case TrackerWindow::sliding: {
      // The first chunk replaces the oldest delta of the ring, which leaves the totals; later
      // chunks of the same batch add to it.
      if (first_chunk) l.ring_head = next_ring_slot(l);
      WindowDelta& d = l.ring[l.ring_head];  // its counts hold e + p values (reserved)
      std::uint64_t* load = l.load_count.data();
      std::uint64_t* pair = l.pair_count.data();
      std::uint32_t* delta = d.counts.data();
      std::uint32_t* pair_delta = delta + e;
      if (first_chunk && !d.dense) {
        retire(l, d);  // a small batch's rows
        std::vector<std::int32_t>().swap(d.rows);
        d.tokens = 0;
        d.dense = true;
        std::fill(d.counts.begin(), d.counts.end(), 0U);
      }
      // The oldest batch's delta is replaced (first chunk) or this batch's extended.
      const auto commit = [first_chunk](auto* total, std::uint32_t* into, auto* scratch,
                                        std::size_t n) {
        using S = std::remove_pointer_t<decltype(scratch)>;
        if (first_chunk) {
          for_each_count(
              n, [=](std::size_t i) __attribute__((always_inline)) {
                total[i] = total[i] - into[i] + scratch[i];
                into[i] = std::exchange(scratch[i], S{0});
              });
        } else {
          for_each_count(
              n, [=](std::size_t i) __attribute__((always_inline)) {
                total[i] += scratch[i];
                into[i] += std::exchange(scratch[i], S{0});
              });
        }
      };
      commit(load, delta, ls, e);
      commit(pair, pair_delta, ps, p);
      break;
    }
    case TrackerWindow::decay: {
      if (first_chunk) advance_decay(l);
      const double w = 1.0 / l.scale;
      double* load = l.load_weight.data();
      double* pair = l.pair_weight.data();
      for_each_count(
          e, [=](std::size_t i) __attribute__((always_inline)) {
            load[i] += static_cast<double>(std::exchange(ls[i], 0U)) * w;
          });
      for_each_count(
          p, [=](std::size_t i) __attribute__((always_inline)) {
            pair[i] += static_cast<double>(std::exchange(ps[i], std::uint16_t{0})) * w;
          });
      break;
    }
  }
}

// Room for the rows this batch appends (a full reservoir only replaces rows), reserved before
// anything is counted and grown geometrically up to the whole capacity: memory follows the rows
// kept, not reservoir_capacity (a tracker with a huge capacity that sees few tokens stays small),
// and a tracker decoded from a snapshot allocates only what the file holds.
void Tracker::reserve_reservoir(std::uint32_t layer, Layer& l, std::size_t num_tokens) {
  const std::uint64_t capacity = options_.reservoir_capacity;
  if (l.seen >= capacity) return;  // full: rows are only replaced
  const std::uint64_t rows = std::min<std::uint64_t>(capacity, l.seen + num_tokens);
  const std::size_t needed = checked_mul(rows, options_.top_k, "reservoir");
  if (l.sample.capacity() >= needed) return;
  const std::size_t whole = checked_mul(capacity, options_.top_k, "reservoir");
  const std::size_t values = std::min(whole, std::max(needed, 2 * l.sample.capacity()));
  try {
    l.sample.reserve(values);
  } catch (const std::bad_alloc&) {
    fail(Errc::out_of_memory, "layer ", layer, ": cannot allocate ", values / options_.top_k,
         " rows of the reservoir (reservoir_capacity ", capacity, ", top_k ", options_.top_k,
         "): ", values * sizeof(std::int32_t),
         " bytes; lower reservoir_capacity (0 keeps no samples)");
  }
}

// Algorithm R keeps the n-th token (n > capacity) with probability capacity / n, independently of
// every other token, in a uniformly chosen slot. Drawing that per token costs a random number
// each; instead the kept tokens are found by skipping ahead: within a block of tokens numbered
// first .. 2*first-1, candidates are a Bernoulli(capacity / first) process (geometric gaps, one
// logarithm per candidate), each kept with probability first / n. The thinned process is exactly
// Algorithm R's (up to floating point), with about 2 random numbers per kept token.
void Tracker::sample_batch(Layer& l, const std::int32_t* ids, std::size_t num_tokens,
                           std::size_t empty) {
  const std::uint32_t k = options_.top_k;
  const std::uint64_t capacity = options_.reservoir_capacity;
  // Rows of the tokens with a valid slot: all rows unless some were fully masked.
  std::vector<std::size_t> valid_rows;
  if (empty > 0) {
    valid_rows.reserve(num_tokens - empty);
    for (std::size_t t = 0; t < num_tokens; ++t) {
      const std::int32_t* row = ids + t * k;
      bool any = false;
      for (std::uint32_t s = 0; s < k; ++s) any |= row[s] >= 0;
      if (any) valid_rows.push_back(t);
    }
  }
  const std::size_t valid = num_tokens - empty;
  const auto row_of = [&](std::size_t i) { return ids + (empty > 0 ? valid_rows[i] : i) * k; };
  std::size_t i = 0;
  for (; i < valid && l.seen < capacity; ++i, ++l.seen) {
    const std::int32_t* row = row_of(i);
    l.sample.insert(l.sample.end(), row, row + k);
  }
  while (i < valid) {
    const std::uint64_t first = l.seen + 1;  // the number of token i
    const std::size_t block = static_cast<std::size_t>(std::min<std::uint64_t>(valid - i, first));
    const double log_skip = std::log1p(-static_cast<double>(capacity) / static_cast<double>(first));
    std::size_t at = 0;
    for (;;) {
      const double gap = std::floor(std::log(uniform_open0(l.rng_state)) / log_skip);
      if (!(gap < static_cast<double>(block - at))) break;
      at += static_cast<std::size_t>(gap);
      if (uniform_below(l.rng_state, first + at) < first) {
        const std::uint64_t j = uniform_below(l.rng_state, capacity);
        const std::int32_t* row = row_of(i + at);
        std::copy(row, row + k, l.sample.begin() + static_cast<std::ptrdiff_t>(j * k));
      }
      ++at;
    }
    i += block;
    l.seen += block;
  }
}

void Tracker::merge(const Tracker& other) {
  if (&other == this) {
    const Tracker copy = other;
    merge(copy);
    return;
  }
  const TrackerOptions& a = options_;
  const TrackerOptions& b = other.options_;
  // Everything that differs (a window's parameter only when both use that window), named.
  std::string differences;
  const auto differ = [&differences](const char* field, const auto& x, const auto& y) {
    if (x == y) return;
    differences += cat(differences.empty() ? "" : ", ", field, " ", x, " vs ", y);
  };
  differ("num_layers", a.num_layers, b.num_layers);
  differ("num_logical_experts", a.num_experts, b.num_experts);
  differ("top_k", a.top_k, b.top_k);
  differ("window", std::string_view(window_name(a.window)),
         std::string_view(window_name(b.window)));
  if (a.window == b.window && a.window == TrackerWindow::sliding) {
    differ("window_batches", a.window_batches, b.window_batches);
  }
  if (a.window == b.window && a.window == TrackerWindow::decay) {
    differ("decay", a.decay, b.decay);
  }
  differ("reservoir_capacity", a.reservoir_capacity, b.reservoir_capacity);
  if (!differences.empty()) {
    fail_invalid("trackers differ in shape or window (this one vs the other): ", differences);
  }
  const std::uint32_t w = a.window_batches;
  // The summed sliding windows, built (and checked to fit) before anything changes.
  std::vector<std::vector<WindowDelta>> rings;
  if (a.window == TrackerWindow::sliding) {
    rings.resize(a.num_layers);
    std::vector<std::uint32_t> dd(delta_size()), sd(delta_size());
    for (std::uint32_t layer = 0; layer < a.num_layers; ++layer) {
      const Layer& d = layers_[layer];
      const Layer& s = other.layers_[layer];
      rings[layer].resize(w);
      for (std::uint32_t age = 0; age < w; ++age) {
        const std::uint32_t slot = (d.ring_head + w - age) % w;
        const WindowDelta& mine = d.ring[slot];
        const WindowDelta& theirs = s.ring[(s.ring_head + w - age) % w];
        WindowDelta& sum = rings[layer][slot];
        if (!mine.dense && !theirs.dense) {  // two small batches: one batch of both their rows
          sum.rows.reserve(mine.rows.size() + theirs.rows.size());
          sum.rows.insert(sum.rows.end(), mine.rows.begin(), mine.rows.end());
          sum.rows.insert(sum.rows.end(), theirs.rows.begin(), theirs.rows.end());
          sum.tokens = mine.tokens + theirs.tokens;
          continue;
        }
        delta_counts(mine, dd.data());
        delta_counts(theirs, sd.data());
        for (std::size_t i = 0; i < delta_size(); ++i) {
          if (dd[i] > std::numeric_limits<std::uint32_t>::max() - sd[i]) {
            fail_invalid("merging overflows a sliding-window batch count of layer ", layer,
                         " (more than 2^32-1 in one batch)");
          }
          dd[i] += sd[i];
        }
        sum.dense = true;
        sum.counts = dd;
      }
    }
  }
  // The merged reservoirs first: they allocate, so running out of memory changes nothing.
  std::vector<MergedSample> samples(a.num_layers);
  if (a.reservoir_capacity > 0) {
    for (std::uint32_t layer = 0; layer < a.num_layers; ++layer) {
      if (other.layers_[layer].seen > 0) {
        samples[layer] = merged_sample(layers_[layer], other.layers_[layer]);
      }
    }
  }
  for (std::uint32_t layer = 0; layer < a.num_layers; ++layer) {
    Layer& d = layers_[layer];
    const Layer& s = other.layers_[layer];
    switch (a.window) {
      case TrackerWindow::sliding:
        d.ring.swap(rings[layer]);
        [[fallthrough]];
      case TrackerWindow::cumulative:
        for (std::size_t i = 0; i < num_experts_; ++i) d.load_count[i] += s.load_count[i];
        for (std::size_t i = 0; i < num_pairs_; ++i) d.pair_count[i] += s.pair_count[i];
        break;
      case TrackerWindow::decay:
        renormalise(d);
        for (std::size_t i = 0; i < num_experts_; ++i) {
          d.load_weight[i] += s.load_weight[i] * s.scale;
        }
        for (std::size_t i = 0; i < num_pairs_; ++i) d.pair_weight[i] += s.pair_weight[i] * s.scale;
        break;
    }
    d.batches = std::max(d.batches, s.batches);
    if (a.reservoir_capacity > 0 && s.seen > 0) {
      d.sample.swap(samples[layer].rows);
      d.rng_state = samples[layer].rng_state;
      d.seen += s.seen;
    }
  }
}

// A uniform sample of the union of two layers' histories: draw min(capacity, n1 + n2) rows, each
// from the side with probability proportional to its not-yet-drawn population, taking a
// uniformly chosen unused row of that side's sample (itself uniform over its population). Drawn
// with `d`'s RNG, whose next state is returned with the rows; neither layer changes.
Tracker::MergedSample Tracker::merged_sample(const Layer& d, const Layer& s) const {
  const std::uint32_t k = options_.top_k;
  MergedSample result{{}, d.rng_state};
  std::vector<std::int32_t> left = d.sample;
  std::vector<std::int32_t> right = s.sample;
  std::uint64_t rows_left = left.size() / k;
  std::uint64_t rows_right = right.size() / k;
  std::uint64_t pop_left = d.seen;
  std::uint64_t pop_right = s.seen;
  const std::uint64_t draws =
      std::min<std::uint64_t>(options_.reservoir_capacity, pop_left + pop_right);
  std::vector<std::int32_t>& merged = result.rows;
  merged.reserve(draws * k);
  for (std::uint64_t n = 0; n < draws; ++n) {
    const bool from_left = uniform_below(result.rng_state, pop_left + pop_right) < pop_left;
    std::vector<std::int32_t>& side = from_left ? left : right;
    std::uint64_t& rows = from_left ? rows_left : rows_right;
    EPLB_ASSERT(rows > 0);
    const std::uint64_t pick = uniform_below(result.rng_state, rows);
    merged.insert(merged.end(), side.begin() + static_cast<std::ptrdiff_t>(pick * k),
                  side.begin() + static_cast<std::ptrdiff_t>((pick + 1) * k));
    // Remove the picked row by moving the last one into its place.
    std::copy(side.begin() + static_cast<std::ptrdiff_t>((rows - 1) * k),
              side.begin() + static_cast<std::ptrdiff_t>(rows * k),
              side.begin() + static_cast<std::ptrdiff_t>(pick * k));
    --rows;
    --(from_left ? pop_left : pop_right);
  }
  return result;
}

void Tracker::layer_loads(std::uint32_t layer, std::span<double> out) const {
  check_layer(layer, "layer_loads");
  EPLB_ASSERT(out.size() == num_experts_);
  const Layer& l = layers_[layer];
  for (std::size_t i = 0; i < num_experts_; ++i) {
    out[i] = options_.window == TrackerWindow::decay ? l.load_weight[i] * l.scale
                                                     : static_cast<double>(l.load_count[i]);
  }
}

void Tracker::loads(std::span<double> out) const {
  EPLB_ASSERT(out.size() == options_.num_layers * num_experts_);
  for (std::uint32_t layer = 0; layer < options_.num_layers; ++layer) {
    layer_loads(layer, out.subspan(layer * num_experts_, num_experts_));
  }
}

void Tracker::coactivation(std::uint32_t layer, std::span<double> out) const {
  check_layer(layer, "coactivation");
  EPLB_ASSERT(out.size() == num_pairs_);
  const Layer& l = layers_[layer];
  for (std::size_t i = 0; i < num_pairs_; ++i) {
    out[i] = options_.window == TrackerWindow::decay ? l.pair_weight[i] * l.scale
                                                     : static_cast<double>(l.pair_count[i]);
  }
}

std::span<const std::int32_t> Tracker::samples(std::uint32_t layer) const {
  check_layer(layer, "samples");
  return layers_[layer].sample;
}

std::size_t Tracker::sample_rows(std::uint32_t layer) const {
  return samples(layer).size() / options_.top_k;
}

std::uint64_t Tracker::tokens_seen(std::uint32_t layer) const {
  check_layer(layer, "tokens_seen");
  return layers_[layer].seen;
}

std::uint64_t Tracker::batches(std::uint32_t layer) const {
  check_layer(layer, "batches");
  return layers_[layer].batches;
}

std::size_t Tracker::window_bytes() const {
  std::size_t total = 0;
  for (const Layer& l : layers_) {
    for (const WindowDelta& d : l.ring) total += d.memory_bytes();
  }
  return total;
}

Tracker::Counters Tracker::counters() const {
  Counters out;
  const std::uint32_t w = options_.window == TrackerWindow::sliding ? options_.window_batches : 0;
  for (const Layer& l : layers_) {
    out.batches.push_back(l.batches);
    if (options_.window == TrackerWindow::decay) {
      for (const double v : l.load_weight) out.weights.push_back(v * l.scale);
      for (const double v : l.pair_weight) out.weights.push_back(v * l.scale);
      continue;
    }
    out.counts.insert(out.counts.end(), l.load_count.begin(), l.load_count.end());
    out.counts.insert(out.counts.end(), l.pair_count.begin(), l.pair_count.end());
    std::vector<std::uint32_t> delta(w > 0 ? delta_size() : 0);
    for (std::uint32_t age = 0; age < w; ++age) {
      delta_counts(l.ring[(l.ring_head + w - age) % w], delta.data());
      out.counts.insert(out.counts.end(), delta.begin(), delta.end());
    }
  }
  return out;
}

void Tracker::set_counters(const Counters& counters) {
  const std::size_t layers = options_.num_layers;
  const bool decay = options_.window == TrackerWindow::decay;
  const std::uint32_t w = options_.window_batches;
  const std::size_t ring = options_.window == TrackerWindow::sliding ? w * delta_size() : 0;
  const std::size_t per_layer_counts = decay ? 0 : num_experts_ + num_pairs_ + ring;
  const std::size_t per_layer_weights = decay ? num_experts_ + num_pairs_ : 0;
  if (counters.counts.size() != layers * per_layer_counts ||
      counters.weights.size() != layers * per_layer_weights || counters.batches.size() != layers) {
    fail_invalid("counters have ", counters.counts.size(), " counts, ", counters.weights.size(),
                 " weights and ", counters.batches.size(), " batches but this tracker needs ",
                 layers * per_layer_counts, ", ", layers * per_layer_weights, " and ", layers);
  }
  for (std::size_t layer = 0; layer < layers; ++layer) {
    const std::size_t base = layer * per_layer_counts + num_experts_ + num_pairs_;
    for (std::size_t i = 0; i < ring; ++i) {
      if (counters.counts[base + i] > std::numeric_limits<std::uint32_t>::max()) {
        fail_invalid("a sliding-window batch count of layer ", layer, " (",
                     counters.counts[base + i], ") exceeds 2^32-1");
      }
    }
  }
  for (std::size_t i = 0; i < counters.weights.size(); ++i) {
    if (!std::isfinite(counters.weights[i]) || counters.weights[i] < 0) {
      fail_invalid("counters weight ", i, " (", counters.weights[i], ") is negative or not finite");
    }
  }
  // The new sliding windows, built before anything changes.
  std::vector<std::vector<WindowDelta>> rings(ring > 0 ? layers : 0);
  for (std::size_t layer = 0; layer < rings.size(); ++layer) {
    const std::uint64_t* deltas =
        counters.counts.data() + layer * per_layer_counts + num_experts_ + num_pairs_;
    rings[layer].resize(w);
    for (std::uint32_t age = 0; age < w; ++age) {
      rings[layer][(layers_[layer].ring_head + w - age) % w].assign_counts(
          deltas + std::size_t{age} * delta_size(), delta_size());  // each checked to fit above
    }
  }
  for (std::size_t layer = 0; layer < layers; ++layer) {
    Layer& l = layers_[layer];
    l.batches = counters.batches[layer];
    if (decay) {
      const double* v = counters.weights.data() + layer * per_layer_weights;
      l.load_weight.assign(v, v + num_experts_);
      l.pair_weight.assign(v + num_experts_, v + num_experts_ + num_pairs_);
      l.scale = 1.0;
      continue;
    }
    const std::uint64_t* v = counters.counts.data() + layer * per_layer_counts;
    l.load_count.assign(v, v + num_experts_);
    l.pair_count.assign(v + num_experts_, v + num_experts_ + num_pairs_);
    if (ring > 0) l.ring.swap(rings[layer]);
  }
}

}  // namespace eplb
