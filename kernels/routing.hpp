// Routing kernels behind a CUDA-free interface: a placement's device lookup tables for one rank,
// the load recorder, logical->physical mapping fused with recording, the physical->logical fold
// and the co-activation counter. Each operation has a CPU reference (routing_reference.cpp,
// always built) and a GPU launcher (routing.cu, built when EPLB_HAVE_CUDA is 1). Arguments are
// validated by the C API shims (capi/src/kernels_routing_api.cpp) before either is called.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../core/placement.hpp"
#include "routing_launch.hpp"
#include "routing_rules.hpp"

namespace eplb::kernels {

// The C API's EPLB_DEVICE_TABLES_HOST_ONLY.
inline constexpr std::uint32_t tables_host_only = 1u;

// A placement's lookup tables for one rank: always a host copy (read by the CPU references), and
// unless host-only one device allocation on the device current at creation holding the same
// arrays. update() rewrites the same device buffers, so graphs captured on them stay valid.
class DeviceTables {
 public:
  // Throws Error(invalid_argument) for gpu >= num_gpus, an unknown flag or a placement whose
  // log2phy width exceeds max_replicas (0 = the placement's width); Error(no_device) or
  // Error(device) when device tables cannot be made.
  DeviceTables(const Placement& placement, std::uint32_t gpu, std::uint32_t max_replicas,
               std::uint32_t flags, void* stream);
  ~DeviceTables();
  DeviceTables(const DeviceTables&) = delete;
  DeviceTables& operator=(const DeviceTables&) = delete;

  // Same shape (layers, experts, slots, GPUs, nodes) and a width within the capacity, else
  // Error(invalid_argument); on failure the tables are unchanged.
  void update(const Placement& placement, void* stream);

  [[nodiscard]] TablesView host() const { return view(host_pointers()); }
  [[nodiscard]] TablesView device() const { return view(device_pointers()); }
  [[nodiscard]] bool host_only() const { return (flags_ & tables_host_only) != 0; }
  [[nodiscard]] std::uint32_t flags() const { return flags_; }
  [[nodiscard]] int device_id() const { return device_id_; }
  [[nodiscard]] const Topology& topology() const { return topology_; }
  [[nodiscard]] std::uint32_t width() const { return width_; }
  [[nodiscard]] std::uint32_t gpu() const { return gpu_; }
  [[nodiscard]] std::size_t device_bytes() const;

 private:
  struct Pointers {
    const std::int32_t* phy2log;
    const std::int32_t* replica_count;
    const std::int32_t* log2phy;
    const std::int32_t* static_map;
    const std::uint64_t* node_mask;
  };
  void build_host(const Placement& placement);
  void upload(void* stream);
  [[nodiscard]] Pointers host_pointers() const;
  [[nodiscard]] Pointers device_pointers() const;
  [[nodiscard]] TablesView view(const Pointers& p) const;

  Topology topology_;
  std::uint32_t width_ = 0;
  std::uint32_t gpu_ = 0;
  std::uint32_t flags_ = 0;
  int device_id_ = -1;
  // Host copy, one buffer laid out as the device one: node masks (8-byte aligned) first, then
  // phy2log, replica counts, log2phy, static map.
  std::vector<std::uint64_t> host_;
  void* device_ = nullptr;
};

// Sizes of the device layout (elements), shared by both copies.
struct TablesLayout {
  std::size_t node_mask, phy2log, replica_count, log2phy, static_map;
  [[nodiscard]] std::size_t bytes() const {
    return node_mask * 8 + (phy2log + replica_count + log2phy + static_map) * 4;
  }
};

}  // namespace eplb::kernels
