// Greedy generation on stories260K reproduces llama2.c's run.c token for token.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "qaq/engine.h"
#include "qaq/model.h"
#include "qaq/tokenizer.h"
#include "stories_reference.h"
#include "test_support.h"

namespace qaq {
namespace {

struct GreedyResult {
  std::vector<int> tokens;
  std::string text;
};

GreedyResult GreedyRun(const std::string& model_path, const std::string& tokenizer_path,
              const SessionOptions& session_options) {
  GreedyResult run;
  auto model = LoadModel(model_path);
  EXPECT_TRUE(model.ok()) << model.status().message();
  if (!model.ok()) return run;
  auto tokenizer = LoadTokenizer(*model, tokenizer_path);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  auto session = Session::Create(*model, session_options);
  EXPECT_TRUE(session.ok()) << session.status().message();
  if (!tokenizer.ok() || !session.ok()) return run;

  const std::vector<int> prompt = tokenizer->Encode("Once upon a time");
  Sampler sampler(model->config().vocab_size, {.temperature = 0.0f});
  GenerateOptions options;
  options.max_new_tokens = 64;
  options.stop_tokens = {tokenizer->bos_id(), tokenizer->eos_id()};
  auto stats = Generate(*session, prompt, options, sampler, [&](int token) {
    run.tokens.push_back(token);
    return true;
  });
  EXPECT_TRUE(stats.ok()) << stats.status().message();
  if (!stats.ok()) return run;
  EXPECT_EQ(stats->n_prompt_tokens, 5);
  EXPECT_EQ(stats->n_generated, 64);
  EXPECT_EQ(stats->n_decoded, 63);
  std::vector<int> all = prompt;
  all.insert(all.end(), run.tokens.begin(), run.tokens.end());
  run.text = tokenizer->Decode(all);
  return run;
}

TEST(GenerateTest, GreedyStories260KMatchesRunC) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(tok, "models/tok512.bin");
  QAQ_REQUIRE_SHARED_FILE(ref_path, "models/stories260K-reference-greedy.txt");
  const test::ReferenceGreedy ref = test::ReadReferenceGreedy(ref_path);
  ASSERT_EQ(ref.generated.size(), 64u);
  ASSERT_EQ(ref.prompt, (std::vector<int>{1, 403, 407, 261, 378}));

  const GreedyResult run = GreedyRun(model, tok, {});
  EXPECT_EQ(run.tokens, ref.generated);
  EXPECT_EQ(run.text, ref.text);

  // Two threads and the fp16 cache give the same greedy text on this model.
  EXPECT_EQ(GreedyRun(model, tok, {.n_threads = 2}).tokens, ref.generated);
  EXPECT_EQ(GreedyRun(model, tok, {.kv_cache = "fp16"}).tokens, ref.generated);
}

TEST(GenerateTest, GreedyGgufF32MatchesRunC) {
  QAQ_REQUIRE_SHARED_FILE(model, "models/stories260K-f32.gguf");
  QAQ_REQUIRE_SHARED_FILE(ref_path, "models/stories260K-reference-greedy.txt");
  const test::ReferenceGreedy ref = test::ReadReferenceGreedy(ref_path);
  const GreedyResult run = GreedyRun(model, "", {});
  EXPECT_EQ(run.tokens, ref.generated);
  EXPECT_EQ(run.text, ref.text);
}

TEST(GenerateTest, StopsAtContextAndStopTokensAndValidatesInput) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/stories260K.bin");
  auto model = LoadModel(path);
  ASSERT_TRUE(model.ok());
  auto session = Session::Create(*model, {.context_length = 10});
  ASSERT_TRUE(session.ok());
  const std::vector<int> prompt = {1, 403, 407, 261, 378};
  Sampler sampler(model->config().vocab_size, {.temperature = 0.0f});
  GenerateOptions options;
  options.max_new_tokens = 100;
  int count = 0;
  auto stats = Generate(*session, prompt, options, sampler, [&](int) { return ++count < 100; });
  ASSERT_TRUE(stats.ok());
  // 5 prompt positions + 5 decoded fill the context of 10; the 6th sampled token needs no slot.
  EXPECT_TRUE(stats->hit_context_limit);
  EXPECT_EQ(stats->n_decoded, 5);
  EXPECT_EQ(stats->n_generated, 6);

  // The greedy continuation starts with 432 (','): as a stop token it ends generation at once.
  options.stop_tokens = {432};
  count = 0;
  stats = Generate(*session, prompt, options, sampler, [&](int) { return ++count < 100; });
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->n_generated, 0);

  // on_token returning false stops.
  options.stop_tokens = {};
  stats = Generate(*session, prompt, options, sampler, [&](int) { return false; });
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->n_generated, 1);

  const std::vector<int> too_long(11, 5);
  EXPECT_EQ(Generate(*session, too_long, options, sampler, [](int) { return true; }).status().code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(Generate(*session, {}, options, sampler, [](int) { return true; }).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qaq
