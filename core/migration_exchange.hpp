// One rank's part of a migration step, and the step logic every transport shares (the NCCL
// executor and the in-process CPU transport): copy same-GPU sources to staging, post sends of the
// pre-step weights, receive into staging, wait, then commit staging into the destination slots.
// Reading every source before committing any destination is what lets a step contain cycles
// (two experts trading GPUs) and slots that are both a source and a destination.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "migration_plan.hpp"

namespace eplb {

struct RankStepOps {
  struct Send {
    std::uint32_t peer = 0, layer = 0, local_slot = 0;
  };
  struct Recv {
    std::uint32_t peer = 0, staging = 0;
  };
  struct Copy {  // a source on the same GPU
    std::uint32_t layer = 0, local_slot = 0, staging = 0;
  };
  struct Commit {
    std::uint32_t staging = 0, layer = 0, local_slot = 0;
  };
  std::vector<Send> sends;  // in transfer order, so each peer's sends and receives pair in order
  std::vector<Recv> recvs;
  std::vector<Copy> copies;
  std::vector<Commit> commits;
  std::uint32_t staging_slots = 0;  // experts this rank stages in the step
};

// The operations of `rank` (a GPU of the plan's topology) in `step`. Throws Error
// (invalid_argument) for a step or rank out of range.
[[nodiscard]] RankStepOps rank_step_ops(const MigrationPlan& plan, std::uint32_t step,
                                        std::uint32_t rank);

// Point-to-point byte transport between ranks. Messages between one pair of ranks are matched in
// the order they were posted (NCCL's rule).
class MigrationTransport {
 public:
  virtual ~MigrationTransport() = default;
  // Posts a send; `data` must stay unchanged until wait() returns.
  virtual void send(std::uint32_t peer, std::span<const std::byte> data) = 0;
  // Posts a receive of exactly data.size() bytes; complete after wait().
  virtual void recv(std::uint32_t peer, std::span<std::byte> data) = 0;
  // Completes everything posted since the last wait().
  virtual void wait() = 0;
  // Copies within this rank's memory (same-GPU sources into staging, staging into slots), in
  // order with the posted transfers: a copy issued before a send or after wait() sees their
  // effects. The CPU transport copies at once; the NCCL one enqueues on its stream.
  virtual void copy(std::span<std::byte> to, std::span<const std::byte> from);
};

// A rank's expert weights as one or more tensors per expert (e.g. w13, w2 and their scales):
// tensor t of every expert is tensor_bytes[t] long, and address(layer, local_slot, t) is where
// it lives for that slot of this rank. Addresses are only passed to the transport, never
// dereferenced by the step logic, so they may be device pointers. A staged expert is its
// tensors back to back: tensor t at offset sum(tensor_bytes[0..t)) of its staging slot.
struct ExpertTensors {
  std::span<const std::size_t> tensor_bytes;
  std::function<std::byte*(std::uint32_t layer, std::uint32_t local_slot, std::uint32_t tensor)>
      address;
  [[nodiscard]] std::size_t expert_bytes() const;  // the sum of tensor_bytes
};

// Runs one rank's part of a step: the sequence of transport calls every transport follows
// (copies of same-GPU sources into staging; for each tensor of each send and receive, in
// schedule order, send() / recv(); wait(); copies of staging into the destination slots).
// `staging` spans at least ops.staging_slots * weights.expert_bytes() bytes (it too is only
// passed to the transport). Throws Error(invalid_argument) when staging is too small, a tensor
// size is 0 or there are no tensors, or an address is NULL.
void run_migration_step(const RankStepOps& ops, const ExpertTensors& weights,
                        std::span<std::byte> staging, MigrationTransport& transport);

// A rank's expert weights as one tensor: the bytes of (layer, local slot), at least
// bytes_per_expert long.
using SlotBytes =
    std::function<std::span<std::byte>(std::uint32_t layer, std::uint32_t local_slot)>;

// run_migration_step with one tensor of bytes_per_expert per expert. Throws
// Error(invalid_argument) also when a slot holds fewer than bytes_per_expert bytes.
void run_migration_step(const RankStepOps& ops, const SlotBytes& slot, std::span<std::byte> staging,
                        std::size_t bytes_per_expert, MigrationTransport& transport);

}  // namespace eplb
