#include "eplb/atomic_file.hpp"

#include <cstddef>
#include <span>

#include "../../core/atomic_file.hpp"
#include "eplb/cli_error.hpp"

namespace eplb_cli {

void write_file_atomically(const std::string& path, std::string_view content) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(content.data()),
                                         content.size());
  if (const auto failure = eplb::write_file_atomically(path, bytes)) {
    throw Failure(failure->message());
  }
}

}  // namespace eplb_cli
