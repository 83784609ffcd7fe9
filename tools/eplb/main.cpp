// eplb: the command-line face of libeplb. Exit status 0 on success, 2 on bad usage or bad input
// (one line on stderr naming the problem), 1 on any other failure.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "eplb/cli_error.hpp"
#include "eplb/commands.hpp"
#include "eplb/eplb.h"

namespace {

int report(const char* message, int code) {
  std::cerr << "eplb: error: " << message << '\n';
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"eplb: expert-parallel load balancing for Mixture-of-Experts serving (libeplb " +
                   std::string(eplb_version_string()) + ")",
               "eplb"};
  app.set_version_flag("--version", std::string("eplb ") + eplb_version_string());
  app.require_subcommand(1);
  app.footer("Run 'eplb COMMAND --help' for the options of a command.");
  eplb_cli::register_plan_command(app);
  eplb_cli::register_demo_command(app);
  eplb_cli::register_algorithms_command(app);
  eplb_cli::register_inspect_command(app);
  eplb_cli::register_convert_command(app);
  eplb_cli::register_plot_command(app);
  eplb_cli::register_record_command(app);
  try {
    app.parse(argc, argv);
    // Output that did not reach stdout (a full disk, a closed pipe) is a failure, not success.
    std::cout.flush();
    if (!std::cout) return report("cannot write to standard output", eplb_cli::kExitFailure);
    return eplb_cli::kExitOk;
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);  // --help, --version
    std::string message = error.what();
    // "eplb frobnicate" and "eplb --bogus" fail as "A subcommand is required": name the word.
    const std::vector<std::string> left = app.remaining();
    if (app.get_subcommands().empty() && !left.empty()) {
      if (left.front().rfind('-', 0) == 0) {
        message = "unknown option '" + left.front() + "'";
      } else {
        std::string known;
        for (const CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
          known += (known.empty() ? "" : ", ") + command->get_name();
        }
        message = "unknown command '" + left.front() + "' (known: " + known + ")";
      }
    }
    if (message.empty()) message = "bad usage";
    return report((message + " (see 'eplb --help')").c_str(), eplb_cli::kExitUsage);
  } catch (const eplb_cli::InputError& error) {
    return report(error.what(), eplb_cli::kExitUsage);
  } catch (const eplb_cli::Failure& error) {
    return report(error.what(), eplb_cli::kExitFailure);
  } catch (const std::exception& error) {
    return report(error.what(), eplb_cli::kExitFailure);
  } catch (...) {
    return report("unexpected failure", eplb_cli::kExitFailure);
  }
}
