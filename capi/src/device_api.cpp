// C API: the CUDA device (eplb_device_count).
#include "../../kernels/device.hpp"
#include "guard.hpp"

extern "C" {

eplb_status eplb_device_count(int32_t* out_count) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(out_count, "out_count");
    *out_count = static_cast<int32_t>(eplb::kernels::device_count());
  });
}

}  // extern "C"
