#include "tokenizer/llama2c_vocab.h"

#include <gtest/gtest.h>

#include "io/test_files.h"
#include "test_support.h"

namespace qaq::internal {
namespace {

std::vector<std::uint8_t> VocabBytes(std::int32_t max_len,
                                     const std::vector<std::pair<std::string, float>>& tokens) {
  test::ByteWriter w;
  w.Put(max_len);
  for (const auto& [piece, score] : tokens) {
    w.Put(score);
    w.Put(static_cast<std::int32_t>(piece.size()));
    w.PutBytes(piece);
  }
  return w.bytes();
}

const std::vector<std::pair<std::string, float>> kTokens = {
    {"<unk>", 0}, {"\n<s>\n", 0}, {"\n</s>\n", 0}, {"<0x41>", 0}, {" hi", -1.5f}};

void ExpectDataLoss(const StatusOr<Vocabulary>& v, const std::string& fragment) {
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(v.status().message().find(fragment), std::string::npos) << v.status().message();
}

TEST(Llama2cVocabTest, ParsesPiecesScoresAndByteTokens) {
  auto v = ParseLlama2cVocabulary(VocabBytes(6, kTokens), 5);
  ASSERT_TRUE(v.ok()) << v.status().message();
  ASSERT_EQ(v->pieces.size(), 5u);
  EXPECT_EQ(v->pieces[4], " hi");
  EXPECT_EQ(v->scores[4], -1.5f);
  EXPECT_EQ(v->is_byte_token[3], 1);
  EXPECT_EQ(v->is_byte_token[4], 0);
  EXPECT_EQ(v->bos_id, 1);
  EXPECT_EQ(v->eos_id, 2);
  EXPECT_EQ(v->unk_id, 0);
  auto all = ParseLlama2cVocabulary(VocabBytes(6, kTokens), 0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->pieces.size(), 5u);
}

TEST(Llama2cVocabTest, CountMustMatchTheModel) {
  ExpectDataLoss(ParseLlama2cVocabulary(VocabBytes(6, kTokens), 4), "more than the model's 4");
  ExpectDataLoss(ParseLlama2cVocabulary(VocabBytes(6, kTokens), 6), "ends inside token 5");
}

TEST(Llama2cVocabTest, CorruptFilesAreDataLoss) {
  ExpectDataLoss(ParseLlama2cVocabulary(std::vector<std::uint8_t>{1, 0}, 5), "too short");
  ExpectDataLoss(ParseLlama2cVocabulary(VocabBytes(0, kTokens), 5), "max_token_length 0");
  ExpectDataLoss(ParseLlama2cVocabulary(VocabBytes(2, kTokens), 5), "token 0 has length 5");
  std::vector<std::uint8_t> bytes = VocabBytes(6, kTokens);
  bytes.resize(bytes.size() - 1);
  ExpectDataLoss(ParseLlama2cVocabulary(bytes, 5), "inside the text of token 4");
  // A negative length must not be taken as a huge unsigned one.
  test::ByteWriter w;
  w.Put(std::int32_t{8});
  w.Put(0.0f);
  w.Put(std::int32_t{-100});
  ExpectDataLoss(ParseLlama2cVocabulary(w.bytes(), 1), "length -100");
  ExpectDataLoss(ParseLlama2cVocabulary(VocabBytes(6, {{"a", 0}}), 0), "at least 3");
}

TEST(Llama2cVocabTest, ReadNamesTheFile) {
  const std::string path = test::TempPath("tok.bin");
  test::WriteFile(path, {9, 9});
  auto v = ReadLlama2cVocabulary(path, 5);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find(path), std::string::npos);
  auto missing = ReadLlama2cVocabulary(test::TempPath("none.bin"), 5);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(Llama2cVocabTest, ReadsTok512) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/tok512.bin");
  auto v = ReadLlama2cVocabulary(path, 512);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->pieces[1], "\n<s>\n");
  EXPECT_EQ(v->pieces[3], "<0x00>");
  EXPECT_EQ(v->pieces[403], " Once");
  EXPECT_EQ(v->scores[261], -2.0f);
  int bytes = 0;
  for (std::uint8_t b : v->is_byte_token) bytes += b;
  EXPECT_EQ(bytes, 256);
  EXPECT_EQ(ReadLlama2cVocabulary(path, 256).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace qaq::internal
