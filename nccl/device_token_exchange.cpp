// device_token_exchange.hpp over the CUDA runtime, the kernels of kernels/token_exchange.hpp and
// the communicator's NCCL transport.
#include "device_token_exchange.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "../kernels/cuda_check.hpp"
#include "../kernels/device.hpp"
#include "error.hpp"

namespace eplb::nccl {

namespace {

// The steps as launches on one stream; read() waits through the communicator (polling its
// asynchronous error, so a dead peer cannot hang it).
class StreamDevice final : public TokenExchangeDevice {
 public:
  StreamDevice(Communicator& comm, cudaStream_t stream, std::int32_t* pinned)
      : comm_(comm), stream_(stream), pinned_(pinned) {}
  void layout(const kernels::LayoutArgs& args) override {
    kernels::launch_dispatch_layout(args, stream_);
  }
  void pack(const kernels::TokenPackArgs& args) override {
    kernels::launch_token_pack(args, stream_);
  }
  void recv_counts(const kernels::RecvCountsArgs& args) override {
    kernels::launch_recv_counts(args, stream_);
  }
  void combine(const kernels::TokenCombineArgs& args) override {
    kernels::launch_token_combine(args, stream_);
  }
  void read(std::span<std::int32_t> to, const std::int32_t* from) override {
    kernels::check_cuda(
        cudaMemcpyAsync(pinned_, from, to.size_bytes(), cudaMemcpyDeviceToHost, stream_),
        "cudaMemcpyAsync of the count matrix");
    comm_.synchronize(stream_);
    std::copy_n(pinned_, to.size(), to.begin());
  }
  void require_memory(const void* pointer, const char* name) override {
    kernels::require_device_pointer(pointer, name);
  }

 private:
  Communicator& comm_;
  cudaStream_t stream_;
  std::int32_t* pinned_;
};

// Fields that must agree across ranks (max_tokens may differ: it sizes only local buffers).
std::vector<std::uint64_t> shared_fields(const TokenExchangeShape& s) {
  return {s.slots_per_rank, s.top_k, s.row_bytes, s.hidden, static_cast<std::uint64_t>(s.out_dtype),
          s.capacity};
}

constexpr const char* kSharedFieldNames[] = {"slots_per_rank", "top_k",     "row_bytes",
                                             "hidden",         "out_dtype", "capacity"};

}  // namespace

struct DeviceTokenExchange::Impl {
  Communicator* comm = nullptr;
  TokenExchangeShape shape;
  void* memory = nullptr;          // every buffer of the exchange (device)
  std::int32_t* pinned = nullptr;  // the count matrix on the host (exact variant)
  std::unique_ptr<TokenExchange> exchange;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    // A failed free is cleared from the runtime's last-error slot, so that it is not blamed on
    // the caller's next launch (as kernels/routing.cu does).
    if (memory != nullptr && cudaFree(memory) != cudaSuccess) {
      static_cast<void>(cudaGetLastError());
    }
    if (pinned != nullptr && cudaFreeHost(pinned) != cudaSuccess) {
      static_cast<void>(cudaGetLastError());
    }
  }

  // The buffers, zeroed once (so a padded slab's unused rows never carry stale or uninitialised
  // bytes to a peer), and for the exact variant the pinned count matrix.
  void allocate(std::size_t bytes) {
    const cudaError_t allocated = cudaMalloc(&memory, bytes);
    if (allocated != cudaSuccess) {
      memory = nullptr;
      if (allocated == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        fail(Errc::out_of_memory, "cudaMalloc of the token exchange's ", bytes,
             " bytes of buffers failed (lower max_tokens or capacity)");
      }
      kernels::check_cuda(allocated, "cudaMalloc of the token exchange's buffers");
    }
    kernels::check_cuda(cudaMemset(memory, 0, bytes), "cudaMemset of the token exchange's buffers");
    if (shape.capacity > 0) return;
    const std::size_t matrix =
        sizeof(std::int32_t) * shape.num_ranks * (shape.num_ranks + std::size_t{1});
    const cudaError_t pinned_status = cudaMallocHost(reinterpret_cast<void**>(&pinned), matrix);
    if (pinned_status != cudaSuccess) {
      pinned = nullptr;
      cudaGetLastError();
      fail(Errc::out_of_memory, "cudaMallocHost of the ", matrix, "-byte count matrix failed");
    }
  }

  void require_current() const {
    kernels::require_current_device(comm->device(), "the communicator's buffers");
  }
};

DeviceTokenExchange::DeviceTokenExchange(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceTokenExchange::~DeviceTokenExchange() = default;

std::unique_ptr<DeviceTokenExchange> DeviceTokenExchange::create(Communicator& comm,
                                                                 const TokenExchangeShape& shape) {
  TokenExchangeShape s = shape;
  s.num_ranks = static_cast<std::uint32_t>(comm.size());
  s.rank = static_cast<std::uint32_t>(comm.rank());
  kernels::require_device();  // a communicator exists, so this holds on every rank

  // Every rank takes part in both all-reduces below whatever happens locally, so that a rank
  // whose options, device or allocation fail cannot leave the others waiting: the failure is
  // shared, and every rank throws.
  std::size_t bytes = 0;
  std::optional<Error> local;
  try {
    s.validate();
    bytes = TokenExchangeBuffers::bytes(s);
    kernels::require_current_device(comm.device(), "the communicator's buffers");
  } catch (const Error& e) {
    local = e;
  }
  // Every rank must describe the same exchange, or the messages would not match: one MAX
  // all-reduce of a failure flag, the fields and their complements (whose maximum is the
  // fields' minimum).
  const std::vector<std::uint64_t> mine = shared_fields(s);
  std::vector<std::uint64_t> extremes{local ? 1U : 0U};
  for (const std::uint64_t v : mine) extremes.push_back(v);
  for (const std::uint64_t v : mine) extremes.push_back(~v);
  comm.allreduce_host(extremes, ReduceOp::max);
  if (local) throw *local;
  if (extremes[0] != 0) {
    fail_invalid(
        "another rank's token exchange options or device were rejected (its call says "
        "why); no exchange was made");
  }
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const std::uint64_t high = extremes[1 + i], low = ~extremes[1 + mine.size() + i];
    if (high != low) {
      fail_invalid("the token exchange's ", kSharedFieldNames[i], " differs across ranks (from ",
                   low, " to ", high, "; this rank has ", mine[i], ")");
    }
  }

  auto impl = std::make_unique<Impl>();
  impl->comm = &comm;
  impl->shape = s;
  try {
    impl->allocate(bytes);
  } catch (const Error& e) {
    local = e;
  }
  std::vector<std::uint64_t> failed{local ? 1U : 0U};
  comm.allreduce_host(failed, ReduceOp::max);
  if (local) throw *local;
  if (failed[0] != 0) {
    fail(Errc::out_of_memory,
         "another rank could not allocate its token exchange buffers (its call says why)");
  }
  impl->exchange = std::make_unique<TokenExchange>(s, TokenExchangeBuffers::carve(s, impl->memory));
  return std::unique_ptr<DeviceTokenExchange>(new DeviceTokenExchange(std::move(impl)));
}

std::uint64_t DeviceTokenExchange::dispatch(const DispatchRequest& request, void* stream) {
  impl_->require_current();
  StreamDevice device(*impl_->comm, kernels::as_stream(stream), impl_->pinned);
  const auto transport = impl_->comm->transport(stream);
  return impl_->exchange->dispatch(request, device, *transport);
}

void DeviceTokenExchange::combine(const void* expert_out, std::uint64_t expert_out_rows, void* out,
                                  void* stream) {
  impl_->require_current();
  StreamDevice device(*impl_->comm, kernels::as_stream(stream), impl_->pinned);
  const auto transport = impl_->comm->transport(stream);
  impl_->exchange->combine(expert_out, expert_out_rows, out, device, *transport);
}

const TokenExchangeShape& DeviceTokenExchange::shape() const { return impl_->shape; }

}  // namespace eplb::nccl
