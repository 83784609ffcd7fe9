// eplb_status_string and the thread-local last-error message.
#include <string>

#include "guard.hpp"

namespace eplb::capi {

namespace {
thread_local std::string last_error;  // NOLINT: per-thread by design, see eplb.h
}

void clear_last_error() noexcept { last_error.clear(); }

void set_last_error(const char* message) noexcept {
  try {
    last_error = message;
  } catch (...) {
    last_error.clear();  // cannot allocate: leave the status as the only signal
  }
}

eplb_status status_of(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_argument:
      return EPLB_ERR_INVALID_ARGUMENT;
    case Errc::out_of_memory:
      return EPLB_ERR_OUT_OF_MEMORY;
    case Errc::buffer_too_small:
      return EPLB_ERR_BUFFER_TOO_SMALL;
    case Errc::internal:
      return EPLB_ERR_INTERNAL;
    case Errc::io:
      return EPLB_ERR_IO;
    case Errc::corrupt:
      return EPLB_ERR_CORRUPT;
    case Errc::truncated:
      return EPLB_ERR_TRUNCATED;
    case Errc::unsupported_version:
      return EPLB_ERR_UNSUPPORTED_VERSION;
    case Errc::no_device:
      return EPLB_ERR_NO_DEVICE;
    case Errc::device:
      return EPLB_ERR_DEVICE;
    case Errc::no_nccl:
      return EPLB_ERR_NO_NCCL;
    case Errc::nccl:
      return EPLB_ERR_NCCL;
    case Errc::cancelled:
      return EPLB_ERR_CANCELLED;
  }
  return EPLB_ERR_INTERNAL;
}

}  // namespace eplb::capi

extern "C" {

const char* eplb_status_string(eplb_status status) {
  switch (status) {
    case EPLB_OK:
      return "ok";
    case EPLB_ERR_INVALID_ARGUMENT:
      return "invalid argument";
    case EPLB_ERR_OUT_OF_MEMORY:
      return "out of memory";
    case EPLB_ERR_BUFFER_TOO_SMALL:
      return "buffer too small";
    case EPLB_ERR_INTERNAL:
      return "internal error";
    case EPLB_ERR_IO:
      return "input/output error";
    case EPLB_ERR_CORRUPT:
      return "corrupt data";
    case EPLB_ERR_TRUNCATED:
      return "truncated data";
    case EPLB_ERR_UNSUPPORTED_VERSION:
      return "unsupported version";
    case EPLB_ERR_NO_DEVICE:
      return "no CUDA device";
    case EPLB_ERR_DEVICE:
      return "CUDA error";
    case EPLB_ERR_NO_NCCL:
      return "NCCL not available";
    case EPLB_ERR_NCCL:
      return "NCCL error";
    case EPLB_ERR_CANCELLED:
      return "cancelled";
  }
  return "unknown status";
}

const char* eplb_last_error_message(void) { return eplb::capi::last_error.c_str(); }

}  // extern "C"
