// The launch-side half of the routing kernels (routing.hpp): argument structs, the CPU
// references and the GPU launchers. C++17 and CUDA-free, so that routing.cu (compiled as C++17,
// see kernels/CMakeLists.txt) can include it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "routing_rules.hpp"

namespace eplb::kernels {

// One batch of top-k ids: int32 or int64 [num_tokens][top_k].
struct TopkIds {
  const void* ids = nullptr;
  bool ids64 = false;
  std::size_t num_tokens = 0;
  std::uint32_t top_k = 0;
  [[nodiscard]] EPLB_HD std::size_t entries() const { return num_tokens * top_k; }
};

struct RecordArgs {
  TopkIds topk;
  std::uint32_t num_experts = 0;
  std::uint32_t layer = 0;
  const std::int32_t* enable_flag = nullptr;  // NULL = record
  std::int64_t* counts = nullptr;             // [num_layers][num_experts]
};

struct MapArgs {
  TopkIds topk;
  std::uint32_t layer = 0;
  std::uint32_t mode = map_static;
  std::uint64_t seed = 0;
  const std::int32_t* quotas = nullptr;  // [P] of the layer, quota mode
  const std::int32_t* enable_flag = nullptr;
  std::int64_t* counts = nullptr;  // [L][P] or NULL
  std::int32_t* out = nullptr;     // [num_tokens][top_k]
};

struct CoactivationArgs {
  TopkIds topk;
  std::uint32_t num_experts = 0;
  std::uint32_t layer = 0;
  const std::int32_t* enable_flag = nullptr;
  std::int64_t* pair_counts = nullptr;  // [num_layers][E*(E-1)/2]
  std::uint32_t sample_stride = 0;      // 0 = no samples
  std::uint32_t sample_offset = 0;
  std::uint32_t sample_capacity = 0;
  std::int32_t* samples = nullptr;  // [sample_capacity][top_k]
};

// CPU references (host memory).
void record_load_cpu(const RecordArgs& args);
void map_record_cpu(const TablesView& tables, const MapArgs& args);
void fold_counts_cpu(const TablesView& tables, const std::int64_t* physical, std::int64_t* logical);
void coactivation_cpu(const CoactivationArgs& args);

// GPU launchers (device memory, enqueued on `stream`; routing.cu). Only defined when
// EPLB_HAVE_CUDA is 1.
void record_load_gpu(const RecordArgs& args, void* stream);
void map_record_gpu(const TablesView& tables, const MapArgs& args, void* stream);
void fold_counts_gpu(const TablesView& tables, const std::int64_t* physical, std::int64_t* logical,
                     void* stream);
void coactivation_gpu(const CoactivationArgs& args, void* stream);

// Device memory for the tables (routing.cu).
void* tables_device_alloc(std::size_t bytes, int* device_id);
void tables_device_free(void* pointer) noexcept;
void tables_device_upload(void* device, const void* host, std::size_t bytes, void* stream);
// Waits for `stream` (cudaStreamSynchronize): creation only, so the first tables are in place
// for kernels on any stream.
void tables_device_wait(void* stream);

}  // namespace eplb::kernels
