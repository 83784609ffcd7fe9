// Taking .eplb files apart and putting them back together, for tests that forge files: damaged
// ones whose checksums still hold (so the deeper checks are reached), files from "future"
// writers (larger headers and entries, unknown sections), and files missing a section.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "snapshot_format.hpp"

namespace eplb::test {

struct RawSection {
  std::uint32_t type = 0;
  std::uint32_t flags = 0;
  std::uint32_t encoding = static_cast<std::uint32_t>(snapshot_format::Encoding::zstd);
  std::vector<std::byte> stored;  // as in the file (a zstd frame)
  std::uint64_t raw_size = 0;
  std::uint64_t raw_checksum = 0;
};

struct RawFile {
  std::uint16_t major = snapshot_format::kFormatMajor;
  std::uint16_t minor = snapshot_format::kFormatMinor;
  std::uint64_t required_features = 0;
  std::uint64_t optional_features = 0;
  std::uint32_t writer_version = 0;
  std::vector<RawSection> sections;

  // The section of `type`; fails the test (and returns the first) if there is none.
  RawSection& section(snapshot_format::SectionType type);
  void remove(snapshot_format::SectionType type);
};

// Splits a valid file (trusted: a test's own encode_snapshot output).
RawFile split(std::span<const std::byte> file);

// Lays the file out again with correct offsets and checksums; `header_size` and `entry_size`
// may exceed the 1.x sizes (the extra bytes are zero), as a later minor's writer would.
std::vector<std::byte> join(const RawFile& file,
                            std::size_t header_size = snapshot_format::kHeaderSize,
                            std::size_t entry_size = snapshot_format::kSectionEntrySize);

// A section holding `content` as one zstd frame (with its content size unless told otherwise).
RawSection make_section(std::uint32_t type, std::uint32_t flags, std::span<const std::byte> content,
                        bool content_size = true);
RawSection make_section(snapshot_format::SectionType type, std::span<const std::byte> content);

// The decompressed content of a section.
std::vector<std::byte> content_of(const RawSection& section);

// Typed views for editing array sections (little-endian hosts; the tests skip elsewhere).
template <typename T>
std::vector<T> values_of(const RawSection& section) {
  const auto bytes = content_of(section);
  std::vector<T> values(bytes.size() / sizeof(T));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
  return values;
}
template <typename T>
std::span<const std::byte> bytes_of(const std::vector<T>& values) {
  return std::as_bytes(std::span(values));
}

}  // namespace eplb::test
