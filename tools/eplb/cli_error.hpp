// Errors that end a CLI command, and the exit status each maps to.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace eplb_cli {

// Bad usage or bad input (a file, a key, a row, a value): exit status 2.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Anything else that went wrong (I/O, out of memory, a library bug): exit status 1.
class Failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A JSON library error's text without its "[json.exception.parse_error.101] " tag, which means
// nothing to a user: "parse error at line 2, column 1: ...", "number overflow parsing '1e400'".
inline std::string json_error_text(const std::exception& error) {
  std::string_view text = error.what();
  if (text.rfind("[json.exception.", 0) == 0) {
    const std::size_t end = text.find("] ");
    if (end != std::string_view::npos) text.remove_prefix(end + 2);
  }
  return std::string(text);
}

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

}  // namespace eplb_cli
