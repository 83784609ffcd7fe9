// Printing JSON on stdout. File names and labels come from the user and need not be valid UTF-8
// (a path is bytes): such bytes print as U+FFFD instead of failing the command after its output
// file was written.
#pragma once

#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

namespace eplb_cli {

inline void print_json(const nlohmann::json& document) {
  std::cout << document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

// `text` in double quotes with JSON's escapes, for text the user wrote that goes to a terminal
// (a snapshot's label): a newline or an escape sequence in it prints as \n or \u001b.
inline std::string quoted(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace eplb_cli
