#include "migration_exchange.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "error.hpp"

namespace eplb {

RankStepOps rank_step_ops(const MigrationPlan& plan, std::uint32_t step, std::uint32_t rank) {
  const Topology& topology = plan.topology();
  if (rank >= topology.num_gpus) {
    fail_invalid("rank (", rank, ") is out of range: the placement has ", topology.num_gpus,
                 " GPUs");
  }
  const std::uint32_t per_gpu = topology.slots_per_gpu();
  RankStepOps ops;
  for (const Transfer& t : plan.step_transfers(step)) {
    const std::uint32_t src = topology.gpu_of_slot(t.src_slot);
    const std::uint32_t dst = topology.gpu_of_slot(t.dst_slot);
    if (dst == rank) {
      const std::uint32_t staging = ops.staging_slots++;
      if (src == rank) {
        ops.copies.push_back({t.layer, t.src_slot % per_gpu, staging});
      } else {
        ops.recvs.push_back({src, staging});
      }
      ops.commits.push_back({staging, t.layer, t.dst_slot % per_gpu});
    } else if (src == rank) {
      ops.sends.push_back({dst, t.layer, t.src_slot % per_gpu});
    }
  }
  return ops;
}

void MigrationTransport::copy(std::span<std::byte> to, std::span<const std::byte> from) {
  EPLB_ASSERT(to.size() == from.size());
  if (!from.empty()) std::memcpy(to.data(), from.data(), from.size());
}

std::size_t ExpertTensors::expert_bytes() const {
  std::size_t total = 0;
  for (const std::size_t bytes : tensor_bytes) {
    if (bytes > std::numeric_limits<std::size_t>::max() - total) {
      fail_invalid("the tensor sizes of an expert overflow size_t");
    }
    total += bytes;
  }
  return total;
}

void run_migration_step(const RankStepOps& ops, const ExpertTensors& weights,
                        std::span<std::byte> staging, MigrationTransport& transport) {
  if (weights.tensor_bytes.empty()) fail_invalid("an expert has no weight tensors");
  for (std::size_t t = 0; t < weights.tensor_bytes.size(); ++t) {
    if (weights.tensor_bytes[t] == 0) fail_invalid("tensor_bytes[", t, "] is 0");
  }
  const std::size_t expert_bytes = weights.expert_bytes();
  if (ops.staging_slots > 0 &&
      expert_bytes > std::numeric_limits<std::size_t>::max() / ops.staging_slots) {
    fail_invalid("staging for ", ops.staging_slots, " experts of ", expert_bytes,
                 " bytes overflows size_t");
  }
  const std::size_t need = std::size_t{ops.staging_slots} * expert_bytes;
  if (staging.size() < need) {
    fail_invalid("staging holds ", staging.size(), " bytes but the step needs ", need, " (",
                 ops.staging_slots, " experts of ", expert_bytes, " bytes)");
  }
  const auto num_tensors = static_cast<std::uint32_t>(weights.tensor_bytes.size());
  const auto tensor = [&](std::uint32_t layer, std::uint32_t local_slot, std::uint32_t t) {
    std::byte* address = weights.address(layer, local_slot, t);
    if (address == nullptr) {
      fail_invalid("the address of tensor ", t, " of layer ", layer, " slot ", local_slot,
                   " is NULL");
    }
    return std::span(address, weights.tensor_bytes[t]);
  };
  // Tensor t of staging slot `index`.
  const auto staged = [&](std::uint32_t index, std::uint32_t t) {
    std::size_t offset = std::size_t{index} * expert_bytes;
    for (std::uint32_t before = 0; before < t; ++before) offset += weights.tensor_bytes[before];
    return staging.subspan(offset, weights.tensor_bytes[t]);
  };
  // Resolve every address before posting anything, so a bad one fails before any transfer
  // (a half-posted NCCL group would leave the peers waiting).
  for (const auto& copy : ops.copies) {
    for (std::uint32_t t = 0; t < num_tensors; ++t) (void)tensor(copy.layer, copy.local_slot, t);
  }
  for (const auto& send : ops.sends) {
    for (std::uint32_t t = 0; t < num_tensors; ++t) (void)tensor(send.layer, send.local_slot, t);
  }
  for (const auto& commit : ops.commits) {
    for (std::uint32_t t = 0; t < num_tensors; ++t) {
      (void)tensor(commit.layer, commit.local_slot, t);
    }
  }
  for (const auto& copy : ops.copies) {
    for (std::uint32_t t = 0; t < num_tensors; ++t) {
      transport.copy(staged(copy.staging, t), tensor(copy.layer, copy.local_slot, t));
    }
  }
  for (const auto& send : ops.sends) {
    for (std::uint32_t t = 0; t < num_tensors; ++t) {
      transport.send(send.peer, tensor(send.layer, send.local_slot, t));
    }
  }
  for (const auto& recv : ops.recvs) {
    for (std::uint32_t t = 0; t < num_tensors; ++t) {
      transport.recv(recv.peer, staged(recv.staging, t));
    }
  }
  transport.wait();
  for (const auto& commit : ops.commits) {
    for (std::uint32_t t = 0; t < num_tensors; ++t) {
      transport.copy(tensor(commit.layer, commit.local_slot, t), staged(commit.staging, t));
    }
  }
}

void run_migration_step(const RankStepOps& ops, const SlotBytes& slot, std::span<std::byte> staging,
                        std::size_t bytes_per_expert, MigrationTransport& transport) {
  if (bytes_per_expert == 0) fail_invalid("bytes_per_expert is 0");
  const std::size_t sizes[] = {bytes_per_expert};
  ExpertTensors weights;
  weights.tensor_bytes = sizes;
  weights.address = [&](std::uint32_t layer, std::uint32_t local_slot, std::uint32_t) {
    const auto bytes = slot(layer, local_slot);
    if (bytes.size() < bytes_per_expert) {
      fail_invalid("layer ", layer, " slot ", local_slot, " holds ", bytes.size(),
                   " bytes, fewer than bytes_per_expert (", bytes_per_expert, ")");
    }
    return bytes.data();
  };
  run_migration_step(ops, weights, staging, transport);
}

}  // namespace eplb
