// The `eplb` commands for fuzz_cli_args, which stops after parsing, before any command runs:
// reaching one of these is a bug in the target (or in CLI11's callback order), so it aborts.
#include <cstdlib>

#include "eplb/commands.hpp"

namespace eplb_cli {

void run_plan(const PlanArgs&) { std::abort(); }
void run_demo(const DemoArgs&) { std::abort(); }
void run_algorithms(const AlgorithmsArgs&) { std::abort(); }
void run_inspect(const InspectArgs&) { std::abort(); }
void run_convert(const ConvertArgs&) { std::abort(); }
void run_plot(const PlotArgs&) { std::abort(); }
void run_migrate(const MigrateArgs&) { std::abort(); }
void run_record(const RecordArgs&) { std::abort(); }

}  // namespace eplb_cli
