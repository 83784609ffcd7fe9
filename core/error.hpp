// Errors raised inside the core. The C API turns each into an eplb_status plus its message;
// nothing else in the library needs to know about statuses.
#pragma once

#include <charconv>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace eplb {

enum class Errc {
  invalid_argument,
  out_of_memory,
  buffer_too_small,
  internal,
  io,
  corrupt,
  truncated,
  unsupported_version,
  no_device,  // built without CUDA, or no driver / GPU: GPU entry points only
  device,     // a CUDA call failed
  no_nccl,    // NCCL could not be loaded, or the build has no NCCL support
  nccl,       // an NCCL call failed
  cancelled,  // a plan stopped because its PlanControl was cancelled
};

class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

namespace detail {

// Writes a floating-point value in its shortest form that reads back exactly ("0.99", "1e+39"),
// not as 17 significant digits ("0.98999999999999999"); anything else as streamed. C++17: the
// CUDA kernels include this header.
template <typename Part>
void put(std::ostringstream& out, Part&& part) {
  if constexpr (std::is_floating_point_v<std::decay_t<Part>>) {
    char text[64];
    const auto result = std::to_chars(text, text + sizeof(text), part);
    out.write(text, result.ptr - text);
  } else {
    out << std::forward<Part>(part);
  }
}

}  // namespace detail

// Concatenates anything streamable into one string: cat("num_gpus (", g, ") must be ...").
template <typename... Parts>
[[nodiscard]] std::string cat(Parts&&... parts) {
  std::ostringstream out;
  (detail::put(out, std::forward<Parts>(parts)), ...);
  return out.str();
}

template <typename... Parts>
[[noreturn]] void fail(Errc code, Parts&&... parts) {
  throw Error(code, cat(std::forward<Parts>(parts)...));
}

template <typename... Parts>
[[noreturn]] void fail_invalid(Parts&&... parts) {
  fail(Errc::invalid_argument, std::forward<Parts>(parts)...);
}

// Checks an internal invariant; a failure is a bug in libeplb, reported as EPLB_ERR_INTERNAL.
#define EPLB_ASSERT(condition)                                                            \
  do {                                                                                    \
    if (!(condition)) {                                                                   \
      ::eplb::fail(::eplb::Errc::internal, "internal invariant failed: " #condition " (", \
                   __FILE__, ":", __LINE__, ")");                                         \
    }                                                                                     \
  } while (false)

}  // namespace eplb
