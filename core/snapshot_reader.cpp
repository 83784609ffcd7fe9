// Reading .eplb snapshots. Untrusted input: every size is checked against the file and the
// limits before anything is allocated, every offset with overflow-checked arithmetic, every
// section against its two checksums and zstd's own sizes, and the placement for consistency.
// Any problem is an Error(truncated / corrupt / unsupported_version / io) whose message starts
// with the source's name.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <utility>

#include "error.hpp"
#include "loads.hpp"
#include "snapshot.hpp"
#include "tracker_state.hpp"

namespace eplb {

namespace {

namespace format = snapshot_format;
using format::SectionType;

constexpr std::uint32_t kLastKnownType = static_cast<std::uint32_t>(SectionType::provenance);

const char* section_name(std::uint32_t type) {
  switch (static_cast<SectionType>(type)) {
    case SectionType::shape:
      return "shape";
    case SectionType::algorithm:
      return "algorithm";
    case SectionType::phy2log:
      return "phy2log";
    case SectionType::replica_counts:
      return "replica_counts";
    case SectionType::log2phy:
      return "log2phy";
    case SectionType::loads:
      return "loads";
    case SectionType::coactivation:
      return "coactivation";
    case SectionType::metrics:
      return "metrics";
    case SectionType::provenance:
      return "provenance";
  }
  return "unknown";
}

// Where the bytes come from: a caller's buffer (viewed in place) or a file (read on demand, so
// that inspecting a file reads only its small sections).
class ByteSource {
 public:
  explicit ByteSource(std::string name) : name_(std::move(name)) {}
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;
  virtual ~ByteSource() = default;
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] virtual std::uint64_t size() const = 0;
  // `length` bytes at `offset`; the caller has checked that they lie inside size(). The view
  // may point into `scratch`.
  [[nodiscard]] virtual std::span<const std::byte> read(std::uint64_t offset, std::size_t length,
                                                        std::vector<std::byte>& scratch) const = 0;

  template <typename... Parts>
  [[noreturn]] void fail_with(Errc code, Parts&&... parts) const {
    fail(code, name_, ": ", std::forward<Parts>(parts)...);
  }

 private:
  std::string name_;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(std::span<const std::byte> bytes, std::string name)
      : ByteSource(std::move(name)), bytes_(bytes) {}
  [[nodiscard]] std::uint64_t size() const override { return bytes_.size(); }
  [[nodiscard]] std::span<const std::byte> read(
      std::uint64_t offset, std::size_t length,
      std::vector<std::byte>& /*scratch*/) const override {
    EPLB_ASSERT(offset <= bytes_.size() && length <= bytes_.size() - offset);
    return bytes_.subspan(static_cast<std::size_t>(offset), length);
  }

 private:
  std::span<const std::byte> bytes_;
};

class FileSource final : public ByteSource {
 public:
  explicit FileSource(const std::string& path) : ByteSource(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd_ < 0) fail_io("open");
    struct stat status {};
    if (::fstat(fd_, &status) != 0) fail_io("read");
    if (S_ISDIR(status.st_mode))
      fail(Errc::io, "cannot read '", path, "': ", std::strerror(EISDIR));
    if (!S_ISREG(status.st_mode)) {  // a pipe or a device: no size, no pread; read it whole
      read_stream();
      return;
    }
    size_ = status.st_size > 0 ? static_cast<std::uint64_t>(status.st_size) : 0;
  }
  ~FileSource() override {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] std::uint64_t size() const override { return size_; }
  [[nodiscard]] std::span<const std::byte> read(std::uint64_t offset, std::size_t length,
                                                std::vector<std::byte>& scratch) const override {
    EPLB_ASSERT(offset <= size_ && length <= size_ - offset);
    if (streamed_) {
      return std::span<const std::byte>(stream_).subspan(static_cast<std::size_t>(offset), length);
    }
    scratch.resize(length);
    std::size_t done = 0;
    while (done < length) {
      const ssize_t n =
          ::pread(fd_, scratch.data() + done, length - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        fail_io("read");
      }
      if (n == 0) {
        fail_with(Errc::truncated, "the file ended at byte ", offset + done,
                  " while being read (it changed on disk?)");
      }
      done += static_cast<std::size_t>(n);
    }
    return scratch;
  }

 private:
  [[noreturn]] void fail_io(const char* step) const {
    const int error = errno;
    fail(Errc::io, "cannot ", step, " '", name(), "': ", std::strerror(error));
  }

  // Reads the stream into stream_: up to the file size its header states (plus one byte, so that
  // trailing data is still reported), or only its first bytes when they are not the snapshot
  // magic (the parser then says so). An endless or hostile stream is not read forever.
  void read_stream() {
    streamed_ = true;
    constexpr std::size_t kChunk = std::size_t{1} << 16;
    constexpr std::uint64_t kMaxStreamBytes = std::uint64_t{1} << 32;
    std::uint64_t wanted = std::numeric_limits<std::uint64_t>::max();
    for (;;) {
      const std::size_t have = stream_.size();
      const std::size_t compared = std::min(have, format::kMagic.size());
      if (compared > 0 && std::memcmp(stream_.data(), format::kMagic.data(), compared) != 0) break;
      if (have >= format::header::file_size + sizeof(std::uint64_t) &&
          wanted == std::numeric_limits<std::uint64_t>::max()) {
        const auto stated = format::load<std::uint64_t>(stream_.data() + format::header::file_size);
        if (stated > kMaxStreamBytes) {
          fail(Errc::io, "cannot read '", name(), "': its header states ", stated,
               " bytes, more than the ", kMaxStreamBytes,
               " a pipe or device is read into memory for; copy it to a regular file");
        }
        wanted = stated + 1;
      }
      if (have >= wanted) break;
      const auto room = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, wanted - have));
      stream_.resize(have + room);
      const ssize_t n = ::read(fd_, stream_.data() + have, room);
      if (n < 0) {
        stream_.resize(have);
        if (errno == EINTR) continue;
        fail_io("read");
      }
      stream_.resize(have + static_cast<std::size_t>(n));
      if (n == 0) break;
    }
    size_ = stream_.size();
  }

  int fd_ = -1;
  std::uint64_t size_ = 0;
  bool streamed_ = false;
  std::vector<std::byte> stream_;  // the whole content of a pipe or device (streamed_)
};

struct Entry {
  std::size_t index = 0;
  std::uint32_t type = 0;
  std::uint32_t flags = 0;
  std::uint64_t offset = 0;
  std::uint64_t stored_size = 0;
  std::uint64_t raw_size = 0;
  std::uint64_t raw_checksum = 0;
  std::uint64_t stored_checksum = 0;
  std::uint32_t encoding = 0;
};

struct Layout {
  std::uint16_t major = 0;
  std::uint16_t minor = 0;
  std::uint32_t writer_version = 0;
  std::uint64_t file_size = 0;
  bool statistics_only = false;  // required feature kFeatureStatisticsOnly
  std::vector<Entry> entries;
  // The entry of each known section type (index = type), if present.
  std::array<std::optional<Entry>, kLastKnownType + 1> known{};

  [[nodiscard]] const std::optional<Entry>& find(SectionType type) const {
    return known[static_cast<std::size_t>(type)];
  }
};

std::string hex(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text = "0x";
  bool started = false;
  for (int shift = 60; shift >= 0; shift -= 4) {
    const auto digit = static_cast<std::size_t>((value >> shift) & 0xfU);
    if (digit != 0 || started || shift == 0) {
      text += kDigits[digit];
      started = true;
    }
  }
  return text;
}

Layout parse_layout(const ByteSource& source) {
  namespace h = format::header;
  const std::uint64_t size = source.size();
  std::vector<std::byte> scratch;
  const auto head = source.read(
      0, static_cast<std::size_t>(std::min<std::uint64_t>(size, format::kHeaderSize)), scratch);
  const std::size_t magic_bytes = std::min(head.size(), format::kMagic.size());
  if (magic_bytes > 0 && std::memcmp(head.data(), format::kMagic.data(), magic_bytes) != 0) {
    source.fail_with(Errc::corrupt,
                     "not a libeplb snapshot (the file does not start with the "
                     ".eplb magic bytes 89 45 50 4c 42 0d 0a 1a)");
  }
  if (size < h::format_minor + 2) {
    source.fail_with(Errc::truncated, "truncated: ", size, " bytes, but a snapshot header takes ",
                     format::kHeaderSize);
  }
  Layout layout;
  layout.major = format::load<std::uint16_t>(head.data() + h::format_major);
  layout.minor = format::load<std::uint16_t>(head.data() + h::format_minor);
  if (layout.major != format::kFormatMajor) {
    source.fail_with(Errc::unsupported_version, "snapshot format version ", layout.major, ".",
                     layout.minor, " is not supported: this library reads format ",
                     format::kFormatMajor, ".x (up to ", format::kFormatMajor, ".",
                     format::kFormatMinor, ")");
  }
  if (size < format::kHeaderSize) {
    source.fail_with(Errc::truncated, "truncated: ", size, " bytes, but a snapshot header takes ",
                     format::kHeaderSize);
  }
  const std::uint32_t header_size = format::load<std::uint32_t>(head.data() + h::header_size);
  const std::uint32_t count = format::load<std::uint32_t>(head.data() + h::section_count);
  const std::uint32_t entry_size = format::load<std::uint32_t>(head.data() + h::section_entry_size);
  if (header_size < format::kHeaderSize || header_size > format::kMaxHeaderSize) {
    source.fail_with(Errc::corrupt, "header size ", header_size, " is outside [",
                     format::kHeaderSize, ", ", format::kMaxHeaderSize, "]");
  }
  if (entry_size < format::kSectionEntrySize || entry_size > format::kMaxSectionEntrySize) {
    source.fail_with(Errc::corrupt, "section entry size ", entry_size, " is outside [",
                     format::kSectionEntrySize, ", ", format::kMaxSectionEntrySize, "]");
  }
  if (count > format::kMaxSectionCount) {
    source.fail_with(Errc::corrupt, "section count ", count, " exceeds the limit of ",
                     format::kMaxSectionCount);
  }
  // At most 65536 + 4096 * 1024 bytes: no overflow, a bounded allocation.
  const std::size_t table_end = header_size + std::size_t{count} * entry_size;
  if (table_end > size) {
    source.fail_with(Errc::truncated, "truncated: ", size, " bytes, but its header and section ",
                     "table take ", table_end);
  }
  std::vector<std::byte> table_scratch;
  const auto table = source.read(0, table_end, table_scratch);
  const auto stored_checksum = format::load<std::uint64_t>(table.data() + h::checksum);
  const std::uint64_t computed_checksum = format::header_checksum(table);
  if (stored_checksum != computed_checksum) {
    source.fail_with(Errc::corrupt, "header checksum mismatch (stored ", hex(stored_checksum),
                     ", computed ", hex(computed_checksum), "): the header or section table is ",
                     "damaged");
  }
  layout.file_size = format::load<std::uint64_t>(table.data() + h::file_size);
  layout.writer_version = format::load<std::uint32_t>(table.data() + h::writer_version);
  if (size < layout.file_size) {
    source.fail_with(Errc::truncated, "truncated: ", size, " bytes, but its header declares ",
                     layout.file_size);
  }
  if (size > layout.file_size) {
    source.fail_with(Errc::corrupt, size, " bytes, but its header declares ", layout.file_size,
                     " (trailing bytes)");
  }
  const auto required = format::load<std::uint64_t>(table.data() + h::required_features);
  if ((required & ~format::kKnownRequiredFeatures) != 0) {
    source.fail_with(Errc::unsupported_version, "format ", layout.major, ".", layout.minor,
                     " snapshot requires features ",
                     hex(required & ~format::kKnownRequiredFeatures),
                     " that this library does not have; upgrade libeplb");
  }
  layout.statistics_only = (required & format::kFeatureStatisticsOnly) != 0;

  layout.entries.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    namespace e = format::entry;
    const std::byte* at = table.data() + header_size + i * entry_size;
    Entry entry;
    entry.index = i;
    entry.type = format::load<std::uint32_t>(at + e::type);
    entry.flags = format::load<std::uint32_t>(at + e::flags);
    entry.offset = format::load<std::uint64_t>(at + e::offset);
    entry.stored_size = format::load<std::uint64_t>(at + e::stored_size);
    entry.raw_size = format::load<std::uint64_t>(at + e::raw_size);
    entry.raw_checksum = format::load<std::uint64_t>(at + e::raw_checksum);
    entry.stored_checksum = format::load<std::uint64_t>(at + e::stored_checksum);
    entry.encoding = format::load<std::uint32_t>(at + e::encoding);
    std::uint64_t end = 0;
    if (entry.offset < table_end || __builtin_add_overflow(entry.offset, entry.stored_size, &end) ||
        end > layout.file_size) {
      source.fail_with(Errc::corrupt, "section ", i, " (type ", entry.type, ") claims bytes at ",
                       "offset ", entry.offset, " size ", entry.stored_size,
                       ", outside the data area [", table_end, ", ", layout.file_size, ")");
    }
    layout.entries.push_back(entry);
  }
  std::vector<const Entry*> by_offset;
  by_offset.reserve(layout.entries.size());
  for (const auto& entry : layout.entries) by_offset.push_back(&entry);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Entry* a, const Entry* b) { return a->offset < b->offset; });
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    const Entry& before = *by_offset[i - 1];
    if (before.offset + before.stored_size > by_offset[i]->offset) {
      source.fail_with(Errc::corrupt, "sections ", before.index, " and ", by_offset[i]->index,
                       " overlap");
    }
  }

  for (const auto& entry : layout.entries) {
    const bool known_type = entry.type >= 1 && entry.type <= kLastKnownType;
    const bool known_encoding =
        entry.encoding == static_cast<std::uint32_t>(format::Encoding::zstd);
    if (known_type && known_encoding) {
      auto& slot = layout.known[entry.type];
      if (slot) {
        source.fail_with(Errc::corrupt, "section type ", entry.type, " (", section_name(entry.type),
                         ") appears twice (sections ", slot->index, " and ", entry.index, ")");
      }
      slot = entry;
    } else if ((entry.flags & format::kSectionRequired) != 0) {
      source.fail_with(Errc::unsupported_version, "section ", entry.index, " has type ", entry.type,
                       " and encoding ", entry.encoding,
                       ", which this library does not know, and is marked required (format ",
                       layout.major, ".", layout.minor, "); upgrade libeplb");
    }
    // Unknown optional sections are skipped.
  }
  if (layout.statistics_only) {
    // A statistics snapshot: the co-activation statistics and the provenance, no placement.
    for (SectionType type : {SectionType::shape, SectionType::algorithm, SectionType::phy2log,
                             SectionType::replica_counts, SectionType::log2phy, SectionType::loads,
                             SectionType::metrics}) {
      if (const auto& entry = layout.find(type)) {
        const auto id = static_cast<std::uint32_t>(type);
        source.fail_with(Errc::corrupt, "a statistics snapshot (feature ",
                         hex(format::kFeatureStatisticsOnly), ") holds the placement section ",
                         section_name(id), " (type ", id, ", section ", entry->index, ")");
      }
    }
  }
  const std::vector<SectionType> needed =
      layout.statistics_only
          ? std::vector<SectionType>{SectionType::coactivation, SectionType::provenance}
          : std::vector<SectionType>{SectionType::shape,   SectionType::algorithm,
                                     SectionType::phy2log, SectionType::replica_counts,
                                     SectionType::log2phy, SectionType::provenance};
  for (SectionType type : needed) {
    if (!layout.find(type)) {
      const auto id = static_cast<std::uint32_t>(type);
      source.fail_with(Errc::corrupt, "the required section ", section_name(id), " (type ", id,
                       ") is missing");
    }
  }
  return layout;
}

struct DCtxDeleter {
  void operator()(ZSTD_DCtx* context) const { ZSTD_freeDCtx(context); }
};
using DCtxPtr = std::unique_ptr<ZSTD_DCtx, DCtxDeleter>;

DCtxPtr make_dctx() {
  DCtxPtr context(ZSTD_createDCtx());
  if (!context) throw std::bad_alloc();
  return context;
}

// The stored bytes of a section, checked before anything is allocated for its content: the
// content size must be one the stored bytes can decompress to, the stored checksum must match,
// and the bytes must be exactly one zstd frame whose header declares the table's raw size.
std::span<const std::byte> checked_frame(const ByteSource& source, const Entry& entry,
                                         std::vector<std::byte>& scratch) {
  const char* name = section_name(entry.type);
  std::uint64_t most = 0;
  if (!__builtin_mul_overflow(entry.stored_size, format::kMaxExpansion, &most) &&
      entry.raw_size > most) {
    source.fail_with(Errc::corrupt, "section ", name, ": ", entry.raw_size,
                     " bytes cannot be the content of ", entry.stored_size, " stored bytes");
  }
  const auto stored =
      source.read(entry.offset, static_cast<std::size_t>(entry.stored_size), scratch);
  const std::uint64_t stored_checksum = format::checksum(stored);
  if (stored_checksum != entry.stored_checksum) {
    source.fail_with(Errc::corrupt, "section ", name, ": checksum mismatch of its stored bytes ",
                     "(table ", hex(entry.stored_checksum), ", computed ", hex(stored_checksum),
                     ")");
  }
  const unsigned long long content_size = ZSTD_getFrameContentSize(stored.data(), stored.size());
  if (content_size == ZSTD_CONTENTSIZE_ERROR) {
    source.fail_with(Errc::corrupt, "section ", name, ": not a zstd frame");
  }
  if (content_size == ZSTD_CONTENTSIZE_UNKNOWN) {
    source.fail_with(Errc::corrupt, "section ", name, ": its zstd frame has no content size");
  }
  if (content_size != entry.raw_size) {
    source.fail_with(Errc::corrupt, "section ", name, ": its zstd frame holds ", content_size,
                     " bytes but the section table says ", entry.raw_size);
  }
  const std::size_t frame_size = ZSTD_findFrameCompressedSize(stored.data(), stored.size());
  if (ZSTD_isError(frame_size) != 0 || frame_size != stored.size()) {
    source.fail_with(Errc::corrupt, "section ", name, ": its zstd frame does not span its ",
                     stored.size(), " stored bytes");
  }
  return stored;
}

// Decompresses a checked frame into `out` (entry.raw_size bytes) and verifies the content.
void decompress(const ByteSource& source, const Entry& entry, ZSTD_DCtx* context,
                std::span<const std::byte> stored, std::span<std::byte> out) {
  EPLB_ASSERT(out.size() == entry.raw_size);
  const char* name = section_name(entry.type);
  const std::size_t produced =
      ZSTD_decompressDCtx(context, out.data(), out.size(), stored.data(), stored.size());
  if (ZSTD_isError(produced) != 0) {
    source.fail_with(Errc::corrupt, "section ", name, ": zstd: ", ZSTD_getErrorName(produced));
  }
  if (produced != entry.raw_size) {
    source.fail_with(Errc::corrupt, "section ", name, ": decompressed to ", produced,
                     " bytes, expected ", entry.raw_size);
  }
  const std::uint64_t raw_checksum = format::checksum(out);
  if (raw_checksum != entry.raw_checksum) {
    source.fail_with(Errc::corrupt, "section ", name, ": checksum mismatch of its content (table ",
                     hex(entry.raw_checksum), ", computed ", hex(raw_checksum), ")");
  }
}

// A fixed-size record of at least `minimum` bytes (later minors may append fields).
std::vector<std::byte> read_record(const ByteSource& source, const Entry& entry, ZSTD_DCtx* context,
                                   std::size_t minimum) {
  if (entry.raw_size < minimum || entry.raw_size > format::kMaxRecordSize) {
    source.fail_with(Errc::corrupt, "section ", section_name(entry.type), " is ", entry.raw_size,
                     " bytes; expected ", minimum, " to ", format::kMaxRecordSize);
  }
  std::vector<std::byte> scratch;
  const auto stored = checked_frame(source, entry, scratch);
  std::vector<std::byte> record(static_cast<std::size_t>(entry.raw_size));
  decompress(source, entry, context, stored, record);
  return record;
}

// An array section of exactly `count` elements of T.
template <format::Field T>
std::vector<T> read_array(const ByteSource& source, const Entry& entry, ZSTD_DCtx* context,
                          std::uint64_t count) {
  const char* name = section_name(entry.type);
  std::uint64_t bytes = 0;
  if (__builtin_mul_overflow(count, std::uint64_t{sizeof(T)}, &bytes) ||
      bytes > format::kMaxSectionRawSize) {
    source.fail_with(Errc::corrupt, "section ", name, " would hold ", count, " values, over the ",
                     format::kMaxSectionRawSize, "-byte limit of a section");
  }
  if (entry.raw_size != bytes) {
    source.fail_with(Errc::corrupt, "section ", name, " is ", entry.raw_size,
                     " bytes but the shape needs ", bytes);
  }
  std::vector<std::byte> scratch;
  const auto stored = checked_frame(source, entry, scratch);
  std::vector<T> values(static_cast<std::size_t>(count));
  decompress(source, entry, context, stored, std::as_writable_bytes(std::span(values)));
  format::to_or_from_little_endian(std::span(values));
  return values;
}

template <format::Field T>
T field(std::span<const std::byte> record, std::size_t offset) {
  EPLB_ASSERT(offset + sizeof(T) <= record.size());
  return format::load<T>(record.data() + offset);
}

void read_provenance(const ByteSource& source, const Layout& layout, ZSTD_DCtx* context,
                     SnapshotInfo& info) {
  const auto provenance = read_record(source, *layout.find(SectionType::provenance), context,
                                      format::kProvenanceFixedSize);
  info.created_unix_seconds = field<std::uint64_t>(provenance, 0);
  const std::uint32_t version_bytes = field<std::uint32_t>(provenance, 8);
  const std::uint32_t label_bytes = field<std::uint32_t>(provenance, 12);
  if (version_bytes > format::kMaxVersionBytes || label_bytes > format::kMaxLabelBytes ||
      format::kProvenanceFixedSize + version_bytes + label_bytes > provenance.size()) {
    source.fail_with(Errc::corrupt, "section provenance: a ", version_bytes, "-byte version and a ",
                     label_bytes, "-byte label do not fit its ", provenance.size(),
                     " bytes (limits ", format::kMaxVersionBytes, " and ", format::kMaxLabelBytes,
                     ")");
  }
  const auto* text =
      reinterpret_cast<const char*>(provenance.data()) + format::kProvenanceFixedSize;
  info.library_version.assign(text, version_bytes);
  info.label.assign(text + version_bytes, label_bytes);
  if (!format::is_valid_text(info.library_version) || !format::is_valid_text(info.label)) {
    source.fail_with(Errc::corrupt, "section provenance: the version or label is not valid UTF-8");
  }
}

SnapshotInfo read_info(const ByteSource& source, const Layout& layout, ZSTD_DCtx* context) {
  SnapshotInfo info;
  info.format_major = layout.major;
  info.format_minor = layout.minor;
  info.writer_version = layout.writer_version;
  info.file_size = layout.file_size;
  info.has_loads = layout.find(SectionType::loads).has_value();
  info.has_coactivation = layout.find(SectionType::coactivation).has_value();
  info.has_placement = !layout.statistics_only;
  read_provenance(source, layout, context, info);
  if (layout.statistics_only) {
    info.topology.num_nodes = 0;  // no placement: only num_layers and num_logical get set
    info.topology.num_groups = 0;
    return info;
  }

  const auto shape =
      read_record(source, *layout.find(SectionType::shape), context, format::kShapeSize);
  Topology& t = info.topology;
  t.num_layers = field<std::uint32_t>(shape, 0);
  t.num_logical = field<std::uint32_t>(shape, 4);
  t.num_physical = field<std::uint32_t>(shape, 8);
  t.num_nodes = field<std::uint32_t>(shape, 12);
  t.num_gpus = field<std::uint32_t>(shape, 16);
  t.num_groups = field<std::uint32_t>(shape, 20);
  info.log2phy_width = field<std::uint32_t>(shape, 24);
  try {
    t.validate();
  } catch (const Error& error) {
    source.fail_with(Errc::corrupt, "section shape: ", error.what());
  }
  // An expert has at most R - (E - 1) replicas: every other expert needs a slot.
  if (info.log2phy_width < 1 || info.log2phy_width > t.num_physical - t.num_logical + 1) {
    source.fail_with(Errc::corrupt, "section shape: log2phy width ", info.log2phy_width,
                     " is outside [1, ", t.num_physical - t.num_logical + 1, "]");
  }

  const auto algorithm =
      read_record(source, *layout.find(SectionType::algorithm), context, format::kAlgorithmSize);
  info.provenance.algorithm = field<std::uint32_t>(algorithm, 0);
  info.provenance.hierarchical = (field<std::uint32_t>(algorithm, 4) & 1U) != 0;
  info.provenance.plan_seconds = field<double>(algorithm, 8);
  info.provenance.cross_node_budget = field<std::uint32_t>(algorithm, 16);
  if (!std::isfinite(info.provenance.plan_seconds) || info.provenance.plan_seconds < 0) {
    source.fail_with(Errc::corrupt, "section algorithm: plan time ", info.provenance.plan_seconds,
                     " is not a finite number of seconds >= 0");
  }

  if (const auto& entry = layout.find(SectionType::metrics)) {
    const auto record = read_record(source, *entry, context, format::kMetricsSize);
    Metrics m;
    m.num_layers = field<std::uint32_t>(record, 0);
    m.max_replicas = field<std::uint32_t>(record, 4);
    m.duplicate_pairs = field<std::uint64_t>(record, 8);
    m.cross_node_replicas = field<std::uint64_t>(record, 16);
    m.balancedness = field<double>(record, 24);
    m.min_balancedness = field<double>(record, 32);
    m.node_balancedness = field<double>(record, 40);
    m.max_load_over_bound = field<double>(record, 48);
    m.worst_max_load_over_bound = field<double>(record, 56);
    m.max_over_mean = field<double>(record, 64);
    m.max_load_over_node_bound = field<double>(record, 72);
    if (m.num_layers != t.num_layers) {
      source.fail_with(Errc::corrupt, "section metrics: ", m.num_layers, " layers, but the shape ",
                       "has ", t.num_layers);
    }
    for (double value :
         {m.balancedness, m.min_balancedness, m.node_balancedness, m.max_load_over_bound,
          m.worst_max_load_over_bound, m.max_over_mean, m.max_load_over_node_bound}) {
      if (!std::isfinite(value)) {
        source.fail_with(Errc::corrupt, "section metrics: a value is not finite (", value, ")");
      }
    }
    info.metrics = m;
  }
  return info;
}

// The co-activation section: a tracker's state, decoded and validated (tracker_state.hpp).
Tracker read_tracker(const ByteSource& source, const Entry& entry, ZSTD_DCtx* context) {
  if (entry.raw_size > format::kMaxSectionRawSize) {
    source.fail_with(Errc::corrupt, "section coactivation is ", entry.raw_size, " bytes, over the ",
                     format::kMaxSectionRawSize, "-byte limit of a section");
  }
  std::vector<std::byte> scratch;
  const auto stored = checked_frame(source, entry, scratch);
  std::vector<std::byte> content(static_cast<std::size_t>(entry.raw_size));
  decompress(source, entry, context, stored, content);
  try {
    return decode_tracker_state(content);
  } catch (const Error& error) {
    if (error.code() != Errc::corrupt) throw;
    source.fail_with(Errc::corrupt, error.what());
  }
}

std::uint64_t product(const ByteSource& source, std::initializer_list<std::uint64_t> factors) {
  std::uint64_t result = 1;
  for (std::uint64_t factor : factors) {
    if (__builtin_mul_overflow(result, factor, &result)) {
      source.fail_with(Errc::corrupt, "the shape's array sizes overflow");
    }
  }
  return result;
}

}  // namespace

// Reads a whole snapshot (a friend of Snapshot).
class SnapshotReader {
 public:
  static Snapshot read(const ByteSource& source) {
    const Layout layout = parse_layout(source);
    const DCtxPtr context = make_dctx();
    SnapshotInfo info = read_info(source, layout, context.get());
    std::optional<Tracker> tracker;
    if (const auto& entry = layout.find(SectionType::coactivation)) {
      tracker = read_tracker(source, *entry, context.get());
      if (layout.statistics_only) {
        info.topology.num_layers = tracker->options().num_layers;
        info.topology.num_logical = tracker->options().num_experts;
        return Snapshot(std::move(info), std::nullopt, {}, std::move(tracker));
      }
      if (tracker->options().num_layers != info.topology.num_layers ||
          tracker->options().num_experts != info.topology.num_logical) {
        source.fail_with(Errc::corrupt, "section coactivation: ", tracker->options().num_layers,
                         " layers of ", tracker->options().num_experts,
                         " experts, but the shape has ", info.topology.num_layers, " of ",
                         info.topology.num_logical);
      }
    }
    const Topology& t = info.topology;
    auto phy2log =
        read_array<std::int32_t>(source, *layout.find(SectionType::phy2log), context.get(),
                                 product(source, {t.num_layers, t.num_physical}));
    const auto counts =
        read_array<std::int32_t>(source, *layout.find(SectionType::replica_counts), context.get(),
                                 product(source, {t.num_layers, t.num_logical}));
    auto log2phy = read_array<std::int32_t>(
        source, *layout.find(SectionType::log2phy), context.get(),
        product(source, {t.num_layers, t.num_logical, info.log2phy_width}));
    std::vector<double> loads;
    if (const auto& entry = layout.find(SectionType::loads)) {
      loads = read_array<double>(source, *entry, context.get(),
                                 product(source, {t.num_layers, t.num_logical}));
      double total = 0;  // of the layer: as every call that takes loads, at most kMaxLayerTotal
      for (std::size_t i = 0; i < loads.size(); ++i) {
        if (!std::isfinite(loads[i]) || loads[i] < 0) {
          source.fail_with(Errc::corrupt, "section loads: loads[", i / t.num_logical, "][",
                           i % t.num_logical, "] = ", loads[i], " is not a finite load >= 0");
        }
        total += loads[i];
        if ((i + 1) % t.num_logical == 0) {
          if (total > kMaxLayerTotal) {
            source.fail_with(Errc::corrupt, "section loads: the loads of layer ", i / t.num_logical,
                             " add up to ", total, ", above 1e150");
          }
          total = 0;
        }
      }
    }
    try {
      Placement placement = Placement::from_stored(
          t, std::move(phy2log), counts, std::move(log2phy), info.log2phy_width, info.provenance);
      return Snapshot(std::move(info), std::move(placement), std::move(loads), std::move(tracker));
    } catch (const Error& error) {
      if (error.code() != Errc::corrupt) throw;
      source.fail_with(Errc::corrupt, "inconsistent placement: ", error.what());
    }
  }

  static SnapshotInfo inspect(const ByteSource& source) {
    const Layout layout = parse_layout(source);
    const DCtxPtr context = make_dctx();
    SnapshotInfo info = read_info(source, layout, context.get());
    if (layout.statistics_only) {
      // The statistics are the whole content of such a file: decode them for the shape.
      const Tracker tracker =
          read_tracker(source, *layout.find(SectionType::coactivation), context.get());
      info.topology.num_layers = tracker.options().num_layers;
      info.topology.num_logical = tracker.options().num_experts;
    }
    return info;
  }
};

const Placement& Snapshot::placement() const {
  if (!placement_) {
    fail_invalid("the snapshot holds no placement (a statistics snapshot: co-activation ",
                 "statistics only)");
  }
  return *placement_;
}

Snapshot Snapshot::decode(std::span<const std::byte> bytes, const std::string& source) {
  return SnapshotReader::read(MemorySource(bytes, source));
}

Snapshot Snapshot::load(const std::string& path) { return SnapshotReader::read(FileSource(path)); }

SnapshotInfo Snapshot::inspect(std::span<const std::byte> bytes, const std::string& source) {
  return SnapshotReader::inspect(MemorySource(bytes, source));
}

SnapshotInfo Snapshot::inspect(const std::string& path) {
  return SnapshotReader::inspect(FileSource(path));
}

}  // namespace eplb
