// Damaged and forged snapshots: every load either succeeds with the original placement or fails
// with a clean Error (truncated, corrupt, unsupported_version), never anything else. Truncation
// at every byte offset, every bit of the header and section table flipped (with and without a
// re-sealed checksum), random bits in the payloads, and hand-made files that break one rule each
// with all checksums intact, so that the deeper checks are reached. Also what later writers may
// do and this reader must accept: unknown optional sections and feature bits, larger headers,
// table entries and records, a newer minor version.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "error.hpp"
#include "planner.hpp"
#include "snapshot.hpp"
#include "support/random_cases.hpp"
#include "support/readme_example.hpp"
#include "support/snapshot_files.hpp"
#include "support/snapshot_outcome.hpp"

namespace eplb {
namespace {

namespace format = snapshot_format;
using format::SectionType;
using test::decode;
using test::decode_with_content;
using test::describe;
using test::expect_corrupt;
using test::Outcome;
using test::RawFile;

bool clean_failure(const Outcome& o) {
  return o.error == Errc::corrupt || o.error == Errc::truncated ||
         o.error == Errc::unsupported_version;
}

// A DeepSeek-V3 placement (58 x 256, 288 slots, 4 nodes x 8 GPUs) with its statistics.
const std::vector<std::byte>& realistic_snapshot() {
  static const std::vector<std::byte> bytes = [] {
    Topology t;
    t.num_layers = 58;
    t.num_logical = 256;
    t.num_physical = 288;
    t.num_nodes = 4;
    t.num_gpus = 32;
    t.num_groups = 8;
    std::mt19937_64 rng(11);
    const auto loads = test::random_tie_free_loads(rng, t);
    const Placement placement =
        Planner(t, static_cast<std::uint32_t>(Algorithm::deepseek)).plan(loads);
    SnapshotWriteOptions options;
    options.loads = std::span<const double>(loads);
    options.label = "realistic";
    return encode_snapshot(placement, options);
  }();
  return bytes;
}

// The README example (2 layers x 12 experts), about a kilobyte.
const std::vector<std::byte>& small_snapshot() {
  static const std::vector<std::byte> bytes = [] {
    const std::vector<double> loads = test::readme_loads();
    const Placement placement = Planner(test::readme_topology(), 1).plan(loads);
    SnapshotWriteOptions options;
    options.loads = std::span<const double>(loads);
    options.label = "small";
    return encode_snapshot(placement, options);
  }();
  return bytes;
}

const Snapshot& original(const std::vector<std::byte>& bytes) {
  static const Snapshot realistic = Snapshot::decode(realistic_snapshot(), "realistic");
  static const Snapshot small = Snapshot::decode(small_snapshot(), "small");
  return &bytes == &realistic_snapshot() ? realistic : small;
}

std::size_t table_end(std::span<const std::byte> bytes) {
  return format::load<std::uint32_t>(bytes.data() + format::header::header_size) +
         std::size_t{format::load<std::uint32_t>(bytes.data() + format::header::section_count)} *
             format::load<std::uint32_t>(bytes.data() + format::header::section_entry_size);
}

void flip(std::vector<std::byte>& bytes, std::size_t bit) {
  bytes[bit / 8] ^= std::byte{static_cast<unsigned char>(1U << (bit % 8))};
}

// Sets the header checksum as a writer would, over the original extent of header and table.
void reseal(std::vector<std::byte>& bytes, std::size_t extent) {
  format::store<std::uint64_t>(bytes.data() + format::header::checksum,
                               format::header_checksum(std::span(bytes).first(extent)));
}

template <format::Field T>
void put(std::vector<std::byte>& content, std::size_t offset, T value) {
  format::store<T>(content.data() + offset, value);
}

class SnapshotDamage : public test::ForgingTest {};

// --- Truncation ---------------------------------------------------------------------------------

TEST_F(SnapshotDamage, TruncationAtEveryByteOffsetIsTruncated) {
  for (const auto* bytes : {&small_snapshot(), &realistic_snapshot()}) {
    SCOPED_TRACE(bytes->size());
    for (std::size_t length = 0; length < bytes->size(); ++length) {
      const Outcome o = decode(std::span(*bytes).first(length));
      ASSERT_EQ(o.error, Errc::truncated) << "length " << length << ": " << describe(o);
    }
  }
}

TEST_F(SnapshotDamage, TruncationWithTheHeaderResealedIsStillRejected) {
  // A truncated file whose header claims the shorter size (as if a broken writer sealed it):
  // the section bounds catch it.
  for (const auto* bytes : {&small_snapshot(), &realistic_snapshot()}) {
    const std::size_t extent = table_end(*bytes);
    std::vector<std::byte> work = *bytes;
    for (std::size_t length = extent; length < bytes->size(); ++length) {
      format::store<std::uint64_t>(work.data() + format::header::file_size, length);
      reseal(work, extent);
      const Outcome o = decode(std::span(work).first(length));
      ASSERT_EQ(o.error, Errc::corrupt) << "length " << length << ": " << describe(o);
    }
  }
}

TEST_F(SnapshotDamage, TrailingBytesAreCorrupt) {
  auto bytes = small_snapshot();
  bytes.push_back(std::byte{0});
  expect_corrupt(decode(bytes), "trailing bytes");
}

TEST_F(SnapshotDamage, NotASnapshot) {
  const std::string json = R"({"physical_to_logical_map": [[0, 1]]})";
  expect_corrupt(decode(std::as_bytes(std::span(json))), "not a libeplb snapshot");
  std::vector<std::byte> zeros(4096);
  expect_corrupt(decode(zeros), "not a libeplb snapshot");
  EXPECT_EQ(decode({}).error, Errc::truncated);
  EXPECT_EQ(decode(std::span(small_snapshot()).first(5)).error, Errc::truncated);
}

// --- Bit flips ----------------------------------------------------------------------------------

TEST_F(SnapshotDamage, EveryBitOfTheHeaderAndSectionTable) {
  for (const auto* bytes : {&small_snapshot(), &realistic_snapshot()}) {
    const std::size_t extent = table_end(*bytes);
    std::vector<std::byte> damaged = *bytes;
    for (std::size_t bit = 0; bit < extent * 8; ++bit) {
      flip(damaged, bit);
      const Outcome o = decode(damaged);
      flip(damaged, bit);
      ASSERT_TRUE(clean_failure(o)) << "bit " << bit << ": " << describe(o);
      const std::size_t byte = bit / 8;
      if (byte < format::header::format_major) {
        ASSERT_EQ(o.error, Errc::corrupt) << "magic, bit " << bit;
      } else if (byte < format::header::format_minor) {
        ASSERT_EQ(o.error, Errc::unsupported_version) << "major, bit " << bit;
      } else if (byte >= format::header::checksum && byte < format::kHeaderSize) {
        ASSERT_EQ(o.error, Errc::corrupt) << "checksum, bit " << bit;
        ASSERT_NE(o.message.find("header checksum mismatch"), std::string::npos);
      }
    }
  }
}

TEST_F(SnapshotDamage, EveryBitOfTheHeaderAndSectionTableResealed) {
  // The checksum recomputed after the flip, so every field's own check is reached. A flip may
  // be harmless (a reserved field, a flag of a known section, the minor version, the writer
  // version, an optional feature bit); then the placement must be the original.
  for (const auto* bytes : {&small_snapshot(), &realistic_snapshot()}) {
    const Snapshot& expected = original(*bytes);
    const std::size_t extent = table_end(*bytes);
    std::vector<std::byte> damaged = *bytes;
    int loaded = 0;
    for (std::size_t bit = 0; bit < extent * 8; ++bit) {
      const std::size_t byte = bit / 8;
      if (byte >= format::header::checksum && byte < format::kHeaderSize) continue;
      flip(damaged, bit);
      reseal(damaged, extent);
      const Outcome o = decode(damaged);
      flip(damaged, bit);
      if (o.snapshot) {
        ++loaded;
        ASSERT_TRUE(
            std::ranges::equal(o.snapshot->placement().phy2log(), expected.placement().phy2log()))
            << "bit " << bit;
        ASSERT_TRUE(
            std::ranges::equal(o.snapshot->placement().log2phy(), expected.placement().log2phy()))
            << "bit " << bit;
      } else {
        ASSERT_TRUE(clean_failure(o)) << "bit " << bit << ": " << describe(o);
      }
    }
    EXPECT_GT(loaded, 0);
  }
}

TEST_F(SnapshotDamage, RandomBitsInThePayloadsAreCorrupt) {
  std::mt19937_64 rng(5);
  for (const auto* bytes : {&small_snapshot(), &realistic_snapshot()}) {
    const std::size_t extent = table_end(*bytes);
    std::vector<std::byte> damaged = *bytes;
    const std::size_t payload_bits = (bytes->size() - extent) * 8;
    // Every bit of the small file's payloads; a sample of the large one's.
    const bool every = bytes == &small_snapshot();
    const std::size_t trials = every ? payload_bits : 1500;
    std::uniform_int_distribution<std::size_t> pick(0, payload_bits - 1);
    for (std::size_t trial = 0; trial < trials; ++trial) {
      const std::size_t bit = extent * 8 + (every ? trial : pick(rng));
      flip(damaged, bit);
      const Outcome o = decode(damaged);
      flip(damaged, bit);
      ASSERT_EQ(o.error, Errc::corrupt) << "bit " << bit << ": " << describe(o);
    }
  }
}

// --- Versions and extensions --------------------------------------------------------------------

TEST_F(SnapshotDamage, SplitAndJoinReproduceTheFile) {
  EXPECT_EQ(test::join(test::split(small_snapshot())), small_snapshot());
  EXPECT_EQ(test::join(test::split(realistic_snapshot())), realistic_snapshot());
}

TEST_F(SnapshotDamage, UnknownOptionalSectionsAreSkipped) {
  const Placement placement = original(small_snapshot()).placement();
  SnapshotWriteOptions options;
  const std::vector<std::byte> payload(100, std::byte{7});
  options.extra_sections.push_back({1000, 0, payload});
  options.extra_sections.push_back({0xffffffffU, 0x7ffffffeU, {}});  // other flag bits: ignored
  const Outcome o = decode(encode_snapshot(placement, options));
  ASSERT_TRUE(o.snapshot) << describe(o);
  EXPECT_TRUE(std::ranges::equal(o.snapshot->placement().phy2log(), placement.phy2log()));
}

TEST_F(SnapshotDamage, UnknownRequiredSectionIsUnsupported) {
  SnapshotWriteOptions options;
  options.extra_sections.push_back({1000, format::kSectionRequired, {std::byte{1}}});
  const Outcome o = decode(encode_snapshot(original(small_snapshot()).placement(), options));
  EXPECT_EQ(o.error, Errc::unsupported_version) << describe(o);
  EXPECT_NE(o.message.find("type 1000"), std::string::npos) << o.message;
  EXPECT_NE(o.message.find("upgrade libeplb"), std::string::npos) << o.message;
}

TEST_F(SnapshotDamage, UnknownEncodings) {
  RawFile raw = test::split(small_snapshot());
  raw.section(SectionType::loads).encoding = 2;  // optional: skipped
  Outcome o = decode(test::join(raw));
  ASSERT_TRUE(o.snapshot) << describe(o);
  EXPECT_FALSE(o.snapshot->info().has_loads);
  raw.section(SectionType::phy2log).encoding = 2;  // required: refused
  o = decode(test::join(raw));
  EXPECT_EQ(o.error, Errc::unsupported_version) << describe(o);
  EXPECT_NE(o.message.find("encoding 2"), std::string::npos) << o.message;
}

TEST_F(SnapshotDamage, CoactivationSectionIsReportedAndValidated) {
  TrackerOptions tracker_options;
  tracker_options.num_layers = 2;
  tracker_options.num_experts = 12;
  tracker_options.top_k = 2;
  const Tracker tracker(tracker_options);
  SnapshotWriteOptions options;
  options.tracker = &tracker;
  const auto bytes = encode_snapshot(original(small_snapshot()).placement(), options);
  const Outcome o = decode(bytes);
  ASSERT_TRUE(o.snapshot) << describe(o);
  EXPECT_TRUE(o.snapshot->info().has_coactivation);
  EXPECT_TRUE(Snapshot::inspect(bytes, "t").has_coactivation);
  // Since 1.2 the section has content, and a reader checks it (tracker_snapshot_test has more).
  const std::vector<std::byte> junk = {std::byte{1}, std::byte{2}};
  expect_corrupt(decode_with_content(bytes, SectionType::coactivation, junk),
                 "section coactivation");
}

TEST_F(SnapshotDamage, FeatureBits) {
  const Placement& placement = original(small_snapshot()).placement();
  SnapshotWriteOptions options;
  options.optional_features = 0xffffffffffffffffULL;  // unknown optional bits are ignored
  EXPECT_TRUE(decode(encode_snapshot(placement, options)).snapshot);
  // Bit 0 (since 1.2) marks a statistics snapshot, which must not hold a placement.
  options.required_features = format::kFeatureStatisticsOnly;
  expect_corrupt(decode(encode_snapshot(placement, options)), "a statistics snapshot");
  for (int bit = 1; bit < 64; ++bit) {
    options.required_features = std::uint64_t{1} << bit;
    const Outcome o = decode(encode_snapshot(placement, options));
    ASSERT_EQ(o.error, Errc::unsupported_version) << "bit " << bit << ": " << describe(o);
    EXPECT_NE(o.message.find("requires features"), std::string::npos) << o.message;
  }
}

TEST_F(SnapshotDamage, OtherMajorVersionsAreUnsupported) {
  RawFile raw = test::split(small_snapshot());
  for (const int major : {0, 2, 3, 0xffff}) {
    raw.major = static_cast<std::uint16_t>(major);
    const Outcome o = decode(test::join(raw));
    EXPECT_EQ(o.error, Errc::unsupported_version) << describe(o);
    EXPECT_NE(o.message.find("version " + std::to_string(major) + "."), std::string::npos)
        << o.message;
  }
  // A major-2 file may have any layout after its version fields: only those are read.
  auto bytes = small_snapshot();
  format::store<std::uint16_t>(bytes.data() + format::header::format_major, 2);
  std::fill(bytes.begin() + 12, bytes.end(), std::byte{0xee});
  EXPECT_EQ(decode(bytes).error, Errc::unsupported_version);
  EXPECT_EQ(decode(std::span(bytes).first(12)).error, Errc::unsupported_version);
}

TEST_F(SnapshotDamage, LaterMinorVersionsLoad) {
  RawFile raw = test::split(small_snapshot());
  raw.minor = 9;
  // A later minor's writer: a longer header, longer table entries, longer records.
  auto shape = test::content_of(raw.section(SectionType::shape));
  shape.resize(shape.size() + 24, std::byte{0x5a});
  raw.section(SectionType::shape) = test::make_section(SectionType::shape, shape);
  auto provenance = test::content_of(raw.section(SectionType::provenance));
  provenance.resize(provenance.size() + 8, std::byte{0x5a});
  raw.section(SectionType::provenance) = test::make_section(SectionType::provenance, provenance);
  const Outcome o = decode(test::join(raw, 128, 80));
  ASSERT_TRUE(o.snapshot) << describe(o);
  EXPECT_EQ(o.snapshot->info().format_minor, 9);
  EXPECT_EQ(o.snapshot->info().label, "small");
  EXPECT_TRUE(std::ranges::equal(o.snapshot->placement().phy2log(),
                                 original(small_snapshot()).placement().phy2log()));
}

// --- Layout rules -------------------------------------------------------------------------------

TEST_F(SnapshotDamage, HeaderLimits) {
  const auto& bytes = small_snapshot();
  auto check = [&](std::size_t offset, std::uint32_t value, const std::string& fragment) {
    auto damaged = bytes;
    format::store<std::uint32_t>(damaged.data() + offset, value);
    expect_corrupt(decode(damaged), fragment);
  };
  check(format::header::header_size, 63, "header size 63");
  check(format::header::header_size, 1U << 20, "header size");
  check(format::header::section_entry_size, 55, "section entry size 55");
  check(format::header::section_entry_size, 4096, "section entry size 4096");
  check(format::header::section_count, 4097, "section count 4097");
  check(format::header::section_count, 0xffffffffU, "section count");
}

TEST_F(SnapshotDamage, MissingRequiredSections) {
  for (SectionType type :
       {SectionType::shape, SectionType::algorithm, SectionType::phy2log,
        SectionType::replica_counts, SectionType::log2phy, SectionType::provenance}) {
    RawFile raw = test::split(small_snapshot());
    raw.remove(type);
    expect_corrupt(decode(test::join(raw)), "is missing");
  }
  // The optional ones may go.
  RawFile raw = test::split(small_snapshot());
  raw.remove(SectionType::loads);
  raw.remove(SectionType::metrics);
  const Outcome o = decode(test::join(raw));
  ASSERT_TRUE(o.snapshot) << describe(o);
  EXPECT_FALSE(o.snapshot->info().has_loads);
  EXPECT_FALSE(o.snapshot->info().metrics);
}

TEST_F(SnapshotDamage, DuplicateSection) {
  RawFile raw = test::split(small_snapshot());
  raw.sections.push_back(raw.section(SectionType::phy2log));
  expect_corrupt(decode(test::join(raw)), "appears twice");
}

TEST_F(SnapshotDamage, SectionOffsetsAndSizes) {
  const auto& bytes = small_snapshot();
  const std::size_t extent = table_end(bytes);
  const std::size_t first_entry = format::kHeaderSize;
  const std::size_t second_entry = first_entry + format::kSectionEntrySize;
  auto check = [&](std::size_t field, std::uint64_t value, const std::string& fragment) {
    auto damaged = bytes;
    format::store<std::uint64_t>(damaged.data() + field, value);
    reseal(damaged, extent);
    expect_corrupt(decode(damaged), fragment);
  };
  const auto offset_of = [&](std::size_t entry) {
    return format::load<std::uint64_t>(bytes.data() + entry + format::entry::offset);
  };
  check(first_entry + format::entry::offset, 8, "outside the data area");
  check(first_entry + format::entry::offset, bytes.size(), "outside the data area");
  check(first_entry + format::entry::offset, std::numeric_limits<std::uint64_t>::max() - 4,
        "outside the data area");
  check(first_entry + format::entry::stored_size, std::numeric_limits<std::uint64_t>::max(),
        "outside the data area");
  check(second_entry + format::entry::offset, offset_of(first_entry), "overlap");
  check(first_entry + format::entry::raw_size, 1ULL << 40, "expected 32 to 4096");
}

TEST_F(SnapshotDamage, ZstdFramesAreCheckedAgainstTheTable) {
  const auto& bytes = small_snapshot();
  RawFile raw = test::split(bytes);
  const auto shape = test::content_of(raw.section(SectionType::shape));

  RawFile edited = raw;
  edited.section(SectionType::shape) =
      test::make_section(static_cast<std::uint32_t>(SectionType::shape), format::kSectionRequired,
                         shape, /*content_size=*/false);
  expect_corrupt(decode(test::join(edited)), "no content size");

  edited = raw;
  edited.section(SectionType::shape).raw_size += 8;
  expect_corrupt(decode(test::join(edited)), "holds 32 bytes but the section table says 40");

  edited = raw;
  auto& stored = edited.section(SectionType::shape).stored;
  stored.insert(stored.end(), {std::byte{1}, std::byte{2}, std::byte{3}});
  expect_corrupt(decode(test::join(edited)), "does not span");

  edited = raw;
  edited.section(SectionType::shape).stored.assign(20, std::byte{0x42});
  expect_corrupt(decode(test::join(edited)), "not a zstd frame");

  edited = raw;
  edited.section(SectionType::shape).raw_checksum ^= 1;
  expect_corrupt(decode(test::join(edited)), "checksum mismatch of its content");

  // A frame whose data is damaged although its stored checksum holds.
  edited = raw;
  auto& frame = edited.section(SectionType::log2phy).stored;
  for (std::size_t i = 6; i < frame.size(); i += 7) frame[i] ^= std::byte{0x10};
  const Outcome o = decode(test::join(edited));
  EXPECT_EQ(o.error, Errc::corrupt) << describe(o);
}

TEST_F(SnapshotDamage, RecordSizes) {
  const auto& bytes = small_snapshot();
  for (SectionType type : {SectionType::shape, SectionType::algorithm, SectionType::metrics,
                           SectionType::provenance}) {
    RawFile raw = test::split(bytes);
    auto content = test::content_of(raw.section(type));
    const std::vector<std::byte> too_short(content.begin(), content.begin() + 7);
    expect_corrupt(decode_with_content(bytes, type, too_short), "bytes; expected");
    content.resize(5000);
    expect_corrupt(decode_with_content(bytes, type, content), "bytes; expected");
  }
}

// --- Section contents ---------------------------------------------------------------------------

// The small snapshot without its metrics section (whose layer count would be checked first).
std::vector<std::byte> without_metrics() {
  RawFile raw = test::split(small_snapshot());
  raw.remove(SectionType::metrics);
  return test::join(raw);
}

TEST_F(SnapshotDamage, ShapeIsValidated) {
  const auto bytes = without_metrics();
  const auto shape = test::content_of(test::split(bytes).section(SectionType::shape));
  auto check = [&](std::size_t offset, std::uint32_t value, const std::string& fragment) {
    auto content = shape;
    put<std::uint32_t>(content, offset, value);
    expect_corrupt(decode_with_content(bytes, SectionType::shape, content), fragment);
  };
  check(0, 0, "num_layers must be at least 1");
  check(16, 0, "num_gpus must be at least 1");
  check(16, 3, "must be a multiple of num_nodes");
  check(8, 20, "must be a multiple of num_gpus");
  check(20, 5, "must be a multiple of num_groups");
  check(8, 8, "must be at least num_logical_experts");
  check(24, 0, "log2phy width 0");
  check(24, 6, "log2phy width 6");
  check(4, 0x80000000U, "exceeds INT32_MAX");
  // Consistent but different shapes: the arrays no longer fit, found before decompressing.
  check(0, 3, "section phy2log is 128 bytes but the shape needs 192");
  check(24, 3, "section log2phy is 192 bytes but the shape needs 288");
  // With the metrics section, its layer count disagrees first.
  auto shape_with_metrics = shape;
  put<std::uint32_t>(shape_with_metrics, 0, 3);
  expect_corrupt(decode_with_content(small_snapshot(), SectionType::shape, shape_with_metrics),
                 "section metrics: 2 layers, but the shape has 3");
}

TEST_F(SnapshotDamage, HugeShapesAreRejectedBeforeAllocating) {
  const auto bytes = without_metrics();
  auto content = test::content_of(test::split(bytes).section(SectionType::shape));
  // 2^31 - 1 layers of 2^31 - 2 slots: 2^64 bytes of phy2log; then a shape within size_t but
  // over the 1 GiB section limit.
  put<std::uint32_t>(content, 0, 0x7fffffffU);
  put<std::uint32_t>(content, 8, 0x7ffffffeU);
  put<std::uint32_t>(content, 16, 2);
  put<std::uint32_t>(content, 12, 1);
  expect_corrupt(decode_with_content(bytes, SectionType::shape, content), "section phy2log");
  put<std::uint32_t>(content, 0, 100000);
  put<std::uint32_t>(content, 8, 4096);
  expect_corrupt(decode_with_content(bytes, SectionType::shape, content), "-byte limit");

  // A shape and table that agree on a 64 MiB phy2log, stored in a few dozen bytes: more than
  // any zstd frame of that size can hold, refused before the 64 MiB are allocated.
  RawFile raw = test::split(bytes);
  content = test::content_of(raw.section(SectionType::shape));
  put<std::uint32_t>(content, 0, 1U << 20);
  raw.section(SectionType::shape) = test::make_section(SectionType::shape, content);
  raw.section(SectionType::phy2log).raw_size = std::uint64_t{1} << 26;
  expect_corrupt(decode(test::join(raw)), "cannot be the content of");
}

TEST_F(SnapshotDamage, InconsistentPlacementsAreCorrupt) {
  const auto& bytes = small_snapshot();
  const RawFile raw = test::split(bytes);
  const auto phy2log = test::values_of<std::int32_t>(raw.sections[2]);
  const auto counts = test::values_of<std::int32_t>(raw.sections[3]);
  const auto log2phy = test::values_of<std::int32_t>(raw.sections[4]);
  ASSERT_EQ(raw.sections[2].type, static_cast<std::uint32_t>(SectionType::phy2log));
  ASSERT_EQ(phy2log.size(), 32U);
  const std::size_t width = log2phy.size() / counts.size();

  auto edited = phy2log;
  edited[5] = 12;
  expect_corrupt(decode_with_content(bytes, SectionType::phy2log, test::bytes_of(edited)),
                 "phy2log[0][5] = 12");
  edited = phy2log;
  edited[17] = -1;
  expect_corrupt(decode_with_content(bytes, SectionType::phy2log, test::bytes_of(edited)),
                 "phy2log[1][1] = -1");
  // Another expert in one slot: the counts disagree (or an expert is unplaced).
  edited = phy2log;
  edited[0] = edited[0] == 0 ? 1 : 0;
  const Outcome o = decode_with_content(bytes, SectionType::phy2log, test::bytes_of(edited));
  EXPECT_EQ(o.error, Errc::corrupt) << describe(o);
  EXPECT_NE(o.message.find("inconsistent placement"), std::string::npos) << o.message;

  auto edited_counts = counts;
  std::swap(edited_counts[0], edited_counts[1]);
  if (edited_counts != counts) {
    expect_corrupt(
        decode_with_content(bytes, SectionType::replica_counts, test::bytes_of(edited_counts)),
        "replica_counts[0][");
  }

  // log2phy: a slot of another expert, padding other than -1, a slot listed twice.
  auto find_expert = [&](std::int32_t count) {
    for (std::size_t e = 0; e < 12; ++e) {
      if (counts[e] == count) return e;
    }
    return std::size_t{99};
  };
  const std::size_t single = find_expert(1);
  const std::size_t doubled = find_expert(2);
  ASSERT_LT(single, 12U);
  ASSERT_LT(doubled, 12U);
  ASSERT_GE(width, 2U);
  auto edited_log2phy = log2phy;
  edited_log2phy[single * width] = log2phy[doubled * width];
  expect_corrupt(decode_with_content(bytes, SectionType::log2phy, test::bytes_of(edited_log2phy)),
                 "is not a slot of expert");
  edited_log2phy = log2phy;
  edited_log2phy[single * width + 1] = 0;
  expect_corrupt(decode_with_content(bytes, SectionType::log2phy, test::bytes_of(edited_log2phy)),
                 "padding must be -1");
  edited_log2phy = log2phy;
  edited_log2phy[doubled * width + 1] = log2phy[doubled * width];
  expect_corrupt(decode_with_content(bytes, SectionType::log2phy, test::bytes_of(edited_log2phy)),
                 "twice");
  edited_log2phy = log2phy;
  edited_log2phy[doubled * width + 1] = 1000;
  expect_corrupt(decode_with_content(bytes, SectionType::log2phy, test::bytes_of(edited_log2phy)),
                 "= 1000 is not a slot");
}

TEST_F(SnapshotDamage, BadLoadsAreCorrupt) {
  const auto& bytes = small_snapshot();
  const auto loads = test::values_of<double>(test::split(bytes).section(SectionType::loads));
  for (double bad : {-1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    auto edited = loads;
    edited[13] = bad;
    expect_corrupt(decode_with_content(bytes, SectionType::loads, test::bytes_of(edited)),
                   "loads[1][1]");
  }
}

TEST_F(SnapshotDamage, AlgorithmRecord) {
  const auto& bytes = small_snapshot();
  const auto record = test::content_of(test::split(bytes).section(SectionType::algorithm));
  for (double bad : {-1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    auto edited = record;
    put<double>(edited, 8, bad);
    expect_corrupt(decode_with_content(bytes, SectionType::algorithm, edited), "plan time");
  }
  // An algorithm id this version does not know is provenance only: accepted.
  auto edited = record;
  put<std::uint32_t>(edited, 0, 77);
  const Outcome o = decode_with_content(bytes, SectionType::algorithm, edited);
  ASSERT_TRUE(o.snapshot) << describe(o);
  EXPECT_EQ(o.snapshot->info().provenance.algorithm, 77U);
}

TEST_F(SnapshotDamage, ProvenanceRecord) {
  const auto& bytes = small_snapshot();
  const auto record = test::content_of(test::split(bytes).section(SectionType::provenance));
  auto edited = record;
  put<std::uint32_t>(edited, 12, 300);
  expect_corrupt(decode_with_content(bytes, SectionType::provenance, edited), "do not fit");
  edited = record;
  put<std::uint32_t>(edited, 8, 16);
  expect_corrupt(decode_with_content(bytes, SectionType::provenance, edited), "do not fit");
  edited = record;
  put<std::uint32_t>(edited, 12, 1000);  // more than the record holds
  expect_corrupt(decode_with_content(bytes, SectionType::provenance, edited), "do not fit");
  edited = record;
  edited.back() = std::byte{0xff};  // the label's last byte
  expect_corrupt(decode_with_content(bytes, SectionType::provenance, edited), "UTF-8");
  edited = record;
  edited.back() = std::byte{0};
  expect_corrupt(decode_with_content(bytes, SectionType::provenance, edited), "UTF-8");
}

TEST_F(SnapshotDamage, MetricsRecord) {
  const auto& bytes = small_snapshot();
  const auto record = test::content_of(test::split(bytes).section(SectionType::metrics));
  auto edited = record;
  put<std::uint32_t>(edited, 0, 3);
  expect_corrupt(decode_with_content(bytes, SectionType::metrics, edited), "3 layers");
  edited = record;
  put<double>(edited, 24, std::nan(""));
  expect_corrupt(decode_with_content(bytes, SectionType::metrics, edited), "not finite");
}

}  // namespace
}  // namespace eplb
