// libFuzzer target for the `eplb` command line: the input, split at newlines, is an argument
// vector for the same CLI11 app `eplb` builds (every subcommand, option, number and list check),
// stopped after parsing, before any command runs, so that nothing is read or written. Parsing must
// end in success or a CLI::ParseError (what main() reports as bad usage), never a crash,
// undefined behaviour or any other exception.
#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "eplb/command_line.hpp"

namespace {

constexpr size_t kMaxArguments = 32;

struct ParsedEverything {};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> arguments = {"eplb"};
  std::string current;
  for (size_t i = 0; i < size && arguments.size() < kMaxArguments; ++i) {
    const char c = static_cast<char>(data[i]);
    if (c == '\n') {
      arguments.push_back(current);
      current.clear();
    } else if (c != '\0') {
      current.push_back(c);
    }
  }
  if (!current.empty() && arguments.size() < kMaxArguments) arguments.push_back(current);
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());

  // As main() builds it (tools/eplb/main.cpp).
  CLI::App app{"eplb", "eplb"};
  app.set_version_flag("--version", "eplb fuzz");
  app.require_subcommand(1);
  eplb_cli::add_commands(app);
  // Stop once every option is parsed, converted and checked, before any command runs. (The
  // commands' own callbacks must stay: they own the variables their options write to, so
  // replacing them frees those variables, a use after free this target found in its first
  // version.) The main app's parse-complete callback runs right before the commands' callbacks.
  app.parse_complete_callback([] { throw ParsedEverything{}; });
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const ParsedEverything&) {
    // A valid command line: `eplb` would run the command now.
  } catch (const CLI::ParseError&) {
    // Bad usage, --help or --version: reported by main(), fine.
  }
  return 0;
}
