// Writing .eplb snapshots: build each section's content, compress it into one zstd frame, lay the
// sections out after the header and the section table, checksum everything.
#include <zstd.h>

#include <chrono>
#include <memory>
#include <utility>

#include "atomic_file.hpp"
#include "error.hpp"
#include "loads.hpp"
#include "snapshot.hpp"
#include "tracker_state.hpp"

namespace eplb {

namespace {

namespace format = snapshot_format;
using format::SectionType;

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* context) const { ZSTD_freeCCtx(context); }
};

// One section before compression: its content either views the placement's own arrays (on
// little-endian hosts) or is owned.
struct PendingSection {
  std::uint32_t type = 0;
  std::uint32_t flags = 0;
  std::vector<std::byte> owned;
  std::span<const std::byte> content;
};

class Record {
 public:
  explicit Record(std::size_t size) : bytes_(size) {}
  template <format::Field T>
  Record& put(std::size_t offset, T value) {
    EPLB_ASSERT(offset + sizeof(T) <= bytes_.size());
    format::store<T>(bytes_.data() + offset, value);
    return *this;
  }
  void append(std::string_view text) {
    const auto* data = reinterpret_cast<const std::byte*>(text.data());
    bytes_.insert(bytes_.end(), data, data + text.size());
  }
  [[nodiscard]] std::vector<std::byte> take() { return std::move(bytes_); }

 private:
  std::vector<std::byte> bytes_;
};

void add_owned(std::vector<PendingSection>& sections, SectionType type, std::uint32_t flags,
               std::vector<std::byte> content) {
  PendingSection& section = sections.emplace_back();
  section.type = static_cast<std::uint32_t>(type);
  section.flags = flags;
  section.owned = std::move(content);
  section.content = section.owned;
}

// Arrays are little-endian in the file: view them as they are, or convert a copy.
template <format::Field T>
void add_array(std::vector<PendingSection>& sections, SectionType type, std::uint32_t flags,
               std::span<const T> values) {
  if constexpr (std::endian::native == std::endian::little) {
    PendingSection& section = sections.emplace_back();
    section.type = static_cast<std::uint32_t>(type);
    section.flags = flags;
    section.content = std::as_bytes(values);
  } else {
    std::vector<std::byte> bytes(values.size_bytes());
    for (std::size_t i = 0; i < values.size(); ++i) {
      format::store<T>(bytes.data() + i * sizeof(T), values[i]);
    }
    add_owned(sections, type, flags, std::move(bytes));
  }
}

void validate_common_options(const SnapshotWriteOptions& options) {
  if (options.compression_level < 1 || options.compression_level > 19) {
    fail_invalid("compression_level (", options.compression_level, ") must be in 1..19");
  }
  if (options.label.size() > format::kMaxLabelBytes) {
    fail_invalid("label is ", options.label.size(), " bytes long; at most ", format::kMaxLabelBytes,
                 " are allowed");
  }
  if (!format::is_valid_text(options.label)) fail_invalid("label is not valid UTF-8");
  if (options.format_minor > format::kFormatMinor) {
    fail_invalid("format_minor (", options.format_minor, ") is newer than this writer (",
                 format::kFormatMinor, ")");
  }
}

void validate_options(const Placement& placement, const SnapshotWriteOptions& options) {
  validate_common_options(options);
  if (options.loads) validate_loads(*options.loads, placement.topology(), "loads");
  if (options.tracker != nullptr) {
    const Topology& t = placement.topology();
    const TrackerOptions& o = options.tracker->options();
    if (o.num_layers != t.num_layers || o.num_experts != t.num_logical) {
      fail_invalid("tracker has ", o.num_layers, " layers of ", o.num_experts,
                   " experts; the placement has ", t.num_layers, " of ", t.num_logical);
    }
    if (options.format_minor < 2) {
      fail_invalid("co-activation statistics need format 1.2 or newer (format_minor ",
                   options.format_minor, ")");
    }
  }
}

std::vector<std::byte> shape_record(const Placement& placement) {
  const Topology& t = placement.topology();
  Record record(format::kShapeSize);
  record.put<std::uint32_t>(0, t.num_layers)
      .put<std::uint32_t>(4, t.num_logical)
      .put<std::uint32_t>(8, t.num_physical)
      .put<std::uint32_t>(12, t.num_nodes)
      .put<std::uint32_t>(16, t.num_gpus)
      .put<std::uint32_t>(20, t.num_groups)
      .put<std::uint32_t>(24, placement.log2phy_width())
      .put<std::uint32_t>(28, 0);
  return record.take();
}

std::vector<std::byte> algorithm_record(const Provenance& provenance) {
  Record record(format::kAlgorithmSize);
  record.put<std::uint32_t>(0, provenance.algorithm)
      .put<std::uint32_t>(4, provenance.hierarchical ? 1U : 0U)
      .put<double>(8, provenance.plan_seconds)
      .put<std::uint32_t>(16, provenance.cross_node_budget)
      .put<std::uint32_t>(20, 0);
  return record.take();
}

std::vector<std::byte> metrics_record(const Metrics& m) {
  Record record(format::kMetricsSize);
  record.put<std::uint32_t>(0, m.num_layers)
      .put<std::uint32_t>(4, m.max_replicas)
      .put<std::uint64_t>(8, m.duplicate_pairs)
      .put<std::uint64_t>(16, m.cross_node_replicas)
      .put<double>(24, m.balancedness)
      .put<double>(32, m.min_balancedness)
      .put<double>(40, m.node_balancedness)
      .put<double>(48, m.max_load_over_bound)
      .put<double>(56, m.worst_max_load_over_bound)
      .put<double>(64, m.max_over_mean)
      .put<double>(72, m.max_load_over_node_bound);
  return record.take();
}

std::vector<std::byte> provenance_record(const SnapshotWriteOptions& options) {
  const std::uint64_t created = options.created_unix_seconds.value_or(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count()));
  const std::string_view version = EPLB_LIBRARY_VERSION_STRING;
  static_assert(std::string_view(EPLB_LIBRARY_VERSION_STRING).size() <= format::kMaxVersionBytes);
  Record record(format::kProvenanceFixedSize);
  record.put<std::uint64_t>(0, created)
      .put<std::uint32_t>(8, static_cast<std::uint32_t>(version.size()))
      .put<std::uint32_t>(12, static_cast<std::uint32_t>(options.label.size()));
  record.append(version);
  record.append(options.label);
  return record.take();
}

// Compresses the sections, lays them out after the header and the table, checksums everything.
std::vector<std::byte> serialise(std::vector<PendingSection>& sections,
                                 const SnapshotWriteOptions& options,
                                 std::uint64_t required_features) {
  for (const auto& extra : options.extra_sections) {
    PendingSection& section = sections.emplace_back();
    section.type = extra.type;
    section.flags = extra.flags;
    section.content = extra.content;
  }

  const std::size_t table_end = format::kHeaderSize + sections.size() * format::kSectionEntrySize;
  std::size_t capacity = table_end;
  for (const auto& section : sections) capacity += ZSTD_compressBound(section.content.size());
  std::vector<std::byte> file(capacity);

  const std::unique_ptr<ZSTD_CCtx, CCtxDeleter> context(ZSTD_createCCtx());
  if (!context) throw std::bad_alloc();
  auto check_zstd = [](std::size_t result) {
    if (ZSTD_isError(result) != 0) {
      fail(Errc::internal, "zstd compression failed: ", ZSTD_getErrorName(result));
    }
  };
  check_zstd(
      ZSTD_CCtx_setParameter(context.get(), ZSTD_c_compressionLevel, options.compression_level));
  check_zstd(ZSTD_CCtx_setParameter(context.get(), ZSTD_c_contentSizeFlag, 1));
  check_zstd(ZSTD_CCtx_setParameter(context.get(), ZSTD_c_checksumFlag, 0));

  std::size_t cursor = table_end;
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const PendingSection& section = sections[i];
    const std::size_t stored =
        ZSTD_compress2(context.get(), file.data() + cursor, file.size() - cursor,
                       section.content.data(), section.content.size());
    check_zstd(stored);
    std::byte* entry = file.data() + format::kHeaderSize + i * format::kSectionEntrySize;
    namespace e = format::entry;
    format::store<std::uint32_t>(entry + e::type, section.type);
    format::store<std::uint32_t>(entry + e::flags, section.flags);
    format::store<std::uint64_t>(entry + e::offset, cursor);
    format::store<std::uint64_t>(entry + e::stored_size, stored);
    format::store<std::uint64_t>(entry + e::raw_size, section.content.size());
    format::store<std::uint64_t>(entry + e::raw_checksum, format::checksum(section.content));
    format::store<std::uint64_t>(
        entry + e::stored_checksum,
        format::checksum(std::span<const std::byte>(file).subspan(cursor, stored)));
    format::store<std::uint32_t>(entry + e::encoding,
                                 static_cast<std::uint32_t>(format::Encoding::zstd));
    format::store<std::uint32_t>(entry + e::reserved, 0);
    cursor += stored;
  }
  file.resize(cursor);

  std::byte* header = file.data();
  namespace h = format::header;
  std::copy(format::kMagic.begin(), format::kMagic.end(),
            reinterpret_cast<unsigned char*>(header + h::magic));
  format::store<std::uint16_t>(header + h::format_major, format::kFormatMajor);
  format::store<std::uint16_t>(header + h::format_minor, options.format_minor);
  format::store<std::uint32_t>(header + h::header_size, format::kHeaderSize);
  format::store<std::uint64_t>(header + h::required_features, required_features);
  format::store<std::uint64_t>(header + h::optional_features, options.optional_features);
  format::store<std::uint64_t>(header + h::file_size, file.size());
  format::store<std::uint32_t>(header + h::section_count,
                               static_cast<std::uint32_t>(sections.size()));
  format::store<std::uint32_t>(header + h::section_entry_size, format::kSectionEntrySize);
  format::store<std::uint32_t>(header + h::writer_version, EPLB_LIBRARY_VERSION_NUMBER);
  format::store<std::uint32_t>(header + h::reserved, 0);
  format::seal_header(file);
  return file;
}

}  // namespace

std::vector<std::byte> encode_snapshot(const Placement& placement,
                                       const SnapshotWriteOptions& options) {
  validate_options(placement, options);
  constexpr std::uint32_t required = format::kSectionRequired;
  std::vector<PendingSection> sections;
  sections.reserve(10 + options.extra_sections.size());
  add_owned(sections, SectionType::shape, required, shape_record(placement));
  add_owned(sections, SectionType::algorithm, required, algorithm_record(placement.provenance()));
  add_array(sections, SectionType::phy2log, required, placement.phy2log());
  add_array(sections, SectionType::replica_counts, required, placement.replica_counts());
  add_array(sections, SectionType::log2phy, required, placement.log2phy());
  if (options.loads) {
    add_array(sections, SectionType::loads, 0, *options.loads);
    // Format 1.0 has no metrics section.
    if (options.format_minor >= 1) {
      add_owned(sections, SectionType::metrics, 0,
                metrics_record(compute_metrics(placement, *options.loads)));
    }
  }
  if (options.tracker != nullptr) {
    add_owned(sections, SectionType::coactivation, 0, encode_tracker_state(*options.tracker));
  }
  add_owned(sections, SectionType::provenance, required, provenance_record(options));
  return serialise(sections, options, options.required_features);
}

std::vector<std::byte> encode_statistics_snapshot(const Tracker& tracker,
                                                  const SnapshotWriteOptions& options) {
  validate_common_options(options);
  if (options.loads) {
    fail_invalid("loads: a statistics snapshot stores the tracker's loads; pass no loads");
  }
  if (options.tracker != nullptr) {
    fail_invalid("tracker: a statistics snapshot stores the tracker it is given; set no other");
  }
  if (options.format_minor < 2) {
    fail_invalid("statistics snapshots need format 1.2 or newer (format_minor ",
                 options.format_minor, ")");
  }
  std::vector<PendingSection> sections;
  sections.reserve(2 + options.extra_sections.size());
  add_owned(sections, SectionType::coactivation, 0, encode_tracker_state(tracker));
  add_owned(sections, SectionType::provenance, format::kSectionRequired,
            provenance_record(options));
  return serialise(sections, options, options.required_features | format::kFeatureStatisticsOnly);
}

namespace {

void write_or_fail(const std::string& path, const std::vector<std::byte>& bytes) {
  if (const auto failure = write_file_atomically(path, bytes)) fail(Errc::io, failure->message());
}

}  // namespace

void save_statistics_snapshot(const Tracker& tracker, const SnapshotWriteOptions& options,
                              const std::string& path) {
  write_or_fail(path, encode_statistics_snapshot(tracker, options));
}

void save_snapshot(const Placement& placement, const SnapshotWriteOptions& options,
                   const std::string& path) {
  write_or_fail(path, encode_snapshot(placement, options));
}

}  // namespace eplb
