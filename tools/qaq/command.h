// Subcommands of the `qaq` tool register themselves here, so adding one is one new file
// (tools/qaq/cmd_NAME.cc) and no edit elsewhere. A subcommand parses its flags with CLI11 and
// returns a Status; main() turns a failure into one line on stderr and the exit code.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "qaq/status.h"

namespace qaq::tool {

// Adds the subcommand's options to `sub` and returns the function that runs it once parsed.
using CommandSetup = std::function<std::function<Status()>(CLI::App& sub)>;

struct CommandInfo {
  std::string name;
  std::string description;
  CommandSetup setup;
  int order = 100;  // position in --help
};

std::vector<CommandInfo>& CommandRegistry();

struct RegisterCommand {
  explicit RegisterCommand(CommandInfo info) { CommandRegistry().push_back(std::move(info)); }
};

}  // namespace qaq::tool
