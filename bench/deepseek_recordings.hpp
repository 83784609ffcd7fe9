// SGLang's real DeepSeek-V3 load recordings (../shared/data/real/sglang-deepseek-v3-ep-stats), as
// the benchmarks read them: each file's 58 MoE rows of 256 experts (rows 3..60; rows 0..2 are the
// dense layers' zeros). The shared directory is $EPLB_SHARED, else the build's default
// (<source>/../shared); the data are never copied into the repository.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace eplb_bench {

inline constexpr std::uint32_t kDeepSeekMoeLayers = 58;
inline constexpr std::uint32_t kDeepSeekExperts = 256;
inline constexpr std::uint32_t kDeepSeekGroups = 8;
inline constexpr std::uint32_t kDeepSeekFirstMoeRow = 3;

// $EPLB_SHARED when set and not empty, else the directory configured at build time.
[[nodiscard]] std::filesystem::path shared_dir();

// <shared>/data/real/sglang-deepseek-v3-ep-stats.
[[nodiscard]] std::filesystem::path deepseek_recordings_dir();

// The recordings' .json files sorted by name; empty when the directory is absent.
[[nodiscard]] std::vector<std::filesystem::path> deepseek_recording_files();

// The MoE rows of one recording, [kDeepSeekMoeLayers][kDeepSeekExperts]; throws
// eplb_cli::InputError naming the file and its shape when it is not a DeepSeek-V3 recording.
[[nodiscard]] std::vector<double> deepseek_moe_rows(const std::filesystem::path& file);

}  // namespace eplb_bench
