// nccl/nccl_api.hpp declares NCCL's types itself so that building needs no nccl.h; where nccl.h
// is present, check that the declarations match its ABI.
#include <gtest/gtest.h>

#include "nccl_api.hpp"

#if defined(__has_include)
#if __has_include(<nccl.h>)
#include <nccl.h>
#define EPLB_TEST_HAVE_NCCL_H 1
#endif
#endif

namespace {

#ifdef EPLB_TEST_HAVE_NCCL_H
namespace ours = eplb::nccl;
static_assert(sizeof(ours::ncclUniqueId) == sizeof(::ncclUniqueId));
static_assert(ours::kUniqueIdBytes == NCCL_UNIQUE_ID_BYTES);
static_assert(sizeof(ours::ncclResult_t) == sizeof(::ncclResult_t));
static_assert(sizeof(ours::ncclDataType_t) == sizeof(::ncclDataType_t));
static_assert(sizeof(ours::ncclRedOp_t) == sizeof(::ncclRedOp_t));
static_assert(static_cast<int>(ours::ncclSuccess) == ::ncclSuccess);
static_assert(static_cast<int>(ours::ncclUnhandledCudaError) == ::ncclUnhandledCudaError);
static_assert(static_cast<int>(ours::ncclSystemError) == ::ncclSystemError);
static_assert(static_cast<int>(ours::ncclInternalError) == ::ncclInternalError);
static_assert(static_cast<int>(ours::ncclInvalidArgument) == ::ncclInvalidArgument);
static_assert(static_cast<int>(ours::ncclInvalidUsage) == ::ncclInvalidUsage);
static_assert(static_cast<int>(ours::ncclRemoteError) == ::ncclRemoteError);
static_assert(static_cast<int>(ours::ncclInProgress) == ::ncclInProgress);
static_assert(static_cast<int>(ours::ncclSum) == ::ncclSum);
static_assert(static_cast<int>(ours::ncclProd) == ::ncclProd);
static_assert(static_cast<int>(ours::ncclMax) == ::ncclMax);
static_assert(static_cast<int>(ours::ncclMin) == ::ncclMin);
static_assert(static_cast<int>(ours::ncclAvg) == ::ncclAvg);
static_assert(static_cast<int>(ours::ncclInt8) == ::ncclInt8);
static_assert(static_cast<int>(ours::ncclUint8) == ::ncclUint8);
static_assert(static_cast<int>(ours::ncclInt32) == ::ncclInt32);
static_assert(static_cast<int>(ours::ncclUint32) == ::ncclUint32);
static_assert(static_cast<int>(ours::ncclInt64) == ::ncclInt64);
static_assert(static_cast<int>(ours::ncclUint64) == ::ncclUint64);
static_assert(static_cast<int>(ours::ncclFloat16) == ::ncclFloat16);
static_assert(static_cast<int>(ours::ncclFloat32) == ::ncclFloat32);
static_assert(static_cast<int>(ours::ncclFloat64) == ::ncclFloat64);
static_assert(static_cast<int>(ours::ncclBfloat16) == ::ncclBfloat16);
#endif

TEST(NcclTypes, MatchNcclHeaderWhenPresent) {
#ifdef EPLB_TEST_HAVE_NCCL_H
  SUCCEED() << "checked at compile time against nccl.h " << NCCL_MAJOR << "." << NCCL_MINOR;
#else
  GTEST_SKIP() << "nccl.h not found at build time: the declarations were not checked";
#endif
}

}  // namespace
