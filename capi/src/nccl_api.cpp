// C shims of the NCCL communicator, the statistics all-reduces and the migration executor
// (nccl/communicator.hpp). Every argument a host can check is checked before NCCL is loaded or a
// device is touched, so a bad call gets the same status on every machine.
#include <cstddef>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "../../nccl/communicator.hpp"
#include "comm_handle.hpp"
#include "guard.hpp"
#include "handles.hpp"

namespace {

static_assert(EPLB_COMM_UNIQUE_ID_BYTES == eplb::nccl::kUniqueIdSize);

constexpr std::uint32_t kNumDataTypes = 5;
constexpr std::uint32_t kNumReduceOps = 3;
static_assert(EPLB_COMM_FLOAT64 == kNumDataTypes - 1 && EPLB_COMM_MIN == kNumReduceOps - 1);

}  // namespace

extern "C" {

eplb_status eplb_nccl_version(int32_t* out_version) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(out_version, "out_version");
    *out_version = eplb::nccl::version();
  });
}

eplb_status eplb_comm_get_unique_id(void* out_id, size_t out_len) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(out_id, "out_id");
    if (out_len < EPLB_COMM_UNIQUE_ID_BYTES) {
      eplb::fail(eplb::Errc::buffer_too_small, "a unique id needs ", EPLB_COMM_UNIQUE_ID_BYTES,
                 " bytes but out_len is ", out_len);
    }
    const auto id = eplb::nccl::make_unique_id();
    std::memcpy(out_id, id.data(), id.size());
  });
}

eplb_status eplb_comm_create(const void* unique_id, size_t unique_id_len, int32_t nranks,
                             int32_t rank, int32_t device, eplb_comm** out_comm) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(unique_id, "unique_id");
    eplb::capi::require_not_null(out_comm, "out_comm");
    if (unique_id_len != EPLB_COMM_UNIQUE_ID_BYTES) {
      eplb::fail_invalid("unique_id_len (", unique_id_len, ") must be ", EPLB_COMM_UNIQUE_ID_BYTES);
    }
    if (nranks <= 0) eplb::fail_invalid("nranks (", nranks, ") must be positive");
    if (rank < 0 || rank >= nranks) {
      eplb::fail_invalid("rank (", rank, ") must be in [0, nranks) = [0, ", nranks, ")");
    }
    if (device < -1) eplb::fail_invalid("device (", device, ") must be -1 or a device index");
    eplb::nccl::UniqueId id{};
    std::memcpy(id.data(), unique_id, id.size());
    auto comm = eplb::nccl::Communicator::create(id, nranks, rank, device);
    *out_comm = std::make_unique<eplb_comm>(std::move(comm)).release();
  });
}

eplb_status eplb_comm_adopt(void* nccl_comm, eplb_comm** out_comm) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(nccl_comm, "nccl_comm");
    eplb::capi::require_not_null(out_comm, "out_comm");
    auto comm = eplb::nccl::Communicator::adopt(nccl_comm);
    *out_comm = std::make_unique<eplb_comm>(std::move(comm)).release();
  });
}

void eplb_comm_destroy(eplb_comm* comm) { delete comm; }  // NOLINT

eplb_status eplb_comm_get_rank(const eplb_comm* comm, int32_t* out_rank) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(comm, "comm");
    eplb::capi::require_not_null(out_rank, "out_rank");
    *out_rank = comm->value->rank();
  });
}

eplb_status eplb_comm_get_size(const eplb_comm* comm, int32_t* out_size) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(comm, "comm");
    eplb::capi::require_not_null(out_size, "out_size");
    *out_size = comm->value->size();
  });
}

eplb_status eplb_comm_allreduce_tracker(eplb_comm* comm, const eplb_tracker* local,
                                        eplb_tracker* out_sum) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(local, "local");
    eplb::capi::require_not_null(out_sum, "out_sum");
    eplb::nccl::check_tracker_pair(local->value, out_sum->value);
    eplb::capi::require_not_null(comm, "comm");
    eplb::nccl::allreduce_tracker(*comm->value, local->value, out_sum->value);
  });
}

eplb_status eplb_comm_allreduce(eplb_comm* comm, void* data, size_t count, uint32_t dtype,
                                uint32_t op, void* stream) {
  return eplb::capi::guard([&] {
    if (dtype >= kNumDataTypes) {
      eplb::fail_invalid("dtype (", dtype, ") is not an eplb_comm_dtype (0..", kNumDataTypes - 1,
                         ")");
    }
    if (op >= kNumReduceOps) {
      eplb::fail_invalid("op (", op, ") is not an eplb_comm_op (0..", kNumReduceOps - 1, ")");
    }
    if (data == nullptr && count > 0) eplb::fail_invalid("data is NULL but count is ", count);
    eplb::capi::require_not_null(comm, "comm");
    comm->value->allreduce(data, count, static_cast<eplb::nccl::DataType>(dtype),
                           static_cast<eplb::nccl::ReduceOp>(op), stream);
  });
}

eplb_status eplb_migration_execute_step(const eplb_migration* migration, eplb_comm* comm,
                                        uint32_t step, void* const* slot_tensors,
                                        size_t slot_tensors_len, const uint64_t* tensor_bytes,
                                        uint32_t num_tensors, void* staging, uint64_t staging_bytes,
                                        void* stream) {
  return eplb::capi::guard([&] {
    eplb::capi::require_not_null(migration, "migration");
    const eplb::MigrationPlan& plan = migration->value;
    if (step >= plan.summary().num_steps) {
      eplb::fail_invalid("step (", step, ") is out of range: the migration has ",
                         plan.summary().num_steps, " steps");
    }
    eplb::capi::require_not_null(tensor_bytes, "tensor_bytes");
    if (num_tensors == 0) eplb::fail_invalid("num_tensors is 0");
    std::vector<std::size_t> sizes(num_tensors);
    std::size_t expert_bytes = 0;
    for (std::uint32_t t = 0; t < num_tensors; ++t) {
      if (tensor_bytes[t] == 0) eplb::fail_invalid("tensor_bytes[", t, "] is 0");
      if (tensor_bytes[t] > std::numeric_limits<std::size_t>::max() - expert_bytes) {
        eplb::fail_invalid("the tensor sizes of an expert overflow size_t");
      }
      sizes[t] = static_cast<std::size_t>(tensor_bytes[t]);
      expert_bytes += sizes[t];
    }
    eplb::capi::require_not_null(slot_tensors, "slot_tensors");
    const auto& topology = plan.topology();
    const std::size_t per_gpu = topology.slots_per_gpu();
    const std::size_t expected = std::size_t{topology.num_layers} * per_gpu * num_tensors;
    if (slot_tensors_len != expected) {
      eplb::fail_invalid("slot_tensors_len (", slot_tensors_len, ") must be num_layers (",
                         topology.num_layers, ") * slots_per_gpu (", per_gpu, ") * num_tensors (",
                         num_tensors, ") = ", expected);
    }
    if (staging == nullptr && staging_bytes > 0) {
      eplb::fail_invalid("staging is NULL but staging_bytes is ", staging_bytes);
    }
    eplb::capi::require_not_null(comm, "comm");
    eplb::ExpertTensors weights;
    weights.tensor_bytes = sizes;
    weights.address = [&](std::uint32_t layer, std::uint32_t local_slot, std::uint32_t t) {
      void* address = slot_tensors[(std::size_t{layer} * per_gpu + local_slot) * num_tensors + t];
      return static_cast<std::byte*>(address);
    };
    const std::span<std::byte> staging_span(static_cast<std::byte*>(staging),
                                            static_cast<std::size_t>(staging_bytes));
    eplb::nccl::execute_migration_step(*comm->value, plan, step, weights, staging_span, stream);
  });
}

}  // extern "C"
