// Multiple-choice scoring on the synthetic model: the score is the mean log-probability of each
// choice's tokens, the same for any thread count; long items are skipped, bad items rejected.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "eval/statistics.h"
#include "eval/synthetic_model.h"
#include "qaq/eval.h"

namespace qaq {
namespace {

// 48 pieces matching the synthetic model's vocabulary size: specials, then single characters.
Tokenizer CharTokenizer() {
  Vocabulary v;
  v.pieces = {"<unk>", "<s>", "</s>"};
  const std::string chars = " abcdefghijklmnopqrstuvwxyz.,?:\n";
  for (char c : chars) v.pieces.push_back(std::string(1, c));
  for (const char* merged : {" a", " b", " c", "ab", "ba", "an", "he", " t", "th", "er", "in", "re",
                             "on"}) {
    v.pieces.push_back(merged);
  }
  while (v.pieces.size() < 48) v.pieces.push_back("<pad" + std::to_string(v.pieces.size()) + ">");
  v.scores.assign(v.pieces.size(), 0.0f);
  for (std::size_t i = 35; i < v.pieces.size(); ++i) v.scores[i] = float(100 - i);
  return Tokenizer(std::move(v));
}

std::vector<McItem> Items() {
  return {
      {"question: what is the cat on?\nanswer:", {"the mat.", "a hat.", "then a bat."}, 0},
      {"the bear ran.", {"he ran far.", "in a barn."}, 1},
      {"abc abc abc", {"abc", "cab", "bca", "ab"}, 2},
      {"once there", {"was a cat", "were bats"}, 0},
  };
}

class MultipleChoiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = test::LoadSyntheticModel();
    ASSERT_NE(model_, nullptr);
  }
  std::unique_ptr<Model> model_;
  Tokenizer tokenizer_ = CharTokenizer();
};

TEST_F(MultipleChoiceTest, ScoresAreMeanChoiceLogProbabilities) {
  const std::vector<McItem> items = Items();
  auto r = EvaluateMultipleChoice(*model_, tokenizer_, items, {.kv_cache = "fp32"}, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->n_items, 4);
  EXPECT_EQ(r->n_skipped, 0);
  EXPECT_NEAR(r->chance, (1.0 / 3 + 1.0 / 2 + 1.0 / 4 + 1.0 / 2) / 4, 1e-12);
  // By hand for every choice: one batch over context + choice, mean log-probability of the
  // choice's tokens.
  auto session = Session::Create(*model_, {});
  ASSERT_TRUE(session.ok());
  int correct = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::vector<int> ctx = tokenizer_.Encode(items[i].context, true);
    int best = -1;
    std::vector<double> scores;
    for (std::size_t k = 0; k < items[i].choices.size(); ++k) {
      const std::vector<int> joint = tokenizer_.Encode(items[i].context + " " + items[i].choices[k], true);
      ASSERT_TRUE(std::equal(ctx.begin(), ctx.end(), joint.begin()));  // prefix-stable here
      session->Truncate(0);
      auto logits = session->PrefillAllLogits(joint);
      ASSERT_TRUE(logits.ok());
      double sum = 0;
      for (std::size_t p = ctx.size(); p < joint.size(); ++p) {
        sum -= internal::NegLogLikelihood(logits->subspan((p - 1) * 48, 48), joint[p]);
      }
      scores.push_back(sum / double(joint.size() - ctx.size()));
      if (best < 0 || scores.back() > scores[std::size_t(best)]) best = int(k);
      EXPECT_NEAR(r->items[i].scores[k], scores.back(), 1e-5) << i << "/" << k;
    }
    EXPECT_EQ(r->items[i].predicted, best);
    correct += best == items[i].label;
  }
  EXPECT_EQ(r->n_correct, correct);
  EXPECT_DOUBLE_EQ(r->accuracy, correct / 4.0);
  EXPECT_NEAR(r->ci95, 1.96 * std::sqrt(r->accuracy * (1 - r->accuracy) / 4), 1e-12);
  EXPECT_EQ(r->cache_name, "fp32");
  EXPECT_DOUBLE_EQ(r->memory.compression_ratio(), 0.5);
}

TEST_F(MultipleChoiceTest, SameResultsForAnyThreadCount) {
  const std::vector<McItem> items = Items();
  auto one = EvaluateMultipleChoice(*model_, tokenizer_, items, {.kv_cache = "fp16"}, {.n_threads = 1});
  int calls = 0;
  auto three = EvaluateMultipleChoice(*model_, tokenizer_, items, {.kv_cache = "fp16"},
                                      {.n_threads = 3, .progress = [&](int, int n) {
                                         ++calls;
                                         EXPECT_EQ(n, 4);
                                       }});
  ASSERT_TRUE(one.ok() && three.ok());
  for (std::size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(one->items[i].scores, three->items[i].scores);
  }
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(one->memory.code_bytes, three->memory.code_bytes);
}

TEST_F(MultipleChoiceTest, ItemsLongerThanTheContextAreSkipped) {
  const std::vector<McItem> items = Items();
  auto r = EvaluateMultipleChoice(*model_, tokenizer_, items, {.context_length = 16}, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->n_skipped, 2);  // the first two are longer than 16 tokens
  EXPECT_EQ(r->n_items, 2);
  EXPECT_TRUE(r->items[0].skipped);
  EXPECT_FALSE(r->items[3].skipped);
}

TEST_F(MultipleChoiceTest, RejectsBadItemsAndOptions) {
  std::vector<McItem> one_choice = {{"ctx", {"only"}, 0}};
  EXPECT_EQ(EvaluateMultipleChoice(*model_, tokenizer_, one_choice, {}, {}).status().code(),
            StatusCode::kInvalidArgument);
  std::vector<McItem> bad_label = {{"ctx", {"a", "b"}, 2}};
  EXPECT_EQ(EvaluateMultipleChoice(*model_, tokenizer_, bad_label, {}, {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EvaluateMultipleChoice(*model_, tokenizer_, {}, {}, {}).status().code(),
            StatusCode::kInvalidArgument);
  const std::vector<McItem> items = Items();
  EXPECT_EQ(EvaluateMultipleChoice(*model_, tokenizer_, items, {}, {.n_threads = 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EvaluateMultipleChoice(*model_, tokenizer_, items, {.kv_cache = "bogus"}, {})
                .status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qaq
