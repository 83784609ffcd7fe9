#include "topology.hpp"

#include <cstdint>
#include <limits>

#include "error.hpp"

namespace eplb {

namespace {

void require_positive(std::uint32_t value, const char* name) {
  if (value == 0) fail_invalid(name, " must be at least 1 (got 0)");
  if (value > static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max())) {
    fail_invalid(name, " (", value, ") exceeds INT32_MAX, the largest id libeplb stores");
  }
}

}  // namespace

void Topology::validate() const {
  require_positive(num_layers, "num_layers");
  require_positive(num_logical, "num_logical_experts");
  require_positive(num_physical, "num_physical_experts");
  require_positive(num_nodes, "num_nodes");
  require_positive(num_gpus, "num_gpus");
  require_positive(num_groups, "num_groups");
  if (num_logical % num_groups != 0) {
    fail_invalid("num_logical_experts (", num_logical, ") must be a multiple of num_groups (",
                 num_groups, ")");
  }
  if (num_gpus % num_nodes != 0) {
    fail_invalid("num_gpus (", num_gpus, ") must be a multiple of num_nodes (", num_nodes, ")");
  }
  if (num_physical % num_gpus != 0) {
    fail_invalid("num_physical_experts (", num_physical, ") must be a multiple of num_gpus (",
                 num_gpus, ")");
  }
  if (num_physical < num_logical) {
    fail_invalid("num_physical_experts (", num_physical, ") must be at least num_logical_experts (",
                 num_logical, "): every expert needs a slot");
  }
  (void)checked_mul(num_layers, num_physical, "num_layers * num_physical_experts");
  (void)checked_mul(num_layers, num_logical, "num_layers * num_logical_experts");
}

std::size_t checked_mul(std::size_t a, std::size_t b, const char* what) {
  std::size_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) {
    fail(Errc::out_of_memory, what, " (", a, " * ", b, ") overflows size_t");
  }
  return product;
}

}  // namespace eplb
