// `qaq generate` and `qaq bench` as a user runs them: output, exit codes, error lines.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "stories_reference.h"
#include "test_support.h"
#include "tool_runner.h"

namespace qaq {
namespace {

TEST(CliGenerateTest, GreedyOutputIsRunCsText) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(tok, "models/tok512.bin");
  QAQ_REQUIRE_SHARED_FILE(ref_path, "models/stories260K-reference-greedy.txt");
  const test::ReferenceGreedy ref = test::ReadReferenceGreedy(ref_path);
  const test::ToolResult r = test::RunTool("generate -m '" + model + "' -z '" + tok +
                               "' -p 'Once upon a time' -n 64 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, ref.text + "\n");
  EXPECT_NE(r.err.find("prompt: 5 tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("decode: 63 tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << r.err;
}

TEST(CliGenerateTest, ThreadCountDoesNotChangeSampledText) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  const std::string args = "generate -m '" + model + "' -p 'Once upon a time' -n 120 --temp 0.9 --seed 11";
  const test::ToolResult one = test::RunTool(args + " -t 1");
  const test::ToolResult two = test::RunTool(args + " -t 2");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_EQ(one.out, two.out);
  EXPECT_GT(one.out.size(), 200u);
  // A different seed gives a different story.
  const test::ToolResult other = test::RunTool("generate -m '" + model +
                                   "' -p 'Once upon a time' -n 120 --temp 0.9 --seed 12");
  EXPECT_NE(one.out, other.out);
}

TEST(CliGenerateTest, PromptLongerThanContextFailsWithOneLine) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  const test::ToolResult r = test::RunTool("generate -m '" + model + "' -p 'Once upon a time' -c 4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(test::CountLines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("the prompt has 5 tokens but the context holds 4"), std::string::npos) << r.err;
}

TEST(CliGenerateTest, UsageErrorsExitWith2) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  for (const std::string& args : std::vector<std::string>{"generate -m '" + model + "' --no-such-flag", "generate -m '" + model + "' --temp -1",
        "generate -m '" + model + "' --top-p 0", "generate -m '" + model + "' -n -3",
        "generate -m '" + model + "' -c 100000", "generate -m '" + model + "' -t 0", "generate -m '" + model + "' --seed -2",
        "generate -m '" + model + "' -n many", "generate -p hello"}) {
    const test::ToolResult r = test::RunTool(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_EQ(test::CountLines(r.err), 1) << args << "\n" << r.err;
  }
  const test::ToolResult kv = test::RunTool("generate -m '" + model + "' --kv int3");
  EXPECT_EQ(kv.exit_code, 2);
  EXPECT_NE(kv.err.find("valid: fp32, fp16"), std::string::npos) << kv.err;
}

TEST(CliGenerateTest, MissingModelExitsWith1) {
  const test::ToolResult r = test::RunTool("generate -m /nonexistent/model.bin -p hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(test::CountLines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/model.bin"), std::string::npos) << r.err;
}

TEST(CliBenchTest, PrintsATableOfSpeeds) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  const test::ToolResult r = test::RunTool("bench -m '" + model + "' -p 16 -n 16 -r 3 --kv fp16");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* row : {"|      1 |", "|      3 |", "| median |", "|    min |", "|    max |", "| stddev |"}) {
    EXPECT_NE(r.out.find(row), std::string::npos) << row << "\n" << r.out;
  }
  EXPECT_NE(r.out.find("kv fp16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("decode t/cpu-s"), std::string::npos) << r.out;
  const test::ToolResult too_long = test::RunTool("bench -m '" + model + "' -p 500 -n 100");
  EXPECT_EQ(too_long.exit_code, 1);
  EXPECT_EQ(test::RunTool("bench -m '" + model + "' -r 0").exit_code, 2);
}

}  // namespace
}  // namespace qaq
