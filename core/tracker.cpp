#include "tracker.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "error.hpp"

namespace eplb {
namespace {

constexpr std::uint32_t kMaxTopK = 1024;
// Below this scale the decayed weights are folded back into the stored values, so that 1/scale
// never overflows.
constexpr double kMinScale = 1e-100;

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

// Adds one batch of valid (already checked) logical ids into `load` and `pair`, with weight `w`.
template <typename T, typename P = T>
void accumulate(const std::int32_t* ids, std::size_t num_tokens, std::uint32_t top_k,
                const std::size_t* row_base, T* load, P* pair, T w, P pw = P{1}) {
  std::array<std::int32_t, kMaxTopK> row{};
  for (std::size_t t = 0; t < num_tokens; ++t) {
    const std::int32_t* in = ids + t * top_k;
    std::uint32_t m = 0;
    for (std::uint32_t s = 0; s < top_k; ++s) {
      const std::int32_t v = in[s];
      if (v >= 0) {
        load[v] += w;
        row[m++] = v;
      }
    }
    if (m < 2) continue;
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
      std::sort(row.begin(), row.begin() + m);
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
  }
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
  // pair_index(a, b) = a*(2E-a-1)/2 + b - a - 1; unsigned wrap-around makes a = 0 work.
  row_base_.resize(num_experts_);
  for (std::size_t a = 0; a < num_experts_; ++a) {
    row_base_[a] = a * (2 * num_experts_ - a - 1) / 2 - a - 1;
  }
  if (options_.window == TrackerWindow::sliding) {
    (void)checked_mul(checked_mul(delta_size(), options_.window_batches, "tracker window"),
                      checked_mul(options_.num_layers, sizeof(std::uint32_t), "tracker window"),
                      "tracker window");
  }
  reset();
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
    if (options_.window == TrackerWindow::sliding) {
      l.ring.assign(delta_size() * options_.window_batches, 0);
    }
    l.sample.reserve(checked_mul(options_.reservoir_capacity, options_.top_k, "reservoir"));
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
  // One branch-free pass finds whether any id is outside [-1, E); only then look for the first.
  const auto limit = static_cast<std::uint32_t>(num_experts_);
  bool bad = false;
  for (const std::int32_t v : ids) {
    bad |= static_cast<std::uint32_t>(v) + 1U > limit;
  }
  if (bad) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::int32_t v = ids[i];
      if (v < -1 || v >= static_cast<std::int32_t>(limit)) {
        fail_invalid("expert id ", v, " at layer ", layer, ", token ", i / top_k, ", slot ",
                     i % top_k, " is outside [0, ", limit, ") (and is not -1, masked)");
      }
    }
  }
  record_valid(layer, ids.data(), num_tokens);
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
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int32_t v = ids[i];
    if (v == -1) {
      scratch_[i] = -1;
    } else if (v < 0 || static_cast<std::uint32_t>(v) >= slots) {
      fail_invalid("physical id ", v, " at layer ", layer, ", token ", i / top_k, ", slot ",
                   i % top_k, " is outside [0, ", slots, ") (and is not -1, masked)");
    } else {
      scratch_[i] = phy2log[static_cast<std::size_t>(v)];
    }
  }
  record_valid(layer, scratch_.data(), num_tokens);
}

void Tracker::renormalise(Layer& l) const {
  for (double& v : l.load_weight) v *= l.scale;
  for (double& v : l.pair_weight) v *= l.scale;
  l.scale = 1.0;
}

void Tracker::record_valid(std::uint32_t layer, const std::int32_t* ids, std::size_t num_tokens) {
  Layer& l = layers_[layer];
  const std::uint32_t k = options_.top_k;
  switch (options_.window) {
    case TrackerWindow::cumulative: {
      // Large batches count pairs into a 16-bit scratch triangle first (a quarter of the cache
      // footprint of the 64-bit totals, so the scattered increments mostly hit L1/L2), folded
      // into the totals once per chunk; small batches increment the totals directly.
      const std::size_t pairs_per_token = static_cast<std::size_t>(k) * (k - 1) / 2;
      if (num_tokens * pairs_per_token <= num_pairs_) {
        accumulate<std::uint64_t>(ids, num_tokens, k, row_base_.data(), l.load_count.data(),
                                  l.pair_count.data(), 1);
        break;
      }
      constexpr std::size_t kChunk = 65535;  // one token adds at most 1 to a pair
      pair_scratch_.assign(num_pairs_, 0);
      for (std::size_t from = 0; from < num_tokens; from += kChunk) {
        const std::size_t n = std::min(kChunk, num_tokens - from);
        accumulate<std::uint64_t, std::uint16_t>(ids + from * k, n, k, row_base_.data(),
                                                 l.load_count.data(), pair_scratch_.data(), 1);
        std::uint64_t* pair = l.pair_count.data();
        for (std::size_t i = 0; i < num_pairs_; ++i) pair[i] += pair_scratch_[i];
        if (from + n < num_tokens) std::fill(pair_scratch_.begin(), pair_scratch_.end(), 0);
      }
      break;
    }
    case TrackerWindow::sliding: {
      const std::uint32_t w = options_.window_batches;
      if (l.batches > 0) l.ring_head = (l.ring_head + 1) % w;
      std::uint32_t* delta = l.ring.data() + static_cast<std::size_t>(l.ring_head) * delta_size();
      // Retire the batch leaving the window (zeros while the window is filling up).
      std::uint64_t* load = l.load_count.data();
      std::uint64_t* pair = l.pair_count.data();
      for (std::size_t i = 0; i < num_experts_; ++i) load[i] -= delta[i];
      for (std::size_t i = 0; i < num_pairs_; ++i) pair[i] -= delta[num_experts_ + i];
      std::fill(delta, delta + delta_size(), 0U);
      accumulate<std::uint32_t>(ids, num_tokens, k, row_base_.data(), delta, delta + num_experts_,
                                1U);
      for (std::size_t i = 0; i < num_experts_; ++i) load[i] += delta[i];
      for (std::size_t i = 0; i < num_pairs_; ++i) pair[i] += delta[num_experts_ + i];
      break;
    }
    case TrackerWindow::decay:
      if (l.batches > 0) {
        l.scale *= options_.decay;
        if (l.scale < kMinScale) renormalise(l);
      }
      accumulate<double>(ids, num_tokens, k, row_base_.data(), l.load_weight.data(),
                         l.pair_weight.data(), 1.0 / l.scale, 1.0 / l.scale);
      break;
  }
  ++l.batches;
  if (options_.reservoir_capacity > 0) sample_batch(l, ids, num_tokens);
}

void Tracker::sample_batch(Layer& l, const std::int32_t* ids, std::size_t num_tokens) {
  const std::uint32_t k = options_.top_k;
  const std::uint64_t capacity = options_.reservoir_capacity;
  for (std::size_t t = 0; t < num_tokens; ++t) {
    const std::int32_t* row = ids + t * k;
    bool any = false;
    for (std::uint32_t s = 0; s < k; ++s) any |= row[s] >= 0;
    if (!any) continue;
    if (l.seen < capacity) {
      l.sample.insert(l.sample.end(), row, row + k);
    } else {
      const std::uint64_t j = uniform_below(l.rng_state, l.seen + 1);
      if (j < capacity)
        std::copy(row, row + k, l.sample.begin() + static_cast<std::ptrdiff_t>(j * k));
    }
    ++l.seen;
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
  if (a.num_layers != b.num_layers || a.num_experts != b.num_experts || a.top_k != b.top_k ||
      a.window != b.window || a.reservoir_capacity != b.reservoir_capacity ||
      (a.window == TrackerWindow::sliding && a.window_batches != b.window_batches) ||
      (a.window == TrackerWindow::decay && a.decay != b.decay)) {
    fail_invalid("trackers differ in shape or window: layers ", a.num_layers, " vs ", b.num_layers,
                 ", experts ", a.num_experts, " vs ", b.num_experts, ", top_k ", a.top_k, " vs ",
                 b.top_k, ", window ", window_name(a.window), " vs ", window_name(b.window),
                 ", window_batches ", a.window_batches, " vs ", b.window_batches, ", decay ",
                 a.decay, " vs ", b.decay, ", reservoir_capacity ", a.reservoir_capacity, " vs ",
                 b.reservoir_capacity);
  }
  const std::uint32_t w = a.window_batches;
  if (a.window == TrackerWindow::sliding) {
    // Check every summed delta fits before changing anything.
    for (std::uint32_t layer = 0; layer < a.num_layers; ++layer) {
      const Layer& d = layers_[layer];
      const Layer& s = other.layers_[layer];
      for (std::uint32_t age = 0; age < w; ++age) {
        const std::uint32_t* dd = d.ring.data() + ((d.ring_head + w - age) % w) * delta_size();
        const std::uint32_t* sd = s.ring.data() + ((s.ring_head + w - age) % w) * delta_size();
        for (std::size_t i = 0; i < delta_size(); ++i) {
          if (dd[i] > std::numeric_limits<std::uint32_t>::max() - sd[i]) {
            fail_invalid("merging overflows a sliding-window batch count of layer ", layer,
                         " (more than 2^32-1 in one batch)");
          }
        }
      }
    }
  }
  for (std::uint32_t layer = 0; layer < a.num_layers; ++layer) {
    Layer& d = layers_[layer];
    const Layer& s = other.layers_[layer];
    switch (a.window) {
      case TrackerWindow::sliding:
        for (std::uint32_t age = 0; age < w; ++age) {
          std::uint32_t* dd = d.ring.data() + ((d.ring_head + w - age) % w) * delta_size();
          const std::uint32_t* sd = s.ring.data() + ((s.ring_head + w - age) % w) * delta_size();
          for (std::size_t i = 0; i < delta_size(); ++i) dd[i] += sd[i];
        }
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
      // A uniform sample of the union: draw min(capacity, n1 + n2) rows, each from the side with
      // probability proportional to its not-yet-drawn population, taking a uniformly chosen
      // unused row of that side's sample (itself uniform over its population).
      const std::uint32_t k = a.top_k;
      std::vector<std::int32_t> left = std::move(d.sample);
      std::vector<std::int32_t> right = s.sample;
      std::uint64_t rows_left = left.size() / k;
      std::uint64_t rows_right = right.size() / k;
      std::uint64_t pop_left = d.seen;
      std::uint64_t pop_right = s.seen;
      const std::uint64_t draws =
          std::min<std::uint64_t>(a.reservoir_capacity, pop_left + pop_right);
      std::vector<std::int32_t> merged;
      merged.reserve(draws * k);
      for (std::uint64_t n = 0; n < draws; ++n) {
        const bool from_left = uniform_below(d.rng_state, pop_left + pop_right) < pop_left;
        std::vector<std::int32_t>& side = from_left ? left : right;
        std::uint64_t& rows = from_left ? rows_left : rows_right;
        EPLB_ASSERT(rows > 0);
        const std::uint64_t pick = uniform_below(d.rng_state, rows);
        merged.insert(merged.end(), side.begin() + static_cast<std::ptrdiff_t>(pick * k),
                      side.begin() + static_cast<std::ptrdiff_t>((pick + 1) * k));
        // Remove the picked row by moving the last one into its place.
        std::copy(side.begin() + static_cast<std::ptrdiff_t>((rows - 1) * k),
                  side.begin() + static_cast<std::ptrdiff_t>(rows * k),
                  side.begin() + static_cast<std::ptrdiff_t>(pick * k));
        --rows;
        --(from_left ? pop_left : pop_right);
      }
      d.sample = std::move(merged);
      d.seen += s.seen;
    }
  }
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

}  // namespace eplb
