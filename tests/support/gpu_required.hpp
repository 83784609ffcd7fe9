// EPLB_REQUIRE_GPU=1 (scripts/gpu-check.sh sets it): a machine meant to have a GPU fails the GPU
// tests instead of skipping them when libeplb cannot use it (e.g. a driver older than libeplb's
// CUDA runtime, which reports like no driver at all).
#pragma once

#include <cstdlib>
#include <string_view>

namespace eplb::test {

inline bool gpu_required() {
  const char* value = std::getenv("EPLB_REQUIRE_GPU");  // NOLINT(concurrency-mt-unsafe)
  return value != nullptr && std::string_view(value) == "1";
}

}  // namespace eplb::test
