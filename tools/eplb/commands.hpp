// The `eplb` subcommands. Each registers itself on the app; its callback runs the command and
// throws InputError (exit 2) or Failure (exit 1) on problems.
#pragma once

#include <CLI/CLI.hpp>

namespace eplb_cli {

void register_plan_command(CLI::App& app);
void register_demo_command(CLI::App& app);
void register_algorithms_command(CLI::App& app);
void register_inspect_command(CLI::App& app);
void register_convert_command(CLI::App& app);
void register_plot_command(CLI::App& app);
void register_record_command(CLI::App& app);

}  // namespace eplb_cli
