// `qaq generate --kv ...` as a user runs it: the cache summary, budget mode's report, and one-line
// errors with exit code 2 for bad flag values and 1 for failures.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_support.h"
#include "tool_runner.h"

namespace qaq {
namespace {

TEST(KvCliTest, GenerateWithTheQaqCacheEndsWithItsSummary) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  const test::ToolResult r = test::RunTool("generate -m '" + model + "' -p 'Once upon a time' -n 80 --temp 0 --kv qaq");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(r.out.size(), 200u);
  for (const char* part : {"kv cache qaq: 84 tokens", "ratio", "keys   (channel layout)", "values:",
                           "widths", "bytes: codes", "full-precision tier (ram)", "re-quantizations:",
                           "qaq: key error 0.1, value error 0.2, window 5",
                           "key |q|^2: from the prompt (80 positions, every layer and KV head pooled), 0.9 quantile"}) {
    EXPECT_NE(r.err.find(part), std::string::npos) << part << "\n" << r.err;
  }
}

TEST(KvCliTest, BudgetModeSaysWhatItChose) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  // About 190 tokens: keys per channel in blocks of 64 need complete blocks to compress.
  std::string prompt;
  for (int i = 0; i < 3; ++i) {
    prompt += "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One "
              "day, she saw a big, red ball. She wanted to play with it, but it was too high. ";
  }
  const test::ToolResult r = test::RunTool("generate -m '" + model + "' -p '" + prompt + "' -n 8 --temp 0 --kv qaq --kv-ratio 5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("budget: ratio 5.00x requested; chose key error"), std::string::npos) << r.err;
  const test::ToolResult bits = test::RunTool("generate -m '" + model + "' -p '" + prompt + "' -n 8 --temp 0 --kv qaq --kv-bits 4");
  ASSERT_EQ(bits.exit_code, 0) << bits.err;
  EXPECT_NE(bits.err.find("budget: ratio 4.00x requested"), std::string::npos) << bits.err;
}

TEST(KvCliTest, BaselinesAndFlagsReachTheCache) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  const std::string base = "generate -m '" + model + "' -p 'Once upon a time' -n 16 --temp 0 ";
  const test::ToolResult uniform = test::RunTool(base + "--kv uniform:4/2 --kv-keys channel:8 --kv-keys-prerope");
  ASSERT_EQ(uniform.exit_code, 0) << uniform.err;
  EXPECT_NE(uniform.err.find("kv cache uniform:4/2"), std::string::npos) << uniform.err;
  EXPECT_NE(uniform.err.find("channel layout, before RoPE"), std::string::npos) << uniform.err;
  const test::ToolResult kivi = test::RunTool(base + "--kv kivi:2");
  ASSERT_EQ(kivi.exit_code, 0) << kivi.err;
  EXPECT_NE(kivi.err.find("kv cache kivi:2"), std::string::npos) << kivi.err;
  const test::ToolResult qaq = test::RunTool(base + "--kv qaq --kv-keys token --kv-keys-postrope --qaq-granularity layer "
                                        "--qaq-bits 2:6 --qaq-window 3 --qaq-tier none --qaq-formula authors");
  ASSERT_EQ(qaq.exit_code, 0) << qaq.err;
  EXPECT_NE(qaq.err.find("keys   (token layout)"), std::string::npos) << qaq.err;
  EXPECT_NE(qaq.err.find("window 3, bits 2:6, granularity layer, formula authors"), std::string::npos) << qaq.err;
  EXPECT_NE(qaq.err.find("0 up"), std::string::npos) << qaq.err;
  const test::ToolResult disk = test::RunTool(base + "--kv qaq --qaq-tier disk --qaq-tier-dir '" + ::testing::TempDir() + "'");
  ASSERT_EQ(disk.exit_code, 0) << disk.err;
  EXPECT_NE(disk.err.find("full-precision tier (disk)"), std::string::npos) << disk.err;
}

TEST(KvCliTest, BadValuesAreOneLineUsageErrors) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  const std::string base = "generate -m '" + model + "' -p hi -n 4 ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--kv qaq --qaq-bits 9:3", "--qaq-bits 9:3"},
      {"--kv qaq --qaq-window 0", "--qaq-window 0"},
      {"--kv qaq --kv-ratio 0.5", "--kv-ratio 0.5"},
      {"--kv qaq --kv-bits 20", "--kv-bits 20"},
      {"--kv qaq --qaq-tier tape", "ram, disk or none"},
      {"--kv qaq --qaq-key-error -1", "--qaq-key-error"},
      {"--kv qaq --qaq-outliers 1.5", "--qaq-outliers"},
      {"--kv uniform:4 --qaq-window 3", "use --kv qaq"},
      {"--kv uniform:12", "12 bits"},
      {"--kv fp16 --kv-keys channel:8", "takes no options"},
      {"--kv qaq --kv-keys rows", "token or channel:G"},
  };
  for (const auto& [flags, message] : cases) {
    const test::ToolResult r = test::RunTool(base + flags);
    EXPECT_EQ(r.exit_code, 2) << flags << "\n" << r.err;
    EXPECT_EQ(test::CountLines(r.err), 1) << flags << "\n" << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << flags << "\n" << r.err;
  }
}

TEST(KvCliTest, DiskTierInAReadOnlyFolderFailsWithExitCode1) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  // /proc accepts no new files, even for root; a folder without write permission is tried too
  // when the tests do not run as root (root may write anywhere).
  std::vector<std::string> folders = {"/proc"};
  if (geteuid() != 0) {
    const std::string dir = ::testing::TempDir() + "/qaq_read_only";
    mkdir(dir.c_str(), 0555);
    chmod(dir.c_str(), 0555);
    folders.push_back(dir);
  }
  for (const std::string& folder : folders) {
    const test::ToolResult r = test::RunTool("generate -m '" + model + "' -p hi -n 4 --kv qaq --qaq-tier disk --qaq-tier-dir " + folder);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(test::CountLines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("disk tier: cannot create a file in '" + folder + "'"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

}  // namespace
}  // namespace qaq
