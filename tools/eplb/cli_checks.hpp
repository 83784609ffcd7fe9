// Checks of numeric option values with plain messages ("--gpus: 'abc' is not a whole number",
// "--threads: 300 is above 256"), and no range text in --help (the option's description says
// the range where it matters).
#pragma once

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <system_error>

namespace eplb_cli {

// A whole number in [min, max].
inline CLI::Validator whole_number(std::int64_t min,
                                   std::int64_t max = std::numeric_limits<std::int32_t>::max()) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        std::int64_t value = 0;
        const char* end = text.data() + text.size();
        const auto [stop, error] = std::from_chars(text.data(), end, value);
        if (error == std::errc::result_out_of_range) return "'" + text + "' is out of range";
        if (error != std::errc() || stop != end || text.empty()) {
          return "'" + text + "' is not a whole number";
        }
        if (value < min) return text + " is below " + std::to_string(min);
        if (value > max) return text + " is above " + std::to_string(max);
        return "";
      },
      "", "whole number");
}

// A finite number in [min, max].
inline CLI::Validator real_number(double min, double max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        double value = 0;
        const char* end = text.data() + text.size();
        const auto [stop, error] = std::from_chars(text.data(), end, value);
        if (error != std::errc() || stop != end || text.empty() || !(value == value)) {
          return "'" + text + "' is not a number";
        }
        if (!(value >= min && value <= max)) {
          return text + " is outside [" + CLI::detail::to_string(min) + ", " +
                 CLI::detail::to_string(max) + "]";
        }
        return "";
      },
      "", "number");
}

}  // namespace eplb_cli
