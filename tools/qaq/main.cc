// The qaq command: dispatches to the subcommands registered in tools/qaq/cmd_*.cc.
// Exit codes: 0 success, 1 a failure (bad file, bad input), 2 a usage error (bad flag).
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "command.h"

namespace qaq::tool {
std::vector<CommandInfo>& CommandRegistry() {
  static std::vector<CommandInfo> registry;
  return registry;
}
}  // namespace qaq::tool

int main(int argc, char** argv) {
  using qaq::tool::CommandRegistry;
  CLI::App app{"qaq: quality-adaptive KV-cache quantization for LLaMA-family models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "qaq 0.1.0");

  auto& registry = CommandRegistry();
  std::sort(registry.begin(), registry.end(),
            [](const auto& a, const auto& b) { return a.order < b.order || (a.order == b.order && a.name < b.name); });
  std::function<qaq::Status()> run;
  for (auto& info : registry) {
    CLI::App* sub = app.add_subcommand(info.name, info.description);
    auto runner = info.setup(*sub);
    sub->callback([&run, runner] { run = runner; });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, as for every other error; CLI11's own messages are already one line.
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    fmt::print(stderr, "qaq: error: {} (see qaq --help)\n", what);
    return 2;
  }
  if (!run) return 2;
  const qaq::Status status = run();
  if (!status.ok()) {
    fmt::print(stderr, "qaq: error: {}\n", status.message());
    return status.code() == qaq::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}
