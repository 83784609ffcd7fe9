// The CUDA device as the rest of libeplb sees it, through a CUDA-free interface: whether the
// build has CUDA, whether this machine has a usable GPU, and checks on caller-provided device
// pointers. Everything throws eplb::Error (Errc::no_device, Errc::device, Errc::invalid_argument)
// so that the C API shims report a status and a message. Built from device_cuda.cpp when
// EPLB_WITH_CUDA is on and from device_none.cpp otherwise.
#pragma once

#include <cstddef>

namespace eplb::kernels {

// True when this libeplb was built with the CUDA kernels.
[[nodiscard]] bool built_with_cuda() noexcept;

// Number of CUDA devices visible to the process (> 0). Throws Error(Errc::no_device) naming the
// reason: built without CUDA, no driver, or no device. The answer of the first successful call is
// kept, so the check costs an atomic load on the hot path.
int device_count();

// Throws Error(Errc::no_device) unless device_count() would succeed.
void require_device();

// Throws Error(Errc::invalid_argument) "<name> is NULL" for a null pointer, and "<name> (0x..) is
// host memory, not device memory" for pageable host memory that a kernel cannot read, and for
// device memory of another device than the calling thread's current one (naming both). Device
// memory of the current device, managed and pinned (mapped) host memory pass. Call it only after
// require_device().
void require_device_pointer(const void* pointer, const char* name);

// Throws Error(Errc::invalid_argument) naming `name` and both devices unless `device` is the
// CUDA device current on the calling thread (where kernels are launched). Call it only after
// require_device() (or with an object that only exists where there is a device).
void require_current_device(int device, const char* name);

// Throws Error(Errc::device) with CUDA's message when a launch just made on the calling thread
// failed (cudaGetLastError), naming `what` (e.g. "record_load kernel").
void check_launch(const char* what);

}  // namespace eplb::kernels
