// The tracker against an independent brute-force count (random input and, when ../shared is
// present, the real Mixtral-8x7B routing traces), its windows against brute-force sums, merging
// against recording everything into one tracker, the reservoir's uniformity, masks and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "error.hpp"
#include "placement.hpp"
#include "tracker.hpp"
#include "tracker_state.hpp"

namespace eplb {
namespace {

struct Batch {
  std::uint32_t layer = 0;
  std::size_t tokens = 0;
  std::vector<std::int32_t> ids;
};

// Brute force: loads per occurrence; pairs over the set of distinct valid ids of each token.
struct Oracle {
  std::vector<double> load;               // [E]
  std::vector<std::vector<double>> pair;  // [E][E], a < b used
  explicit Oracle(std::uint32_t e) : load(e, 0.0), pair(e, std::vector<double>(e, 0.0)) {}
  void add(const Batch& b, std::uint32_t k, double weight = 1.0) {
    for (std::size_t t = 0; t < b.tokens; ++t) {
      std::set<std::int32_t> distinct;
      for (std::uint32_t s = 0; s < k; ++s) {
        const std::int32_t v = b.ids[t * k + s];
        if (v == -1) continue;
        load[static_cast<std::size_t>(v)] += weight;
        distinct.insert(v);
      }
      for (auto i = distinct.begin(); i != distinct.end(); ++i) {
        for (auto j = std::next(i); j != distinct.end(); ++j) {
          pair[static_cast<std::size_t>(*i)][static_cast<std::size_t>(*j)] += weight;
        }
      }
    }
  }
};

// Compares a tracker layer with the oracle; the triangle is walked in row order, independently
// of pair_index().
void expect_equal(const Tracker& tracker, std::uint32_t layer, const Oracle& o, double tol = 0) {
  const std::uint32_t e = tracker.options().num_experts;
  std::vector<double> load(e);
  tracker.layer_loads(layer, load);
  for (std::uint32_t x = 0; x < e; ++x) {
    ASSERT_NEAR(load[x], o.load[x], tol * std::max(1.0, o.load[x]))
        << "layer " << layer << " e " << x;
  }
  std::vector<double> pairs(pair_count(e));
  tracker.coactivation(layer, pairs);
  std::size_t i = 0;
  for (std::uint32_t a = 0; a < e; ++a) {
    for (std::uint32_t b = a + 1; b < e; ++b, ++i) {
      ASSERT_NEAR(pairs[i], o.pair[a][b], tol * std::max(1.0, o.pair[a][b]))
          << "layer " << layer << " pair " << a << "," << b;
    }
  }
  ASSERT_EQ(i, pairs.size());
}

Batch random_batch(std::mt19937_64& rng, std::uint32_t layer, std::size_t tokens, std::uint32_t e,
                   std::uint32_t k) {
  Batch b{layer, tokens, {}};
  std::uniform_int_distribution<std::int32_t> id(-1, static_cast<std::int32_t>(e) - 1);
  for (std::size_t i = 0; i < tokens * k; ++i) b.ids.push_back(id(rng));
  return b;
}

TrackerOptions options(std::uint32_t layers, std::uint32_t e, std::uint32_t k,
                       TrackerWindow w = TrackerWindow::cumulative) {
  TrackerOptions o;
  o.num_layers = layers;
  o.num_experts = e;
  o.top_k = k;
  o.window = w;
  o.window_batches = 3;
  o.decay = 0.8;
  o.reservoir_capacity = 64;
  o.seed = 7;
  return o;
}

TEST(Tracker, RandomInputEqualsBruteForce) {
  std::mt19937_64 rng(1);
  for (const std::uint32_t e : {1U, 2U, 7U, 33U}) {
    for (const std::uint32_t k : {1U, 2U, 4U, 8U, 9U, 20U}) {
      Tracker tracker(options(3, e, k));
      std::vector<Oracle> oracle(3, Oracle(e));
      for (int n = 0; n < 12; ++n) {
        const Batch b = random_batch(rng, static_cast<std::uint32_t>(rng() % 3), rng() % 50, e, k);
        tracker.record(b.layer, b.ids, b.tokens, k);
        oracle[b.layer].add(b, k);
      }
      for (std::uint32_t l = 0; l < 3; ++l) expect_equal(tracker, l, oracle[l]);
    }
  }
}

TEST(Tracker, DuplicatesCountLoadTwiceButNoPair) {
  Tracker tracker(options(1, 4, 4));
  const std::vector<std::int32_t> ids = {2, 2, -1, 3, 1, 1, 1, 1};
  tracker.record(0, ids, 2, 4);
  std::vector<double> load(4);
  tracker.layer_loads(0, load);
  EXPECT_EQ(load, (std::vector<double>{0, 4, 2, 1}));
  std::vector<double> pairs(6);
  tracker.coactivation(0, pairs);
  EXPECT_EQ(pairs[pair_index(4, 2, 3)], 1.0);
  double sum = 0;
  for (double v : pairs) sum += v;
  EXPECT_EQ(sum, 1.0);
}

TEST(Tracker, FullyMaskedRowsAreNotSampled) {
  Tracker tracker(options(1, 4, 2));
  const std::vector<std::int32_t> ids = {-1, -1, 0, -1, -1, -1};
  tracker.record(0, ids, 3, 2);
  EXPECT_EQ(tracker.tokens_seen(0), 1U);
  ASSERT_EQ(tracker.sample_rows(0), 1U);
  EXPECT_EQ(tracker.samples(0)[0], 0);
  EXPECT_EQ(tracker.samples(0)[1], -1);
}

// ----- the real Mixtral traces ---------------------------------------------------------------

TEST(Tracker, MixtralTracesEqualBruteForce) {
  const std::filesystem::path dir =
      std::filesystem::path(EPLB_SHARED_DIR) / "data/real/mixtral-8x7b-routing-traces";
  const std::vector<std::string> files = {"gsm8k_2_routing.jsonl", "humaneval_2_routing.jsonl",
                                          "routing_raw_prefill_and_decode.jsonl"};
  if (!std::filesystem::exists(dir / files[0])) {
    GTEST_SKIP() << "Mixtral traces not found under " << dir << " (../shared absent); skipped";
  }
  constexpr std::uint32_t kLayers = 32, kExperts = 8, kTopK = 2;
  Tracker tracker(options(kLayers, kExperts, kTopK));
  // Brute force straight from the records: loads and distinct pairs, without batching.
  std::vector<std::vector<std::uint64_t>> load(kLayers, std::vector<std::uint64_t>(kExperts));
  std::map<std::tuple<int, int, int>, std::uint64_t> pairs;
  std::vector<std::vector<std::int32_t>> pending(kLayers);
  std::size_t records = 0;
  auto flush = [&](std::uint32_t layer) {
    tracker.record(layer, pending[layer], pending[layer].size() / kTopK, kTopK);
    pending[layer].clear();
  };
  for (const auto& name : files) {
    std::ifstream in(dir / name);
    ASSERT_TRUE(in) << (dir / name);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto j = nlohmann::json::parse(line);
      const int layer = j.at("layer").get<int>();
      const auto experts = j.at("experts").get<std::vector<int>>();
      ASSERT_EQ(experts.size(), kTopK);
      for (int x : experts) ++load[static_cast<std::size_t>(layer)][static_cast<std::size_t>(x)];
      if (experts[0] != experts[1]) {
        ++pairs[{layer, std::min(experts[0], experts[1]), std::max(experts[0], experts[1])}];
      }
      auto& p = pending[static_cast<std::size_t>(layer)];
      p.insert(p.end(), experts.begin(), experts.end());
      if (p.size() == 37 * kTopK) flush(static_cast<std::uint32_t>(layer));  // odd batch sizes
      ++records;
    }
  }
  for (std::uint32_t l = 0; l < kLayers; ++l) flush(l);
  EXPECT_GT(records, 20000U);
  for (std::uint32_t l = 0; l < kLayers; ++l) {
    std::vector<double> got(kExperts);
    tracker.layer_loads(l, got);
    for (std::uint32_t x = 0; x < kExperts; ++x) EXPECT_EQ(got[x], static_cast<double>(load[l][x]));
    std::vector<double> tri(pair_count(kExperts));
    tracker.coactivation(l, tri);
    std::size_t i = 0;
    for (int a = 0; a < 8; ++a) {
      for (int b = a + 1; b < 8; ++b, ++i) {
        const auto it = pairs.find({static_cast<int>(l), a, b});
        EXPECT_EQ(tri[i], it == pairs.end() ? 0.0 : static_cast<double>(it->second))
            << "layer " << l << " pair " << a << "," << b;
      }
    }
  }
}

// ----- windows --------------------------------------------------------------------------------

TEST(Tracker, SlidingWindowEqualsLastWBatches) {
  std::mt19937_64 rng(2);
  constexpr std::uint32_t kE = 9, kK = 3;
  for (const std::uint32_t w : {1U, 3U, 5U}) {
    auto o = options(2, kE, kK, TrackerWindow::sliding);
    o.window_batches = w;
    Tracker tracker(o);
    std::vector<std::vector<Batch>> history(2);
    for (int n = 0; n < 25; ++n) {
      const Batch b = random_batch(rng, static_cast<std::uint32_t>(rng() % 2), rng() % 20, kE, kK);
      tracker.record(b.layer, b.ids, b.tokens, kK);
      history[b.layer].push_back(b);
      for (std::uint32_t l = 0; l < 2; ++l) {
        Oracle oracle(kE);
        const auto& h = history[l];
        for (std::size_t i = h.size() > w ? h.size() - w : 0; i < h.size(); ++i) {
          oracle.add(h[i], kK);
        }
        expect_equal(tracker, l, oracle);
      }
    }
  }
}

// Batches of 0 to 70 tokens over 40 experts, top-6: the small ones keep sparse deltas, the large
// ones dense (window_delta.hpp), interleaved in every order. The window, its merge (aligned by
// age), its counters and its snapshot must all stay exact.
TEST(Tracker, SlidingWindowMixesSparseAndDenseDeltasExactly) {
  std::mt19937_64 rng(21);
  constexpr std::uint32_t kE = 40, kK = 6;
  for (const std::uint32_t w : {1U, 4U, 7U}) {
    auto o = options(2, kE, kK, TrackerWindow::sliding);
    o.window_batches = w;
    Tracker all(o), left(o), right(o);
    std::vector<std::vector<Batch>> history(2);
    for (int n = 0; n < 40; ++n) {
      const auto layer = static_cast<std::uint32_t>(rng() % 2);
      // Mostly decode-sized, sometimes prefill-sized; each half goes to one part.
      const std::size_t tokens = rng() % 3 == 0 ? 40 + rng() % 31 : rng() % 12;
      const Batch b = random_batch(rng, layer, tokens, kE, kK);
      all.record(layer, b.ids, b.tokens, kK);
      const std::size_t half = tokens / 2;
      left.record(layer, std::span(b.ids).first(half * kK), half, kK);
      right.record(layer, std::span(b.ids).subspan(half * kK), tokens - half, kK);
      history[layer].push_back(b);
      for (std::uint32_t l = 0; l < 2; ++l) {
        Oracle oracle(kE);
        const auto& h = history[l];
        for (std::size_t i = h.size() > w ? h.size() - w : 0; i < h.size(); ++i) {
          oracle.add(h[i], kK);
        }
        expect_equal(all, l, oracle);
        Tracker merged = left;
        merged.merge(right);
        expect_equal(merged, l, oracle);
      }
      // The counters and a snapshot carry the window exactly: recording on continues alike.
      Tracker from_counters(o);
      from_counters.set_counters(all.counters());
      EXPECT_EQ(from_counters.counters().counts, all.counters().counts);
      Tracker decoded = decode_tracker_state(encode_tracker_state(all));
      EXPECT_EQ(encode_tracker_state(decoded), encode_tracker_state(all));
      const Batch next = random_batch(rng, layer, rng() % 50, kE, kK);
      for (Tracker* t : {&from_counters, &decoded}) t->record(layer, next.ids, next.tokens, kK);
      Tracker ahead = all;
      ahead.record(layer, next.ids, next.tokens, kK);
      EXPECT_EQ(from_counters.counters().counts, ahead.counters().counts);
      EXPECT_EQ(decoded.counters().counts, ahead.counters().counts);
    }
  }
}

// Decode-sized batches keep small deltas: DeepSeek-V3's layer shape, 128 tokens per batch, top-8.
TEST(Tracker, SlidingWindowOfSmallBatchesKeepsTheirRowsNotTheirCounts) {
  std::mt19937_64 rng(22);
  constexpr std::uint32_t kE = 256, kK = 8, kW = 16;
  auto o = options(1, kE, kK, TrackerWindow::sliding);
  o.window_batches = kW;
  Tracker tracker(o);
  EXPECT_EQ(tracker.window_bytes(), 0U) << "nothing before the first batch";
  for (std::uint32_t n = 0; n < kW; ++n) {
    const Batch b = random_batch(rng, 0, 128, kE, kK);
    tracker.record(0, b.ids, b.tokens, kK);
  }
  // 128 rows of 8 ids: 4 KB per batch instead of 132 KB of counts.
  const std::size_t dense_delta = (kE + pair_count(kE)) * sizeof(std::uint32_t);
  const std::size_t rows = 128 * kK * sizeof(std::int32_t);
  EXPECT_EQ(tracker.window_bytes(), kW * rows);
  // A prefill-sized batch takes counts in place of rows. A snapshot holds counts, which a
  // decoded tracker keeps, except that the slots no batch has filled yet stay empty.
  const Batch big = random_batch(rng, 0, 4096, kE, kK);
  tracker.record(0, big.ids, big.tokens, kK);
  EXPECT_EQ(tracker.window_bytes(), (kW - 1) * rows + dense_delta);
  Tracker fresh(o);
  fresh.record(0, big.ids, big.tokens, kK);
  EXPECT_EQ(decode_tracker_state(encode_tracker_state(fresh)).window_bytes(), dense_delta);
}

// A decay tracker's layer 0 against the brute force: batch i of n weighs decay^(n - 1 - i).
void expect_geometric_sum(const Tracker& tracker, const std::vector<Batch>& history, double decay) {
  Oracle oracle(tracker.options().num_experts);
  for (std::size_t i = 0; i < history.size(); ++i) {
    oracle.add(history[i], tracker.options().top_k,
               std::pow(decay, static_cast<double>(history.size() - 1 - i)));
  }
  expect_equal(tracker, 0, oracle, 1e-12);
}

TEST(Tracker, DecayEqualsGeometricSum) {
  std::mt19937_64 rng(3);
  constexpr std::uint32_t kE = 6, kK = 2;
  for (const double decay : {1.0, 0.9, 0.5, 1e-30}) {
    auto o = options(1, kE, kK, TrackerWindow::decay);
    o.decay = decay;
    Tracker tracker(o);
    std::vector<Batch> history;
    for (int n = 0; n < 20; ++n) {  // 1e-30 ^ 20 forces the rescaling path
      const Batch b = random_batch(rng, 0, 1 + rng() % 20, kE, kK);
      tracker.record(0, b.ids, b.tokens, kK);
      history.push_back(b);
      expect_geometric_sum(tracker, history, decay);
    }
  }
}

// Top-8 batches take the vectorised kernel with the decay's weight, small ones (added straight
// into the weights) and large ones (through the scratch) alike; tokens with masked or repeated
// ids take the per-token path inside it.
TEST(Tracker, DecayOfTopEightBatchesEqualsGeometricSum) {
  std::mt19937_64 rng(31);
  constexpr std::uint32_t kE = 64, kK = 8;
  for (const double decay : {0.9, 0.5}) {
    auto o = options(1, kE, kK, TrackerWindow::decay);
    o.decay = decay;
    Tracker tracker(o);
    std::vector<Batch> history;
    for (const std::size_t tokens : {std::size_t{1}, std::size_t{7}, std::size_t{60},
                                     std::size_t{128}, std::size_t{900}, std::size_t{3}}) {
      Batch b{0, tokens, {}};
      for (std::size_t t = 0; t < tokens; ++t) {
        std::vector<std::int32_t> row(kE);
        std::iota(row.begin(), row.end(), 0);
        std::shuffle(row.begin(), row.end(), rng);
        if (t % 5 == 1) row[3] = -1;      // a masked slot
        if (t % 7 == 2) row[6] = row[1];  // a repeated expert
        b.ids.insert(b.ids.end(), row.begin(), row.begin() + kK);
      }
      tracker.record(0, b.ids, b.tokens, kK);
      history.push_back(b);
      expect_geometric_sum(tracker, history, decay);
    }
  }
}

// ----- merge ----------------------------------------------------------------------------------

TEST(Tracker, MergeEqualsOneTrackerForEveryWindow) {
  constexpr std::uint32_t kE = 11, kK = 4, kParts = 3;
  for (const auto window :
       {TrackerWindow::cumulative, TrackerWindow::sliding, TrackerWindow::decay}) {
    std::mt19937_64 rng(4);
    const auto o = options(2, kE, kK, window);
    Tracker all(o);
    std::vector<Tracker> parts(kParts, Tracker(o));
    // Each step records one batch per layer; its tokens are split among the parts (per rank).
    for (int step = 0; step < 9; ++step) {
      for (std::uint32_t l = 0; l < 2; ++l) {
        const Batch b = random_batch(rng, l, 30, kE, kK);
        all.record(l, b.ids, b.tokens, kK);
        for (std::uint32_t p = 0; p < kParts; ++p) {
          const std::size_t from = p * 10 * kK;
          parts[p].record(l, std::span(b.ids).subspan(from, 10 * kK), 10, kK);
        }
      }
    }
    Tracker merged = parts[0];
    merged.merge(parts[1]);
    merged.merge(parts[2]);
    for (std::uint32_t l = 0; l < 2; ++l) {
      std::vector<double> a(kE), b(kE), pa(pair_count(kE)), pb(pair_count(kE));
      all.layer_loads(l, a);
      merged.layer_loads(l, b);
      all.coactivation(l, pa);
      merged.coactivation(l, pb);
      for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-9 * (1 + a[i]));
      for (std::size_t i = 0; i < pa.size(); ++i) EXPECT_NEAR(pa[i], pb[i], 1e-9 * (1 + pa[i]));
      EXPECT_EQ(merged.tokens_seen(l), all.tokens_seen(l));
      EXPECT_EQ(merged.sample_rows(l), 64U);
    }
    // Recording continues correctly after a merge (the sliding ring stays aligned).
    for (std::uint32_t l = 0; l < 2; ++l) {
      const Batch b = random_batch(rng, l, 5, kE, kK);
      all.record(l, b.ids, b.tokens, kK);
      merged.record(l, b.ids, b.tokens, kK);
      std::vector<double> pa(pair_count(kE)), pb(pair_count(kE));
      all.coactivation(l, pa);
      merged.coactivation(l, pb);
      for (std::size_t i = 0; i < pa.size(); ++i) EXPECT_NEAR(pa[i], pb[i], 1e-9 * (1 + pa[i]));
    }
  }
}

TEST(Tracker, MergeWithItselfDoublesCounts) {
  Tracker t(options(1, 3, 2));
  const std::vector<std::int32_t> ids = {0, 1, 1, 2};
  t.record(0, ids, 2, 2);
  t.merge(t);
  std::vector<double> load(3);
  t.layer_loads(0, load);
  EXPECT_EQ(load, (std::vector<double>{2, 4, 2}));
  EXPECT_EQ(t.tokens_seen(0), 4U);
}

TEST(Tracker, MergeRejectsDifferentOptions) {
  Tracker a(options(1, 4, 2));
  // The message names exactly what differs, this tracker's value first.
  const auto message = [&a](const TrackerOptions& o) {
    try {
      a.merge(Tracker(o));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string prefix = "trackers differ in shape or window (this one vs the other): ";
  EXPECT_EQ(message(options(2, 4, 2)), prefix + "num_layers 1 vs 2");
  EXPECT_EQ(message(options(1, 5, 2)), prefix + "num_logical_experts 4 vs 5");
  EXPECT_EQ(message(options(2, 4, 3)), prefix + "num_layers 1 vs 2, top_k 2 vs 3");
  // Another window: its parameter is not a difference (decay 0.8 is never compared here).
  EXPECT_EQ(message(options(1, 4, 2, TrackerWindow::decay)), prefix + "window cumulative vs decay");
  auto capacity = options(1, 4, 2);
  capacity.reservoir_capacity = 5;
  EXPECT_EQ(message(capacity), prefix + "reservoir_capacity 64 vs 5");
  Tracker sliding(options(1, 4, 2, TrackerWindow::sliding));
  auto longer = options(1, 4, 2, TrackerWindow::sliding);
  longer.window_batches = 4;
  EXPECT_THROW(
      {
        try {
          sliding.merge(Tracker(longer));
        } catch (const Error& e) {
          EXPECT_EQ(std::string(e.what()), prefix + "window_batches 3 vs 4");
          throw;
        }
      },
      Error);
  auto other_seed = options(1, 4, 2);
  other_seed.seed = 99;
  EXPECT_NO_THROW(a.merge(Tracker(other_seed)));
}

// ----- reservoir ------------------------------------------------------------------------------

// Tokens carry the decile of their position in the stream; a uniform sample holds each decile
// equally often. 300 seeds x 100 rows = 30000 draws, chi-square with 9 degrees of freedom.
TEST(Tracker, ReservoirIsUniformOverTheStream) {
  constexpr std::uint32_t kDeciles = 10, kBatch = 1000, kBatches = 20;
  std::vector<double> hits(kDeciles, 0);
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    auto o = options(1, kDeciles, 1);
    o.reservoir_capacity = 100;
    o.seed = seed;
    Tracker t(o);
    std::vector<std::int32_t> ids(kBatch);
    for (std::uint32_t b = 0; b < kBatches; ++b) {
      for (std::uint32_t i = 0; i < kBatch; ++i) {
        ids[i] = static_cast<std::int32_t>((b * kBatch + i) * kDeciles / (kBatch * kBatches));
      }
      t.record(0, ids, kBatch, 1);
    }
    ASSERT_EQ(t.sample_rows(0), 100U);
    for (const std::int32_t v : t.samples(0)) hits[static_cast<std::size_t>(v)] += 1;
  }
  double chi2 = 0;
  const double expected = 30000.0 / kDeciles;
  for (double h : hits) chi2 += (h - expected) * (h - expected) / expected;
  EXPECT_LT(chi2, 27.9) << "p < 0.001 for 9 degrees of freedom";
}

TEST(Tracker, MergedReservoirIsWeightedByTokens) {
  double from_first = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    auto o = options(1, 2, 1);
    o.reservoir_capacity = 50;
    o.seed = seed;
    Tracker a(o), b(o);
    const std::vector<std::int32_t> zeros(3000, 0), ones(1000, 1);
    a.record(0, zeros, zeros.size(), 1);
    b.record(0, ones, ones.size(), 1);
    a.merge(b);
    ASSERT_EQ(a.sample_rows(0), 50U);
    for (const std::int32_t v : a.samples(0)) from_first += v == 0 ? 1 : 0;
  }
  // Expected 0.75 of 10000 draws; the standard deviation of the mean is about 0.004.
  EXPECT_NEAR(from_first / 10000.0, 0.75, 0.02);
}

TEST(Tracker, ReservoirIsDeterministicAndResetRestarts) {
  std::mt19937_64 rng(5);
  const Batch b = random_batch(rng, 0, 500, 8, 2);
  Tracker t1(options(1, 8, 2)), t2(options(1, 8, 2));
  t1.record(0, b.ids, b.tokens, 2);
  t2.record(0, b.ids, b.tokens, 2);
  const std::vector<std::int32_t> s1(t1.samples(0).begin(), t1.samples(0).end());
  EXPECT_EQ(s1, std::vector<std::int32_t>(t2.samples(0).begin(), t2.samples(0).end()));
  t1.reset();
  EXPECT_EQ(t1.sample_rows(0), 0U);
  EXPECT_EQ(t1.batches(0), 0U);
  t1.record(0, b.ids, b.tokens, 2);
  EXPECT_EQ(s1, std::vector<std::int32_t>(t1.samples(0).begin(), t1.samples(0).end()));
}

// ----- physical ids ---------------------------------------------------------------------------

TEST(Tracker, PhysicalIdsFoldToLogical) {
  Topology topo{.num_layers = 2,
                .num_logical = 4,
                .num_physical = 6,
                .num_nodes = 1,
                .num_gpus = 2,
                .num_groups = 1};
  const auto placement = Placement::from_phy2log(topo, {0, 1, 2, 3, 0, 1, 3, 2, 1, 0, 2, 1});
  std::mt19937_64 rng(6);
  Tracker phys(options(2, 4, 3)), logical(options(2, 4, 3));
  for (int n = 0; n < 10; ++n) {
    const std::uint32_t layer = n % 2;
    const Batch b = random_batch(rng, layer, 40, 6, 3);  // ids in [-1, 6): physical slots
    phys.record_physical(placement, layer, b.ids, b.tokens, 3);
    std::vector<std::int32_t> folded = b.ids;
    for (auto& v : folded) {
      if (v >= 0) v = placement.phy2log_layer(layer)[static_cast<std::size_t>(v)];
    }
    logical.record(layer, folded, b.tokens, 3);
  }
  for (std::uint32_t l = 0; l < 2; ++l) {
    std::vector<double> a(4), b(4), pa(6), pb(6);
    phys.layer_loads(l, a);
    logical.layer_loads(l, b);
    EXPECT_EQ(a, b);
    phys.coactivation(l, pa);
    logical.coactivation(l, pb);
    EXPECT_EQ(pa, pb);
    EXPECT_TRUE(std::equal(phys.samples(l).begin(), phys.samples(l).end(),
                           logical.samples(l).begin(), logical.samples(l).end()));
  }
  const std::vector<std::int32_t> bad = {0, 6, 1};
  try {
    phys.record_physical(placement, 1, bad, 1, 3);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("physical id 6 at layer 1, token 0, slot 1"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(Tracker(options(3, 4, 3)).record_physical(placement, 0, bad, 1, 3), Error);
  // Bad ids inside a long batch (the vectorised fold) and in its tail are named, and nothing is
  // recorded.
  for (const auto& [at, value] : std::vector<std::pair<std::size_t, std::int32_t>>{
           {17, 6}, {22, -2}, {58, 100}, {4, std::numeric_limits<std::int32_t>::min()}}) {
    std::vector<std::int32_t> ids(60, 2);  // 20 tokens of top-3
    ids[at] = value;
    const std::vector<double> before = [&] {
      std::vector<double> v(4);
      phys.layer_loads(0, v);
      return v;
    }();
    try {
      phys.record_physical(placement, 0, ids, 20, 3);
      FAIL() << "no error for " << value << " at " << at;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(
                    cat("physical id ", value, " at layer 0, token ", at / 3, ", slot ", at % 3)),
                std::string::npos)
          << e.what();
    }
    std::vector<double> after(4);
    phys.layer_loads(0, after);
    EXPECT_EQ(before, after);
  }
}

// Physical ids through the fast path (top-8 batches large enough for per-batch scratch, and
// every sliding batch): the whole state (counts, window ring, reservoir rows and RNG) equals that
// of a tracker given the ids folded by hand, in every window, with masked slots and two replicas
// of one expert in a token; a bad id anywhere, also past the first 65535-token chunk, is named and
// nothing of its batch is recorded.
TEST(Tracker, PhysicalTopEightBatchesEqualTheFoldedLogicalOnes) {
  constexpr std::uint32_t kLayers = 2, kExperts = 16, kSlots = 24;
  const Topology topo{.num_layers = kLayers,
                      .num_logical = kExperts,
                      .num_physical = kSlots,
                      .num_nodes = 1,
                      .num_gpus = 4,
                      .num_groups = 1};
  std::mt19937_64 rng(41);
  std::vector<std::int32_t> phy2log;
  for (std::uint32_t l = 0; l < kLayers; ++l) {
    std::vector<std::int32_t> row(kSlots);
    for (std::uint32_t p = 0; p < kSlots; ++p) row[p] = static_cast<std::int32_t>(p % kExperts);
    std::shuffle(row.begin(), row.end(), rng);
    phy2log.insert(phy2log.end(), row.begin(), row.end());
  }
  const auto placement = Placement::from_phy2log(topo, phy2log);
  const auto fold = [&](std::uint32_t layer, std::vector<std::int32_t> ids) {
    for (auto& v : ids) {
      if (v >= 0) v = placement.phy2log_layer(layer)[static_cast<std::size_t>(v)];
    }
    return ids;
  };
  for (const TrackerWindow w :
       {TrackerWindow::cumulative, TrackerWindow::sliding, TrackerWindow::decay}) {
    Tracker phys(options(kLayers, kExperts, 8, w)), logical(options(kLayers, kExperts, 8, w));
    for (int n = 0; n < 12; ++n) {
      const auto layer = static_cast<std::uint32_t>(n % kLayers);
      // Mostly distinct slots per token (the common case), some masked, some repeated experts.
      Batch b{layer, 1 + static_cast<std::size_t>(rng() % 300), {}};
      for (std::size_t t = 0; t < b.tokens; ++t) {
        std::vector<std::int32_t> row(kSlots);
        std::iota(row.begin(), row.end(), 0);
        std::shuffle(row.begin(), row.end(), rng);
        for (std::uint32_t s = 0; s < 8; ++s) b.ids.push_back(rng() % 16 == 0 ? -1 : row[s]);
      }
      phys.record_physical(placement, layer, b.ids, b.tokens, 8);
      logical.record(layer, fold(layer, b.ids), b.tokens, 8);
      ASSERT_EQ(encode_tracker_state(phys), encode_tracker_state(logical))
          << "window " << static_cast<int>(w) << ", batch " << n << " of " << b.tokens;
    }
    // A bad id at the start, middle or end of a batch, also past the first 65535-token chunk.
    const std::vector<std::byte> before = encode_tracker_state(phys);
    for (const std::size_t tokens : {std::size_t{200}, std::size_t{70000}}) {
      for (const std::size_t at : {std::size_t{0}, tokens * 4 + 3, tokens * 8 - 1}) {
        for (const std::int32_t value :
             {-2, static_cast<std::int32_t>(kSlots), std::numeric_limits<std::int32_t>::max()}) {
          std::vector<std::int32_t> ids(tokens * 8);
          for (std::size_t i = 0; i < ids.size(); ++i) {
            ids[i] = static_cast<std::int32_t>((i % 8) * 3);
          }
          ids[at] = value;
          try {
            phys.record_physical(placement, 1, ids, tokens, 8);
            FAIL() << "no error for " << value << " at " << at;
          } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(cat("physical id ", value, " at layer 1, token ",
                                                     at / 8, ", slot ", at % 8)),
                      std::string::npos)
                << e.what();
          }
          ASSERT_EQ(encode_tracker_state(phys), before) << "window " << static_cast<int>(w);
        }
      }
    }
  }
}

// ----- errors ---------------------------------------------------------------------------------

TEST(Tracker, BadIdsAreRejectedWithoutRecordingAnything) {
  Tracker t(options(2, 5, 4));
  std::vector<std::int32_t> ids(12, 1);
  ids[2 * 4 + 3] = 5;
  try {
    t.record(1, ids, 3, 4);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("expert id 5 at layer 1, token 2, slot 3"),
              std::string::npos)
        << e.what();
  }
  ids[2 * 4 + 3] = -2;
  EXPECT_THROW(t.record(1, ids, 3, 4), Error);
  std::vector<double> load(5);
  t.layer_loads(1, load);
  EXPECT_EQ(load, std::vector<double>(5, 0.0));
  EXPECT_EQ(t.batches(1), 0U);
  EXPECT_EQ(t.sample_rows(1), 0U);
  ids[2 * 4 + 3] = 0;
  EXPECT_THROW(t.record(2, ids, 3, 4), Error);  // layer
  EXPECT_THROW(t.record(0, ids, 3, 3), Error);  // top_k
  EXPECT_THROW(t.record(0, ids, 4, 4), Error);  // length
}

// Large top-8 batches are validated while counting into scratch: a bad id in the middle must
// leave nothing behind (neither in the totals nor in the scratch used by the next batch).
TEST(Tracker, BadIdInALargeTop8BatchLeavesNothingBehind) {
  for (const TrackerWindow w :
       {TrackerWindow::cumulative, TrackerWindow::sliding, TrackerWindow::decay}) {
    Tracker t(options(1, 16, 8, w));
    std::vector<std::int32_t> ids;
    for (std::int32_t token = 0; token < 40; ++token) {
      for (std::int32_t s = 0; s < 8; ++s) ids.push_back((token + s) % 16);
    }
    std::vector<std::int32_t> bad = ids;
    bad[20 * 8 + 5] = 16;
    try {
      t.record(0, bad, 40, 8);
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("expert id 16 at layer 0, token 20, slot 5"),
                std::string::npos)
          << e.what();
    }
    EXPECT_EQ(t.batches(0), 0U);
    t.record(0, ids, 40, 8);
    Oracle oracle(16);
    oracle.add(Batch{0, 40, ids}, 8);
    expect_equal(t, 0, oracle);
  }
}

TEST(Tracker, OptionsAreValidated) {
  auto expect_bad = [](TrackerOptions o, const char* needle) {
    try {
      Tracker t(o);
      ADD_FAILURE() << "accepted " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto o = options(1, 4, 2);
  o.num_layers = 0;
  expect_bad(o, "num_layers");
  o = options(1, 4, 2);
  o.num_experts = 0;
  expect_bad(o, "num_logical_experts");
  o = options(1, 4, 0);
  expect_bad(o, "top_k");
  o = options(1, 4, 2, TrackerWindow::sliding);
  o.window_batches = 0;
  expect_bad(o, "window_batches");
  o = options(1, 4, 2, TrackerWindow::decay);
  o.decay = 0;
  expect_bad(o, "decay");
  o.decay = 1.5;
  expect_bad(o, "decay");
  o = options(1, 4, 2);
  o.window = static_cast<TrackerWindow>(7);
  expect_bad(o, "window (7)");
}

}  // namespace
}  // namespace eplb
