// What libeplb does over a Communicator, written against its CUDA-free interface: the tracker
// all-reduce and the migration executor (whose step logic is core/migration_exchange.cpp's).
#include <bit>
#include <cstring>
#include <set>
#include <string>
#include <utility>

#include "../kernels/device.hpp"
#include "communicator.hpp"
#include "error.hpp"

namespace eplb::nccl {

namespace {

// A fingerprint of what decides the counters' layout; equal on every rank or the sums are
// meaningless (and NCCL would hang on different counts).
std::uint64_t layout_fingerprint(const TrackerOptions& o, const Tracker::Counters& c) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  const auto mix = [&](std::uint64_t v) {
    h ^= v;
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  };
  mix(o.num_layers);
  mix(o.num_experts);
  mix(o.top_k);
  mix(static_cast<std::uint64_t>(o.window));
  mix(o.window == TrackerWindow::sliding ? o.window_batches : 0);
  mix(o.window == TrackerWindow::decay ? std::bit_cast<std::uint64_t>(o.decay) : 0);
  mix(c.counts.size());
  mix(c.weights.size());
  return h;
}

void require_same_options(const Tracker& local, const Tracker& out) {
  const TrackerOptions& a = local.options();
  const TrackerOptions& b = out.options();
  if (a.num_layers != b.num_layers || a.num_experts != b.num_experts || a.top_k != b.top_k ||
      a.window != b.window ||
      (a.window == TrackerWindow::sliding && a.window_batches != b.window_batches) ||
      (a.window == TrackerWindow::decay && a.decay != b.decay)) {
    fail_invalid("local and out_sum trackers differ in their options (layers ", a.num_layers,
                 " vs ", b.num_layers, ", experts ", a.num_experts, " vs ", b.num_experts,
                 ", top_k ", a.top_k, " vs ", b.top_k, ", window ",
                 static_cast<std::uint32_t>(a.window), " vs ", static_cast<std::uint32_t>(b.window),
                 ", or its window_batches or decay); only the seed and the reservoir may differ");
  }
}

}  // namespace

void check_tracker_pair(const Tracker& local, const Tracker& out) {
  require_same_options(local, out);
}

void allreduce_tracker(Communicator& comm, const Tracker& local, Tracker& out) {
  require_same_options(local, out);
  Tracker::Counters counters = local.counters();
  // max over ranks of (f, ~f) is (max f, ~min f): equal fingerprints everywhere iff they agree.
  const std::uint64_t fingerprint = layout_fingerprint(local.options(), counters);
  std::uint64_t check[2] = {fingerprint, ~fingerprint};
  comm.allreduce_host(check, ReduceOp::max);
  if (check[0] != ~check[1]) {
    fail_invalid(
        "the trackers of the ranks differ in layers, experts, top_k or window (this "
        "rank's fingerprint ",
        fingerprint, "); every rank must all-reduce trackers with the same options");
  }
  comm.allreduce_host(counters.counts, ReduceOp::sum);
  comm.allreduce_host(counters.weights, ReduceOp::sum);
  comm.allreduce_host(counters.batches, ReduceOp::max);
  out.set_counters(counters);
}

void execute_migration_step(Communicator& comm, const MigrationPlan& plan, std::uint32_t step,
                            const ExpertTensors& weights, std::span<std::byte> staging,
                            void* stream) {
  const Topology& topology = plan.topology();
  if (static_cast<std::uint32_t>(comm.size()) != topology.num_gpus) {
    fail_invalid("the communicator has ", comm.size(), " ranks but the migration's placement has ",
                 topology.num_gpus, " GPUs (rank r must be GPU r)");
  }
  // The copies and commits go to the current device's stream: it must be the communicator's.
  kernels::require_current_device(comm.device(), "the communicator's buffers");
  const RankStepOps ops = rank_step_ops(plan, step, static_cast<std::uint32_t>(comm.rank()));
  // Every address the step touches must be device memory: checked before anything is enqueued.
  if (ops.staging_slots > 0) Communicator::require_device_pointer(staging.data(), "staging");
  std::set<std::pair<std::uint32_t, std::uint32_t>> slots;
  for (const auto& c : ops.copies) slots.emplace(c.layer, c.local_slot);
  for (const auto& s : ops.sends) slots.emplace(s.layer, s.local_slot);
  for (const auto& c : ops.commits) slots.emplace(c.layer, c.local_slot);
  for (const auto& [layer, slot] : slots) {
    for (std::uint32_t t = 0; t < weights.tensor_bytes.size(); ++t) {
      const std::string name =
          cat("tensor ", t, " of layer ", layer, " local slot ", slot, " (slot_tensors)");
      Communicator::require_device_pointer(weights.address(layer, slot, t), name.c_str());
    }
  }
  const auto transport = comm.transport(stream);
  run_migration_step(ops, weights, staging, *transport);
}

}  // namespace eplb::nccl
