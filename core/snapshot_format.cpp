#include "snapshot_format.hpp"

// The hash functions are compiled into libeplb (no run-time dependency on libxxhash.so).
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <vector>

#include "error.hpp"

namespace eplb::snapshot_format {

std::uint64_t checksum(std::span<const std::byte> bytes) {
  return XXH64(bytes.data(), bytes.size(), 0);
}

std::uint64_t header_checksum(std::span<const std::byte> header_and_table) {
  EPLB_ASSERT(header_and_table.size() >= kHeaderSize);
  // A copy with the field zeroed (at most a few KiB in practice; the reader bounds it to 4 MiB).
  std::vector<std::byte> copy(header_and_table.begin(), header_and_table.end());
  std::fill_n(copy.begin() + header::checksum, sizeof(std::uint64_t), std::byte{0});
  return checksum(copy);
}

bool is_valid_text(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead == 0) return false;
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t code = 0;
    if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
      code = lead & 0x1fU;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      code = lead & 0x0fU;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      code = lead & 0x07U;
    } else {
      return false;
    }
    if (text.size() - i < length) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0U) != 0x80U) return false;
      code = (code << 6) | (next & 0x3fU);
    }
    if ((length == 3 && (code < 0x800 || (code >= 0xd800 && code <= 0xdfff))) ||
        (length == 4 && (code < 0x10000 || code > 0x10ffff))) {
      return false;
    }
    i += length;
  }
  return true;
}

void seal_header(std::span<std::byte> file) {
  EPLB_ASSERT(file.size() >= kHeaderSize);
  const std::size_t header_size = load<std::uint32_t>(file.data() + header::header_size);
  const std::size_t count = load<std::uint32_t>(file.data() + header::section_count);
  const std::size_t entry_size = load<std::uint32_t>(file.data() + header::section_entry_size);
  EPLB_ASSERT(header_size >= kHeaderSize && header_size <= kMaxHeaderSize);
  EPLB_ASSERT(count <= kMaxSectionCount && entry_size <= kMaxSectionEntrySize);
  const std::size_t table_end = header_size + count * entry_size;
  EPLB_ASSERT(table_end <= file.size());
  store<std::uint64_t>(file.data() + header::checksum, header_checksum(file.first(table_end)));
}

}  // namespace eplb::snapshot_format
