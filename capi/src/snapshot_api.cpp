// The snapshot section of eplb.h: .eplb files and buffers over eplb::Snapshot.
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>

#include "buffers.hpp"
#include "guard.hpp"
#include "handles.hpp"
#include "struct_io.hpp"

namespace {

// The first published eplb_snapshot_options ended before `tracker` (format 1.2).
constexpr std::size_t kOptionsV1Size = offsetof(eplb_snapshot_options, tracker);
constexpr std::size_t kInfoV1Size = sizeof(eplb_snapshot_info);
constexpr const char* kBufferName = "snapshot buffer";

eplb_snapshot_options default_options() {
  eplb_snapshot_options options{};
  options.struct_size = sizeof(options);
  options.compression_level = 3;
  return options;
}

// The caller's options (NULL = defaults) as the core's; the spans view the caller's memory,
// which outlives the call.
eplb::SnapshotWriteOptions read_options(const eplb_snapshot_options* in) {
  const eplb_snapshot_options options =
      in == nullptr ? default_options()
                    : eplb::capi::read_struct(in, default_options(), kOptionsV1Size, "options");
  eplb::SnapshotWriteOptions result;
  if (options.compression_level < 1 || options.compression_level > 19) {
    eplb::fail_invalid("options->compression_level (", options.compression_level,
                       ") must be in 1..19");
  }
  result.compression_level = static_cast<int>(options.compression_level);
  if (options.loads == nullptr && options.loads_len != 0) {
    eplb::fail_invalid("options->loads is NULL but options->loads_len is ", options.loads_len);
  }
  if (options.loads != nullptr) {
    result.loads = std::span<const double>(options.loads, options.loads_len);
  }
  if (options.label != nullptr) {
    const std::size_t length = ::strnlen(options.label, eplb::snapshot_format::kMaxLabelBytes + 1);
    if (length > eplb::snapshot_format::kMaxLabelBytes) {
      eplb::fail_invalid("options->label is longer than ", eplb::snapshot_format::kMaxLabelBytes,
                         " bytes");
    }
    result.label.assign(options.label, length);
  }
  if (options.tracker != nullptr) result.tracker = &options.tracker->value;
  return result;
}

// Options of a statistics snapshot: the options' loads and tracker must be unset (named in the
// message as the caller's fields).
eplb::SnapshotWriteOptions read_statistics_options(const eplb_snapshot_options* in) {
  eplb::SnapshotWriteOptions result = read_options(in);
  if (result.loads) {
    eplb::fail_invalid("options->loads must be NULL for a statistics snapshot (it stores the ",
                       "tracker's loads)");
  }
  if (result.tracker != nullptr) {
    eplb::fail_invalid("options->tracker must be NULL for a statistics snapshot (the tracker is ",
                       "the first argument)");
  }
  return result;
}

// Checked before any work (eplb_snapshot_inspect reads the file): the bounds write_struct
// enforces when the info is written.
void require_info_size(const eplb_snapshot_info* out_info) {
  eplb::capi::require_not_null(out_info, "out_info");
  eplb::capi::check_size_bounds(out_info->struct_size, kInfoV1Size, "out_info",
                                "set it to sizeof before the call");
}

template <std::size_t N>
void copy_text(char (&out)[N], const std::string& text) {
  const std::size_t length = std::min(text.size(), N - 1);
  std::memcpy(out, text.data(), length);
  out[length] = '\0';
}

void write_info(const eplb::SnapshotInfo& in, eplb_snapshot_info* out_info) {
  eplb_snapshot_info info{};
  info.struct_size = sizeof(info);
  info.format_major = in.format_major;
  info.format_minor = in.format_minor;
  info.num_layers = in.topology.num_layers;
  info.num_logical_experts = in.topology.num_logical;
  info.num_physical_experts = in.topology.num_physical;
  info.num_nodes = in.topology.num_nodes;
  info.num_gpus = in.topology.num_gpus;
  info.num_groups = in.topology.num_groups;
  info.algorithm = in.provenance.algorithm;
  info.has_loads = in.has_loads ? 1 : 0;
  info.has_coactivation = in.has_coactivation ? 1 : 0;
  info.created_unix_seconds = in.created_unix_seconds;
  info.file_size = in.file_size;
  info.plan_seconds = in.provenance.plan_seconds;
  info.balancedness = in.metrics ? in.metrics->balancedness : -1.0;
  copy_text(info.library_version, in.library_version);
  copy_text(info.label, in.label);
  eplb::capi::write_struct(out_info, info, kInfoV1Size, "out_info");
}

}  // namespace

extern "C" {

void eplb_snapshot_options_init(eplb_snapshot_options* options) {
  if (options != nullptr) *options = default_options();
}

eplb_status eplb_snapshot_save(const eplb_placement* placement,
                               const eplb_snapshot_options* options, const char* path) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    eplb::capi::require_not_null(path, "path");
    eplb::save_snapshot(placement->value, read_options(options), path);
  });
}

eplb_status eplb_snapshot_save_to_buffer(const eplb_placement* placement,
                                         const eplb_snapshot_options* options, void** out_buffer,
                                         size_t* out_size) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(placement, "placement");
    eplb::capi::require_not_null(out_buffer, "out_buffer");
    eplb::capi::require_not_null(out_size, "out_size");
    const std::vector<std::byte> bytes =
        eplb::encode_snapshot(placement->value, read_options(options));
    *out_buffer = eplb::capi::copy_to_malloc(std::span<const std::byte>(bytes));
    *out_size = bytes.size();
  });
}

void eplb_buffer_free(void* buffer) { std::free(buffer); }  // NOLINT(cppcoreguidelines-no-malloc)

eplb_status eplb_snapshot_load(const char* path, eplb_snapshot** out_snapshot) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(path, "path");
    eplb::capi::require_not_null(out_snapshot, "out_snapshot");
    *out_snapshot = std::make_unique<eplb_snapshot>(eplb::Snapshot::load(path)).release();
  });
}

eplb_status eplb_snapshot_load_from_buffer(const void* data, size_t size,
                                           eplb_snapshot** out_snapshot) {
  return eplb::capi::guard([&] {
    // No byte is read from an empty buffer, so (NULL, 0) is an empty (truncated) snapshot.
    if (size != 0) eplb::capi::require_not_null(data, "data");
    eplb::capi::require_not_null(out_snapshot, "out_snapshot");
    const std::span<const std::byte> bytes(static_cast<const std::byte*>(data), size);
    *out_snapshot =
        std::make_unique<eplb_snapshot>(eplb::Snapshot::decode(bytes, kBufferName)).release();
  });
}

eplb_status eplb_snapshot_inspect(const char* path, eplb_snapshot_info* out_info) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(path, "path");
    require_info_size(out_info);
    write_info(eplb::Snapshot::inspect(std::string(path)), out_info);
  });
}

eplb_status eplb_snapshot_get_info(const eplb_snapshot* snapshot, eplb_snapshot_info* out_info) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(snapshot, "snapshot");
    require_info_size(out_info);
    write_info(snapshot->value.info(), out_info);
  });
}

eplb_status eplb_snapshot_get_placement(const eplb_snapshot* snapshot,
                                        eplb_placement** out_placement) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(snapshot, "snapshot");
    eplb::capi::require_not_null(out_placement, "out_placement");
    *out_placement = std::make_unique<eplb_placement>(snapshot->value.placement()).release();
  });
}

eplb_status eplb_snapshot_get_loads(const eplb_snapshot* snapshot, double* out, size_t out_len) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(snapshot, "snapshot");
    eplb::capi::require_not_null(out, "out");
    const auto loads = snapshot->value.loads();
    if (!snapshot->value.info().has_loads) {
      eplb::fail_invalid("the snapshot holds no load statistics (info.has_loads == 0)");
    }
    if (out_len < loads.size()) {
      eplb::fail(eplb::Errc::buffer_too_small, "loads needs ", loads.size(),
                 " elements but out_len is ", out_len);
    }
    std::copy(loads.begin(), loads.end(), out);
  });
}

void eplb_snapshot_destroy(eplb_snapshot* snapshot) { delete snapshot; }  // NOLINT

eplb_status eplb_snapshot_save_statistics(const eplb_tracker* tracker,
                                          const eplb_snapshot_options* options, const char* path) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(tracker, "tracker");
    eplb::capi::require_not_null(path, "path");
    eplb::save_statistics_snapshot(tracker->value, read_statistics_options(options), path);
  });
}

eplb_status eplb_snapshot_save_statistics_to_buffer(const eplb_tracker* tracker,
                                                    const eplb_snapshot_options* options,
                                                    void** out_buffer, size_t* out_size) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(tracker, "tracker");
    eplb::capi::require_not_null(out_buffer, "out_buffer");
    eplb::capi::require_not_null(out_size, "out_size");
    const std::vector<std::byte> bytes =
        eplb::encode_statistics_snapshot(tracker->value, read_statistics_options(options));
    *out_buffer = eplb::capi::copy_to_malloc(std::span<const std::byte>(bytes));
    *out_size = bytes.size();
  });
}

eplb_status eplb_snapshot_get_tracker(const eplb_snapshot* snapshot, eplb_tracker** out_tracker) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(snapshot, "snapshot");
    eplb::capi::require_not_null(out_tracker, "out_tracker");
    const eplb::Tracker* tracker = snapshot->value.tracker();
    if (tracker == nullptr) {
      eplb::fail_invalid(
          "the snapshot holds no co-activation statistics (info.has_coactivation == 0)");
    }
    *out_tracker = std::make_unique<eplb_tracker>(*tracker).release();
  });
}

}  // extern "C"
