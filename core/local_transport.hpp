// An in-process transport for migration steps: one rank per thread, messages copied through
// per-pair mailboxes. It runs the same step logic as the NCCL executor (run_migration_step), so
// CPU tests check a schedule's data movement byte for byte without a GPU.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "migration_exchange.hpp"

namespace eplb {

class LocalTransportHub {
 public:
  explicit LocalTransportHub(std::uint32_t num_ranks);
  // The transport of `rank`; one thread uses an endpoint at a time. Throws Error
  // (invalid_argument) for a rank out of range.
  MigrationTransport& endpoint(std::uint32_t rank);

 private:
  struct Mailbox {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::vector<std::byte>> messages;
  };
  class Endpoint final : public MigrationTransport {
   public:
    Endpoint(LocalTransportHub& hub, std::uint32_t rank) : hub_(hub), rank_(rank) {}
    void send(std::uint32_t peer, std::span<const std::byte> data) override;
    void recv(std::uint32_t peer, std::span<std::byte> data) override;
    void wait() override {}

   private:
    LocalTransportHub& hub_;
    std::uint32_t rank_;
  };
  Mailbox& mailbox(std::uint32_t from, std::uint32_t to);

  std::uint32_t num_ranks_;
  std::vector<std::unique_ptr<Mailbox>> mailboxes_;  // [from][to]
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
};

}  // namespace eplb
