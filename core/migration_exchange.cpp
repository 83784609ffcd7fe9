#include "migration_exchange.hpp"

#include <algorithm>
#include <cstring>

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

void run_migration_step(const RankStepOps& ops, const SlotBytes& slot, std::span<std::byte> staging,
                        std::size_t bytes_per_expert, MigrationTransport& transport) {
  const std::size_t need = std::size_t{ops.staging_slots} * bytes_per_expert;
  if (staging.size() < need) {
    fail_invalid("staging holds ", staging.size(), " bytes but the step needs ", need, " (",
                 ops.staging_slots, " experts of ", bytes_per_expert, " bytes)");
  }
  const auto checked = [&](std::uint32_t layer, std::uint32_t local_slot) {
    const auto bytes = slot(layer, local_slot);
    if (bytes.size() < bytes_per_expert) {
      fail_invalid("layer ", layer, " slot ", local_slot, " holds ", bytes.size(),
                   " bytes, fewer than bytes_per_expert (", bytes_per_expert, ")");
    }
    return bytes.first(bytes_per_expert);
  };
  const auto staged = [&](std::uint32_t index) {
    return staging.subspan(std::size_t{index} * bytes_per_expert, bytes_per_expert);
  };
  for (const auto& copy : ops.copies) {
    const auto source = checked(copy.layer, copy.local_slot);
    std::memcpy(staged(copy.staging).data(), source.data(), bytes_per_expert);
  }
  for (const auto& send : ops.sends) {
    transport.send(send.peer, checked(send.layer, send.local_slot));
  }
  for (const auto& recv : ops.recvs) transport.recv(recv.peer, staged(recv.staging));
  transport.wait();
  for (const auto& commit : ops.commits) {
    const auto target = checked(commit.layer, commit.local_slot);
    std::memcpy(target.data(), staged(commit.staging).data(), bytes_per_expert);
  }
}

}  // namespace eplb
