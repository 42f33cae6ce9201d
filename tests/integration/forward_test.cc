// The forward pass on stories260K against llama2.c's run.c logits, in every model format.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "qaq/engine.h"
#include "qaq/model.h"
#include "stories_reference.h"
#include "test_support.h"

namespace qaq {
namespace {

// run.c and this engine sum in different orders (and this one uses FMA): a few 1e-6 apart.
constexpr float kFp32LogitTolerance = 1e-4f;
// Q8_0 weights (one 8-bit code per weight, fp16 scale per 32): the logits move by up to ~0.3.
constexpr float kQ8LogitTolerance = 0.5f;
// fp16 keys and values: 11 significant bits per element.
constexpr float kFp16CacheLogitTolerance = 2e-2f;

test::ReferenceLogits LoadReference() {
  return test::ReadReferenceLogits(test::SharedFileOrEmpty("models/stories260K-reference-logits.txt"));
}

float MaxAbsDiff(std::span<const float> a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// Decodes the reference sequence one token at a time and compares logits at every position.
void ExpectDecodeMatchesReference(const std::string& model_path, const SessionOptions& options,
                                  float tolerance) {
  const test::ReferenceLogits ref = LoadReference();
  ASSERT_EQ(ref.logits.size(), 16u);
  auto model = LoadModel(model_path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto session = Session::Create(*model, options);
  ASSERT_TRUE(session.ok()) << session.status().message();
  for (std::size_t pos = 0; pos < ref.logits.size(); ++pos) {
    auto logits = session->Decode(ref.sequence[pos]);
    ASSERT_TRUE(logits.ok()) << logits.status().message();
    EXPECT_LE(MaxAbsDiff(*logits, ref.logits[pos]), tolerance) << "position " << pos;
  }
}

TEST(ForwardTest, Llama2cCheckpointMatchesRunC) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/stories260K.bin");
  ExpectDecodeMatchesReference(path, {}, kFp32LogitTolerance);
}

TEST(ForwardTest, GgufF32MatchesRunC) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/stories260K-f32.gguf");
  ExpectDecodeMatchesReference(path, {}, kFp32LogitTolerance);
}

TEST(ForwardTest, Fp16CacheStaysCloseToRunC) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/stories260K.bin");
  ExpectDecodeMatchesReference(path, {.kv_cache = "fp16"}, kFp16CacheLogitTolerance);
}

TEST(ForwardTest, Q8_0GgufIsCloseAndAgreesOnGreedyTokens) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/stories260K-q8_0-ffn_down-f16.gguf");
  ExpectDecodeMatchesReference(path, {}, kQ8LogitTolerance);

  // Free-running greedy generation picks the reference's first 40 tokens.
  const test::ReferenceGreedy greedy =
      test::ReadReferenceGreedy(test::SharedFileOrEmpty("models/stories260K-reference-greedy.txt"));
  ASSERT_EQ(greedy.generated.size(), 64u);
  auto model = LoadModel(path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto session = Session::Create(*model);
  ASSERT_TRUE(session.ok());
  Sampler sampler(model->config().vocab_size, {.temperature = 0.0f});
  std::vector<int> generated;
  GenerateOptions options;
  options.max_new_tokens = 40;
  auto stats = Generate(*session, greedy.prompt, options, sampler, [&](int token) {
    generated.push_back(token);
    return true;
  });
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_EQ(generated, std::vector<int>(greedy.generated.begin(), greedy.generated.begin() + 40));
}

TEST(ForwardTest, BatchedPrefillMatchesTokenByTokenDecode) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/stories260K.bin");
  const test::ReferenceGreedy greedy =
      test::ReadReferenceGreedy(test::SharedFileOrEmpty("models/stories260K-reference-greedy.txt"));
  auto model = LoadModel(path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  // 69 positions: more than one prefill chunk (Forward::kMaxBatch = 64).
  std::vector<int> tokens = greedy.prompt;
  tokens.insert(tokens.end(), greedy.generated.begin(), greedy.generated.end());
  ASSERT_EQ(tokens.size(), 69u);
  const std::size_t vocab = std::size_t(model->config().vocab_size);

  auto batched = Session::Create(*model);
  ASSERT_TRUE(batched.ok());
  auto all = batched->PrefillAllLogits(tokens);
  ASSERT_TRUE(all.ok()) << all.status().message();
  ASSERT_EQ(all->size(), tokens.size() * vocab);
  const std::vector<float> all_logits(all->begin(), all->end());

  auto stepped = Session::Create(*model);
  ASSERT_TRUE(stepped.ok());
  float max_diff = 0;
  for (std::size_t pos = 0; pos < tokens.size(); ++pos) {
    auto logits = stepped->Decode(tokens[pos]);
    ASSERT_TRUE(logits.ok());
    for (std::size_t j = 0; j < vocab; ++j) {
      max_diff = std::max(max_diff, std::fabs((*logits)[j] - all_logits[pos * vocab + j]));
    }
  }
  EXPECT_LE(max_diff, 1e-4f);

  // Prefill of the same tokens returns the last row.
  auto last = Session::Create(*model);
  ASSERT_TRUE(last.ok());
  auto last_logits = last->Prefill(tokens);
  ASSERT_TRUE(last_logits.ok());
  for (std::size_t j = 0; j < vocab; ++j) {
    ASSERT_EQ((*last_logits)[j], all_logits[(tokens.size() - 1) * vocab + j]);
  }
}

TEST(ForwardTest, ThreadCountDoesNotChangeLogits) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/stories260K.bin");
  const test::ReferenceLogits ref = LoadReference();
  auto model = LoadModel(path);
  ASSERT_TRUE(model.ok());
  const std::vector<int> prompt(ref.sequence.begin(), ref.sequence.begin() + 10);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2}) {
    auto session = Session::Create(*model, {.n_threads = threads});
    ASSERT_TRUE(session.ok());
    auto prefill = session->PrefillAllLogits(prompt);
    ASSERT_TRUE(prefill.ok());
    std::vector<float> logits(prefill->begin(), prefill->end());
    for (std::size_t pos = 10; pos < 16; ++pos) {
      auto step = session->Decode(ref.sequence[pos]);
      ASSERT_TRUE(step.ok());
      logits.insert(logits.end(), step->begin(), step->end());
    }
    results.push_back(std::move(logits));
  }
  EXPECT_EQ(results[0], results[1]);
}

TEST(ForwardTest, InputErrorsAreStatuses) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/stories260K.bin");
  auto model = LoadModel(path);
  ASSERT_TRUE(model.ok());
  auto session = Session::Create(*model, {.context_length = 8});
  ASSERT_TRUE(session.ok());
  const std::vector<int> too_long(9, 5);
  EXPECT_EQ(session->Prefill(too_long).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(session->n_past(), 0);
  EXPECT_EQ(session->Prefill({}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(session->Decode(512).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(session->Decode(-1).status().code(), StatusCode::kInvalidArgument);
  const std::vector<int> eight(8, 5);
  ASSERT_TRUE(session->Prefill(eight).ok());
  EXPECT_EQ(session->Decode(5).status().code(), StatusCode::kOutOfRange);  // context full
  session->Truncate(0);
  EXPECT_TRUE(session->Decode(1).ok());

  EXPECT_EQ(Session::Create(*model, {.n_threads = 0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Session::Create(*model, {.context_length = 513}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Session::Create(*model, {.kv_cache = "int3"}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qaq
