#include "eplb/tracker_handle.hpp"

#include "eplb/input_file.hpp"

namespace eplb_cli {

TrackerPtr load_tracker_from_snapshot(const std::string& path, const std::string& option) {
  const std::string bytes = read_input(path, option + ": ");
  if (!starts_like_snapshot(bytes)) {
    throw InputError(option + " " + path +
                     " is not an .eplb snapshot (plan from a JSON load file with --counts; "
                     "write statistics with 'eplb record')");
  }
  eplb_snapshot_info info{};
  const SnapshotPtr snapshot = decode_snapshot(option + " " + path, bytes, info);
  eplb_tracker* tracker = nullptr;
  const eplb_status got = eplb_snapshot_get_tracker(snapshot.get(), &tracker);
  if (got == EPLB_ERR_INVALID_ARGUMENT) {
    throw InputError(option + " " + path +
                     ": the snapshot holds a placement but no co-activation statistics; write "
                     "statistics with 'eplb record'");
  }
  check(got, option + " " + path + ": ");
  return TrackerPtr(tracker);
}

}  // namespace eplb_cli
