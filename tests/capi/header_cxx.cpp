// The public header compiled as C++ with -Wall -Wextra -Wpedantic -Wold-style-cast -Werror, plus
// compile-time checks of the ABI rules it promises (versioned structs, version macros).
#include "eplb/eplb.h"

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace {

template <typename Struct>
constexpr bool is_versioned_struct() {
  return std::is_standard_layout_v<Struct> && std::is_trivially_copyable_v<Struct> &&
         sizeof(Struct) % 8 == 0 && offsetof(Struct, struct_size) == 0 &&
         std::is_same_v<decltype(Struct::struct_size), uint32_t>;
}

static_assert(is_versioned_struct<eplb_planner_options>());
static_assert(is_versioned_struct<eplb_placement_info>());
static_assert(is_versioned_struct<eplb_layer_metrics>());
static_assert(is_versioned_struct<eplb_metrics>());

// Fields are only ever appended, so the offsets of the published ones never move.
static_assert(offsetof(eplb_planner_options, num_gpus) == 28);
static_assert(offsetof(eplb_placement_info, plan_seconds) == 48);
static_assert(offsetof(eplb_layer_metrics, total_load) == 16);
static_assert(offsetof(eplb_layer_metrics, max_load_over_bound) == 64);
static_assert(offsetof(eplb_metrics, duplicate_pairs) == 16);
static_assert(offsetof(eplb_metrics, max_over_mean) == 64);

static_assert(EPLB_VERSION_NUMBER ==
              EPLB_VERSION_MAJOR * 10000 + EPLB_VERSION_MINOR * 100 + EPLB_VERSION_PATCH);
static_assert(EPLB_VERSION_MINOR < 100 && EPLB_VERSION_PATCH < 100);

// Stable enum values.
static_assert(EPLB_OK == 0 && EPLB_ERR_INVALID_ARGUMENT == 1 && EPLB_ERR_OUT_OF_MEMORY == 2 &&
              EPLB_ERR_BUFFER_TOO_SMALL == 3 && EPLB_ERR_INTERNAL == 4);
static_assert(EPLB_ALGORITHM_DEFAULT == 0 && EPLB_ALGORITHM_DEEPSEEK == 1 &&
              EPLB_ALGORITHM_TRIVIAL == 2);

// A few signatures, as C++ sees them.
static_assert(std::is_same_v<decltype(&eplb_planner_create),
                             eplb_status (*)(const eplb_planner_options*, eplb_planner**)>);
static_assert(
    std::is_same_v<decltype(&eplb_planner_plan),
                   eplb_status (*)(eplb_planner*, const double*, size_t, eplb_placement**)>);
static_assert(std::is_same_v<decltype(&eplb_placement_get_phy2log),
                             eplb_status (*)(const eplb_placement*, int32_t*, size_t)>);
static_assert(std::is_same_v<decltype(&eplb_last_error_message), const char* (*)()>);
static_assert(std::is_same_v<decltype(&eplb_version_number), uint32_t (*)()>);

}  // namespace

// Using the API from C++ compiles cleanly under the same flags.
int eplb_header_cxx_use(void);
int eplb_header_cxx_use(void) {
  eplb_planner_options options;
  eplb_planner_options_init(&options);
  eplb_planner* planner = nullptr;
  const eplb_status status = eplb_planner_create(&options, &planner);
  eplb_planner_destroy(planner);
  return status == EPLB_OK ? 0 : static_cast<int>(status);
}
