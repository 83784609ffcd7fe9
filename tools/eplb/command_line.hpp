// The `eplb` command line: adds every subcommand, with its options, to the CLI11 app.
#pragma once

namespace CLI {
class App;
}  // namespace CLI

namespace eplb_cli {

// Adds plan, demo, algorithms, inspect, convert, plot and record; each runs its command from
// commands.hpp when chosen.
void add_commands(CLI::App& app);

}  // namespace eplb_cli
