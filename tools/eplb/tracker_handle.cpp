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
  eplb_snapshot* snapshot = nullptr;
  std::string error;
  const eplb_status status = load_snapshot_bytes(bytes, &snapshot, error);
  if (status == EPLB_ERR_OUT_OF_MEMORY || status == EPLB_ERR_INTERNAL) check(status, "");
  if (status != EPLB_OK) {
    throw InputError(option + " " + path + ": " + error + " [" + eplb_status_string(status) + "]");
  }
  eplb_tracker* tracker = nullptr;
  const eplb_status got = eplb_snapshot_get_tracker(snapshot, &tracker);
  eplb_snapshot_destroy(snapshot);
  if (got == EPLB_ERR_INVALID_ARGUMENT) {
    throw InputError(option + " " + path +
                     ": the snapshot holds a placement but no co-activation statistics; write "
                     "statistics with 'eplb record'");
  }
  check(got, option + " " + path + ": ");
  return TrackerPtr(tracker);
}

}  // namespace eplb_cli
