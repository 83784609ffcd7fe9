// Folding physical slot ids to logical expert ids: the first pass of recording a batch of
// physical ids (Tracker::record_physical). Each id becomes phy2log[id] when it is in [0, slots),
// and -1 when it is -1 (a masked slot).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace eplb {

// How the ids are folded, fastest first:
// - avx512: 32 ids per step through the layer's table held as 16-bit ids in registers, looked up
//   by AVX-512 permutes (64 slots each); layers of at most 1024 slots whose experts are below
//   2^16. About 4x faster than avx2 on DeepSeek-V3's 288 slots (BENCHMARKS.md, Tracker);
// - avx2: 8 ids per step by masked gathers from the table;
// - scalar: one id at a time (any CPU, any layer).
// Each also fills in for the one above it where that one does not apply.
enum class FoldKernel { scalar, avx2, avx512 };

// Whether this CPU (and its operating system) runs `kernel`.
[[nodiscard]] bool fold_kernel_supported(FoldKernel kernel);

// The fastest kernel this CPU runs (a layer outside its limits falls back as above).
[[nodiscard]] FoldKernel fastest_fold_kernel();

// out[i] = the logical expert of ids[i]: phy2log[ids[i]], or -1 for -1. Returns false when some
// id is neither -1 nor in [0, phy2log.size()), leaving `out` partly written (the caller names the
// id). `out` holds ids.size() values and may not overlap `ids`. phy2log's values are expert ids,
// in [0, 2^31).
bool fold_slots(std::span<const std::int32_t> ids, std::span<const std::int32_t> phy2log,
                std::int32_t* out);

// fold_slots with a given kernel, which this CPU must support (the tests compare them).
bool fold_slots_with(FoldKernel kernel, std::span<const std::int32_t> ids,
                     std::span<const std::int32_t> phy2log, std::int32_t* out);

}  // namespace eplb
