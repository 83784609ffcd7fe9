#include "local_transport.hpp"

#include <cstring>
#include <functional>
#include <utility>

#include "error.hpp"

namespace eplb {

LocalTransportHub::LocalTransportHub(std::uint32_t num_ranks) : num_ranks_(num_ranks) {
  if (num_ranks == 0) fail_invalid("num_ranks is 0");
  mailboxes_.reserve(std::size_t{num_ranks} * num_ranks);
  for (std::size_t i = 0; i < std::size_t{num_ranks} * num_ranks; ++i) {
    mailboxes_.push_back(std::make_unique<Mailbox>());
  }
  for (std::uint32_t rank = 0; rank < num_ranks; ++rank) {
    endpoints_.push_back(std::make_unique<Endpoint>(*this, rank));
  }
}

MigrationTransport& LocalTransportHub::endpoint(std::uint32_t rank) {
  if (rank >= num_ranks_)
    fail_invalid("rank (", rank, ") is not below num_ranks (", num_ranks_, ")");
  return *endpoints_[rank];
}

LocalTransportHub::Mailbox& LocalTransportHub::mailbox(std::uint32_t from, std::uint32_t to) {
  if (from >= num_ranks_ || to >= num_ranks_) {
    fail_invalid("peer (", from >= num_ranks_ ? from : to, ") is not below num_ranks (", num_ranks_,
                 ")");
  }
  return *mailboxes_[std::size_t{from} * num_ranks_ + to];
}

std::size_t LocalTransportHub::undelivered() const {
  std::size_t count = 0;
  for (const auto& box : mailboxes_) {
    const std::lock_guard lock(box->mutex);
    count += box->messages.size();
  }
  for (const auto& endpoint : endpoints_) count += endpoint->pending();
  return count;
}

// Posting only checks the peer (as NCCL does); the data moves in wait().
void LocalTransportHub::Endpoint::send(std::uint32_t peer, std::span<const std::byte> data) {
  static_cast<void>(hub_.mailbox(rank_, peer));
  sends_.emplace_back(peer, data);
}

void LocalTransportHub::Endpoint::recv(std::uint32_t peer, std::span<std::byte> data) {
  static_cast<void>(hub_.mailbox(peer, rank_));
  recvs_.emplace_back(peer, data);
}

void LocalTransportHub::Endpoint::wait() {
  const auto sends = std::exchange(sends_, {});
  const auto recvs = std::exchange(recvs_, {});
  const auto overlap = [](std::span<const std::byte> a, std::span<const std::byte> b) {
    const std::less<const std::byte*> before;
    return !a.empty() && !b.empty() && before(a.data(), b.data() + b.size()) &&
           before(b.data(), a.data() + a.size());
  };
  for (const auto& [to, sent] : sends) {
    for (const auto& [from, received] : recvs) {
      if (overlap(sent, received)) {
        fail(Errc::internal, "rank ", rank_, " posted a receive from rank ", from,
             " into memory it also sends to rank ", to, " in the same group");
      }
    }
  }
  for (const auto& [peer, data] : sends) {
    Mailbox& box = hub_.mailbox(rank_, peer);
    {
      const std::lock_guard lock(box.mutex);
      box.messages.emplace_back(data.begin(), data.end());
    }
    box.ready.notify_all();
  }
  for (const auto& [peer, data] : recvs) {
    Mailbox& box = hub_.mailbox(peer, rank_);
    std::unique_lock lock(box.mutex);
    box.ready.wait(lock, [&] { return !box.messages.empty(); });
    std::vector<std::byte> message = std::move(box.messages.front());
    box.messages.pop_front();
    lock.unlock();
    if (message.size() != data.size()) {
      fail(Errc::internal, "rank ", rank_, " expected ", data.size(), " bytes from rank ", peer,
           " but the next message has ", message.size());
    }
    if (!message.empty()) std::memcpy(data.data(), message.data(), message.size());
  }
}

}  // namespace eplb
