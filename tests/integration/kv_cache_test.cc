// The quantized KV caches inside the engine, on stories260K: the fp16 pass-through is exactly the
// fp16 cache, uniform:8 keeps the reference greedy text, budget mode reaches its ratio, and the
// default qaq cache compresses while generating coherent text.
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kv/quantized_cache.h"
#include "qaq/engine.h"
#include "qaq/model.h"
#include "qaq/tokenizer.h"
#include "stories_reference.h"
#include "test_support.h"

namespace qaq {
namespace {

// Runs `tokens` through a session: prefill of the first `prompt` tokens (all logits), then one
// Decode per remaining token; returns every logit row.
std::vector<float> RunLogits(const Model& model, const std::string& kv, const std::vector<int>& tokens, int prompt) {
  auto session = Session::Create(model, {.kv_cache = kv});
  EXPECT_TRUE(session.ok()) << kv << ": " << session.status().message();
  if (!session.ok()) return {};
  auto first = session->PrefillAllLogits(std::span<const int>(tokens.data(), std::size_t(prompt)));
  EXPECT_TRUE(first.ok());
  std::vector<float> all(first->begin(), first->end());
  for (std::size_t i = std::size_t(prompt); i < tokens.size(); ++i) {
    auto logits = session->Decode(tokens[i]);
    EXPECT_TRUE(logits.ok());
    all.insert(all.end(), logits->begin(), logits->end());
  }
  return all;
}

TEST(KvCacheModelTest, QaqAtSixteenBitsWithoutOutliersGivesTheFp16CacheLogits) {
  QAQ_REQUIRE_SHARED_FILE(model_path, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(ref_path, "models/stories260K-reference-greedy.txt");
  auto model = LoadModel(model_path);
  ASSERT_TRUE(model.ok());
  const test::ReferenceGreedy ref = test::ReadReferenceGreedy(ref_path);
  std::vector<int> tokens = ref.prompt;
  tokens.insert(tokens.end(), ref.generated.begin(), ref.generated.end());
  const std::vector<float> fp16 = RunLogits(*model, "fp16", tokens, 5);
  for (const std::string spec : {"qaq,bits=16:16,outliers=0", "qaq,bits=16:16,outliers=0,keys=token,granularity=head"}) {
    const std::vector<float> qaq = RunLogits(*model, spec, tokens, 5);
    ASSERT_EQ(qaq.size(), fp16.size());
    // Exactly: the same fp16 values, the same kernels, the same order of additions.
    EXPECT_EQ(qaq, fp16) << spec;
  }
}

TEST(KvCacheModelTest, Uniform8KeepsTheReferenceGreedyText) {
  QAQ_REQUIRE_SHARED_FILE(model_path, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(tok_path, "models/tok512.bin");
  QAQ_REQUIRE_SHARED_FILE(ref_path, "models/stories260K-reference-greedy.txt");
  auto model = LoadModel(model_path);
  ASSERT_TRUE(model.ok());
  auto tokenizer = LoadTokenizer(*model, tok_path);
  ASSERT_TRUE(tokenizer.ok());
  const test::ReferenceGreedy ref = test::ReadReferenceGreedy(ref_path);
  auto session = Session::Create(*model, {.kv_cache = "uniform:8"});
  ASSERT_TRUE(session.ok());
  Sampler sampler(model->config().vocab_size, {.temperature = 0.0f});
  std::vector<int> generated;
  GenerateOptions options;
  options.max_new_tokens = 64;
  auto stats = Generate(*session, ref.prompt, options, sampler, [&](int token) {
    generated.push_back(token);
    return true;
  });
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(generated, ref.generated);
  std::vector<int> all = ref.prompt;
  all.insert(all.end(), generated.begin(), generated.end());
  EXPECT_EQ(tokenizer->Decode(all), ref.text);
  EXPECT_EQ(session->kv_cache().name(), "uniform:8");
}

// The first `n` tokens of TinyStories validation text (BOS first), encoded line by line.
std::vector<int> StoryTokens(const Tokenizer& tokenizer, const std::string& path, std::size_t n) {
  std::ifstream in(path);
  std::vector<int> tokens = {tokenizer.bos_id()};
  std::string line;
  while (tokens.size() < n && std::getline(in, line)) {
    if (line.empty()) continue;
    for (int t : tokenizer.Encode(line + "\n", /*add_bos=*/false)) tokens.push_back(t);
  }
  tokens.resize(std::min(tokens.size(), n));
  return tokens;
}

TEST(KvCacheModelTest, KvRatio8ReachesEightTimesOnA256TokenPrompt) {
  QAQ_REQUIRE_SHARED_FILE(model_path, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(tok_path, "models/tok512.bin");
  QAQ_REQUIRE_SHARED_FILE(text_path, "data/tinystories_validation_head.txt");
  auto model = LoadModel(model_path);
  ASSERT_TRUE(model.ok());
  auto tokenizer = LoadTokenizer(*model, tok_path);
  ASSERT_TRUE(tokenizer.ok());
  const std::vector<int> prompt = StoryTokens(*tokenizer, text_path, 256);
  ASSERT_EQ(prompt.size(), 256u);
  auto session = Session::Create(*model, {.kv_cache = "qaq,ratio=8"});
  ASSERT_TRUE(session.ok()) << session.status().message();
  ASSERT_TRUE(session->Prefill(prompt).ok());
  const auto& cache = dynamic_cast<const internal::QuantizedKvCache&>(session->kv_cache());
  EXPECT_TRUE(cache.budget().solved);
  EXPECT_TRUE(cache.budget().reachable);
  EXPECT_NEAR(cache.Memory().compression_ratio(), 8.0, 0.5);
  const std::string summary = cache.Summary();
  EXPECT_NE(summary.find("budget: ratio 8.00x requested; chose key error"), std::string::npos) << summary;
  // The targets stay; after 64 generated tokens the keys' fp16 tail is again empty (320 tokens:
  // five blocks of 64) and the ratio is back in the band.
  Sampler sampler(model->config().vocab_size, {.temperature = 0.0f});
  int token = prompt.back();
  for (int i = 0; i < 64; ++i) {
    auto next = session->Decode(token);
    ASSERT_TRUE(next.ok());
    token = sampler.Sample(*next);
  }
  EXPECT_NEAR(cache.Memory().compression_ratio(), 8.0, 0.5) << cache.Summary();
}

TEST(KvCacheModelTest, DefaultQaqCompressesAndStaysCloseToTheFp32Cache) {
  QAQ_REQUIRE_SHARED_FILE(model_path, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(tok_path, "models/tok512.bin");
  QAQ_REQUIRE_SHARED_FILE(text_path, "data/tinystories_validation_head.txt");
  auto model = LoadModel(model_path);
  ASSERT_TRUE(model.ok());
  auto tokenizer = LoadTokenizer(*model, tok_path);
  ASSERT_TRUE(tokenizer.ok());
  const std::vector<int> tokens = StoryTokens(*tokenizer, text_path, 256);
  const std::vector<float> ref = RunLogits(*model, "fp32", tokens, 128);
  const std::vector<float> got = RunLogits(*model, "qaq", tokens, 128);
  ASSERT_EQ(got.size(), ref.size());
  // Mean KL(fp32 || qaq) over the 128 positions predicted from the quantized cache.
  const int vocab = model->config().vocab_size;
  double kl = 0;
  for (int pos = 127; pos < 255; ++pos) {
    const float* p = ref.data() + std::size_t(pos) * std::size_t(vocab);
    const float* q = got.data() + std::size_t(pos) * std::size_t(vocab);
    double mp = p[0], mq = q[0], sp = 0, sq = 0;
    for (int i = 0; i < vocab; ++i) mp = std::max(mp, double(p[i])), mq = std::max(mq, double(q[i]));
    for (int i = 0; i < vocab; ++i) sp += std::exp(p[i] - mp), sq += std::exp(q[i] - mq);
    for (int i = 0; i < vocab; ++i) {
      const double lp = p[i] - mp - std::log(sp), lq = q[i] - mq - std::log(sq);
      kl += std::exp(lp) * (lp - lq);
    }
  }
  kl /= 128;
  EXPECT_LT(kl, 0.05);
  EXPECT_GT(kl, 0.0);
}

}  // namespace
}  // namespace qaq
