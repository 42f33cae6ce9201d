// `qaq perplexity`, `qaq mc` and `qaq sweep` as a user runs them: output, exit codes, files.
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "qaq/engine.h"
#include "qaq/eval.h"
#include "test_support.h"
#include "tool_runner.h"

namespace qaq {
namespace {

std::string TempBase() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return test::ScratchDir(std::string("eval_cli_") + info->test_suite_name() + "_" + info->name()) + "/f";
}

// The number after `label` in `text` (NaN when absent).
double NumberAfter(const std::string& text, const std::string& label) {
  const std::size_t at = text.find(label);
  if (at == std::string::npos) return std::nan("");
  return std::strtod(text.c_str() + at + label.size(), nullptr);
}

TEST(EvalCliTest, PerplexityWithKlBaseStatesTheQualityCost) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(text, "data/tinystories_validation_head.txt");
  const test::ToolResult r = test::RunTool("perplexity -m '" + model + "' -f '" + text +
                               "' -c 256 --chunks 4 --kv fp16 --kl-base -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("protocol: prompt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("chunks: 4 of 256 tokens, 508 scored tokens"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Final estimate: PPL = "), std::string::npos);
  const double kl = NumberAfter(r.out, "Mean    KLD:");
  EXPECT_GT(kl, -1e-12);
  EXPECT_LT(kl, 1e-4);
  EXPECT_GT(NumberAfter(r.out, "Same top p:"), 99.0);
  EXPECT_NE(r.out.find("kv fp16: ratio 1.00x against fp16 | mean KL "), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("perplexity ["), std::string::npos) << r.err;  // progress bar
  const test::ToolResult stream = test::RunTool("perplexity -m '" + model + "' -f '" + text +
                                    "' -c 128 --chunks 2 --kl-base --kl-protocol stream");
  ASSERT_EQ(stream.exit_code, 0) << stream.err;
  EXPECT_NE(stream.out.find("protocol: stream"), std::string::npos);
  EXPECT_EQ(NumberAfter(stream.out, "Mean    KLD:"), 0.0);  // fp32 against itself
}

TEST(EvalCliTest, PerplexityErrorsAreOneLine) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(text, "data/tinystories_validation_head.txt");
  const test::ToolResult protocol = test::RunTool("perplexity -m '" + model + "' -f '" + text +
                                      "' --kl-protocol batch");
  EXPECT_EQ(protocol.exit_code, 2);
  EXPECT_NE(protocol.err.find("unknown protocol 'batch'"), std::string::npos) << protocol.err;
  const test::ToolResult missing = test::RunTool("perplexity -m '" + model + "' -f /nonexistent.txt");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;
  const std::string short_path = TempBase() + "_short.txt";
  std::ofstream(short_path) << "Once upon a time there was a cat.";
  const test::ToolResult short_text = test::RunTool("perplexity -m '" + model + "' -f '" + short_path + "' -c 512");
  EXPECT_EQ(short_text.exit_code, 2);
  EXPECT_NE(short_text.err.find("fewer than one chunk"), std::string::npos) << short_text.err;
}

TEST(EvalCliTest, HellaSwag200ItemsPrintAccuracyAndInterval) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(data, "data/hellaswag_val_1000.jsonl");
  const test::ToolResult r = test::RunTool("mc -m '" + model + "' --task hellaswag --data '" + data +
                               "' --limit 200 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::smatch m;
  const std::regex line(R"(accuracy: ([0-9.]+)% \+/- ([0-9.]+)% \(95% interval, (\d+) of (\d+) items; chance ([0-9.]+)%\))");
  ASSERT_TRUE(std::regex_search(r.out, m, line)) << r.out;
  const double accuracy = std::stod(m[1]) / 100, ci = std::stod(m[2]) / 100;
  EXPECT_EQ(m[4], "200");
  EXPECT_EQ(m[5], "25.00");
  // Near chance, as a 260K-parameter story model must be: measured 47 of 200 (23.50%).
  EXPECT_EQ(m[3], "47");
  EXPECT_NEAR(accuracy, 0.25, 0.1);
  EXPECT_NEAR(ci, 1.96 * std::sqrt(accuracy * (1 - accuracy) / 200), 1e-4);
}

TEST(EvalCliTest, McErrorsAreOneLine) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  const test::ToolResult task = test::RunTool("mc -m '" + model + "' --task arc --data x.jsonl");
  EXPECT_EQ(task.exit_code, 2);
  EXPECT_NE(task.err.find("unknown task 'arc'"), std::string::npos) << task.err;
  const test::ToolResult missing = test::RunTool("mc -m '" + model + "' --task piqa --data /nonexistent.jsonl");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("/nonexistent.jsonl"), std::string::npos) << missing.err;
}

// The sweep's CSV states the cache's own byte count: the ratio column equals fp16 bytes / cache
// bytes of the same cache run by the library on the same chunks.
TEST(EvalCliTest, SweepCsvRatioIsTheCachesByteCount) {
  QAQ_REQUIRE_SHARED_FILE(model_path, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(text_path, "data/tinystories_validation_head.txt");
  const std::string dir = TempBase() + "_out";
  std::filesystem::remove_all(dir);
  const std::string grid = TempBase() + "_grid.json";
  std::ofstream(grid) << R"({"title": "test", "context": 128, "chunks": 2,
      "protocols": ["prompt", "stream"],
      "runs": [{"series": "s", "label": "{kv}", "args": "--kv {kv}",
                "values": {"kv": ["fp16", "uniform:4", "kivi:2", "qaq"]}}]})";
  const test::ToolResult r = test::RunTool("sweep -m '" + model_path + "' -f '" + text_path + "' --grid '" +
                               grid + "' -o '" + dir + "' -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| s | prompt |"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("sweep ["), std::string::npos) << r.err;
  const std::string csv = test::ReadWholeFile(dir + "/results.csv");
  std::istringstream lines(csv);
  std::string header, row;
  std::getline(lines, header);
  std::vector<std::string> names;
  {
    std::istringstream h(header);
    for (std::string f; std::getline(h, f, ',');) names.push_back(f);
  }
  auto column = [&](const std::string& name) {
    return std::size_t(std::find(names.begin(), names.end(), name) - names.begin());
  };
  int n_rows = 0;
  auto model = LoadModel(model_path);
  ASSERT_TRUE(model.ok());
  auto tokenizer = LoadTokenizer(*model);
  ASSERT_TRUE(tokenizer.ok());
  const std::vector<int> tokens = tokenizer->Encode(*ReadTextFile(text_path), true);
  while (std::getline(lines, row)) {
    std::vector<std::string> f;
    std::istringstream s(row);
    for (std::string x; std::getline(s, x, ',');) f.push_back(x);
    ASSERT_EQ(f.size(), names.size()) << row;
    ++n_rows;
    const double ratio = std::stod(f[column("compression_ratio")]);
    const double cache_bytes = std::stod(f[column("cache_bytes")]);
    const double fp16_bytes = std::stod(f[column("fp16_bytes")]);
    EXPECT_DOUBLE_EQ(ratio, fp16_bytes / cache_bytes) << row;
    TextEvalOptions o;
    o.context = 128;
    o.n_chunks = 2;
    o.protocol = *ParseEvalProtocol(f[column("protocol")]);
    auto own = EvaluatePerplexity(*model, tokens, {.kv_cache = f[column("label")]}, o);
    ASSERT_TRUE(own.ok());
    EXPECT_EQ(std::size_t(cache_bytes), own->memory.cache_bytes()) << row;
    EXPECT_DOUBLE_EQ(ratio, own->memory.compression_ratio()) << row;
    if (f[column("label")] != "fp16") {
      EXPECT_GT(ratio, 1.2) << row;
    }
  }
  EXPECT_EQ(n_rows, 8);
  for (const char* f : {"results.json", "summary.md", "kl_vs_ratio_prompt.svg", "top1_vs_ratio_stream.svg"}) {
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + f)) << f;
  }
  // Run again: every row is reused.
  const test::ToolResult again = test::RunTool("sweep -m '" + model_path + "' -f '" + text_path + "' --grid '" +
                                   grid + "' -o '" + dir + "'");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("rows: 8 (8 reused)"), std::string::npos) << again.out;
  // A row whose flags are not valid is reported with the flags.
  std::ofstream(grid) << R"({"runs": [{"series": "x", "args": "--no-such-flag 3"}]})";
  const test::ToolResult bad = test::RunTool("sweep -m '" + model_path + "' -f '" + text_path + "' --grid '" +
                                 grid + "' -o '" + dir + "'");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--no-such-flag"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace qaq
