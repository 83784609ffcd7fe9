// The co-activation section of snapshots: a Tracker's state, encoded field by field in
// little-endian order, and decoded with every size checked before allocation and every value
// checked against what a tracker can produce.
#include "tracker_state.hpp"

#include <cmath>
#include <limits>

#include "error.hpp"
#include "snapshot_format.hpp"

namespace eplb {

namespace format = snapshot_format;

namespace {

// The fixed record at the start of the content; readers accept a longer one (later fields).
constexpr std::size_t kFixedSize = 56;
constexpr std::size_t kMaxFixedSize = 4096;
// Per layer, before its arrays: batches, tokens seen, RNG state, sample rows, ring head, scale.
constexpr std::size_t kLayerHeaderSize = 40;

class Writer {
 public:
  template <format::Field T>
  void put(T value) {
    const std::size_t at = bytes_.size();
    bytes_.resize(at + sizeof(T));
    format::store<T>(bytes_.data() + at, value);
  }
  template <format::Field T>
  void put_all(std::span<const T> values) {
    const std::size_t at = bytes_.size();
    bytes_.resize(at + values.size_bytes());
    for (std::size_t i = 0; i < values.size(); ++i) {
      format::store<T>(bytes_.data() + at + i * sizeof(T), values[i]);
    }
  }
  [[nodiscard]] std::vector<std::byte> take() { return std::move(bytes_); }

 private:
  std::vector<std::byte> bytes_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> bytes) : bytes_(bytes) {}
  [[nodiscard]] std::size_t left() const { return bytes_.size() - at_; }
  void skip(std::size_t n) {
    need(n, "fixed record");
    at_ += n;
  }
  template <format::Field T>
  T get(const char* what) {
    need(sizeof(T), what);
    const T value = format::load<T>(bytes_.data() + at_);
    at_ += sizeof(T);
    return value;
  }
  template <format::Field T>
  std::vector<T> get_all(std::size_t count, const char* what) {
    if (count > left() / sizeof(T)) need(count * sizeof(T), what);
    std::vector<T> values(count);
    for (std::size_t i = 0; i < count; ++i) {
      values[i] = format::load<T>(bytes_.data() + at_ + i * sizeof(T));
    }
    at_ += count * sizeof(T);
    return values;
  }

 private:
  void need(std::size_t n, const char* what) const {
    if (n > left()) {
      fail(Errc::corrupt, "section coactivation: ends inside ", what, " (", left(), " bytes left, ",
           n, " needed)");
    }
  }
  std::span<const std::byte> bytes_;
  std::size_t at_ = 0;
};

template <typename... Parts>
[[noreturn]] void corrupt(Parts&&... parts) {
  fail(Errc::corrupt, "section coactivation: ", std::forward<Parts>(parts)...);
}

// a * b + c with overflow checks, for sizes.
std::uint64_t mul_add(std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  std::uint64_t product = 0;
  std::uint64_t sum = 0;
  if (__builtin_mul_overflow(a, b, &product) || __builtin_add_overflow(product, c, &sum)) {
    corrupt("its sizes overflow");
  }
  return sum;
}

}  // namespace

// A friend of Tracker: reads and writes its private state.
class TrackerStateCodec {
 public:
  static std::vector<std::byte> encode(const Tracker& tracker) {
    const TrackerOptions& o = tracker.options_;
    Writer out;
    out.put<std::uint32_t>(static_cast<std::uint32_t>(kFixedSize));
    out.put<std::uint32_t>(o.num_layers);
    out.put<std::uint32_t>(o.num_experts);
    out.put<std::uint32_t>(o.top_k);
    out.put<std::uint32_t>(static_cast<std::uint32_t>(o.window));
    out.put<std::uint32_t>(o.window == TrackerWindow::sliding ? o.window_batches : 0);
    out.put<double>(o.window == TrackerWindow::decay ? o.decay : 1.0);
    out.put<std::uint32_t>(o.reservoir_capacity);
    out.put<std::uint32_t>(0);
    out.put<std::uint64_t>(o.seed);
    out.put<std::uint64_t>(0);
    for (const Tracker::Layer& l : tracker.layers_) {
      out.put<std::uint64_t>(l.batches);
      out.put<std::uint64_t>(l.seen);
      out.put<std::uint64_t>(l.rng_state);
      out.put<std::uint32_t>(static_cast<std::uint32_t>(l.sample.size() / o.top_k));
      out.put<std::uint32_t>(l.ring_head);
      out.put<double>(l.scale);
      if (o.window == TrackerWindow::decay) {
        out.put_all<double>(l.load_weight);
        out.put_all<double>(l.pair_weight);
      } else {
        out.put_all<std::uint64_t>(l.load_count);
        out.put_all<std::uint64_t>(l.pair_count);
      }
      if (o.window == TrackerWindow::sliding) {
        // The format keeps every delta dense (zstd packs the zeros of small batches).
        std::vector<std::uint32_t> delta(tracker.delta_size());
        for (const WindowDelta& d : l.ring) {
          tracker.delta_counts(d, delta.data());
          out.put_all<std::uint32_t>(delta);
        }
      }
      out.put_all<std::int32_t>(l.sample);
    }
    return out.take();
  }

  static Tracker decode(std::span<const std::byte> content) {
    Reader in(content);
    const auto fixed_size = in.get<std::uint32_t>("fixed record");
    if (fixed_size < kFixedSize || fixed_size > kMaxFixedSize) {
      corrupt("fixed record size ", fixed_size, " is outside [", kFixedSize, ", ", kMaxFixedSize,
              "]");
    }
    TrackerOptions o;
    o.num_layers = in.get<std::uint32_t>("fixed record");
    o.num_experts = in.get<std::uint32_t>("fixed record");
    o.top_k = in.get<std::uint32_t>("fixed record");
    o.window = static_cast<TrackerWindow>(in.get<std::uint32_t>("fixed record"));
    o.window_batches = in.get<std::uint32_t>("fixed record");
    o.decay = in.get<double>("fixed record");
    o.reservoir_capacity = in.get<std::uint32_t>("fixed record");
    (void)in.get<std::uint32_t>("fixed record");
    o.seed = in.get<std::uint64_t>("fixed record");
    (void)in.get<std::uint64_t>("fixed record");
    in.skip(fixed_size - kFixedSize);
    try {
      o.validate();
    } catch (const Error& error) {
      corrupt("bad tracker options: ", error.what());
    }
    // Everything the tracker allocates must be backed by bytes of the content: check the
    // smallest content these options imply before creating the tracker.
    const std::uint64_t e = o.num_experts;
    const std::uint64_t pairs = mul_add(e, e - 1, 0) / 2;
    const std::uint64_t counts = mul_add(e + pairs, 8, 0);
    const std::uint64_t ring = o.window == TrackerWindow::sliding
                                   ? mul_add(mul_add(e + pairs, o.window_batches, 0), 4, 0)
                                   : 0;
    const std::uint64_t least = mul_add(o.num_layers, kLayerHeaderSize + counts, 0) + 0;
    const std::uint64_t least_with_ring = mul_add(o.num_layers, ring, least);
    if (least_with_ring > in.left()) {
      corrupt(o.num_layers, " layers of ", o.num_experts, " experts need at least ",
              least_with_ring, " bytes, but ", in.left(), " are left");
    }
    Tracker tracker(o);
    const std::size_t num_pairs = tracker.num_pairs_;
    const bool decay = o.window == TrackerWindow::decay;
    const bool sliding = o.window == TrackerWindow::sliding;
    for (std::uint32_t layer = 0; layer < o.num_layers; ++layer) {
      Tracker::Layer& l = tracker.layers_[layer];
      l.batches = in.get<std::uint64_t>("a layer header");
      l.seen = in.get<std::uint64_t>("a layer header");
      l.rng_state = in.get<std::uint64_t>("a layer header");
      const auto rows = in.get<std::uint32_t>("a layer header");
      l.ring_head = in.get<std::uint32_t>("a layer header");
      l.scale = in.get<double>("a layer header");
      if (rows != std::min<std::uint64_t>(l.seen, o.reservoir_capacity)) {
        corrupt("layer ", layer, ": ", rows, " sampled rows, but a reservoir of capacity ",
                o.reservoir_capacity, " that saw ", l.seen, " tokens holds ",
                std::min<std::uint64_t>(l.seen, o.reservoir_capacity));
      }
      if (o.reservoir_capacity == 0 && l.seen != 0) {
        corrupt("layer ", layer, ": ", l.seen, " tokens seen by an absent reservoir");
      }
      if (sliding ? l.ring_head >= o.window_batches : l.ring_head != 0) {
        corrupt("layer ", layer, ": ring head ", l.ring_head, " is outside the window of ",
                sliding ? o.window_batches : 0, " batches");
      }
      if (decay ? !(std::isfinite(l.scale) && l.scale > 0 && l.scale <= 1) : l.scale != 1.0) {
        corrupt("layer ", layer, ": scale ", l.scale, " is outside ",
                decay ? "(0, 1]" : "{1} (it is only used by decay windows)");
      }
      if (decay) {
        l.load_weight = in.get_all<double>(tracker.num_experts_, "loads");
        l.pair_weight = in.get_all<double>(num_pairs, "pair counts");
        for (std::size_t i = 0; i < l.load_weight.size(); ++i) {
          if (!std::isfinite(l.load_weight[i]) || l.load_weight[i] < 0) {
            corrupt("layer ", layer, ": load of expert ", i, " (", l.load_weight[i],
                    ") is not a finite value >= 0");
          }
        }
        for (std::size_t i = 0; i < num_pairs; ++i) {
          if (!std::isfinite(l.pair_weight[i]) || l.pair_weight[i] < 0) {
            corrupt("layer ", layer, ": pair count ", i, " (", l.pair_weight[i],
                    ") is not a finite value >= 0");
          }
        }
      } else {
        l.load_count = in.get_all<std::uint64_t>(tracker.num_experts_, "loads");
        l.pair_count = in.get_all<std::uint64_t>(num_pairs, "pair counts");
        check_pairs(layer, tracker.num_experts_, l.load_count.data(), l.pair_count.data());
      }
      if (sliding) {
        const std::size_t width = tracker.delta_size();
        const std::vector<std::uint32_t> deltas =
            in.get_all<std::uint32_t>(width * o.window_batches, "the sliding window");
        check_ring(tracker, layer, l, deltas);
        for (std::size_t d = 0; d < o.window_batches; ++d) {
          l.ring[d].assign_counts(deltas.data() + d * width, width);
        }
      }
      l.sample = in.get_all<std::int32_t>(static_cast<std::size_t>(rows) * o.top_k, "samples");
      for (std::size_t r = 0; r < rows; ++r) {
        bool any = false;
        for (std::uint32_t s = 0; s < o.top_k; ++s) {
          const std::int32_t v = l.sample[r * o.top_k + s];
          if (v < -1 || v >= static_cast<std::int64_t>(o.num_experts)) {
            corrupt("layer ", layer, ": sampled row ", r, ", slot ", s, " holds expert ", v,
                    ", outside [-1, ", o.num_experts, ")");
          }
          any |= v >= 0;
        }
        if (!any) corrupt("layer ", layer, ": sampled row ", r, " has no valid slot");
      }
    }
    if (in.left() != 0) corrupt(in.left(), " bytes after the last layer");
    return tracker;
  }

 private:
  // A token adds 1 to pair (a, b) only if it lists both a and b, adding at least 1 to each load.
  template <typename T>
  static void check_pairs(std::uint32_t layer, std::size_t e, const std::uint64_t* load,
                          const T* pair) {
    std::size_t index = 0;
    for (std::size_t a = 0; a < e; ++a) {
      for (std::size_t b = a + 1; b < e; ++b, ++index) {
        if (pair[index] > load[a] || pair[index] > load[b]) {
          corrupt("layer ", layer, ": pair (", a, ", ", b, ") counts ", pair[index],
                  ", more than the loads of its experts (", load[a], " and ", load[b], ")");
        }
      }
    }
  }

  // The totals of a sliding window are the sum of its ring's deltas, and each delta is itself
  // a consistent batch.
  static void check_ring(const Tracker& tracker, std::uint32_t layer, const Tracker::Layer& l,
                         const std::vector<std::uint32_t>& ring) {
    const std::size_t e = tracker.num_experts_;
    const std::size_t width = tracker.delta_size();
    std::vector<std::uint64_t> sum(width, 0);
    std::vector<std::uint64_t> delta_load(e);
    for (std::size_t d = 0; d < tracker.options_.window_batches; ++d) {
      const std::uint32_t* delta = ring.data() + d * width;
      for (std::size_t i = 0; i < width; ++i) sum[i] += delta[i];
      for (std::size_t i = 0; i < e; ++i) delta_load[i] = delta[i];
      check_pairs(layer, e, delta_load.data(), delta + e);
    }
    for (std::size_t i = 0; i < e; ++i) {
      if (sum[i] != l.load_count[i]) {
        corrupt("layer ", layer, ": load of expert ", i, " (", l.load_count[i],
                ") is not the sum of the sliding window's batches (", sum[i], ")");
      }
    }
    for (std::size_t i = 0; i < width - e; ++i) {
      if (sum[e + i] != l.pair_count[i]) {
        corrupt("layer ", layer, ": pair count ", i, " (", l.pair_count[i],
                ") is not the sum of the sliding window's batches (", sum[e + i], ")");
      }
    }
  }
};

std::vector<std::byte> encode_tracker_state(const Tracker& tracker) {
  return TrackerStateCodec::encode(tracker);
}

Tracker decode_tracker_state(std::span<const std::byte> content) {
  return TrackerStateCodec::decode(content);
}

}  // namespace eplb
