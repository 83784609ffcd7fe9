// communicator.hpp for a build without NCCL support (EPLB_WITH_NCCL or EPLB_WITH_CUDA off):
// every entry point that would need NCCL throws Error(Errc::no_nccl). No Communicator can exist,
// so its members are unreachable.
#include "../kernels/device.hpp"
#include "communicator.hpp"
#include "device_token_exchange.hpp"
#include "error.hpp"

namespace eplb::nccl {

namespace {
[[noreturn]] void no_nccl() {
  fail(Errc::no_nccl,
       "this libeplb was built without NCCL support (EPLB_WITH_NCCL=OFF or EPLB_WITH_CUDA=OFF)");
}
}  // namespace

struct Communicator::Impl {};

bool built_with_nccl() noexcept { return false; }
int version() { no_nccl(); }
UniqueId make_unique_id() { no_nccl(); }

Communicator::Communicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Communicator::~Communicator() = default;
std::unique_ptr<Communicator> Communicator::create(const UniqueId&, int, int, int) { no_nccl(); }
std::unique_ptr<Communicator> Communicator::adopt(void*) { no_nccl(); }
int Communicator::rank() const { no_nccl(); }
int Communicator::size() const { no_nccl(); }
int Communicator::device() const { no_nccl(); }
void Communicator::synchronize(void*) { no_nccl(); }
void Communicator::allreduce(void*, std::size_t, DataType, ReduceOp, void*) { no_nccl(); }
void Communicator::allreduce_host(std::span<std::uint64_t>, ReduceOp) { no_nccl(); }
void Communicator::allreduce_host(std::span<double>, ReduceOp) { no_nccl(); }
std::unique_ptr<MigrationTransport> Communicator::transport(void*) { no_nccl(); }
void Communicator::require_device_pointer(const void* pointer, const char* name) {
  kernels::require_device_pointer(pointer, name);
}

// device_token_exchange.hpp: unreachable too (it needs a Communicator).
struct DeviceTokenExchange::Impl {};
DeviceTokenExchange::DeviceTokenExchange(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceTokenExchange::~DeviceTokenExchange() = default;
std::unique_ptr<DeviceTokenExchange> DeviceTokenExchange::create(Communicator&,
                                                                 const TokenExchangeShape&) {
  no_nccl();
}
std::uint64_t DeviceTokenExchange::dispatch(const DispatchRequest&, void*) { no_nccl(); }
void DeviceTokenExchange::combine(const void*, std::uint64_t, void*, void*) { no_nccl(); }
const TokenExchangeShape& DeviceTokenExchange::shape() const { no_nccl(); }

}  // namespace eplb::nccl
