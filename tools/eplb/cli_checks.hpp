// Checks of numeric option values with plain messages ("--gpus: 'abc' is not a whole number",
// "--threads: 300 is above 256"), and no range text in --help (the option's description says
// the range where it matters).
#pragma once

#include <CLI/CLI.hpp>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace eplb_cli {

// A whole number in [min, max], written back in plain decimal: use it with ->transform() (a
// ->check() validator cannot change the text, and CLI11 reads "010" as octal 8).
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
        // CLI11 reads the text again, and a leading 0 would make it octal ("010" is 8 there).
        text = std::to_string(value);
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
        if (error == std::errc::result_out_of_range && stop == end) {
          return "'" + text + "' is out of range (too large or too small for a double)";
        }
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

// What a SIZE is, for --help and for the messages of byte_size().
inline constexpr const char* kSizeGrammar =
    "a whole number of bytes, or a number with a unit in any case: kB, MB, GB, TB (powers of "
    "1000) or KiB, MiB, GiB, TiB (of 1024), e.g. 44MB or 1.5GiB";

// The bytes of a unit (kSizeGrammar, any case; "" and "b" are bytes), or 0 for no unit.
inline std::uint64_t size_unit_bytes(std::string_view unit) {
  std::string lower(unit);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  constexpr std::uint64_t kKilo = 1000;
  const std::pair<const char*, std::uint64_t> units[] = {{"", 1},
                                                         {"b", 1},
                                                         {"kb", kKilo},
                                                         {"mb", kKilo * kKilo},
                                                         {"gb", kKilo * kKilo * kKilo},
                                                         {"tb", kKilo * kKilo * kKilo * kKilo},
                                                         {"kib", std::uint64_t{1} << 10},
                                                         {"mib", std::uint64_t{1} << 20},
                                                         {"gib", std::uint64_t{1} << 30},
                                                         {"tib", std::uint64_t{1} << 40}};
  for (const auto& [name, bytes] : units) {
    if (lower == name) return bytes;
  }
  return 0;
}

// Parses a SIZE: digits, an optional fraction, an optional unit (kSizeGrammar). A fraction must
// come to whole bytes (1.5GB, 0.5KiB; not 0.1KiB). Returns "" and sets `bytes`, or the message
// that names what is wrong with `text`.
inline std::string parse_byte_size(const std::string& text, std::uint64_t& bytes) {
  const std::string_view whole_text = text;
  if (!whole_text.empty() && whole_text.front() == '-') {
    return "'" + text + "' is negative: a SIZE is " + kSizeGrammar;
  }
  const std::string malformed = "'" + text + "' is not a SIZE: expected " + kSizeGrammar;
  const std::string too_large = "'" + text + "' is too large (at most " +
                                std::to_string(std::numeric_limits<std::uint64_t>::max()) +
                                " bytes)";
  std::size_t at = 0;
  const auto digits = [&] {
    const std::size_t first = at;
    while (at < whole_text.size() && std::isdigit(static_cast<unsigned char>(whole_text[at]))) {
      ++at;
    }
    return whole_text.substr(first, at - first);
  };
  const std::string_view integer = digits();
  std::string_view fraction;
  if (at < whole_text.size() && whole_text[at] == '.') {
    ++at;
    fraction = digits();
    if (fraction.empty()) return malformed;
  }
  if (integer.empty() && fraction.empty()) return malformed;
  while (at < whole_text.size() && whole_text[at] == ' ') ++at;
  const std::uint64_t factor = size_unit_bytes(whole_text.substr(at));
  if (factor == 0) return malformed;

  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t units = 0;  // the integer part
  if (!integer.empty()) {
    const auto [stop, error] =
        std::from_chars(integer.data(), integer.data() + integer.size(), units);
    if (error != std::errc()) return too_large;
  }
  // The fraction's bytes, exactly: fraction / 10^digits x factor, reduced by their greatest
  // common divisor so that nothing overflows (the result is below factor).
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  std::uint64_t fraction_bytes = 0;
  if (!fraction.empty()) {
    // Units are at most 2^40 or 10^12: a longer fraction never comes to whole bytes.
    if (fraction.size() > 18) return "'" + text + "' is not a whole number of bytes";
    std::uint64_t numerator = 0;
    std::from_chars(fraction.data(), fraction.data() + fraction.size(), numerator);
    std::uint64_t denominator = 1;
    for (std::size_t i = 0; i < fraction.size(); ++i) denominator *= 10;
    const std::uint64_t common = std::gcd(denominator, factor);
    if (numerator % (denominator / common) != 0) {
      return "'" + text + "' is not a whole number of bytes";
    }
    fraction_bytes = numerator / (denominator / common) * (factor / common);
  }
  if (units > (kMax - fraction_bytes) / factor) return too_large;
  bytes = units * factor + fraction_bytes;
  return "";
}

// A byte size option (SIZE, parse_byte_size): `text` becomes the plain number of bytes for CLI11
// to read. Our own grammar rather than CLI::AsSizeValue, whose messages speak of its internals
// ("18446744073709551611 multiplied by mb factor", "could not be converted to UINT") and which
// takes units --help does not list (M, EB, Pi).
inline CLI::Validator byte_size() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::uint64_t bytes = 0;
        std::string error = parse_byte_size(text, bytes);
        if (error.empty()) text = std::to_string(bytes);
        return error;
      },
      "", "size");
}

}  // namespace eplb_cli
