// eplb demo, per-batch dispatch: the replica choice of every mapping mode (through the CPU
// references of the GPU mapping kernel, eplb_kernel_map_record_cpu) and the exact replica split
// (eplb_split_solve feeding the quota mode), on simulated batches the plan did not see.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace eplb_cli {

struct DispatchRow {
  std::string mode;
  double max_over_mean = 0;  // busiest GPU / mean GPU load, mean over batches and layers
  double nodes_touched = 0;  // distinct nodes per token, mean
};

struct DispatchDemo {
  std::uint32_t layers = 0, tokens = 0, batches = 0;
  std::vector<DispatchRow> rows;
};

// DeepSeek-V3 shape on 4 nodes x 8 GPUs (288 slots), the balanced plan of the simulator's
// loads; tokens of a batch come from GPU (token % 32).
DispatchDemo run_dispatch_demo(std::uint64_t seed);

}  // namespace eplb_cli
