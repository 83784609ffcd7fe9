// device.hpp over the CUDA runtime (linked statically, so libeplb.so has no NEEDED entry on
// libcudart; the runtime opens libcuda.so.1 itself when first used and reports a missing driver as
// an error, which becomes EPLB_ERR_NO_DEVICE).
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>

#include "../core/error.hpp"
#include "cuda_check.hpp"
#include "device.hpp"

namespace eplb::kernels {

namespace {
std::atomic<int> known_device_count{0};  // 0 = not yet discovered (or discovery failed)

int current_device() {
  int device = -1;
  const cudaError_t status = cudaGetDevice(&device);
  if (status != cudaSuccess) {
    cudaGetLastError();
    fail(Errc::no_device, "no CUDA device: cudaGetDevice failed: ", cudaGetErrorString(status));
  }
  return device;
}
}  // namespace

bool built_with_cuda() noexcept { return true; }

int device_count() {
  const int known = known_device_count.load(std::memory_order_acquire);
  if (known > 0) return known;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // discovery errors are sticky in the runtime's last-error slot
    // "Insufficient driver" is also what a machine without a driver gets: tell an old driver
    // (it reports a CUDA version) from none.
    int driver = 0;
    if (status == cudaErrorInsufficientDriver && cudaDriverGetVersion(&driver) == cudaSuccess &&
        driver > 0 && driver < CUDART_VERSION) {
      fail(Errc::no_device, "no usable CUDA device: the NVIDIA driver supports CUDA ",
           driver / 1000, ".", driver % 1000 / 10, ", libeplb's CUDA runtime needs ",
           CUDART_VERSION / 1000, ".", CUDART_VERSION % 1000 / 10, " (update the driver)");
    }
    fail(Errc::no_device, "no CUDA device: cudaGetDeviceCount failed: ", cudaGetErrorString(status),
         " (no NVIDIA driver or GPU on this machine?)");
  }
  if (count <= 0) fail(Errc::no_device, "no CUDA device: the driver reports 0 GPUs");
  known_device_count.store(count, std::memory_order_release);
  return count;
}

void require_device() { static_cast<void>(device_count()); }

namespace {

// Puts the calling thread in relaxed stream-capture mode while it lives. The pointer checks run
// while the caller may be capturing a CUDA graph (in global or thread-local mode, where a call
// CUDA deems unsafe fails and invalidates the capture). cudaPointerGetAttributes is a pure query
// and should be legal there; relaxed mode makes sure a driver that thinks otherwise cannot break
// the caller's capture.
class RelaxedCaptureScope {
 public:
  RelaxedCaptureScope() { cudaThreadExchangeStreamCaptureMode(&mode_); }
  RelaxedCaptureScope(const RelaxedCaptureScope&) = delete;
  RelaxedCaptureScope& operator=(const RelaxedCaptureScope&) = delete;
  ~RelaxedCaptureScope() { cudaThreadExchangeStreamCaptureMode(&mode_); }

 private:
  cudaStreamCaptureMode mode_ = cudaStreamCaptureModeRelaxed;
};

}  // namespace

void require_device_pointer(const void* pointer, const char* name) {
  if (pointer == nullptr) fail_invalid(name, " is NULL");
  cudaPointerAttributes attributes{};
  cudaError_t status = cudaSuccess;
  {
    const RelaxedCaptureScope relaxed;
    status = cudaPointerGetAttributes(&attributes, pointer);
  }
  if (status != cudaSuccess) {
    cudaGetLastError();
    fail_invalid(name, " (", pointer,
                 ") is not a pointer CUDA knows: ", cudaGetErrorString(status));
  }
  if (attributes.type == cudaMemoryTypeUnregistered ||
      (attributes.type == cudaMemoryTypeHost && attributes.devicePointer == nullptr)) {
    fail_invalid(name, " (", pointer, ") is host memory, not device memory");
  }
  if (attributes.type == cudaMemoryTypeDevice) {
    const int current = current_device();
    if (attributes.device != current) {
      fail_invalid(name, " (", pointer, ") is memory of CUDA device ", attributes.device,
                   ", not of the calling thread's current device ", current);
    }
  }
}

void require_current_device(int device, const char* name) {
  const int current = current_device();
  if (device != current) {
    fail_invalid(name, " live on CUDA device ", device,
                 ", not on the calling thread's current device ", current, " (call cudaSetDevice(",
                 device, ") first)");
  }
}

void check_launch(const char* what) { check_cuda(cudaGetLastError(), what); }

}  // namespace eplb::kernels
