// The byte layout of .eplb snapshot files (docs/SNAPSHOT_FORMAT.md is the specification): the
// fixed header, the section table, the section types, the limits a reader enforces, and the
// little-endian field access both the writer and the reader use.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>

namespace eplb::snapshot_format {

// "\x89EPLB\r\n\x1a": the high byte catches 7-bit transfers, CR LF catches line-ending
// conversion, ^Z stops `type` on DOS-like systems.
inline constexpr std::array<unsigned char, 8> kMagic = {0x89, 'E', 'P', 'L', 'B', '\r', '\n', 0x1a};

inline constexpr std::uint16_t kFormatMajor = 1;
// 1.0: the first layout. 1.1: adds the optional metrics section. 1.2: the co-activation
// section (7) gets its content, and statistics snapshots (kFeatureStatisticsOnly).
inline constexpr std::uint16_t kFormatMinor = 2;

// The fixed header (all little-endian).
inline constexpr std::size_t kHeaderSize = 64;  // written; readers accept [64, kMaxHeaderSize]
namespace header {
inline constexpr std::size_t magic = 0;                // u8[8]
inline constexpr std::size_t format_major = 8;         // u16
inline constexpr std::size_t format_minor = 10;        // u16
inline constexpr std::size_t header_size = 12;         // u32: the section table starts here
inline constexpr std::size_t required_features = 16;   // u64: a reader must know every set bit
inline constexpr std::size_t optional_features = 24;   // u64: unknown bits are ignored
inline constexpr std::size_t file_size = 32;           // u64: the whole file
inline constexpr std::size_t section_count = 40;       // u32
inline constexpr std::size_t section_entry_size = 44;  // u32
inline constexpr std::size_t writer_version = 48;      // u32: EPLB_VERSION_NUMBER of the writer
inline constexpr std::size_t reserved = 52;            // u32: 0
inline constexpr std::size_t checksum = 56;  // u64: XXH64 of [0, table end), this field zero
}  // namespace header

// One section table entry.
inline constexpr std::size_t kSectionEntrySize = 56;  // written; readers accept [56, kMax...]
namespace entry {
inline constexpr std::size_t type = 0;              // u32: SectionType
inline constexpr std::size_t flags = 4;             // u32: kSectionRequired, other bits 0
inline constexpr std::size_t offset = 8;            // u64: from the start of the file
inline constexpr std::size_t stored_size = 16;      // u64: bytes in the file
inline constexpr std::size_t raw_size = 24;         // u64: bytes after decompression
inline constexpr std::size_t raw_checksum = 32;     // u64: XXH64 of the decompressed content
inline constexpr std::size_t stored_checksum = 40;  // u64: XXH64 of the stored bytes
inline constexpr std::size_t encoding = 48;         // u32: Encoding
inline constexpr std::size_t reserved = 52;         // u32: 0
}  // namespace entry

// A reader that does not know a section's type (or encoding) must refuse the file when this
// bit is set, and skip the section when it is clear.
inline constexpr std::uint32_t kSectionRequired = 1;

enum class Encoding : std::uint32_t {
  zstd = 1,  // one zstd frame with its content size set
};

enum class SectionType : std::uint32_t {
  shape = 1,           // required: topology and log2phy width, 32-byte record
  algorithm = 2,       // required: algorithm id, policy, plan time, options, 24-byte record
  phy2log = 3,         // required: int32 [layers][R]
  replica_counts = 4,  // required: int32 [layers][E]
  log2phy = 5,         // required: int32 [layers][E][width], -1 padded
  loads = 6,           // optional: float64 [layers][E]
  coactivation = 7,    // optional, content since 1.2: a tracker's statistics (tracker_state)
  metrics = 8,         // optional, since 1.1: the metrics under the stored loads, 80 bytes
  provenance = 9,      // required: creation time, library version, label
};

// Feature bits of the header: a file that sets a required bit this reader does not know needs a
// newer reader.
// Since 1.2: a statistics snapshot. No placement (sections 1-6 and 8 absent), section 7
// present. Required, so that 1.0 and 1.1 readers refuse it ("upgrade") instead of calling it
// corrupt for its missing placement.
inline constexpr std::uint64_t kFeatureStatisticsOnly = 1;
inline constexpr std::uint64_t kKnownRequiredFeatures = kFeatureStatisticsOnly;

// Fixed-size records: readers need at least this many bytes and ignore any they do not know.
inline constexpr std::size_t kShapeSize = 32;
inline constexpr std::size_t kAlgorithmSize = 24;
inline constexpr std::size_t kMetricsSize = 80;
inline constexpr std::size_t kProvenanceFixedSize = 16;  // then the two strings

// Reader limits: larger values are reported as corrupt before anything is allocated.
inline constexpr std::size_t kMaxHeaderSize = 65536;
inline constexpr std::size_t kMaxSectionEntrySize = 1024;
inline constexpr std::size_t kMaxSectionCount = 4096;
inline constexpr std::uint64_t kMaxSectionRawSize = std::uint64_t{1} << 30;  // decoded sections
inline constexpr std::uint64_t kMaxRecordSize = 4096;  // shape, algorithm, metrics, provenance
// The most a zstd frame can expand: every block (at most 128 KiB of content) takes at least 4
// bytes (a 3-byte header and 1 byte of RLE). A larger declared content size is impossible.
inline constexpr std::uint64_t kMaxExpansion = 32768;
inline constexpr std::size_t kMaxLabelBytes = 255;
inline constexpr std::size_t kMaxVersionBytes = 15;

// --- Little-endian fields ---------------------------------------------------------------------

template <typename T>
concept Field = std::is_arithmetic_v<T> &&(sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8);

template <typename U>
[[nodiscard]] constexpr U byteswap_unsigned(U value) {
  U result = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    result = static_cast<U>((result << 8) | (value & 0xff));
    value = static_cast<U>(value >> 8);
  }
  return result;
}

template <std::size_t N>
struct UnsignedOfSize;
template <>
struct UnsignedOfSize<2> {
  using type = std::uint16_t;
};
template <>
struct UnsignedOfSize<4> {
  using type = std::uint32_t;
};
template <>
struct UnsignedOfSize<8> {
  using type = std::uint64_t;
};

template <Field T>
void store(std::byte* at, T value) {
  using U = typename UnsignedOfSize<sizeof(T)>::type;
  U bits = std::bit_cast<U>(value);
  if constexpr (std::endian::native == std::endian::big) bits = byteswap_unsigned(bits);
  std::memcpy(at, &bits, sizeof(bits));
}

template <Field T>
[[nodiscard]] T load(const std::byte* at) {
  using U = typename UnsignedOfSize<sizeof(T)>::type;
  U bits;
  std::memcpy(&bits, at, sizeof(bits));
  if constexpr (std::endian::native == std::endian::big) bits = byteswap_unsigned(bits);
  return std::bit_cast<T>(bits);
}

// Converts an array between host order and little-endian in place (a no-op on little-endian
// hosts).
template <Field T>
void to_or_from_little_endian(std::span<T> values) {
  if constexpr (std::endian::native == std::endian::big) {
    for (T& value : values) value = load<T>(reinterpret_cast<const std::byte*>(&value));
  }
}

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code points above
// U+10FFFF) without NUL bytes: the rule for the label and the library version.
[[nodiscard]] bool is_valid_text(std::string_view text);

// --- Checksums --------------------------------------------------------------------------------

// XXH64 with seed 0.
[[nodiscard]] std::uint64_t checksum(std::span<const std::byte> bytes);

// The header checksum of `header_and_table` (the bytes [0, table end)), computed as if the
// checksum field were zero.
[[nodiscard]] std::uint64_t header_checksum(std::span<const std::byte> header_and_table);

// Recomputes and stores the header checksum of a complete file whose header fields are set.
// Used by the writer, and by tests that forge files.
void seal_header(std::span<std::byte> file);

}  // namespace eplb::snapshot_format
