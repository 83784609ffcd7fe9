// Errors that end a CLI command, and the exit status each maps to.
#pragma once

#include <stdexcept>
#include <string>

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

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

}  // namespace eplb_cli
