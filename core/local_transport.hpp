// An in-process transport for migration steps: one rank per thread, messages copied through
// per-pair mailboxes. It runs the same step logic as the NCCL executor (run_migration_step), so
// CPU tests check a schedule's data movement byte for byte without a GPU. Like an NCCL group, it
// does nothing until wait(): a send's data is read then (so changing it before wait() shows),
// and a receive's buffer is written then (so reading it before wait() shows).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "migration_exchange.hpp"

namespace eplb {

class LocalTransportHub {
 public:
  explicit LocalTransportHub(std::uint32_t num_ranks);
  // The transport of `rank`; one thread uses an endpoint at a time. Throws Error
  // (invalid_argument) for a rank out of range.
  MigrationTransport& endpoint(std::uint32_t rank);
  // Messages sent but never received, plus operations posted but not waited for, over all ranks:
  // 0 after a correct exchange (NCCL would hang on an unmatched send). Call it once the ranks'
  // threads are done (it reads their endpoints).
  [[nodiscard]] std::size_t undelivered() const;

 private:
  struct Mailbox {
    mutable std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::vector<std::byte>> messages;
  };
  class Endpoint final : public MigrationTransport {
   public:
    Endpoint(LocalTransportHub& hub, std::uint32_t rank) : hub_(hub), rank_(rank) {}
    void send(std::uint32_t peer, std::span<const std::byte> data) override;
    void recv(std::uint32_t peer, std::span<std::byte> data) override;
    // Delivers every posted send (never blocks), then completes the posted receives in order
    // (blocks until each message has arrived): no posting order can deadlock. A receive buffer
    // that overlaps a send buffer of the same group is Error(internal): undefined under NCCL,
    // whatever this transport would do with it.
    void wait() override;
    [[nodiscard]] std::size_t pending() const { return sends_.size() + recvs_.size(); }

   private:
    LocalTransportHub& hub_;
    std::uint32_t rank_;
    std::vector<std::pair<std::uint32_t, std::span<const std::byte>>> sends_;
    std::vector<std::pair<std::uint32_t, std::span<std::byte>>> recvs_;
  };
  Mailbox& mailbox(std::uint32_t from, std::uint32_t to);

  std::uint32_t num_ranks_;
  std::vector<std::unique_ptr<Mailbox>> mailboxes_;  // [from][to]
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
};

}  // namespace eplb
