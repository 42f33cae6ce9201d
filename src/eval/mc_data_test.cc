// The readers reproduce the QAQ authors' preprocessing; expected strings were produced by their
// Python functions (src/qa_dataset.py) on the same records.
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "qaq/eval.h"

namespace qaq {
namespace {

TEST(McDataTest, CleanHellaSwagTextMatchesPython) {
  EXPECT_EQ(CleanHellaSwagText("  [header] How to x [title] Do it.  [step] Go   now [unclosed"),
            " How to x. Do it.  Go  now [unclosed");
  EXPECT_EQ(CleanHellaSwagText("a [b\n] c"), "a [b\n] c");  // '.' does not cross a newline
  EXPECT_EQ(CleanHellaSwagText("x  [title] y"), "x . y");
  EXPECT_EQ(CleanHellaSwagText(""), "");
}

TEST(McDataTest, PythonCapitalizeLowersTheRest) {
  EXPECT_EQ(PythonCapitalize("hello World ABC"), "Hello world abc");
  EXPECT_EQ(PythonCapitalize(""), "");
  EXPECT_EQ(PythonCapitalize("1aB"), "1ab");
}

TEST(McDataTest, HellaSwagActivityNetAndWikiHowRecords) {
  const std::string jsonl =
      R"({"ind": 20022, "activity_label": "Pole vault", "ctx_a": "Pole vault is a sport where you run with a pole and stop and swing your body.", "ctx_b": "a few women", "label": 3, "endings": ["go down a rock and stop.", "watch from around a pole vault.", "are in the wading pool.", "are in the gym practicing to do this pole vault, trying to do their best."]})"
      "\n"
      R"({"ind": 670, "activity_label": "Sports and Fitness", "ctx_a": "[header] How to bowl the leg spinner's variations [title] To bowl a googly, you grip the ball. [step] As you bowl, you spin.", "ctx_b": "", "label": "2", "endings": ["[title] If you're outside. [title] If you're inside.", "Bring your wrist back. [substeps] A barbell is not needed.", "c", "d"]})"
      "\n\n";
  auto items = ParseHellaSwag(jsonl);
  ASSERT_TRUE(items.ok()) << items.status().message();
  ASSERT_EQ(items->size(), 2u);
  const McItem& a = (*items)[0];
  EXPECT_EQ(a.context,
            "Pole vault: Pole vault is a sport where you run with a pole and stop and swing your "
            "body. A few women");
  ASSERT_EQ(a.choices.size(), 4u);
  EXPECT_EQ(a.choices[1], "watch from around a pole vault.");
  EXPECT_EQ(a.label, 3);
  const McItem& b = (*items)[1];
  EXPECT_EQ(b.context,
            "Sports and Fitness: How to bowl the leg spinner's variations. To bowl a googly, you "
            "grip the ball. As you bowl, you spin.");
  EXPECT_EQ(b.choices[0], " If you're outside.. If you're inside.");
  EXPECT_EQ(b.choices[1], "Bring your wrist back. A barbell is not needed.");
  EXPECT_EQ(b.label, 2);
  // The limit keeps the first items.
  EXPECT_EQ(ParseHellaSwag(jsonl, 1)->size(), 1u);
}

TEST(McDataTest, HellaSwagErrorsNameTheLine) {
  auto bad_json = ParseHellaSwag("{\"a\": 1}\n{not json\n");
  EXPECT_EQ(bad_json.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad_json.status().message().find("line 1"), std::string::npos);
  auto not_json = ParseHellaSwag(
      R"({"activity_label": "x", "ctx_a": "a", "ctx_b": "b", "label": 0, "endings": ["p", "q"]})"
      "\n{oops\n");
  EXPECT_NE(not_json.status().message().find("line 2"), std::string::npos)
      << not_json.status().message();
  auto bad_label = ParseHellaSwag(
      R"({"activity_label": "x", "ctx_a": "a", "ctx_b": "b", "label": 4, "endings": ["p", "q"]})");
  EXPECT_EQ(bad_label.status().code(), StatusCode::kDataLoss);
  auto no_endings = ParseHellaSwag(R"({"activity_label": "x", "ctx_a": "a", "ctx_b": "b", "label": 0})");
  EXPECT_EQ(no_endings.status().code(), StatusCode::kDataLoss);
}

TEST(McDataTest, PiqaUsesQuestionAnswerPromptsAndTheLabelsFile) {
  const std::string jsonl =
      R"({"goal": "How do I dry a cup?", "sol1": "Use a towel.", "sol2": "Use a rock."})"
      "\n"
      R"({"goal": "Open a jar", "sol1": "Hit it.", "sol2": "Twist the lid."})"
      "\n";
  auto items = ParsePiqa(jsonl, "0\n1\n");
  ASSERT_TRUE(items.ok()) << items.status().message();
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ((*items)[0].context, "Question: How do I dry a cup?\nAnswer:");
  EXPECT_EQ((*items)[0].choices[0], "Use a towel.");
  EXPECT_EQ((*items)[0].label, 0);
  EXPECT_EQ((*items)[1].label, 1);
  EXPECT_EQ(ParsePiqa(jsonl, "0\n").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ParsePiqa(jsonl, "0\n2\n").status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(ParsePiqa(jsonl, "0\n", 1).ok());
}

TEST(McDataTest, MathQaOptionsSplitAsTheAuthorsRegex) {
  const auto c = SplitMathQaOptions("a ) 38 , b ) 27.675 , c ) 30 , d ) data inadequate , e ) none of these");
  ASSERT_EQ(c.size(), 5u);
  EXPECT_EQ(c[0], "38");
  EXPECT_EQ(c[1], "27.675");
  EXPECT_EQ(c[3], "data inadequate");
  EXPECT_EQ(c[4], "none of these");
  // A comma inside a number is not a separator.
  const auto d = SplitMathQaOptions("a ) 1,200 , b ) 2 , c ) 3 , d ) 4 , e ) 5");
  ASSERT_EQ(d.size(), 5u);
  EXPECT_EQ(d[0], "1,200");
}

TEST(McDataTest, MathQaItemsAndErrors) {
  const std::string json =
      R"([{"Problem": "what is 2 + 2 ?", "options": "a ) 3 , b ) 4 , c ) 5 , d ) 6 , e ) 7", "correct": "b"}])";
  auto items = ParseMathQa(json);
  ASSERT_TRUE(items.ok()) << items.status().message();
  EXPECT_EQ((*items)[0].context, "Question: what is 2 + 2 ?\nAnswer:");
  EXPECT_EQ((*items)[0].choices.size(), 5u);
  EXPECT_EQ((*items)[0].label, 1);
  EXPECT_EQ(ParseMathQa("{}").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ParseMathQa(R"([{"Problem": "x", "options": "a ) 1 , b ) 2", "correct": "e"}])")
                .status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(ParseMathQa(R"([{"Problem": "x", "options": "a ) 1", "correct": "z"}])").status().code(),
            StatusCode::kDataLoss);
}

TEST(McDataTest, TaskNamesAndMissingFiles) {
  EXPECT_EQ(*ParseMcTask("piqa"), McTask::kPiqa);
  EXPECT_STREQ(McTaskName(McTask::kMathQa), "mathqa");
  EXPECT_EQ(ParseMcTask("arc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadMcItems(McTask::kHellaSwag, "/nonexistent/h.jsonl").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(ReadMcItems(McTask::kPiqa, "/nonexistent/valid.jsonl").status().code(),
            StatusCode::kNotFound);
  // The labels file cannot be derived from a name without .jsonl.
  const std::string txt = ::testing::TempDir() + "/piqa_items.txt";
  { std::ofstream(txt) << R"({"goal": "g", "sol1": "a", "sol2": "b"})" << "\n"; }
  EXPECT_EQ(ReadMcItems(McTask::kPiqa, txt).status().code(), StatusCode::kInvalidArgument);
  const std::string jsonl = ::testing::TempDir() + "/piqa_items.jsonl";
  { std::ofstream(jsonl) << R"({"goal": "g", "sol1": "a", "sol2": "b"})" << "\n"; }
  { std::ofstream(::testing::TempDir() + "/piqa_items-labels.lst") << "1\n"; }
  auto piqa = ReadMcItems(McTask::kPiqa, jsonl);
  ASSERT_TRUE(piqa.ok()) << piqa.status().message();
  EXPECT_EQ((*piqa)[0].label, 1);
  EXPECT_EQ(ReadMcItems(McTask::kHellaSwag, "/tmp", 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadMcItems(McTask::kHellaSwag, "/nonexistent", -1).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qaq
