// The `eplb` command line: adds every subcommand, with its options, to the CLI11 app.
#pragma once

#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace eplb_cli {

// Adds plan, demo, algorithms, inspect, convert, plot, migrate and record; each runs its command
// from commands.hpp when chosen.
void add_commands(CLI::App& app);

// What `command` takes as arguments (words that are not options), for a word it did not expect:
// "plan takes its inputs as options: --counts FILE... or --stats FILE".
[[nodiscard]] std::string arguments_hint(const std::string& command);

}  // namespace eplb_cli
