// NCCL as libeplb sees it: the few NCCL 2.x types it uses, declared here with NCCL's ABI values
// so that building needs no nccl.h (tests static_assert them against nccl.h where present), and
// the table of entry points resolved from libnccl.so.2 at run time with dlopen/dlsym. libeplb.so
// has no NEEDED entry on libnccl: it loads where NCCL is absent, and the communicator functions
// then report Errc::no_nccl with dlerror's message.
#pragma once

#include <cstddef>
#include <string>

namespace eplb::nccl {

// NCCL's own names and values (nccl.h, NCCL 2.x), kept so a reader can match them to nccl.h.
// NOLINTBEGIN(readability-identifier-naming)
inline constexpr std::size_t kUniqueIdBytes = 128;  // NCCL_UNIQUE_ID_BYTES
struct ncclUniqueId {
  char internal[kUniqueIdBytes];
};
struct ncclComm;
using ncclComm_t = ncclComm*;
// Opaque to libeplb: a CUDA stream is passed through as cudaStream_t = CUstream_st*.
using ncclStream_t = void*;

enum ncclResult_t : int {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7,
};
enum ncclRedOp_t : int { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 };
enum ncclDataType_t : int {
  ncclInt8 = 0,
  ncclUint8 = 1,
  ncclInt32 = 2,
  ncclUint32 = 3,
  ncclInt64 = 4,
  ncclUint64 = 5,
  ncclFloat16 = 6,
  ncclFloat32 = 7,
  ncclFloat64 = 8,
  ncclBfloat16 = 9,
};
// NOLINTEND(readability-identifier-naming)

// The entry points libeplb uses, resolved from one loaded libnccl. Stream arguments are
// cudaStream_t passed as void* (the same pointer type at the ABI level).
struct NcclApi {
  std::string path;  // what was passed to dlopen
  int version = 0;   // ncclGetVersion's code (e.g. 22805 for 2.28.5)
  ncclResult_t (*GetVersion)(int*) = nullptr;
  const char* (*GetErrorString)(ncclResult_t) = nullptr;
  ncclResult_t (*GetUniqueId)(ncclUniqueId*) = nullptr;
  ncclResult_t (*CommInitRank)(ncclComm_t*, int, ncclUniqueId, int) = nullptr;
  ncclResult_t (*CommDestroy)(ncclComm_t) = nullptr;
  ncclResult_t (*CommAbort)(ncclComm_t) = nullptr;
  // NCCL 2.14 and later (null before): flushes a communicator's work before ncclCommDestroy,
  // which newer releases expect to have been called.
  ncclResult_t (*CommFinalize)(ncclComm_t) = nullptr;
  ncclResult_t (*CommCount)(ncclComm_t, int*) = nullptr;
  ncclResult_t (*CommUserRank)(ncclComm_t, int*) = nullptr;
  ncclResult_t (*CommCuDevice)(ncclComm_t, int*) = nullptr;
  ncclResult_t (*CommGetAsyncError)(ncclComm_t, ncclResult_t*) = nullptr;
  ncclResult_t (*AllReduce)(const void*, void*, std::size_t, ncclDataType_t, ncclRedOp_t,
                            ncclComm_t, ncclStream_t) = nullptr;
  ncclResult_t (*Send)(const void*, std::size_t, ncclDataType_t, int, ncclComm_t,
                       ncclStream_t) = nullptr;
  ncclResult_t (*Recv)(void*, std::size_t, ncclDataType_t, int, ncclComm_t, ncclStream_t) = nullptr;
  ncclResult_t (*GroupStart)() = nullptr;
  ncclResult_t (*GroupEnd)() = nullptr;
};

// The library path to load: $EPLB_NCCL_LIBRARY when set and not empty, else "libnccl.so.2" (the
// dynamic loader's search; a libnccl.so.2 already loaded in the process, e.g. by PyTorch, is
// the one returned, which is what adopting a caller's communicator needs).
[[nodiscard]] std::string library_path();

// The NCCL of library_path(), loaded on first use. Every call re-reads library_path(): a path
// that failed to load is tried again next time, and a path that loaded stays loaded (never
// dlclose'd) and is reused. Throws Error(Errc::no_nccl) naming the path and dlerror's message
// (or the missing symbol). Thread-safe.
[[nodiscard]] const NcclApi& api();

// Throws Error(Errc::nccl) "<what> failed: <NCCL's error string> (ncclResult_t N)" unless ok.
void check(const NcclApi& nccl, ncclResult_t result, const char* what);

// As check() for the calls that enqueue work (AllReduce, Send, Recv, GroupEnd), but also passes
// ncclInProgress: a non-blocking communicator (one adopted from the caller) is still enqueueing
// the operation in the background. Returns true then; the caller must wait until
// ncclCommGetAsyncError stops reporting ncclInProgress before it relies on the operation being on
// the stream (stream order, a synchronisation, the next call on the communicator).
[[nodiscard]] bool check_enqueue(const NcclApi& nccl, ncclResult_t result, const char* what);

}  // namespace eplb::nccl
