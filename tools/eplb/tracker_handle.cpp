#include "eplb/tracker_handle.hpp"

namespace eplb_cli {

TrackerPtr load_tracker_from_snapshot(const std::string& path, const std::string& option) {
  eplb_snapshot* snapshot = nullptr;
  const eplb_status status = eplb_snapshot_load(path.c_str(), &snapshot);
  if (status == EPLB_ERR_OUT_OF_MEMORY || status == EPLB_ERR_INTERNAL) check(status, "");
  if (status != EPLB_OK) {
    throw InputError(option + " " + path + ": " + eplb_last_error_message() + " [" +
                     eplb_status_string(status) + "]");
  }
  eplb_tracker* tracker = nullptr;
  const eplb_status got = eplb_snapshot_get_tracker(snapshot, &tracker);
  const std::string message = eplb_last_error_message();
  eplb_snapshot_destroy(snapshot);
  if (got == EPLB_ERR_INVALID_ARGUMENT) {
    throw InputError(option + " " + path + ": " + message +
                     "; write statistics with 'eplb record'");
  }
  check(got, option + " " + path + ": ");
  return TrackerPtr(tracker);
}

}  // namespace eplb_cli
