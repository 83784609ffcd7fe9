// Snapshots: a placement, how it was made, optionally the load statistics it was planned from and
// its metrics, in a .eplb file (layout in snapshot_format.hpp, specification in
// docs/SNAPSHOT_FORMAT.md). Writing validates its inputs and throws Error(invalid_argument) or
// Error(io); reading validates everything and throws Error(io / truncated / corrupt /
// unsupported_version) with a message naming the source, never anything worse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "metrics.hpp"
#include "placement.hpp"
#include "snapshot_format.hpp"
#include "topology.hpp"
#include "tracker.hpp"

namespace eplb {

// What a snapshot holds, from its header and small sections.
struct SnapshotInfo {
  std::uint16_t format_major = 0;
  std::uint16_t format_minor = 0;
  std::uint32_t writer_version = 0;  // EPLB_VERSION_NUMBER of the library that wrote it
  std::uint64_t file_size = 0;
  Topology topology;
  std::uint32_t log2phy_width = 0;
  Provenance provenance;
  bool has_loads = false;
  bool has_coactivation = false;
  // False for a statistics snapshot (format >= 1.2): co-activation statistics without a
  // placement; `topology` then holds only num_layers and num_logical (the rest 0).
  bool has_placement = true;
  std::optional<Metrics> metrics;  // stored metrics under the stored loads (format >= 1.1)
  std::uint64_t created_unix_seconds = 0;
  std::string library_version;
  std::string label;
};

struct SnapshotWriteOptions {
  int compression_level = 3;                     // zstd level, 1..19
  std::optional<std::span<const double>> loads;  // [layers][E]; stored, and its metrics
  std::string label;                             // UTF-8, at most 255 bytes
  const Tracker* tracker = nullptr;  // co-activation statistics (section 7); not retained

  // For tests and the golden-file generator only; the C API never sets them.
  struct ExtraSection {
    std::uint32_t type = 0;
    std::uint32_t flags = 0;
    std::vector<std::byte> content;
  };
  std::uint16_t format_minor = snapshot_format::kFormatMinor;  // 0 writes the 1.0 layout
  std::optional<std::uint64_t> created_unix_seconds;           // default: now
  std::uint64_t required_features = 0;
  std::uint64_t optional_features = 0;
  std::vector<ExtraSection> extra_sections;  // appended after the standard ones
};

// The bytes of a snapshot of `placement`. Throws Error(invalid_argument) on bad options (the
// message names the field: compression_level, loads[l][e], label).
[[nodiscard]] std::vector<std::byte> encode_snapshot(const Placement& placement,
                                                     const SnapshotWriteOptions& options);

// encode_snapshot, written to `path` atomically (write_file_atomically).
void save_snapshot(const Placement& placement, const SnapshotWriteOptions& options,
                   const std::string& path);

// A statistics snapshot: `tracker`'s statistics (section 7) and the provenance, no placement
// (the header's required feature kFeatureStatisticsOnly). options.loads and options.tracker
// must be unset (Error(invalid_argument)): the loads are the tracker's.
[[nodiscard]] std::vector<std::byte> encode_statistics_snapshot(
    const Tracker& tracker, const SnapshotWriteOptions& options);
void save_statistics_snapshot(const Tracker& tracker, const SnapshotWriteOptions& options,
                              const std::string& path);

// A loaded, fully validated snapshot. Immutable.
class Snapshot {
 public:
  // `source` names the data in messages ("snapshot buffer", a path).
  [[nodiscard]] static Snapshot decode(std::span<const std::byte> bytes, const std::string& source);
  [[nodiscard]] static Snapshot load(const std::string& path);

  // The header, the section table and the small sections only (shape, algorithm, metrics,
  // provenance): the placement and the statistics are neither read nor decoded.
  [[nodiscard]] static SnapshotInfo inspect(std::span<const std::byte> bytes,
                                            const std::string& source);
  [[nodiscard]] static SnapshotInfo inspect(const std::string& path);

  [[nodiscard]] const SnapshotInfo& info() const { return info_; }
  // Throws Error(invalid_argument) for a statistics snapshot (!info().has_placement).
  [[nodiscard]] const Placement& placement() const;
  // [layers][E]; empty when !info().has_loads.
  [[nodiscard]] std::span<const double> loads() const { return loads_; }
  // The stored co-activation statistics; nullptr when !info().has_coactivation.
  [[nodiscard]] const Tracker* tracker() const { return tracker_ ? &*tracker_ : nullptr; }

 private:
  Snapshot(SnapshotInfo info, std::optional<Placement> placement, std::vector<double> loads,
           std::optional<Tracker> tracker)
      : info_(std::move(info)),
        placement_(std::move(placement)),
        loads_(std::move(loads)),
        tracker_(std::move(tracker)) {}
  friend class SnapshotReader;

  SnapshotInfo info_;
  std::optional<Placement> placement_;
  std::vector<double> loads_;
  std::optional<Tracker> tracker_;
};

}  // namespace eplb
