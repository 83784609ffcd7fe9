// The expert-parallel group over NCCL, through a CUDA-free interface: creation from a unique id
// or adoption of the caller's ncclComm_t, all-reduces (device buffers on the caller's stream;
// host counters through a device staging buffer the communicator owns), and the migration
// executor, which drives run_migration_step (core/migration_exchange.hpp), the step logic the
// CPU transport runs in the tests, with grouped ncclSend/ncclRecv and cudaMemcpyAsync.
//
// Built from communicator_cuda.cpp with EPLB_WITH_CUDA and EPLB_WITH_NCCL, else from
// communicator_none.cpp, where every entry point throws Error(Errc::no_nccl).
//
// Errors (eplb::Error): no_nccl (libnccl.so.2 not loadable, or built without NCCL), no_device
// (no driver or GPU), device (a CUDA call failed), nccl (an NCCL call failed, or the
// communicator has an asynchronous error), invalid_argument (bad arguments, host memory where
// device memory is needed).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "migration_exchange.hpp"
#include "migration_plan.hpp"
#include "tracker.hpp"

namespace eplb::nccl {

inline constexpr std::size_t kUniqueIdSize = 128;  // NCCL_UNIQUE_ID_BYTES
using UniqueId = std::array<std::byte, kUniqueIdSize>;

enum class DataType : std::uint32_t { int32 = 0, int64 = 1, uint64 = 2, float32 = 3, float64 = 4 };
enum class ReduceOp : std::uint32_t { sum = 0, max = 1, min = 2 };

// True when this libeplb was built with the NCCL parts.
[[nodiscard]] bool built_with_nccl() noexcept;

// NCCL's version code (ncclGetVersion, e.g. 22805 for 2.28.5) of the library loaded.
[[nodiscard]] int version();

// A new unique id (ncclGetUniqueId): rank 0 makes it and sends its bytes to the other ranks.
[[nodiscard]] UniqueId make_unique_id();

class Communicator {
 public:
  // ncclCommInitRank on `device` (-1: the calling thread's current device); the calling
  // thread's current device is restored afterwards. Collective: every rank must call it.
  static std::unique_ptr<Communicator> create(const UniqueId& id, int num_ranks, int rank,
                                              int device);
  // Wraps the caller's ncclComm_t, which must come from the same libnccl this library loads
  // (library_path(); a libnccl.so.2 already loaded in the process is the one used). It is
  // never destroyed here. Its device is the calling thread's current device.
  static std::unique_ptr<Communicator> adopt(void* nccl_comm);

  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;
  ~Communicator();

  [[nodiscard]] int rank() const;
  [[nodiscard]] int size() const;
  // The CUDA device of the communicator.
  [[nodiscard]] int device() const;

  // Waits on the host until the work enqueued on `stream` so far is done, polling the stream and
  // the communicator's asynchronous error instead of blocking in cudaStreamSynchronize, so that a
  // dead peer gives Error(nccl) instead of a hang (a communicator made by create() is then
  // aborted).
  void synchronize(void* stream);

  // In-place all-reduce of `count` elements of device memory on `stream` (NULL: the legacy
  // default stream); enqueued, not waited for.
  void allreduce(void* data, std::size_t count, DataType type, ReduceOp op, void* stream);

  // In-place all-reduce of host arrays through the communicator's device staging buffer, on
  // its own stream; returns when the results are in `data`. Not for the hot path.
  void allreduce_host(std::span<std::uint64_t> data, ReduceOp op);
  void allreduce_host(std::span<double> data, ReduceOp op);

  // A transport whose sends and receives are grouped ncclSend/ncclRecv (ncclGroupStart at the
  // first post, ncclGroupEnd at wait()) and whose copies are cudaMemcpyAsync, all on `stream`.
  [[nodiscard]] std::unique_ptr<MigrationTransport> transport(void* stream);

  // Throws Error(invalid_argument) naming `name` unless `pointer` is device memory (after
  // checking that a device exists).
  static void require_device_pointer(const void* pointer, const char* name);

  struct Impl;

 private:
  explicit Communicator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Every rank's `local` statistics summed (batches: maximum) into `out` on every rank, so all
// ranks plan from the same numbers: out's statistics become those of one tracker that recorded
// every rank's stream; out's reservoir is left as it is. `out` may be `local`. The trackers must
// have the same options on every rank (checked across ranks first: an all-reduce of a
// fingerprint), and `out` the same as `local` apart from the seed. Synchronous.
void allreduce_tracker(Communicator& comm, const Tracker& local, Tracker& out);
// The host-side check of allreduce_tracker alone: Error(invalid_argument) unless `out` has
// `local`'s options (the seed aside).
void check_tracker_pair(const Tracker& local, const Tracker& out);

// Enqueues this rank's part of `step` of `plan` on `stream`: copies of same-GPU sources into
// `staging`, one ncclGroupStart/End with every send and receive of the step, then copies from
// staging into the destination slots. The plan's GPU r is the communicator's rank r. Every
// rank must call it for the same step. `weights` and `staging` hold device addresses.
void execute_migration_step(Communicator& comm, const MigrationPlan& plan, std::uint32_t step,
                            const ExpertTensors& weights, std::span<std::byte> staging,
                            void* stream);

}  // namespace eplb::nccl
