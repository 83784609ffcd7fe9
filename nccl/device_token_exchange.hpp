// The token exchange (token_exchange.hpp) on a communicator's GPU: its buffers in one device
// allocation, its steps as kernel launches and grouped ncclSend/ncclRecv on the caller's stream.
// Built from device_token_exchange.cpp with NCCL and CUDA; communicator_none.cpp otherwise.
#pragma once

#include <cstdint>
#include <memory>

#include "communicator.hpp"
#include "token_exchange.hpp"

namespace eplb::nccl {

class DeviceTokenExchange {
 public:
  // `shape` without num_ranks and rank, which come from `comm`. Collective: checks that every
  // rank passed the same shape (max_tokens aside), then allocates the buffers on the
  // communicator's device, which must be the calling thread's current device. `comm` must
  // outlive the exchange.
  static std::unique_ptr<DeviceTokenExchange> create(Communicator& comm,
                                                     const TokenExchangeShape& shape);
  DeviceTokenExchange(const DeviceTokenExchange&) = delete;
  DeviceTokenExchange& operator=(const DeviceTokenExchange&) = delete;
  ~DeviceTokenExchange();

  // TokenExchange::dispatch / combine on `stream`, with the request's arrays in device memory.
  std::uint64_t dispatch(const DispatchRequest& request, void* stream);
  void combine(const void* expert_out, std::uint64_t expert_out_rows, void* out, void* stream);
  [[nodiscard]] const TokenExchangeShape& shape() const;

  struct Impl;

 private:
  explicit DeviceTokenExchange(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace eplb::nccl
