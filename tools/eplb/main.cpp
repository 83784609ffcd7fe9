// eplb: the command-line face of libeplb. Exit status 0 on success, 2 on bad usage or bad input
// (one line on stderr naming the problem), 1 on any other failure.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "eplb/cli_error.hpp"
#include "eplb/command_line.hpp"
#include "eplb/eplb.h"

namespace {

// `message` as one line of valid UTF-8 that reads back unambiguously: a control character (C0,
// DEL, C1) or a line or paragraph separator prints as \n, \t, \r or \xNN per byte, and so does
// each byte that is not part of a valid UTF-8 sequence (a file name is bytes, and a parser's
// message may quote a damaged document's); a backslash prints as \\.
std::string one_printable_line(std::string_view message) {
  std::string line;
  const auto escape = [&line](unsigned char byte) {
    static constexpr char kHex[] = "0123456789abcdef";
    switch (byte) {
      case '\n':
        line += "\\n";
        return;
      case '\t':
        line += "\\t";
        return;
      case '\r':
        line += "\\r";
        return;
      default:
        line += {'\\', 'x', kHex[byte >> 4], kHex[byte & 15]};
    }
  };
  const auto continuation = [&](std::size_t at, unsigned char low, unsigned char high) {
    if (at >= message.size()) return false;
    const auto byte = static_cast<unsigned char>(message[at]);
    return byte >= low && byte <= high;
  };
  for (std::size_t i = 0; i < message.size();) {
    const auto byte = static_cast<unsigned char>(message[i]);
    // The length of a valid sequence starting here (RFC 3629: no overlong forms, surrogates or
    // code points past U+10FFFF), or 0.
    std::size_t length = 0;
    if (byte >= 0x20 && byte < 0x7f) {
      length = 1;
    } else if (byte >= 0xc2 && byte <= 0xdf) {
      length = continuation(i + 1, 0x80, 0xbf) ? 2 : 0;
    } else if (byte >= 0xe0 && byte <= 0xef) {
      const unsigned char low = byte == 0xe0 ? 0xa0 : 0x80, high = byte == 0xed ? 0x9f : 0xbf;
      length = continuation(i + 1, low, high) && continuation(i + 2, 0x80, 0xbf) ? 3 : 0;
    } else if (byte >= 0xf0 && byte <= 0xf4) {
      const unsigned char low = byte == 0xf0 ? 0x90 : 0x80, high = byte == 0xf4 ? 0x8f : 0xbf;
      length = continuation(i + 1, low, high) && continuation(i + 2, 0x80, 0xbf) &&
                       continuation(i + 3, 0x80, 0xbf)
                   ? 4
                   : 0;
    }
    // C1 controls (U+0080..U+009F) and U+2028 / U+2029 are valid but break or hide lines.
    const auto next = [&](std::size_t k) { return static_cast<unsigned char>(message[i + k]); };
    const bool hidden =
        (length == 2 && byte == 0xc2 && next(1) <= 0x9f) ||
        (length == 3 && byte == 0xe2 && next(1) == 0x80 && (next(2) == 0xa8 || next(2) == 0xa9));
    if (byte == '\\') {
      line += "\\\\";
      ++i;
    } else if (length == 0) {
      escape(byte);
      ++i;
    } else if (hidden) {
      for (std::size_t k = 0; k < length; ++k) escape(next(k));
      i += length;
    } else {
      line.append(message.substr(i, length));
      i += length;
    }
  }
  return line;
}

int report(const std::string& message, int code) {
  std::cerr << "eplb: error: " << one_printable_line(message) << '\n';
  return code;
}

// Levenshtein distance, for "did you mean" on a mistyped option.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The closest long option of `command` to `word` ("--count" -> "--counts", "-gpus" -> "--gpus"),
// or "" when none is within two edits.
std::string closest_option(const CLI::App& command, const std::string& word) {
  std::string best;
  std::size_t best_distance = 3;
  for (const CLI::Option* option : command.get_options()) {
    for (const std::string& name : option->get_lnames()) {
      const std::size_t d = edit_distance(word, "--" + name);
      if (d < best_distance) {
        best_distance = d;
        best = "--" + name;
      }
    }
  }
  return best;
}

// Whether a word CLI11 left over reads as an option ("--bogus", "-r", "-x=1"): a dash and a
// letter, not a negative number or "-" (standard input).
bool looks_like_option(const std::string& word) {
  if (word.size() < 2 || word[0] != '-') return false;
  const char next = word[1];
  return next != '.' && (next < '0' || next > '9');
}

// "FILE is required" for a missing argument (not an option), with what the argument is.
std::string required_argument_message(const CLI::App& command, const std::string& message) {
  for (const CLI::Option* option : command.get_options()) {
    if (!option->get_positional() || message != option->get_name() + " is required") continue;
    std::string description = option->get_description();
    if (!description.empty()) description[0] = static_cast<char>(std::tolower(description[0]));
    return description.empty() ? message : message + ": " + description;
  }
  return message;
}

// A usage error: its message (CLI11's, or a plainer one for an unknown command or option) and
// the command whose --help to point at.
struct Usage {
  std::string message;
  std::string help = "eplb --help";
};

// The commands' names, in the order --help lists them.
std::vector<std::string> command_names(CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
    names.push_back(command->get_name());
  }
  return names;
}

bool is_command(CLI::App& app, const std::string& word) {
  const std::vector<std::string> names = command_names(app);
  return std::find(names.begin(), names.end(), word) != names.end();
}

// "unknown command 'frob' (known: plan, demo, ...)".
std::string unknown_command(CLI::App& app, const std::string& word) {
  std::string known;
  for (const std::string& name : command_names(app)) known += (known.empty() ? "" : ", ") + name;
  return "unknown command '" + word + "' (known: " + known + ")";
}

Usage usage_of(CLI::App& app, const CLI::ParseError& error) {
  const std::string message = error.what();
  // Words before the command: "eplb --bogus", "eplb -x plan", "eplb frobnicate".
  const std::vector<std::string> left = app.remaining();
  if (!left.empty() && looks_like_option(left.front())) {
    return {"unknown option '" + left.front().substr(0, left.front().find('=')) + "' for 'eplb'"};
  }
  const std::vector<CLI::App*> chosen = app.get_subcommands();
  if (!chosen.empty() && !left.empty()) {
    return {"unexpected argument '" + left.front() + "' before the command '" +
            chosen.front()->get_name() + "'"};
  }
  if (chosen.empty()) {
    // These fail as "A subcommand is required": name the word.
    if (!left.empty()) {
      return {unknown_command(app, left.front())};
    }
    return {message.empty() ? "bad usage" : message};
  }
  // "eplb plan --count f" fails as "The following arguments were not expected: f --count", and
  // "eplb plan -r 16 ..." as "--replicas is required" (CLI11 checks that first): an unknown
  // option is the likelier mistake, so it is the one named.
  const CLI::App& command = *chosen.front();
  const std::string help = "eplb " + command.get_name() + " --help";
  for (const std::string& word : command.remaining()) {
    if (!looks_like_option(word)) continue;
    const std::string name = word.substr(0, word.find('='));
    const std::string near = closest_option(command, name);
    return {"unknown option '" + name + "' for 'eplb " + command.get_name() + "'" +
                (near.empty() ? "" : " (did you mean '" + near + "'?)"),
            help};
  }
  // "eplb plan logical_count.json ...", "eplb inspect a.eplb b.eplb": a word no argument takes
  // (CLI11 reports "The following argument was not expected", or "--replicas is required"
  // first): say what the command takes instead. A bad value (a ValidationError) is the
  // likelier cause of a stray word after it, and is reported as it is.
  const bool extras_or_required = dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr ||
                                  dynamic_cast<const CLI::RequiredError*>(&error) != nullptr;
  const std::vector<std::string> extra = command.remaining();  // none of them an option now
  if (extras_or_required && !extra.empty()) {
    return {"unexpected argument '" + extra.front() + "' for 'eplb " + command.get_name() +
                "': " + eplb_cli::arguments_hint(command.get_name()),
            help};
  }
  if (dynamic_cast<const CLI::RequiredError*>(&error) != nullptr) {
    return {required_argument_message(command, message), help};
  }
  // "eplb demo --seed" fails as "--seed: 1 required S missing": say it plainly.
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&error) != nullptr) {
    const std::size_t colon = message.find(": 1 required ");
    if (colon != std::string::npos && message.ends_with(" missing")) {
      const std::size_t type = colon + std::string_view(": 1 required ").size();
      return {
          message.substr(0, colon) + " needs a value (" +
              message.substr(type, message.size() - std::string_view(" missing").size() - type) +
              ")",
          help};
    }
  }
  return {message.empty() ? "bad usage" : message, help};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"eplb: expert-parallel load balancing for Mixture-of-Experts serving (libeplb " +
                   std::string(eplb_version_string()) + ")",
               "eplb"};
  app.set_version_flag("--version", std::string("eplb ") + eplb_version_string());
  app.require_subcommand(1);
  // An option given twice takes its last value, as in most command-line tools.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  eplb_cli::add_commands(app);
  // Set after the commands, which would otherwise inherit it.
  app.footer("Run 'eplb COMMAND --help' (or 'eplb help COMMAND') for the options of a command.");
  // "eplb help [COMMAND]" is "eplb [COMMAND] --help".
  std::vector<char*> words(argv, argv + argc);
  char help_flag[] = "--help";
  if (argc >= 2 && std::string_view(argv[1]) == "help") {
    if (argc > 3) {
      return report(
          "help takes at most one command, not '" + std::string(argv[3]) + "' (see 'eplb --help')",
          eplb_cli::kExitUsage);
    }
    if (argc == 3 && !is_command(app, argv[2])) {
      return report(unknown_command(app, argv[2]) + " (see 'eplb --help')", eplb_cli::kExitUsage);
    }
    words.erase(words.begin() + 1);
    words.push_back(help_flag);
  }
  try {
    app.parse(static_cast<int>(words.size()), words.data());
    // Output that did not reach stdout (a full disk, a closed pipe) is a failure, not success.
    std::cout.flush();
    if (!std::cout) return report("cannot write to standard output", eplb_cli::kExitFailure);
    return eplb_cli::kExitOk;
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);  // --help, --version
    const Usage usage = usage_of(app, error);
    return report(usage.message + " (see '" + usage.help + "')", eplb_cli::kExitUsage);
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
