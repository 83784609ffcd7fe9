// device.hpp for a build without CUDA: every GPU entry point reports EPLB_ERR_NO_DEVICE.
#include "device.hpp"

#include "../core/error.hpp"

namespace eplb::kernels {

bool built_with_cuda() noexcept { return false; }

int device_count() {
  fail(Errc::no_device, "no CUDA device: this libeplb was built without CUDA (EPLB_WITH_CUDA=OFF)");
}

void require_device() { static_cast<void>(device_count()); }

void require_device_pointer(const void* /*pointer*/, const char* /*name*/) { require_device(); }

void require_current_device(int /*device*/, const char* /*name*/) { require_device(); }

void check_launch(const char* /*what*/) { require_device(); }

}  // namespace eplb::kernels
