// check_cuda: turns a failed CUDA runtime call into Error(Errc::device) naming the call. For the
// .cpp/.cu files of kernels/ only (it includes the CUDA runtime's header).
#pragma once

#include <cuda_runtime_api.h>

#include "../core/error.hpp"

namespace eplb::kernels {

inline void check_cuda(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear the non-sticky error so the next call starts clean
  fail(Errc::device, what, " failed: ", cudaGetErrorName(status), ": ", cudaGetErrorString(status));
}

// Casts the C API's `void* stream` (NULL = the legacy default stream).
inline cudaStream_t as_stream(void* stream) noexcept { return static_cast<cudaStream_t>(stream); }

}  // namespace eplb::kernels
