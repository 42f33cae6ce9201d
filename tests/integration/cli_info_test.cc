// `qaq info` end to end: the built tool on the real models and on bad files.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "io/test_files.h"
#include "test_support.h"

namespace qaq {
namespace {

#ifdef QAQ_TOOL_PATH

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Quote(const std::string& s) {
  std::string q(1, '\'');
  for (char ch : s) {
    if (ch == '\'') {
      q.append("'\\''");
    } else {
      q.push_back(ch);
    }
  }
  q.push_back('\'');
  return q;
}

RunResult RunTool(const std::vector<std::string>& args) {
  const std::string out_path = test::TempPath("stdout");
  const std::string err_path = test::TempPath("stderr");
  std::string command = Quote(QAQ_TOOL_PATH);
  for (const std::string& a : args) {
    command.push_back(' ');
    command.append(Quote(a));
  }
  command.append(" >").append(Quote(out_path)).append(" 2>").append(Quote(err_path));
  const int status = std::system(command.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = Slurp(out_path);
  r.err = Slurp(err_path);
  return r;
}

// Exit code 1 and exactly one line on stderr, "qaq: error: ..." containing `fragment`.
void ExpectOneLineError(const RunResult& r, int exit_code, const std::string& fragment) {
  EXPECT_EQ(r.exit_code, exit_code) << r.err;
  EXPECT_EQ(r.err.rfind("qaq: error: ", 0), 0u) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.back(), '\n');
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(CliInfoTest, Llama2cCheckpointWithTokenizerBesideIt) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/stories260K.bin");
  const RunResult r = RunTool({"info", "-m", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  for (const char* line :
       {"format:             llama2.c checkpoint\n",
        "name:               stories260K\n",
        "dim:                64\n",
        "hidden_dim:         172\n",
        "n_layers:           5\n",
        "n_heads:            8\n",
        "n_kv_heads:         4 (grouped-query attention",
        "head_dim:           8\n",
        "context_length:     512\n",
        "rope_theta:         10000\n",
        "rope_dim:           8 (adjacent pairs)\n",
        "rms_eps:            1e-05\n",
        "shared_classifier:  yes\n",
        "vocab_size:         512\n",
        "vocabulary:         512 tokens, tokenizer file beside the model; BOS 1, EOS 2\n",
        "kv_bytes_per_token: 640 ",
        "tensors: 47 ",
        "  blk.4.ffn_down.weight     f32        [64, 172]         44032\n",
        "total weight bytes: 1040128 (0.99 MiB)\n",
        "tensor types:       f32 47\n"}) {
    EXPECT_TRUE(Contains(r.out, line)) << "missing: " << line << "\nin:\n" << r.out;
  }
}

TEST(CliInfoTest, QuantizedGgufCountsTypes) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/stories260K-q8_0-ffn_down-f16.gguf");
  QAQ_REQUIRE_SHARED_FILE(tok, "models/tok512.bin");
  const RunResult r = RunTool({"info", "-m", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* line : {"format:             GGUF\n", "shared_classifier:  no\n",
                           "vocabulary:         512 tokens, embedded in the model; BOS 1, EOS 2\n",
                           "  token_embd.weight         q8_0       [512, 64]         34816\n",
                           "  blk.0.ffn_down.weight     f16        [64, 172]         22016\n",
                           "tensors: 48 ", "tensor types:       f16 5, f32 11, q8_0 32\n"}) {
    EXPECT_TRUE(Contains(r.out, line)) << "missing: " << line << "\nin:\n" << r.out;
  }
  // -z replaces the embedded vocabulary.
  const RunResult z = RunTool({"info", "-m", path, "-z", tok});
  ASSERT_EQ(z.exit_code, 0) << z.err;
  EXPECT_TRUE(Contains(z.out, "vocabulary:         512 tokens, " + tok + "; BOS 1, EOS 2\n"))
      << z.out;
}

TEST(CliInfoTest, MissingFile) {
  const std::string path = test::TempPath("no-such-model.gguf");
  ExpectOneLineError(RunTool({"info", "-m", path}), 1, "no such file '" + path + "'");
}

TEST(CliInfoTest, CorruptFiles) {
  QAQ_REQUIRE_SHARED_FILE(gguf, "models/stories260K-f32.gguf");
  const std::string bytes = Slurp(gguf);
  const std::string cut = test::TempPath("cut.gguf");
  std::ofstream(cut, std::ios::binary).write(bytes.data(), 5000);
  ExpectOneLineError(RunTool({"info", "-m", cut}), 1, "truncated");
  const std::string text = test::TempPath("notes.txt");
  std::ofstream(text) << "these are not the weights you are looking for\nsecond line\n";
  ExpectOneLineError(RunTool({"info", "-m", text}), 1, "not a valid llama2.c checkpoint");
  QAQ_REQUIRE_SHARED_FILE(bin, "models/stories260K.bin");
  // A model file given as the tokenizer.
  ExpectOneLineError(RunTool({"info", "-m", bin, "-z", bin}), 1, "tokenizer '" + bin + "'");
}

TEST(CliInfoTest, UsageErrorsExitWithTwo) {
  ExpectOneLineError(RunTool({"info"}), 2, "--model is required");
}

#else
TEST(CliInfoTest, ToolNotBuilt) { GTEST_SKIP() << "QAQ_TOOL_PATH not defined (tools disabled)"; }
#endif

}  // namespace
}  // namespace qaq
