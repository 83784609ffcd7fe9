#include "support/snapshot_files.hpp"

#include <gtest/gtest.h>
#include <zstd.h>

#include <algorithm>

namespace eplb::test {

namespace format = snapshot_format;

RawSection& RawFile::section(format::SectionType type) {
  for (auto& s : sections) {
    if (s.type == static_cast<std::uint32_t>(type)) return s;
  }
  ADD_FAILURE() << "no section of type " << static_cast<std::uint32_t>(type);
  return sections.front();
}

void RawFile::remove(format::SectionType type) {
  std::erase_if(sections,
                [&](const RawSection& s) { return s.type == static_cast<std::uint32_t>(type); });
}

RawFile split(std::span<const std::byte> file) {
  namespace h = format::header;
  namespace e = format::entry;
  RawFile raw;
  const std::byte* at = file.data();
  raw.major = format::load<std::uint16_t>(at + h::format_major);
  raw.minor = format::load<std::uint16_t>(at + h::format_minor);
  raw.required_features = format::load<std::uint64_t>(at + h::required_features);
  raw.optional_features = format::load<std::uint64_t>(at + h::optional_features);
  raw.writer_version = format::load<std::uint32_t>(at + h::writer_version);
  const std::size_t header_size = format::load<std::uint32_t>(at + h::header_size);
  const std::size_t count = format::load<std::uint32_t>(at + h::section_count);
  const std::size_t entry_size = format::load<std::uint32_t>(at + h::section_entry_size);
  for (std::size_t i = 0; i < count; ++i) {
    const std::byte* entry = at + header_size + i * entry_size;
    RawSection s;
    s.type = format::load<std::uint32_t>(entry + e::type);
    s.flags = format::load<std::uint32_t>(entry + e::flags);
    s.encoding = format::load<std::uint32_t>(entry + e::encoding);
    s.raw_size = format::load<std::uint64_t>(entry + e::raw_size);
    s.raw_checksum = format::load<std::uint64_t>(entry + e::raw_checksum);
    const auto offset = format::load<std::uint64_t>(entry + e::offset);
    const auto size = format::load<std::uint64_t>(entry + e::stored_size);
    s.stored.assign(at + offset, at + offset + size);
    raw.sections.push_back(std::move(s));
  }
  return raw;
}

std::vector<std::byte> join(const RawFile& raw, std::size_t header_size, std::size_t entry_size) {
  namespace h = format::header;
  namespace e = format::entry;
  const std::size_t table_end = header_size + raw.sections.size() * entry_size;
  std::size_t total = table_end;
  for (const auto& s : raw.sections) total += s.stored.size();
  std::vector<std::byte> file(total);
  std::byte* at = file.data();
  std::copy(format::kMagic.begin(), format::kMagic.end(), reinterpret_cast<unsigned char*>(at));
  format::store<std::uint16_t>(at + h::format_major, raw.major);
  format::store<std::uint16_t>(at + h::format_minor, raw.minor);
  format::store<std::uint32_t>(at + h::header_size, static_cast<std::uint32_t>(header_size));
  format::store<std::uint64_t>(at + h::required_features, raw.required_features);
  format::store<std::uint64_t>(at + h::optional_features, raw.optional_features);
  format::store<std::uint64_t>(at + h::file_size, total);
  format::store<std::uint32_t>(at + h::section_count,
                               static_cast<std::uint32_t>(raw.sections.size()));
  format::store<std::uint32_t>(at + h::section_entry_size, static_cast<std::uint32_t>(entry_size));
  format::store<std::uint32_t>(at + h::writer_version, raw.writer_version);
  std::size_t cursor = table_end;
  for (std::size_t i = 0; i < raw.sections.size(); ++i) {
    const RawSection& s = raw.sections[i];
    std::byte* entry = at + header_size + i * entry_size;
    format::store<std::uint32_t>(entry + e::type, s.type);
    format::store<std::uint32_t>(entry + e::flags, s.flags);
    format::store<std::uint64_t>(entry + e::offset, cursor);
    format::store<std::uint64_t>(entry + e::stored_size, s.stored.size());
    format::store<std::uint64_t>(entry + e::raw_size, s.raw_size);
    format::store<std::uint64_t>(entry + e::raw_checksum, s.raw_checksum);
    format::store<std::uint64_t>(entry + e::stored_checksum, format::checksum(s.stored));
    format::store<std::uint32_t>(entry + e::encoding, s.encoding);
    std::copy(s.stored.begin(), s.stored.end(), at + cursor);
    cursor += s.stored.size();
  }
  format::seal_header(file);
  return file;
}

RawSection make_section(std::uint32_t type, std::uint32_t flags, std::span<const std::byte> content,
                        bool content_size) {
  RawSection s;
  s.type = type;
  s.flags = flags;
  s.raw_size = content.size();
  s.raw_checksum = format::checksum(content);
  ZSTD_CCtx* context = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, content_size ? 1 : 0);
  s.stored.resize(ZSTD_compressBound(content.size()));
  const std::size_t n =
      ZSTD_compress2(context, s.stored.data(), s.stored.size(), content.data(), content.size());
  ZSTD_freeCCtx(context);
  EXPECT_EQ(ZSTD_isError(n), 0U);
  s.stored.resize(n);
  return s;
}

RawSection make_section(format::SectionType type, std::span<const std::byte> content) {
  const bool required = type != format::SectionType::loads &&
                        type != format::SectionType::coactivation &&
                        type != format::SectionType::metrics;
  return make_section(static_cast<std::uint32_t>(type), required ? format::kSectionRequired : 0,
                      content);
}

std::vector<std::byte> content_of(const RawSection& section) {
  std::vector<std::byte> content(section.raw_size);
  const std::size_t n =
      ZSTD_decompress(content.data(), content.size(), section.stored.data(), section.stored.size());
  EXPECT_EQ(n, section.raw_size);
  return content;
}

}  // namespace eplb::test
