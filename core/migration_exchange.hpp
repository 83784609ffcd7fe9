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
};

// A rank's expert weights: the bytes of (layer, local slot), bytes_per_expert long.
using SlotBytes =
    std::function<std::span<std::byte>(std::uint32_t layer, std::uint32_t local_slot)>;

// Runs one rank's part of a step. `staging` holds at least ops.staging_slots * bytes_per_expert
// bytes. Throws Error(invalid_argument) when a buffer is too small.
void run_migration_step(const RankStepOps& ops, const SlotBytes& slot, std::span<std::byte> staging,
                        std::size_t bytes_per_expert, MigrationTransport& transport);

}  // namespace eplb
