// The tokenizer on the real stories260K vocabulary, against run.c's recorded outputs.
#include "qaq/tokenizer.h"

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "io/test_files.h"
#include "qaq/model.h"
#include "test_support.h"

namespace qaq {
namespace {

using ::testing::ElementsAre;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The 69-id sequence and the printed text between "# BEGIN" and "# END" of the reference file.
struct GreedyReference {
  std::vector<int> ids;
  std::string text;
};

GreedyReference ParseGreedyReference(const std::string& contents) {
  GreedyReference ref;
  std::istringstream in(contents);
  std::string line;
  bool want_ids = false, in_text = false;
  std::vector<std::string> text_lines;
  while (std::getline(in, line)) {
    if (want_ids) {
      std::istringstream ids(line);
      for (int id; ids >> id;) ref.ids.push_back(id);
      want_ids = false;
    } else if (line.rfind("# full sequence", 0) == 0) {
      want_ids = true;
    } else if (line == "# BEGIN") {
      in_text = true;
    } else if (line == "# END") {
      in_text = false;
    } else if (in_text) {
      text_lines.push_back(line);
    }
  }
  for (std::size_t i = 0; i < text_lines.size(); ++i) {
    ref.text += (i ? "\n" : "") + text_lines[i];
  }
  return ref;
}

class Stories260KTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    QAQ_REQUIRE_SHARED_FILE(model_path, "models/stories260K.bin");
    auto model = LoadModel(model_path);
    ASSERT_TRUE(model.ok()) << model.status().message();
    // No path: tok512.bin is found beside the model.
    auto tokenizer = LoadTokenizer(*model);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
    tokenizer_ = std::make_unique<Tokenizer>(std::move(*tokenizer));
  }
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(Stories260KTokenizerTest, EncodesThePrompt) {
  EXPECT_EQ(tokenizer_->vocab_size(), 512);
  EXPECT_THAT(tokenizer_->Encode("Once upon a time"), ElementsAre(1, 403, 407, 261, 378));
}

TEST_F(Stories260KTokenizerTest, DecodesTheGreedyReference) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/stories260K-reference-greedy.txt");
  const GreedyReference ref = ParseGreedyReference(ReadText(path));
  ASSERT_EQ(ref.ids.size(), 69u);
  ASSERT_EQ(ref.text.size(), 191u);  // guards the parsing of the reference file
  EXPECT_EQ(tokenizer_->Decode(ref.ids), ref.text);
  // Streaming piece by piece gives the same text, as run.c prints it.
  std::string streamed;
  for (std::size_t i = 1; i < ref.ids.size(); ++i) {
    streamed += tokenizer_->DecodePiece(ref.ids[i - 1], ref.ids[i]);
  }
  EXPECT_EQ(streamed, ref.text);
  // The greedy text re-encodes to the same ids (the model's output was tokenizer-canonical).
  EXPECT_EQ(tokenizer_->Encode(ref.text), ref.ids);
}

TEST_F(Stories260KTokenizerTest, RoundTripsRealText) {
  QAQ_REQUIRE_SHARED_FILE(path, "data/tinystories_validation_head.txt");
  const std::string text = ReadText(path);
  ASSERT_GT(text.size(), 700000u);
  // Paragraph by paragraph, and the whole file at once (checks the merge loop scales).
  std::size_t paragraphs = 0;
  std::istringstream in(text.substr(0, 100000));
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    ++paragraphs;
    ASSERT_EQ(tokenizer_->Decode(tokenizer_->Encode(line)), line);
  }
  EXPECT_GT(paragraphs, 100u);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int> ids = tokenizer_->Encode(text);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(tokenizer_->Decode(ids), text);
  // A 512-piece vocabulary compresses English to roughly 2-4 bytes per token.
  EXPECT_GT(ids.size(), text.size() / 5);
  EXPECT_LT(ids.size(), text.size() / 2);
  EXPECT_LT(seconds, 5.0) << "encoding " << text.size() << " bytes took " << seconds << " s";
  RecordProperty("tokens", static_cast<int>(ids.size()));
}

TEST_F(Stories260KTokenizerTest, RoundTripsNonAsciiAndControlBytes) {
  for (const std::string& text :
       {std::string("caf\xC3\xA9 na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80!"),
        std::string("tab\there\r\nand a NUL\0byte", 24), std::string("\xFF\xFE broken \xC3"),
        std::string("  leading spaces"), std::string("\n")}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode(text)), text);
  }
}

TEST(LoadTokenizerTest, ExplicitFileAndMismatchedFile) {
  QAQ_REQUIRE_SHARED_FILE(model_path, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(tok_path, "models/tok512.bin");
  auto model = LoadModel(model_path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto tokenizer = LoadTokenizer(*model, tok_path);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  // A file that is not a tokenizer (the model itself) is rejected with its name.
  auto wrong = LoadTokenizer(*model, model_path);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(wrong.status().message().find(model_path), std::string::npos);
  auto missing = LoadTokenizer(*model, test::TempPath("missing-tok.bin"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(LoadTokenizerTest, ModelWithoutVocabularyOrNeighbourFile) {
  // A tiny llama2.c checkpoint alone in a temp folder: no vocabulary anywhere.
  test::ByteWriter w;
  for (std::int32_t v : {8, 12, 1, 2, 1, 10, 4}) w.Put(v);
  const int floats = 10 * 8 + (2 * 8 + 2 * 64 + 2 * 32 + 3 * 96) + 8 + 4 * 4;
  for (int i = 0; i < floats; ++i) w.Put(0.5f);
  const std::string path = test::TempPath("lonely.bin");
  test::WriteFile(path, w.bytes());
  auto model = LoadModel(path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto tokenizer = LoadTokenizer(*model);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), StatusCode::kNotFound);
  EXPECT_NE(tokenizer.status().message().find("tok10.bin"), std::string::npos)
      << tokenizer.status().message();
}

}  // namespace
}  // namespace qaq
