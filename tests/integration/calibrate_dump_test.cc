// `qaq calibrate` and `qaq dump` on stories260K, through the built tool: their files load, their
// numbers agree with an independent computation, and a dump feeds `qaq quantize`.
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kernels/rope.h"
#include "kv/recording_cache.h"
#include "qaq/engine.h"
#include "qaq/quant.h"
#include "qaq/tokenizer.h"
#include "quant/npy.h"
#include "test_support.h"
#include "tool_runner.h"

namespace qaq {
namespace {

// Probabilities recomputed in double from the dumped float Q and K against the engine's float
// softmax.
constexpr double kProbTolerance = 1e-5;
// The calibration and the test sum the same float products in double in the same order; only
// the JSON round trip (17 significant digits) separates them.
constexpr double kQuantileRelTolerance = 1e-12;

// The first `bytes` of a shared text file as a temporary file (the tool tokenizes all of it).
std::string TextHead(const std::string& path, std::size_t bytes, const std::string& dir) {
  std::string text = test::ReadWholeFile(path).substr(0, bytes);
  const std::string out = dir + "/text.txt";
  std::ofstream(out, std::ios::binary) << text;
  return out;
}

TEST(CalibrateCommandTest, WritesALoadableCalibrationThatMatchesRecordedQueries) {
  QAQ_REQUIRE_SHARED_FILE(model_path, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(tok_path, "models/tok512.bin");
  QAQ_REQUIRE_SHARED_FILE(data_path, "data/tinystories_validation_head.txt");
  const std::string dir = test::ScratchDir("calibrate_dump_calibrate");
  const std::string text = TextHead(data_path, 6000, dir);
  const int ctx = 128, chunks = 3;
  const test::ToolResult r = test::RunTool("calibrate -m '" + model_path + "' -z '" + tok_path + "' -f '" + text +
                               "' -c 128 --chunks 3 -t 2 -o " + dir + "/calib.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("3 chunks of 128 tokens (384 positions)"), std::string::npos) << r.out;
  EXPECT_EQ(test::CountLines(r.out), 2 + 5 * 4 + 1) << r.out;  // heading, column names, one row per (layer, KV head), path

  auto calibration = QueryNormCalibration::Load(dir + "/calib.json");
  ASSERT_TRUE(calibration.ok()) << calibration.status().message();
  ASSERT_EQ(calibration->n_layers(), 5);
  ASSERT_EQ(calibration->n_kv_heads(), 4);
  EXPECT_DOUBLE_EQ(calibration->quantile(), 0.9);
  const nlohmann::json j = nlohmann::json::parse(test::ReadWholeFile(dir + "/calib.json"));
  ASSERT_EQ(j["summary"].size(), 20u);
  for (const auto& s : j["summary"]) {
    const int l = s["layer"], h = s["kv_head"];
    EXPECT_EQ(s["count"], chunks * ctx);
    EXPECT_EQ(calibration->n_samples(l, h), std::size_t(chunks * ctx));
    const double p50 = s["p50"], p90 = s["p90"], p99 = s["p99"], max = s["max"], mean = s["mean"];
    EXPECT_GT(p50, 0.0);
    EXPECT_LE(p50, p90);
    EXPECT_LE(p90, p99);
    EXPECT_LE(p99, max);
    EXPECT_GT(mean, 0.0);
    EXPECT_LE(mean, max);
    EXPECT_DOUBLE_EQ(calibration->QNormSq(l, h), p90);  // --quantile 0.9
  }
  EXPECT_EQ(j["source"]["chunks"], chunks);

  // Independently: the same chunks through a session that records whole queries; one sample per
  // position and (layer, KV head) is the largest |q~|^2 of the group, the 0.9 quantile by numpy's
  // linear interpolation.
  auto model = LoadModel(model_path);
  ASSERT_TRUE(model.ok());
  auto tokenizer = LoadTokenizer(*model, tok_path);
  ASSERT_TRUE(tokenizer.ok());
  const std::vector<int> tokens = tokenizer->Encode(test::ReadWholeFile(text), true);
  ASSERT_GE(tokens.size(), std::size_t(chunks * ctx));
  const ModelConfig& c = model->config();
  const int group = c.n_heads / c.n_kv_heads;
  std::vector<std::vector<double>> samples(std::size_t(c.n_layers * c.n_kv_heads));
  for (int i = 0; i < chunks; ++i) {
    KvCacheShape shape{c.n_layers, c.n_kv_heads, c.head_dim, ctx, c.n_heads, c.rope_theta, c.rope_dim};
    auto recorder = RecordingCache::Create("fp32", shape, RecordOptions::Everything());
    ASSERT_TRUE(recorder.ok());
    RecordingCache* rec = recorder->get();
    auto session = Session::Create(*model, std::move(*recorder), 1);
    ASSERT_TRUE(session.ok());
    std::vector<int> chunk(tokens.begin() + i * ctx, tokens.begin() + (i + 1) * ctx);
    chunk[0] = tokenizer->bos_id();
    ASSERT_TRUE(session->Prefill(chunk).ok());
    for (int l = 0; l < c.n_layers; ++l) {
      for (int kv = 0; kv < c.n_kv_heads; ++kv) {
        for (int t = 0; t < ctx; ++t) {
          double max = 0;
          for (int h = kv * group; h < (kv + 1) * group; ++h) {
            double norm = 0;
            for (float x : rec->Query(l, h, t)) norm += double(x) * double(x);
            max = std::max(max, norm);
          }
          samples[std::size_t(l * c.n_kv_heads + kv)].push_back(max);
        }
      }
    }
  }
  for (int l = 0; l < c.n_layers; ++l) {
    for (int kv = 0; kv < c.n_kv_heads; ++kv) {
      std::vector<double> v = samples[std::size_t(l * c.n_kv_heads + kv)];
      std::sort(v.begin(), v.end());
      const double pos = 0.9 * double(v.size() - 1);
      const std::size_t lo = std::size_t(pos);
      const double expected = v[lo] + (v[lo + 1] - v[lo]) * (pos - double(lo));
      EXPECT_NEAR(calibration->QNormSq(l, kv), expected, kQuantileRelTolerance * expected) << l << " " << kv;
    }
  }
}

TEST(CalibrateCommandTest, ErrorsAreOneLine) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  const std::string dir = test::ScratchDir("calibrate_dump_errors");
  std::ofstream(dir + "/empty.txt") << "";
  std::ofstream(dir + "/blank.txt") << " \n\n\t\n";
  std::ofstream(dir + "/text.txt") << "Once upon a time, there was a little girl named Lily.";
  std::ofstream(dir + "/file") << "x";
  const std::string base = "calibrate -m '" + model + "' ";
  struct Case {
    std::string args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"-f " + dir + "/missing.txt -o " + dir + "/c.json", 1, "text file '" + dir + "/missing.txt' not found"},
      {"-f " + dir + "/empty.txt -o " + dir + "/c.json", 1, "is empty"},
      {"-f " + dir + "/blank.txt -o " + dir + "/c.json", 1, "is empty"},
      {"-f " + dir + "/text.txt -o " + dir + "/file/c.json", 1, "'" + dir + "/file' is not a folder"},
      {"-f " + dir + "/text.txt -o " + dir + "/no/such/folder/c.json", 1, "does not exist"},
      {"-f " + dir + "/text.txt -o " + dir, 1, "is a folder"},
      {"-f " + dir + "/text.txt -o " + dir + "/c.json --quantile 0", 2, "--quantile 0 must be between 0 and 1"},
      {"-f " + dir + "/text.txt -o " + dir + "/c.json --quantile 1", 2, "--quantile 1 must be between 0 and 1"},
      {"-f " + dir + "/text.txt -o " + dir + "/c.json --quantile 1.5", 2, "must be between 0 and 1"},
      {"-f " + dir + "/text.txt -o " + dir + "/c.json --quantile -0.1", 2, "must be between 0 and 1"},
      {"-f " + dir + "/text.txt -o " + dir + "/c.json --quantile nan", 2, ""},
      {"-f " + dir + "/text.txt -o " + dir + "/c.json --chunks -1", 2, "--chunks -1"},
      {"-f " + dir + "/text.txt -o " + dir + "/c.json -c 100000", 2, "context length"},
      {"-f " + dir + "/text.txt -o " + dir + "/c.json -t 0", 2, "thread count"},
      {"-f " + dir + "/text.txt", 2, "--output is required"},
      {"-o " + dir + "/c.json", 2, "--file is required"},
  };
  for (const Case& c : cases) {
    const test::ToolResult r = test::RunTool(base + c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args << "\n" << r.err;
    EXPECT_EQ(test::CountLines(r.err), 1) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/c.json"));
  const test::ToolResult missing_model = test::RunTool("calibrate -m /nonexistent.bin -f " + dir + "/text.txt -o " + dir + "/c.json");
  EXPECT_EQ(missing_model.exit_code, 1);
  EXPECT_EQ(test::CountLines(missing_model.err), 1) << missing_model.err;

  // A text shorter than one chunk is one shorter chunk.
  const test::ToolResult r = test::RunTool(base + "-f " + dir + "/text.txt -o " + dir + "/c.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1 chunks of "), std::string::npos) << r.out;
  EXPECT_TRUE(QueryNormCalibration::Load(dir + "/c.json").ok());
}

std::vector<float> LoadFloats(const std::string& path, const std::vector<std::int64_t>& shape) {
  auto array = ReadNpy(path);
  EXPECT_TRUE(array.ok()) << path << ": " << array.status().message();
  if (!array.ok()) return {};
  EXPECT_EQ(array->type, NpyType::kFloat32) << path;
  EXPECT_EQ(array->shape, shape) << path;
  return *array->ToFloat32();
}

TEST(DumpCommandTest, DumpIsConsistentAndFeedsQuantize) {
  QAQ_REQUIRE_SHARED_FILE(model_path, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(tok_path, "models/tok512.bin");
  const std::string dir = test::ScratchDir("calibrate_dump_dump");
  const std::string prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside.";
  const test::ToolResult r =
      test::RunTool("dump -m '" + model_path + "' -z '" + tok_path + "' -p '" + prompt + "' -o " + dir + "/d");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json m = nlohmann::json::parse(test::ReadWholeFile(dir + "/d/manifest.json"));
  const std::vector<int> tokens = m["tokens"];
  ASSERT_GE(tokens.size(), 10u);
  EXPECT_EQ((std::vector<int>(tokens.begin(), tokens.begin() + 5)), (std::vector<int>{1, 403, 407, 261, 378}));
  EXPECT_EQ(m["prompt"], prompt);
  const std::int64_t L = 5, H = 8, Hkv = 4, D = 8, T = std::int64_t(tokens.size());
  EXPECT_EQ(m["n_tokens"], T);
  EXPECT_EQ(m["model_dims"]["n_kv_heads"], Hkv);
  EXPECT_NEAR(double(m["softmax_scale"]), 1.0 / std::sqrt(8.0), 1e-15);
  ASSERT_EQ(m["arrays"].size(), 5u);
  for (const auto& a : m["arrays"]) EXPECT_TRUE(std::filesystem::exists(dir + "/d/" + std::string(a["file"])));

  const std::vector<float> k = LoadFloats(dir + "/d/K.npy", {L, Hkv, T, D});
  const std::vector<float> k_pre = LoadFloats(dir + "/d/K_pre_rope.npy", {L, Hkv, T, D});
  const std::vector<float> v = LoadFloats(dir + "/d/V.npy", {L, Hkv, T, D});
  const std::vector<float> q = LoadFloats(dir + "/d/Q.npy", {L, H, T, D});
  const std::vector<float> a = LoadFloats(dir + "/d/attention.npy", {L, H, T, T});
  ASSERT_FALSE(k.empty() || k_pre.empty() || v.empty() || q.empty() || a.empty());

  auto at = [](std::int64_t i0, std::int64_t n1, std::int64_t i1, std::int64_t n2, std::int64_t i2, std::int64_t n3,
               std::int64_t i3) { return std::size_t(((i0 * n1 + i1) * n2 + i2) * n3 + i3); };
  for (std::int64_t l = 0; l < L; ++l) {
    // Rotating the pre-RoPE keys gives the dumped keys exactly (same rotation as the cache).
    for (std::int64_t h = 0; h < Hkv; ++h) {
      for (std::int64_t t = 0; t < T; ++t) {
        std::vector<float> rotated(&k_pre[at(l, Hkv, h, T, t, D, 0)], &k_pre[at(l, Hkv, h, T, t, D, 0)] + D);
        internal::RopeRef(rotated.data(), 1, int(D), 8, 10000.0f, int(t));
        EXPECT_EQ(rotated, std::vector<float>(&k[at(l, Hkv, h, T, t, D, 0)], &k[at(l, Hkv, h, T, t, D, 0)] + D));
      }
    }
    // softmax(Q . K^T) row t over t + 1 tokens is the dumped attention row; zeros after it.
    for (std::int64_t h = 0; h < H; ++h) {
      const std::int64_t kv = h / (H / Hkv);
      for (std::int64_t t = 0; t < T; ++t) {
        std::vector<double> s(std::size_t(t) + 1);
        for (std::int64_t j = 0; j <= t; ++j) {
          for (std::int64_t d = 0; d < D; ++d) {
            s[std::size_t(j)] += double(q[at(l, H, h, T, t, D, d)]) * k[at(l, Hkv, kv, T, j, D, d)];
          }
        }
        const double max = *std::max_element(s.begin(), s.end());
        double sum = 0;
        for (double x : s) sum += std::exp(x - max);
        double row_sum = 0;
        for (std::int64_t j = 0; j < T; ++j) {
          const float got = a[at(l, H, h, T, t, T, j)];
          row_sum += got;
          if (j > t) {
            EXPECT_EQ(got, 0.0f);
          } else {
            EXPECT_NEAR(got, std::exp(s[std::size_t(j)] - max) / sum, kProbTolerance) << l << " " << h << " " << t;
          }
        }
        EXPECT_NEAR(row_sum, 1.0, kProbTolerance);
      }
    }
  }

  // The dumped K and V go straight into `qaq quantize`.
  const test::ToolResult qk = test::RunTool("quantize --kv-config kind=key,bits=2:8,target=0.01 --in " + dir + "/d/K.npy --out " +
                                dir + "/qk");
  ASSERT_EQ(qk.exit_code, 0) << qk.err;
  LoadFloats(dir + "/qk/dequantized.npy", {L, Hkv, T, D});
  auto bits = ReadNpy(dir + "/qk/bits.npy");
  ASSERT_TRUE(bits.ok());
  EXPECT_EQ(bits->shape, (std::vector<std::int64_t>{L, Hkv, T}));
  const test::ToolResult qv = test::RunTool("quantize --kv-config kind=value,bits=0:8,target=0.05,window=3 --in " + dir +
                                "/d/V.npy --attn " + dir + "/d/attention.npy --out " + dir + "/qv");
  ASSERT_EQ(qv.exit_code, 0) << qv.err;
  LoadFloats(dir + "/qv/dequantized.npy", {L, Hkv, T, D});
  EXPECT_TRUE(nlohmann::json::parse(test::ReadWholeFile(dir + "/qv/summary.json"))["mean_bits"].is_number());
}

TEST(DumpCommandTest, ErrorsAreOneLine) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  const std::string dir = test::ScratchDir("calibrate_dump_dump_errors");
  std::ofstream(dir + "/file") << "x";
  struct Case {
    std::string args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"dump -m '" + model + "' -p hi -o " + dir + "/file/out", 1, "cannot create output folder"},
      {"dump -m '" + model + "' -p hi -o " + dir + "/file", 1, "cannot create output folder"},
      {"dump -m '" + model + "' -p 'Once upon a time' -c 4 -o " + dir + "/d", 1,
       "the prompt has 5 tokens but the context holds 4"},
      {"dump -m /nonexistent.bin -p hi -o " + dir + "/d", 1, "/nonexistent.bin"},
      {"dump -m '" + model + "' -p hi", 2, "--output is required"},
      {"dump -m '" + model + "' -p hi -t 0 -o " + dir + "/d", 2, "thread count"},
      {"dump -m '" + model + "' -p hi --kv int3 -o " + dir + "/d", 2, "unknown KV cache"},
  };
  for (const Case& c : cases) {
    const test::ToolResult r = test::RunTool(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args << "\n" << r.err;
    EXPECT_EQ(test::CountLines(r.err), 1) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
  }
  // An empty prompt is BOS alone: one token.
  const test::ToolResult r = test::RunTool("dump -m '" + model + "' -o " + dir + "/bos");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  LoadFloats(dir + "/bos/attention.npy", {5, 8, 1, 1});
}

}  // namespace
}  // namespace qaq
