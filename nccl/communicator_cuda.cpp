// communicator.hpp over NCCL (loaded at run time, nccl_api.hpp) and the CUDA runtime.
#include <cuda_runtime_api.h>

#include <cstring>
#include <thread>
#include <utility>

#include "../kernels/cuda_check.hpp"
#include "../kernels/device.hpp"
#include "communicator.hpp"
#include "error.hpp"
#include "nccl_api.hpp"

namespace eplb::nccl {

namespace {

ncclDataType_t to_nccl(DataType type) {
  switch (type) {
    case DataType::int32:
      return ncclInt32;
    case DataType::int64:
      return ncclInt64;
    case DataType::uint64:
      return ncclUint64;
    case DataType::float32:
      return ncclFloat32;
    case DataType::float64:
      return ncclFloat64;
  }
  fail_invalid("unknown data type ", static_cast<std::uint32_t>(type));
}

ncclRedOp_t to_nccl(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return ncclSum;
    case ReduceOp::max:
      return ncclMax;
    case ReduceOp::min:
      return ncclMin;
  }
  fail_invalid("unknown reduction ", static_cast<std::uint32_t>(op));
}

std::size_t element_size(DataType type) {
  return type == DataType::int32 || type == DataType::float32 ? 4 : 8;
}

// Makes `device` current for a scope and restores the previous one (-1: leave it as it is).
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    if (device < 0) return;
    kernels::check_cuda(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) kernels::check_cuda(cudaSetDevice(device), "cudaSetDevice");
    active_ = previous_ != device;
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
  ~DeviceScope() {
    if (active_) static_cast<void>(cudaSetDevice(previous_));
  }

 private:
  int previous_ = -1;
  bool active_ = false;
};

}  // namespace

bool built_with_nccl() noexcept { return true; }

int version() { return api().version; }

UniqueId make_unique_id() {
  const NcclApi& nccl = api();
  ncclUniqueId id{};
  check(nccl, nccl.GetUniqueId(&id), "ncclGetUniqueId");
  UniqueId out{};
  static_assert(sizeof(id) == out.size());
  std::memcpy(out.data(), &id, out.size());
  return out;
}

struct Communicator::Impl {
  const NcclApi* nccl = nullptr;
  ncclComm_t comm = nullptr;
  bool owned = false;
  int device = -1;
  int rank = 0, size = 0;
  // Host all-reduces: a device buffer and a stream of our own, made on first use.
  void* staging = nullptr;
  std::size_t staging_bytes = 0;
  cudaStream_t stream = nullptr;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (staging != nullptr || stream != nullptr) {
      try {
        const DeviceScope scope(device);
        // Failures are cleared from the runtime's last-error slot, so that they are not blamed
        // on the caller's next launch (as kernels/routing.cu does).
        if (stream != nullptr && cudaStreamDestroy(stream) != cudaSuccess) {
          static_cast<void>(cudaGetLastError());
        }
        if (staging != nullptr && cudaFree(staging) != cudaSuccess) {
          static_cast<void>(cudaGetLastError());
        }
      } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor reports nothing
      }
    }
    if (owned && comm != nullptr) {
      // ncclCommDestroy waits for outstanding work and can hang on a communicator with an
      // asynchronous error (a dead peer); abort those. A healthy one is finalized first where
      // NCCL has ncclCommFinalize (2.14+; newer releases expect it before destroy), waiting
      // while a non-blocking communicator reports ncclInProgress; an error on the way aborts.
      const auto broken = [this] {
        ncclResult_t async = ncclSuccess;
        return nccl->CommGetAsyncError(comm, &async) != ncclSuccess ||
               (async != ncclSuccess && async != ncclInProgress);
      };
      const auto in_progress = [this] {
        ncclResult_t async = ncclSuccess;
        return nccl->CommGetAsyncError(comm, &async) == ncclSuccess && async == ncclInProgress;
      };
      bool abort = broken();
      if (!abort && nccl->CommFinalize != nullptr) {
        const ncclResult_t finalized = nccl->CommFinalize(comm);
        if (finalized == ncclInProgress) {
          while (in_progress()) std::this_thread::yield();
        }
        abort = (finalized != ncclSuccess && finalized != ncclInProgress) || broken();
      }
      static_cast<void>(abort ? nccl->CommAbort(comm) : nccl->CommDestroy(comm));
    }
  }

  // Throws Error(nccl) when NCCL reports an asynchronous error on the communicator (or when it
  // was aborted after one).
  void check_async() const { static_cast<void>(async_state()); }

  // The communicator's asynchronous state: ncclSuccess or ncclInProgress; throws Error(nccl) on
  // an error.
  ncclResult_t async_state() const {
    if (comm == nullptr) {
      fail(Errc::nccl,
           "the communicator was aborted after an asynchronous error (a peer failed); destroy it");
    }
    ncclResult_t async = ncclSuccess;
    check(*nccl, nccl->CommGetAsyncError(comm, &async), "ncclCommGetAsyncError");
    if (async != ncclSuccess && async != ncclInProgress) {
      check(*nccl, async, "the communicator (asynchronous error; destroy it)");
    }
    return async;
  }

  // After a call returned ncclInProgress (a non-blocking communicator): waits, yielding, until
  // NCCL has enqueued the operation, so that stream order holds again. Throws Error(nccl) on an
  // asynchronous error.
  void wait_enqueued() const {
    while (async_state() == ncclInProgress) std::this_thread::yield();
  }

  void query_shape() {
    check(*nccl, nccl->CommUserRank(comm, &rank), "ncclCommUserRank");
    check(*nccl, nccl->CommCount(comm, &size), "ncclCommCount");
  }

  void allreduce_host(void* data, std::size_t count, DataType type, ReduceOp op) {
    if (count == 0) return;
    check_async();
    const std::size_t bytes = count * element_size(type);
    const DeviceScope scope(device);
    if (stream == nullptr) {
      kernels::check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
                          "cudaStreamCreateWithFlags");
    }
    if (staging_bytes < bytes) {
      if (staging != nullptr) kernels::check_cuda(cudaFree(staging), "cudaFree");
      staging = nullptr;
      staging_bytes = 0;
      kernels::check_cuda(cudaMalloc(&staging, bytes), "cudaMalloc of the staging buffer");
      staging_bytes = bytes;
    }
    kernels::check_cuda(cudaMemcpyAsync(staging, data, bytes, cudaMemcpyHostToDevice, stream),
                        "cudaMemcpyAsync to the staging buffer");
    if (check_enqueue(
            *nccl,
            nccl->AllReduce(staging, staging, count, to_nccl(type), to_nccl(op), comm, stream),
            "ncclAllReduce")) {
      try {
        wait_enqueued();  // the copy back must follow the all-reduce on the stream
      } catch (...) {
        abort_owned();
        throw;
      }
    }
    // Poll for the all-reduce first: a copy into pageable host memory returns only when it is
    // done, so issued behind an all-reduce whose peer died it would block forever instead of
    // reporting the communicator's error.
    wait_stream();
    kernels::check_cuda(cudaMemcpyAsync(data, staging, bytes, cudaMemcpyDeviceToHost, stream),
                        "cudaMemcpyAsync from the staging buffer");
    wait_stream();
    check_async();
  }

  // After an asynchronous error in a host all-reduce: aborts a communicator we own, so that its
  // kernels exit and the staging buffer and stream can be released (later calls then fail with
  // Error(nccl)); an adopted communicator is left to its owner.
  void abort_owned() {
    if (owned && comm != nullptr) {
      static_cast<void>(nccl->CommAbort(comm));
      comm = nullptr;
    }
  }

  // Waits for `stream` without blocking in cudaStreamSynchronize, which never returns if a peer
  // dies: polls the stream and the communicator's asynchronous error, yielding in between. On an
  // error, aborts a communicator we own (its kernels then exit and the stream drains; the
  // communicator is unusable afterwards) and throws Error(nccl). An adopted communicator belongs
  // to the caller, who must abort it (ncclCommAbort) after the error.
  void wait_stream() { wait_stream(stream); }
  void wait_stream(cudaStream_t waited) {
    for (;;) {
      const cudaError_t status = cudaStreamQuery(waited);
      if (status == cudaSuccess) return;
      if (status != cudaErrorNotReady) kernels::check_cuda(status, "cudaStreamQuery");
      ncclResult_t async = ncclSuccess;
      const ncclResult_t queried = nccl->CommGetAsyncError(comm, &async);
      const ncclResult_t error = queried != ncclSuccess ? queried : async;
      if (error != ncclSuccess && error != ncclInProgress) {
        abort_owned();
        check(*nccl, error,
              "waiting for the stream (asynchronous error; the communicator is aborted "
              "if libeplb created it; destroy it)");
      }
      std::this_thread::yield();
    }
  }
};

namespace {

// MigrationTransport over one NCCL communicator and stream.
class NcclTransport final : public MigrationTransport {
 public:
  NcclTransport(const Communicator::Impl& comm, cudaStream_t stream)
      : comm_(comm), stream_(stream) {}
  NcclTransport(const NcclTransport&) = delete;
  NcclTransport& operator=(const NcclTransport&) = delete;
  ~NcclTransport() override {
    // An exception between ncclGroupStart and ncclGroupEnd: close the group so this thread's
    // later NCCL calls are not swallowed by it (what was posted is launched; the peers post the
    // same step).
    if (in_group_) static_cast<void>(comm_.nccl->GroupEnd());
  }

  void send(std::uint32_t peer, std::span<const std::byte> data) override {
    begin();
    // ncclInProgress (non-blocking communicator) passes: wait() waits for the whole group.
    static_cast<void>(check_enqueue(*comm_.nccl,
                                    comm_.nccl->Send(data.data(), data.size(), ncclUint8,
                                                     static_cast<int>(peer), comm_.comm, stream_),
                                    "ncclSend"));
  }
  void recv(std::uint32_t peer, std::span<std::byte> data) override {
    begin();
    static_cast<void>(check_enqueue(*comm_.nccl,
                                    comm_.nccl->Recv(data.data(), data.size(), ncclUint8,
                                                     static_cast<int>(peer), comm_.comm, stream_),
                                    "ncclRecv"));
  }
  void wait() override {
    if (!in_group_) return;
    in_group_ = false;
    // Non-blocking communicator: the group's operations must be on the stream before the copies
    // and the caller's later work are enqueued behind them.
    if (check_enqueue(*comm_.nccl, comm_.nccl->GroupEnd(), "ncclGroupEnd")) comm_.wait_enqueued();
  }
  void copy(std::span<std::byte> to, std::span<const std::byte> from) override {
    EPLB_ASSERT(!in_group_ && to.size() == from.size());
    // Default: the addresses were checked to be device-accessible, which includes managed and
    // mapped pinned host memory, for which DeviceToDevice would be the wrong kind.
    kernels::check_cuda(
        cudaMemcpyAsync(to.data(), from.data(), from.size(), cudaMemcpyDefault, stream_),
        "cudaMemcpyAsync (slot to slot)");
  }

 private:
  void begin() {
    if (in_group_) return;
    check(*comm_.nccl, comm_.nccl->GroupStart(), "ncclGroupStart");
    in_group_ = true;
  }

  const Communicator::Impl& comm_;
  cudaStream_t stream_;
  bool in_group_ = false;
};

}  // namespace

Communicator::Communicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Communicator::~Communicator() = default;

std::unique_ptr<Communicator> Communicator::create(const UniqueId& id, int num_ranks, int rank,
                                                   int device) {
  if (num_ranks <= 0) fail_invalid("nranks (", num_ranks, ") must be positive");
  if (rank < 0 || rank >= num_ranks) {
    fail_invalid("rank (", rank, ") must be in [0, nranks) = [0, ", num_ranks, ")");
  }
  if (device < -1) fail_invalid("device (", device, ") must be -1 (current) or a device index");
  const NcclApi& nccl = api();
  const int devices = kernels::device_count();
  if (device >= devices) {
    fail_invalid("device (", device, ") is not below the number of CUDA devices (", devices, ")");
  }
  auto impl = std::make_unique<Impl>();
  impl->nccl = &nccl;
  const DeviceScope scope(device);
  kernels::check_cuda(cudaGetDevice(&impl->device), "cudaGetDevice");
  ncclUniqueId nccl_id{};
  std::memcpy(&nccl_id, id.data(), sizeof(nccl_id));
  ncclComm_t comm = nullptr;
  const ncclResult_t init = nccl.CommInitRank(&comm, num_ranks, nccl_id, rank);
  // NCCL_COMM_BLOCKING=0 makes initialisation non-blocking: ncclInProgress, and the communicator
  // is ours (released by ~Impl on any failure below) once NCCL has written it.
  if (init != ncclInProgress) check(nccl, init, "ncclCommInitRank");
  impl->comm = comm;
  impl->owned = true;
  if (init == ncclInProgress) impl->wait_enqueued();  // until initialised, or its error
  impl->query_shape();
  return std::unique_ptr<Communicator>(new Communicator(std::move(impl)));
}

std::unique_ptr<Communicator> Communicator::adopt(void* nccl_comm) {
  if (nccl_comm == nullptr) fail_invalid("nccl_comm is NULL");
  const NcclApi& nccl = api();
  kernels::require_device();
  auto impl = std::make_unique<Impl>();
  impl->nccl = &nccl;
  impl->comm = static_cast<ncclComm_t>(nccl_comm);
  impl->owned = false;
  // The communicator's own device (not the thread's current one, which may differ): the host
  // all-reduces allocate their staging buffer and stream there.
  check(nccl, nccl.CommCuDevice(impl->comm, &impl->device), "ncclCommCuDevice");
  impl->query_shape();
  return std::unique_ptr<Communicator>(new Communicator(std::move(impl)));
}

int Communicator::rank() const { return impl_->rank; }
int Communicator::size() const { return impl_->size; }
int Communicator::device() const { return impl_->device; }

void Communicator::synchronize(void* stream) {
  impl_->check_async();
  impl_->wait_stream(kernels::as_stream(stream));
}

void Communicator::require_device_pointer(const void* pointer, const char* name) {
  kernels::require_device();
  kernels::require_device_pointer(pointer, name);
}

void Communicator::allreduce(void* data, std::size_t count, DataType type, ReduceOp op,
                             void* stream) {
  if (count == 0) return;
  require_device_pointer(data, "data");
  kernels::require_current_device(impl_->device, "the communicator's buffers");
  impl_->check_async();
  // Non-blocking communicator: return once the all-reduce is on the stream, so that the caller's
  // later work on it is ordered after it.
  if (check_enqueue(*impl_->nccl,
                    impl_->nccl->AllReduce(data, data, count, to_nccl(type), to_nccl(op),
                                           impl_->comm, stream),
                    "ncclAllReduce")) {
    impl_->wait_enqueued();
  }
}

void Communicator::allreduce_host(std::span<std::uint64_t> data, ReduceOp op) {
  impl_->allreduce_host(data.data(), data.size(), DataType::uint64, op);
}

void Communicator::allreduce_host(std::span<double> data, ReduceOp op) {
  impl_->allreduce_host(data.data(), data.size(), DataType::float64, op);
}

std::unique_ptr<MigrationTransport> Communicator::transport(void* stream) {
  impl_->check_async();
  return std::make_unique<NcclTransport>(*impl_, kernels::as_stream(stream));
}

}  // namespace eplb::nccl
