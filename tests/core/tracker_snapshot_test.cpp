// Co-activation statistics in snapshots (section 7, statistics snapshots): a tracker saved and
// loaded equals the original in everything it reports, and keeps recording exactly as the
// original would (windows, reservoir RNG); placement snapshots carry a tracker of their shape;
// damaged and forged statistics are rejected with a message naming what is wrong, never
// anything worse.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "error.hpp"
#include "planner.hpp"
#include "snapshot.hpp"
#include "support/readme_example.hpp"
#include "support/snapshot_files.hpp"
#include "support/snapshot_outcome.hpp"
#include "tracker.hpp"

namespace eplb {
namespace {

namespace format = snapshot_format;
using format::SectionType;
using test::decode;
using test::describe;
using test::expect_corrupt;
using test::Outcome;
using test::RawFile;

// The fixed record and per-layer header of the section's content (docs/SNAPSHOT_FORMAT.md).
constexpr std::size_t kFixed = 56;
constexpr std::size_t kLayerHeader = 40;

TrackerOptions options_for(TrackerWindow window, std::uint32_t layers = 3, std::uint32_t e = 9,
                           std::uint32_t k = 3) {
  TrackerOptions o;
  o.num_layers = layers;
  o.num_experts = e;
  o.top_k = k;
  o.window = window;
  o.window_batches = 3;
  o.decay = 0.9;
  o.reservoir_capacity = 16;
  o.seed = 42;
  return o;
}

// Random batches with masked slots and repeated ids.
void record_random(Tracker& tracker, std::mt19937_64& rng, int batches) {
  const TrackerOptions& o = tracker.options();
  std::uniform_int_distribution<std::int32_t> id(-1, static_cast<std::int32_t>(o.num_experts) - 1);
  std::uniform_int_distribution<std::size_t> tokens(0, 40);
  std::uniform_int_distribution<std::uint32_t> layer(0, o.num_layers - 1);
  for (int b = 0; b < batches; ++b) {
    const std::size_t n = tokens(rng);
    std::vector<std::int32_t> ids(n * o.top_k);
    for (auto& v : ids) v = id(rng);
    tracker.record(layer(rng), ids, n, o.top_k);
  }
}

void expect_same(const Tracker& a, const Tracker& b) {
  const TrackerOptions& o = a.options();
  ASSERT_EQ(b.options().num_layers, o.num_layers);
  ASSERT_EQ(b.options().num_experts, o.num_experts);
  ASSERT_EQ(b.options().top_k, o.top_k);
  ASSERT_EQ(b.options().window, o.window);
  ASSERT_EQ(b.options().reservoir_capacity, o.reservoir_capacity);
  EXPECT_EQ(b.options().seed, o.seed);
  for (std::uint32_t l = 0; l < o.num_layers; ++l) {
    std::vector<double> la(o.num_experts), lb(o.num_experts);
    a.layer_loads(l, la);
    b.layer_loads(l, lb);
    EXPECT_EQ(la, lb) << "layer " << l;
    std::vector<double> pa(pair_count(o.num_experts)), pb(pa.size());
    a.coactivation(l, pa);
    b.coactivation(l, pb);
    EXPECT_EQ(pa, pb) << "layer " << l;
    const auto sa = a.samples(l);
    const auto sb = b.samples(l);
    EXPECT_EQ(std::vector<std::int32_t>(sa.begin(), sa.end()),
              std::vector<std::int32_t>(sb.begin(), sb.end()))
        << "layer " << l;
    EXPECT_EQ(a.tokens_seen(l), b.tokens_seen(l));
    EXPECT_EQ(a.batches(l), b.batches(l));
  }
}

class TrackerSnapshot : public ::testing::TestWithParam<TrackerWindow> {};

TEST_P(TrackerSnapshot, StatisticsRoundTripAndResumeExactly) {
  std::mt19937_64 rng(7);
  Tracker original(options_for(GetParam()));
  record_random(original, rng, 40);
  SnapshotWriteOptions options;
  options.label = "stats";
  const auto bytes = encode_statistics_snapshot(original, options);
  const Snapshot snapshot = Snapshot::decode(bytes, "stats");
  EXPECT_FALSE(snapshot.info().has_placement);
  EXPECT_TRUE(snapshot.info().has_coactivation);
  EXPECT_FALSE(snapshot.info().has_loads);
  EXPECT_EQ(snapshot.info().label, "stats");
  EXPECT_EQ(snapshot.info().format_minor, format::kFormatMinor);
  EXPECT_EQ(snapshot.info().topology.num_layers, 3U);
  EXPECT_EQ(snapshot.info().topology.num_logical, 9U);
  EXPECT_EQ(snapshot.info().topology.num_physical, 0U);
  ASSERT_NE(snapshot.tracker(), nullptr);
  Tracker loaded = *snapshot.tracker();
  expect_same(original, loaded);
  try {
    (void)snapshot.placement();
    ADD_FAILURE() << "a statistics snapshot has no placement";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), Errc::invalid_argument);
  }
  const SnapshotInfo inspected = Snapshot::inspect(bytes, "stats");
  EXPECT_FALSE(inspected.has_placement);
  EXPECT_EQ(inspected.topology.num_layers, 3U);
  EXPECT_EQ(inspected.topology.num_logical, 9U);

  // The same future batches give the same statistics, windows and samples (RNG state kept).
  std::mt19937_64 rng_a(99);
  std::mt19937_64 rng_b(99);
  record_random(original, rng_a, 30);
  record_random(loaded, rng_b, 30);
  expect_same(original, loaded);
  // And the reloaded file encodes to the same bytes (deterministic writer, fixed time).
  options.created_unix_seconds = 1;
  EXPECT_EQ(encode_statistics_snapshot(original, options),
            encode_statistics_snapshot(loaded, options));
}

TEST_P(TrackerSnapshot, MergedAndEmptyTrackersRoundTrip) {
  std::mt19937_64 rng(3);
  Tracker a(options_for(GetParam()));
  Tracker b(options_for(GetParam()));
  record_random(a, rng, 20);
  record_random(b, rng, 20);
  a.merge(b);
  for (const Tracker* t : {&a, &b}) {
    const Snapshot s = Snapshot::decode(encode_statistics_snapshot(*t, {}), "t");
    expect_same(*t, *s.tracker());
  }
  const Tracker empty(options_for(GetParam()));
  expect_same(empty, *Snapshot::decode(encode_statistics_snapshot(empty, {}), "e").tracker());
}

INSTANTIATE_TEST_SUITE_P(Windows, TrackerSnapshot,
                         ::testing::Values(TrackerWindow::cumulative, TrackerWindow::sliding,
                                           TrackerWindow::decay));

// The README example placement (2 layers x 12 experts).
Placement small_placement() {
  return Planner(test::readme_topology(), 1).plan(test::readme_loads());
}

TEST(TrackerSnapshotPlacement, PlacementSnapshotsCarryATrackerOfTheirShape) {
  const Placement placement = small_placement();
  std::mt19937_64 rng(5);
  Tracker tracker(options_for(TrackerWindow::cumulative, 2, 12, 2));
  record_random(tracker, rng, 10);
  std::vector<double> loads(24);
  tracker.loads(loads);
  SnapshotWriteOptions options;
  options.tracker = &tracker;
  options.loads = std::span<const double>(loads);
  const Snapshot snapshot = Snapshot::decode(encode_snapshot(placement, options), "p");
  EXPECT_TRUE(snapshot.info().has_placement);
  EXPECT_TRUE(snapshot.info().has_coactivation);
  EXPECT_EQ(snapshot.placement().phy2log().size(), placement.phy2log().size());
  expect_same(tracker, *snapshot.tracker());

  // Without one, tracker() is null.
  EXPECT_EQ(Snapshot::decode(encode_snapshot(placement, {}), "p").tracker(), nullptr);

  // A tracker of another shape, or an old format, is refused when writing.
  const Tracker other(options_for(TrackerWindow::cumulative, 3, 12, 2));
  options.tracker = &other;
  EXPECT_THROW((void)encode_snapshot(placement, options), Error);
  options.tracker = &tracker;
  options.format_minor = 1;
  EXPECT_THROW((void)encode_snapshot(placement, options), Error);
  SnapshotWriteOptions bad;
  bad.loads = std::span<const double>(loads);
  EXPECT_THROW((void)encode_statistics_snapshot(tracker, bad), Error);
}

// --- Damage -------------------------------------------------------------------------------------

const std::vector<std::byte>& stats_file(TrackerWindow window = TrackerWindow::cumulative) {
  static std::vector<std::vector<std::byte>> files = [] {
    std::vector<std::vector<std::byte>> out;
    for (TrackerWindow w :
         {TrackerWindow::cumulative, TrackerWindow::sliding, TrackerWindow::decay}) {
      std::mt19937_64 rng(17);
      Tracker t(options_for(w, 2, 5, 3));
      record_random(t, rng, 12);
      out.push_back(encode_statistics_snapshot(t, {}));
    }
    return out;
  }();
  return files[static_cast<std::size_t>(window)];
}

std::vector<std::byte> content(const std::vector<std::byte>& file) {
  RawFile raw = test::split(file);
  return test::content_of(raw.section(SectionType::coactivation));
}

Outcome with_content(const std::vector<std::byte>& file, std::span<const std::byte> bytes) {
  return test::decode_with_content(file, SectionType::coactivation, bytes);
}

template <format::Field T>
void put(std::vector<std::byte>& bytes, std::size_t offset, T value) {
  format::store<T>(bytes.data() + offset, value);
}

class TrackerSnapshotDamage : public test::ForgingTest {};

TEST_F(TrackerSnapshotDamage, TruncationAndBitFlipsFailCleanly) {
  for (TrackerWindow w :
       {TrackerWindow::cumulative, TrackerWindow::sliding, TrackerWindow::decay}) {
    const auto& file = stats_file(w);
    for (std::size_t size = 0; size < file.size(); ++size) {
      const Outcome o = decode(std::span(file).first(size));
      ASSERT_TRUE(o.error == Errc::truncated || o.error == Errc::corrupt)
          << "size " << size << ": " << describe(o);
    }
    for (std::size_t bit = 0; bit < file.size() * 8; ++bit) {
      std::vector<std::byte> damaged = file;
      damaged[bit / 8] ^= std::byte{static_cast<unsigned char>(1U << (bit % 8))};
      const Outcome o = decode(damaged);
      // A flip in an ignored field (reserved, writer version) is harmless; anything else fails.
      if (o.snapshot) continue;
      ASSERT_TRUE(o.error == Errc::corrupt || o.error == Errc::truncated ||
                  o.error == Errc::unsupported_version)
          << "bit " << bit << ": " << describe(o);
    }
  }
}

TEST_F(TrackerSnapshotDamage, OlderLayoutsAreRefusedCleanly) {
  // No placement without the feature bit: the placement sections are missing.
  RawFile raw = test::split(stats_file());
  raw.required_features = 0;
  expect_corrupt(decode(test::join(raw)), "is missing");
  // The feature bit with a placement section: refused.
  raw = test::split(stats_file());
  raw.sections.push_back(test::make_section(SectionType::loads, std::vector<std::byte>(8)));
  expect_corrupt(decode(test::join(raw)), "a statistics snapshot");
  // No statistics section.
  raw = test::split(stats_file());
  raw.remove(SectionType::coactivation);
  expect_corrupt(decode(test::join(raw)), "is missing");
}

TEST_F(TrackerSnapshotDamage, ForgedContentNamesTheProblem) {
  const auto& file = stats_file();
  const std::vector<std::byte> good = content(file);
  ASSERT_TRUE(with_content(file, good).snapshot);
  // E = 5, P = 10, k = 3: layer 0's arrays start at kFixed + kLayerHeader.
  const std::size_t layer0 = kFixed;
  const std::size_t loads0 = layer0 + kLayerHeader;
  const std::size_t pairs0 = loads0 + 5 * 8;
  const std::size_t samples0 = pairs0 + 10 * 8;

  auto forged = good;
  put<std::uint32_t>(forged, 12, 0);  // top_k
  expect_corrupt(with_content(file, forged), "bad tracker options");
  forged = good;
  put<std::uint32_t>(forged, 0, 8);  // fixed record size
  expect_corrupt(with_content(file, forged), "fixed record size");
  forged = good;
  put<std::uint32_t>(forged, 8, 1U << 30);  // E: a huge triangle from a few bytes
  expect_corrupt(with_content(file, forged), "need at least");
  forged = good;
  put<std::uint32_t>(forged, 4, 0xffffffffU);  // layers
  expect_corrupt(with_content(file, forged), "need at least");
  forged = good;
  put<std::uint32_t>(forged, layer0 + 24, 3);  // sample rows
  expect_corrupt(with_content(file, forged), "sampled rows");
  forged = good;
  put<std::uint32_t>(forged, layer0 + 28, 1);  // ring head without a sliding window
  expect_corrupt(with_content(file, forged), "ring head");
  forged = good;
  put<double>(forged, layer0 + 32, 0.5);  // scale without decay
  expect_corrupt(with_content(file, forged), "scale");
  forged = good;
  put<std::uint64_t>(forged, pairs0, 1000000);  // pair (0, 1) above the loads
  expect_corrupt(with_content(file, forged), "pair (0, 1)");
  forged = good;
  put<std::int32_t>(forged, samples0, 5);  // expert 5 of 5
  expect_corrupt(with_content(file, forged), "outside [-1, 5)");
  forged = good;
  for (int s = 0; s < 3; ++s) put<std::int32_t>(forged, samples0 + 4 * s, -1);
  expect_corrupt(with_content(file, forged), "no valid slot");
  forged = good;
  forged.push_back(std::byte{0});
  expect_corrupt(with_content(file, forged), "bytes after the last layer");
  forged = good;
  forged.resize(forged.size() - 4);
  expect_corrupt(with_content(file, forged), "ends inside");
  forged.resize(20);
  expect_corrupt(with_content(file, forged), "ends inside");

  // Sliding: the totals must be the sum of the ring.
  const auto& sliding = stats_file(TrackerWindow::sliding);
  forged = content(sliding);
  ASSERT_TRUE(with_content(sliding, forged).snapshot);
  put<std::uint64_t>(forged, loads0, format::load<std::uint64_t>(forged.data() + loads0) + 1);
  expect_corrupt(with_content(sliding, forged), "sum of the sliding window");
  forged = content(sliding);
  put<std::uint32_t>(forged, layer0 + 28, 3);  // ring head = W
  expect_corrupt(with_content(sliding, forged), "ring head");

  // Decay: finite weights >= 0, a scale in (0, 1].
  const auto& decay = stats_file(TrackerWindow::decay);
  forged = content(decay);
  ASSERT_TRUE(with_content(decay, forged).snapshot);
  put<double>(forged, loads0, -1.0);
  expect_corrupt(with_content(decay, forged), "not a finite value >= 0");
  forged = content(decay);
  put<double>(forged, layer0 + 32, 0.0);
  expect_corrupt(with_content(decay, forged), "scale");
}

}  // namespace
}  // namespace eplb
