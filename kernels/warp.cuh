// Warp-level constants shared by the kernels. CUDA only.
#pragma once

namespace eplb::kernels {

// Every lane of a warp takes part (the mask of __shfl_sync, __ballot_sync, __match_any_sync).
constexpr unsigned kAllLanes = 0xffffffffu;

}  // namespace eplb::kernels
