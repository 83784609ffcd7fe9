# Writes the eplb(1) man page from the CLI's own help, so that it documents every command and
# cannot drift from it: `eplb --help`, then `eplb COMMAND --help` for each command it lists.
# cmake -DEPLB_CLI=<eplb> -DVERSION=<x.y.z> -DOUT=<eplb.1> -P make_manpage.cmake
execute_process(COMMAND "${EPLB_CLI}" --help OUTPUT_VARIABLE top RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "'${EPLB_CLI} --help' failed: ${result}")
endif()
# CLI11 lists the commands under "Subcommands:" (or "SUBCOMMANDS:"), one per line, indented.
string(REGEX MATCH "(SUBCOMMANDS|Subcommands):\n(.*)" listing "${top}")
string(REGEX MATCHALL "\n  ([a-z][a-z0-9-]*)" lines "\n${CMAKE_MATCH_2}")
set(commands "")
foreach(line IN LISTS lines)
  string(STRIP "${line}" command)
  list(APPEND commands "${command}")
endforeach()
list(LENGTH commands count)
if(count EQUAL 0)
  message(FATAL_ERROR "no commands found in 'eplb --help':\n${top}")
endif()

# troff: protect backslashes and lines starting with a dot or a quote.
function(eplb_roff text out)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

string(TIMESTAMP date "%Y-%m-%d" UTC)  # honours SOURCE_DATE_EPOCH
eplb_roff("${top}" top_roff)
string(REPLACE ";" ", " command_list "${commands}")
set(page ".TH EPLB 1 \"${date}\" \"libeplb ${VERSION}\" \"User Commands\"
.SH NAME
eplb \\- expert-parallel load balancing for Mixture-of-Experts serving
.SH SYNOPSIS
.B eplb
.I COMMAND
[\\fIOPTIONS\\fR]
.SH DESCRIPTION
The command-line face of libeplb: plans expert placements and the weight migrations between them,
records routing statistics, and inspects, converts and plots placements.
Commands: ${command_list}.
Exit status: 0 on success, 2 on bad usage or bad input (one line on stderr naming the problem),
1 on any other failure.
.PP
.nf
${top_roff}
.fi
.SH COMMANDS
")
foreach(command IN LISTS commands)
  execute_process(COMMAND "${EPLB_CLI}" ${command} --help OUTPUT_VARIABLE help
                  RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "'eplb ${command} --help' failed: ${result}")
  endif()
  eplb_roff("${help}" help_roff)
  string(APPEND page ".SS eplb ${command}\n.nf\n${help_roff}\n.fi\n")
endforeach()
string(APPEND page ".SH SEE ALSO
The C API reference is the header eplb/eplb.h; pkg-config --cflags --libs eplb.
")
file(WRITE "${OUT}" "${page}")
