// C shims of the NCCL token dispatch and combine (nccl/device_token_exchange.hpp). Options are
// checked before the communicator is touched, so bad options get the same status everywhere.
#include <cstdint>
#include <memory>
#include <utility>

#include "../../nccl/device_token_exchange.hpp"
#include "comm_handle.hpp"
#include "guard.hpp"
#include "struct_io.hpp"

struct eplb_token_exchange {
  explicit eplb_token_exchange(std::unique_ptr<eplb::nccl::DeviceTokenExchange> x)
      : value(std::move(x)) {}
  std::unique_ptr<eplb::nccl::DeviceTokenExchange> value;
};

namespace {

constexpr std::size_t kOptionsV1Size = sizeof(eplb_token_exchange_options);

eplb_token_exchange_options default_options() {
  eplb_token_exchange_options options{};
  options.struct_size = sizeof(options);
  options.out_dtype = EPLB_ROW_DTYPE_FLOAT32;
  return options;
}

// The shape the options describe, validated as far as a host can without the communicator
// (num_ranks 1 stands in for the group's size, which create() fills in).
eplb::nccl::TokenExchangeShape shape_of(const eplb_token_exchange_options* options) {
  const auto o = eplb::capi::read_struct(options, default_options(), kOptionsV1Size, "options");
  eplb::nccl::TokenExchangeShape shape;
  shape.num_ranks = 1;
  shape.slots_per_rank = o.slots_per_rank;
  shape.top_k = o.top_k;
  shape.row_bytes = o.row_bytes;
  shape.hidden = o.hidden;
  shape.out_dtype = static_cast<eplb::kernels::RowDtype>(o.out_dtype);
  shape.max_tokens = o.max_tokens;
  shape.capacity = o.capacity;
  shape.validate();
  return shape;
}

}  // namespace

extern "C" {

void eplb_token_exchange_options_init(eplb_token_exchange_options* options) {
  if (options != nullptr) *options = default_options();
}

eplb_status eplb_token_exchange_create(eplb_comm* comm, const eplb_token_exchange_options* options,
                                       eplb_token_exchange** out_exchange) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(options, "options");
    eplb::capi::require_not_null(out_exchange, "out_exchange");
    const eplb::nccl::TokenExchangeShape shape = shape_of(options);
    eplb::capi::require_not_null(comm, "comm");
    auto exchange = eplb::nccl::DeviceTokenExchange::create(*comm->value, shape);
    *out_exchange = std::make_unique<eplb_token_exchange>(std::move(exchange)).release();
  });
}

void eplb_token_exchange_destroy(eplb_token_exchange* exchange) {
  std::unique_ptr<eplb_token_exchange> owned(exchange);
}

eplb_status eplb_token_exchange_dispatch(eplb_token_exchange* exchange, size_t num_tokens,
                                         const int32_t* topk_slots, const float* topk_weights,
                                         const void* rows, void* recv_rows,
                                         int32_t* recv_local_slots, float* recv_weights,
                                         int32_t* recv_counts, uint64_t recv_capacity,
                                         int32_t* dropped, uint64_t* out_recv_rows, void* stream) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(exchange, "exchange");
    eplb::capi::require_not_null(out_recv_rows, "out_recv_rows");
    eplb::nccl::DispatchRequest request;
    request.num_tokens = num_tokens;
    request.topk_slots = topk_slots;
    request.topk_weights = topk_weights;
    request.rows = rows;
    request.recv_rows = recv_rows;
    request.recv_slots = recv_local_slots;
    request.recv_weights = recv_weights;
    request.recv_counts = recv_counts;
    request.recv_capacity = recv_capacity;
    request.dropped = dropped;
    *out_recv_rows = exchange->value->dispatch(request, stream);
  });
}

eplb_status eplb_token_exchange_combine(eplb_token_exchange* exchange, const void* expert_out,
                                        uint64_t expert_out_rows, void* out, void* stream) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(exchange, "exchange");
    exchange->value->combine(expert_out, expert_out_rows, out, stream);
  });
}

}  // extern "C"
