// Multiple choice on stories260K with the official HellaSwag, PIQA and MathQA files. The model
// is far too small to answer these questions: accuracy near chance is the expected result; what
// is tested is that the pipeline runs, is exact and reproducible.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "qaq/eval.h"
#include "test_support.h"

namespace qaq {
namespace {

TEST(EvalMcTest, HellaSwagFirst20ItemsAreReproducible) {
  QAQ_REQUIRE_SHARED_FILE(model_path, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(data, "data/hellaswag_val_1000.jsonl");
  auto model = LoadModel(model_path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto tokenizer = LoadTokenizer(*model);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  auto items = ReadMcItems(McTask::kHellaSwag, data, 20);
  ASSERT_TRUE(items.ok()) << items.status().message();
  ASSERT_EQ(items->size(), 20u);
  McOptions o;
  o.n_threads = 2;
  auto fp32 = EvaluateMultipleChoice(*model, *tokenizer, *items, {.kv_cache = "fp32"}, o);
  ASSERT_TRUE(fp32.ok()) << fp32.status().message();
  // Measured once: items 11, 16, 17 and 19 are right (4 of 20); chance is 25%.
  EXPECT_EQ(fp32->n_correct, 4);
  EXPECT_EQ(fp32->n_items, 20);
  EXPECT_EQ(fp32->n_skipped, 0);
  EXPECT_DOUBLE_EQ(fp32->chance, 0.25);
  EXPECT_EQ(fp32->items[0].predicted, 0);
  EXPECT_NEAR(fp32->items[0].scores[0], -2.8008, 1e-4);
  EXPECT_EQ(fp32->items[19].predicted, 3);
  // Again, on one thread, and with the fp16 cache: the same choices.
  o.n_threads = 1;
  auto again = EvaluateMultipleChoice(*model, *tokenizer, *items, {.kv_cache = "fp32"}, o);
  auto fp16 = EvaluateMultipleChoice(*model, *tokenizer, *items, {.kv_cache = "fp16"}, o);
  ASSERT_TRUE(again.ok() && fp16.ok());
  for (std::size_t i = 0; i < items->size(); ++i) {
    EXPECT_EQ(again->items[i].scores, fp32->items[i].scores) << i;
    EXPECT_EQ(fp16->items[i].predicted, fp32->items[i].predicted) << i;
    for (std::size_t k = 0; k < fp32->items[i].scores.size(); ++k) {
      EXPECT_NEAR(fp16->items[i].scores[k], fp32->items[i].scores[k], 2e-3);
    }
  }
  EXPECT_DOUBLE_EQ(fp16->memory.compression_ratio(), 1.0);
}

TEST(EvalMcTest, PiqaAndMathQaRunNearChance) {
  QAQ_REQUIRE_SHARED_FILE(model_path, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(piqa, "data/piqa_valid.jsonl");
  QAQ_REQUIRE_SHARED_FILE(mathqa, "data/mathqa_test.json");
  auto model = LoadModel(model_path);
  ASSERT_TRUE(model.ok());
  auto tokenizer = LoadTokenizer(*model);
  ASSERT_TRUE(tokenizer.ok());
  McOptions o;
  o.n_threads = 2;
  struct Case {
    McTask task;
    const std::string* path;
    double chance;
  };
  for (const Case& c : {Case{McTask::kPiqa, &piqa, 0.5}, Case{McTask::kMathQa, &mathqa, 0.2}}) {
    auto items = ReadMcItems(c.task, *c.path, 40);
    ASSERT_TRUE(items.ok()) << items.status().message();
    auto r = EvaluateMultipleChoice(*model, *tokenizer, *items, {}, o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->n_items + r->n_skipped, 40) << McTaskName(c.task);
    EXPECT_GE(r->n_items, 35) << McTaskName(c.task);
    EXPECT_DOUBLE_EQ(r->chance, c.chance);
    // Near chance: within three standard errors of 40 guesses.
    EXPECT_NEAR(r->accuracy, c.chance, 3 * std::sqrt(c.chance * (1 - c.chance) / 40)) << McTaskName(c.task);
  }
}

}  // namespace
}  // namespace qaq
