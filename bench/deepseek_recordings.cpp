#include "deepseek_recordings.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <string>

#include "eplb/cli_error.hpp"
#include "eplb/load_file.hpp"

namespace eplb_bench {

std::filesystem::path shared_dir() {
  const char* env = std::getenv("EPLB_SHARED");
  return env != nullptr && *env != '\0' ? std::filesystem::path(env)
                                        : std::filesystem::path(EPLB_SHARED_DEFAULT);
}

std::filesystem::path deepseek_recordings_dir() {
  return shared_dir() / "data/real/sglang-deepseek-v3-ep-stats";
}

std::vector<std::filesystem::path> deepseek_recording_files() {
  std::vector<std::filesystem::path> files;
  const auto dir = deepseek_recordings_dir();
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<double> deepseek_moe_rows(const std::filesystem::path& file) {
  const auto matrix = eplb_cli::read_logical_count_file(file.string());
  constexpr std::uint32_t kRows = kDeepSeekFirstMoeRow + kDeepSeekMoeLayers;
  if (matrix.num_experts != kDeepSeekExperts || matrix.num_layers < kRows) {
    throw eplb_cli::InputError(file.string() + ": expected at least " + std::to_string(kRows) +
                               " rows of " + std::to_string(kDeepSeekExperts) + " experts, got " +
                               std::to_string(matrix.num_layers) + " x " +
                               std::to_string(matrix.num_experts));
  }
  const auto begin = matrix.loads.begin() + std::ptrdiff_t{kDeepSeekFirstMoeRow} * kDeepSeekExperts;
  return {begin, begin + std::ptrdiff_t{kDeepSeekMoeLayers} * kDeepSeekExperts};
}

}  // namespace eplb_bench
