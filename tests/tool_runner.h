// Runs the built `qaq` tool the way a user does and captures what it prints. For integration
// tests only: QAQ_TOOL_PATH is defined for qaq_integration_test (tests/CMakeLists.txt).
#pragma once

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace qaq::test {

struct ToolResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `qaq ARGS` (ARGS already shell-quoted). stdout and stderr go to files named after the
// running test, so test cases that ctest runs in parallel processes do not collide.
inline ToolResult RunTool(const std::string& args) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string base = ::testing::TempDir() + "/qaq_tool_" + info->test_suite_name() + "_" +
                           info->name();
  const std::string out = base + ".stdout", err = base + ".stderr";
  const std::string command = std::string(QAQ_TOOL_PATH) + " " + args + " >" + out + " 2>" + err;
  const int status = std::system(command.c_str());
  ToolResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadWholeFile(out);
  r.err = ReadWholeFile(err);
  return r;
}

// Number of '\n'-terminated lines (an error must be exactly one).
inline int CountLines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

}  // namespace qaq::test
