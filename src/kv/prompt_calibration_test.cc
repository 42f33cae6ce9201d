// calib=prompt (the default), calib=prompt-heads and calib=constant in the qaq cache: the key
// formula's |q~|^2 is measured from the queries the cache scores, and the planner uses it.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kv/kv_test_util.h"
#include "kv/quantized_cache.h"
#include "test_support.h"

namespace qaq {
namespace {

using internal::QuantizedKvCache;

constexpr double kRelTolerance = 1e-6;  // float |q|^2 samples against double sums

// A prompt of n tokens through the cache as the engine drives it, with queries whose norms
// differ per layer, KV head and position. Returns per (layer, KV head) the |q|^2 samples (the
// maximum over the group's query heads).
std::vector<std::vector<double>> Prefill(QuantizedKvCache& cache, int n) {
  const KvCacheShape& s = cache.shape();
  const int group = s.n_heads / s.n_kv_heads;
  test::RandomKv kv(s, n, 7);
  for (int t = 0; t < n; ++t) {
    for (int l = 0; l < s.n_layers; ++l) cache.Append(l, t, kv.k[std::size_t(t)][std::size_t(l)], kv.v[std::size_t(t)][std::size_t(l)]);
  }
  std::vector<std::vector<double>> samples(std::size_t(s.n_layers * s.n_kv_heads));
  std::vector<float> q(std::size_t(s.head_dim)), scores, probs;
  for (int l = 0; l < s.n_layers; ++l) {
    for (int t = 0; t < n; ++t) {
      for (int h = 0; h < s.n_heads; ++h) {
        const int kv_head = h / group;
        for (int d = 0; d < s.head_dim; ++d) q[std::size_t(d)] = 0.1f * float((l + 1) * (h + 2) + (t * 3 + d) % 5);
        scores.assign(std::size_t(t + 1), 0.0f);
        cache.Scores(l, kv_head, q, scores);
        double norm = 0;
        for (float x : q) norm += double(x) * double(x);
        auto& v = samples[std::size_t(l * s.n_kv_heads + kv_head)];
        if (h % group == 0) {
          v.push_back(norm);
        } else {
          v.back() = std::max(v.back(), norm);
        }
        probs.assign(std::size_t(t + 1), 1.0f / float(t + 1));
        cache.ObserveAttention(l, h, t, probs);
      }
    }
  }
  cache.EndStep();
  return samples;
}

TEST(PromptCalibrationTest, DefaultPoolsThePromptsQueries) {
  const KvCacheShape shape = test::SmallShape(16, 96);
  auto cache = test::MakeQuantized("qaq", shape);
  EXPECT_EQ(cache->calibration(), nullptr);  // nothing measured before the first step
  const auto samples = Prefill(*cache, 40);
  std::vector<double> all;
  for (const auto& v : samples) all.insert(all.end(), v.begin(), v.end());
  const double expected = test::NumpyQuantile(all, 0.9);
  ASSERT_NE(cache->calibration(), nullptr);
  EXPECT_EQ(cache->planner().calibration(), cache->calibration());
  EXPECT_EQ(cache->calibration_positions(), 40);
  for (int l = 0; l < shape.n_layers; ++l) {
    for (int h = 0; h < shape.n_kv_heads; ++h) EXPECT_NEAR(cache->calibration()->QNormSq(l, h), expected, kRelTolerance * expected);
  }
  EXPECT_NE(cache->Summary().find("key |q|^2: from the prompt (40 positions, every layer and KV head pooled)"),
            std::string::npos)
      << cache->Summary();
}

TEST(PromptCalibrationTest, PromptHeadsKeepsOneValuePerLayerAndKvHead) {
  const KvCacheShape shape = test::SmallShape(16, 96);
  auto cache = test::MakeQuantized("qaq,calib=prompt-heads", shape);
  const auto samples = Prefill(*cache, 40);
  ASSERT_NE(cache->calibration(), nullptr);
  for (int l = 0; l < shape.n_layers; ++l) {
    for (int h = 0; h < shape.n_kv_heads; ++h) {
      const double expected = test::NumpyQuantile(samples[std::size_t(l * shape.n_kv_heads + h)], 0.9);
      EXPECT_NEAR(cache->calibration()->QNormSq(l, h), expected, kRelTolerance * expected) << l << " " << h;
    }
  }
}

TEST(PromptCalibrationTest, TheMeasuredValueDecidesTheKeyWidths) {
  // The same widths as a calibration file holding the measured values, and other widths than
  // the authors' constant.
  const KvCacheShape shape = test::SmallShape(16, 96);
  auto measured = test::MakeQuantized("qaq,keys=token,calib=prompt-heads", shape);
  Prefill(*measured, 40);
  const std::string path = test::ScratchDir("prompt_calibration") + "/calib.json";
  ASSERT_TRUE(measured->calibration()->Save(path).ok());
  auto from_file = test::MakeQuantized("qaq,keys=token,calib=" + path, shape);
  Prefill(*from_file, 40);
  auto constant = test::MakeQuantized("qaq,keys=token,calib=constant", shape);
  Prefill(*constant, 40);
  EXPECT_EQ(constant->calibration(), nullptr);
  auto key_bits = [](const QuantizedKvCache& c) {
    std::vector<int> bits;
    for (const auto& g : c.Groups()) {
      if (g.kind == KvKind::kKey) bits.push_back(g.bits * 1000000 + g.unit * 1000 + g.token);
    }
    std::sort(bits.begin(), bits.end());
    return bits;
  };
  EXPECT_EQ(key_bits(*measured), key_bits(*from_file));
  EXPECT_NE(key_bits(*measured), key_bits(*constant));
  EXPECT_NE(constant->Summary().find("key |q|^2: the authors' constant 300/head_dim = 18.75"), std::string::npos)
      << constant->Summary();
}

TEST(PromptCalibrationTest, ShortPromptsAreMeasuredAgainAsTheSequenceDoublesAndANewSequenceStartsOver) {
  const KvCacheShape shape = test::SmallShape(16, 96);
  auto cache = test::MakeQuantized("qaq", shape);
  Prefill(*cache, 3);
  EXPECT_EQ(cache->calibration_positions(), 3);
  const double first = cache->calibration()->QNormSq(0, 0);
  // Decode steps with larger queries: measured again once the sequence holds 6 tokens.
  test::RandomKv kv(shape, 3, 9);
  std::vector<float> q(16, 5.0f), scores;
  for (int pos = 3; pos < 6; ++pos) {
    for (int l = 0; l < shape.n_layers; ++l) {
      cache->Append(l, pos, kv.k[std::size_t(pos - 3)][std::size_t(l)], kv.v[std::size_t(pos - 3)][std::size_t(l)]);
    }
    scores.assign(std::size_t(pos + 1), 0.0f);
    for (int l = 0; l < shape.n_layers; ++l) {
      for (int h = 0; h < shape.n_kv_heads; ++h) cache->Scores(l, h, q, scores);
    }
    cache->EndStep();
    EXPECT_EQ(cache->calibration_positions(), pos + 1 < 6 ? 3 : 6) << pos;
  }
  EXPECT_GT(cache->calibration()->QNormSq(0, 0), first);
  cache->Truncate(0);
  Prefill(*cache, 3);
  EXPECT_EQ(cache->calibration_positions(), 3);
  EXPECT_NEAR(cache->calibration()->QNormSq(0, 0), first, kRelTolerance * first);
}

TEST(PromptCalibrationTest, ZeroQueriesFallBackToTheConstantAndSaySo) {
  const KvCacheShape shape = test::SmallShape(16, 96);
  auto cache = test::MakeQuantized("qaq", shape);
  test::RandomKv kv(shape, 4, 3);
  for (int t = 0; t < 4; ++t) {
    for (int l = 0; l < shape.n_layers; ++l) cache->Append(l, t, kv.k[std::size_t(t)][std::size_t(l)], kv.v[std::size_t(t)][std::size_t(l)]);
  }
  std::vector<float> q(16, 0.0f), scores;
  for (int l = 0; l < shape.n_layers; ++l) {
    for (int t = 0; t < 4; ++t) {
      scores.assign(std::size_t(t + 1), 0.0f);
      for (int h = 0; h < shape.n_kv_heads; ++h) cache->Scores(l, h, q, scores);
    }
  }
  cache->EndStep();
  EXPECT_EQ(cache->calibration(), nullptr);
  EXPECT_NE(cache->Summary().find("(from the prompt impossible: the 0.9 quantile of |q|^2 over 4 positions is 0)"),
            std::string::npos)
      << cache->Summary();
}

TEST(PromptCalibrationTest, SpecOptions) {
  EXPECT_EQ(ParseKvCacheSpec("qaq")->query_norms, QueryNormSource::kPrompt);
  EXPECT_EQ(ParseKvCacheSpec("qaq,calib=prompt-heads")->query_norms, QueryNormSource::kPromptHeads);
  EXPECT_EQ(ParseKvCacheSpec("qaq,calib=constant")->query_norms, QueryNormSource::kConstant);
  auto file = ParseKvCacheSpec("qaq,calib=./prompt");
  EXPECT_EQ(file->query_norms, QueryNormSource::kFile);
  EXPECT_EQ(file->calibration_path, "./prompt");
  EXPECT_FALSE(ParseKvCacheSpec("qaq,calib=").ok());
  for (const char* spec : {"qaq,calib=constant", "qaq,calib=prompt-heads", "qaq,calib=/x/c.json", "qaq"}) {
    auto c = ParseKvCacheSpec(spec);
    auto back = ParseKvCacheSpec(FormatKvCacheSpec(*c));
    ASSERT_TRUE(back.ok()) << FormatKvCacheSpec(*c);
    EXPECT_EQ(back->query_norms, c->query_norms) << spec;
    EXPECT_EQ(back->calibration_path, c->calibration_path) << spec;
  }
}

}  // namespace
}  // namespace qaq
