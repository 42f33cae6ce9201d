#include "qaq/tokenizer.h"

#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_support.h"
#include "tokenizer/llama2c_vocab.h"

namespace qaq {
namespace {

using ::testing::ElementsAre;

// run.c's encode, transcribed literally (quadratic rescans, linear lookups): the oracle the
// heap-based Tokenizer::Encode must match token for token.
std::vector<int> ReferenceEncode(const Vocabulary& v, const std::string& text, bool bos) {
  auto lookup = [&v](const std::string& s) {
    for (std::size_t i = 0; i < v.pieces.size(); ++i) {
      if (v.pieces[i] == s) return static_cast<int>(i);
    }
    return -1;
  };
  auto byte_id = [&](unsigned char b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    const int id = lookup(name);
    return id >= 0 ? id : v.unk_id;
  };
  std::vector<int> tokens;
  if (bos) tokens.push_back(v.bos_id);
  if (!text.empty() && v.add_dummy_prefix) {
    const int space = lookup(" ");
    if (space >= 0) {
      tokens.push_back(space);
    } else {
      tokens.push_back(byte_id(' '));
    }
  }
  std::string buf;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) buf.clear();
    buf.push_back(static_cast<char>(c));
    const bool cont =
        i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80;
    if (cont && buf.size() < 4) continue;
    const int id = lookup(buf);
    if (id != -1) {
      tokens.push_back(id);
    } else {
      for (unsigned char b : buf) tokens.push_back(byte_id(b));
    }
    buf.clear();
  }
  const std::size_t first = bos ? 1 : 0;  // BOS never merges
  while (true) {
    float best_score = -1e10f;
    int best_id = -1;
    std::size_t best_idx = 0;
    for (std::size_t i = first; i + 1 < tokens.size(); ++i) {
      const int id = lookup(v.pieces[tokens[i]] + v.pieces[tokens[i + 1]]);
      if (id != -1 && v.scores[id] > best_score) {
        best_score = v.scores[id];
        best_id = id;
        best_idx = i;
      }
    }
    if (best_id == -1) break;
    tokens[best_idx] = best_id;
    tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(best_idx) + 1);
  }
  return tokens;
}

// <unk>, <s>, </s>, then the given pieces with the given scores, then byte tokens for 'a'..'c'.
Vocabulary SmallVocab(const std::vector<std::pair<std::string, float>>& pieces) {
  Vocabulary v;
  for (const char* special : {"<unk>", "<s>", "</s>"}) {
    v.pieces.push_back(special);
    v.scores.push_back(0.0f);
  }
  for (const auto& [piece, score] : pieces) {
    v.pieces.push_back(piece);
    v.scores.push_back(score);
  }
  for (const char* byte : {"<0x61>", "<0x62>", "<0xC3>", "<0xA9>"}) {
    v.pieces.push_back(byte);
    v.scores.push_back(0.0f);
  }
  return v;
}

TEST(TokenizerTest, MergesHighestScoreFirst) {
  // "abc": ab (score -1) beats bc (-2), so the result is [ab, c], not [a, bc].
  Vocabulary v = SmallVocab({{"a", 0}, {"b", 0}, {"c", 0}, {"ab", -1}, {"bc", -2}});
  v.add_dummy_prefix = false;
  EXPECT_THAT(Tokenizer(v).Encode("abc", false), ElementsAre(6, 5));
  v.scores[6] = -3;
  EXPECT_THAT(Tokenizer(v).Encode("abc", false), ElementsAre(3, 7));
  // With the dummy prefix but no " " piece, the space falls back to bytes, here <unk>.
  v.add_dummy_prefix = true;
  EXPECT_THAT(Tokenizer(v).Encode("abc", true), ElementsAre(1, 0, 3, 7));
}

TEST(TokenizerTest, TiesMergeLeftmostPair) {
  // "aaa": both pairs are "aa" with the same score; run.c merges the leftmost: [aa, a].
  Vocabulary v = SmallVocab({{"a", 0}, {"aa", -1}});
  v.add_dummy_prefix = false;
  Tokenizer t(v);
  EXPECT_THAT(t.Encode("aaa", false), ElementsAre(4, 3));
  EXPECT_THAT(t.Encode("aaaaa", false), ElementsAre(4, 4, 3));
}

TEST(TokenizerTest, UnknownCharactersFallBackToBytesOrUnk) {
  Vocabulary v = SmallVocab({{"a", 0}});
  v.add_dummy_prefix = false;
  Tokenizer t(v);
  // 'b' has a byte token (<0x62> = id 5); 'z' has none and becomes <unk>; "é" = C3 A9.
  EXPECT_THAT(t.Encode("abz\xC3\xA9", true), ElementsAre(1, 3, 5, 0, 6, 7));
  EXPECT_EQ(t.Decode({1, 3, 5, 6, 7}), "ab\xC3\xA9");
}

TEST(TokenizerTest, EmptyTextHasNoDummyPrefix) {
  Tokenizer t(SmallVocab({{" ", 0}}));
  EXPECT_THAT(t.Encode("", true), ElementsAre(1));
  EXPECT_TRUE(t.Encode("", false).empty());
  EXPECT_THAT(t.Encode(" ", false), ElementsAre(3, 3));
}

TEST(TokenizerTest, DecodeStripsSpaceOnlyAfterBosAndSkipsControlTokens) {
  Tokenizer t(SmallVocab({{" hi", 0}, {" there", 0}}));
  EXPECT_EQ(t.DecodePiece(1, 3), "hi");
  EXPECT_EQ(t.DecodePiece(3, 4), " there");
  EXPECT_EQ(t.DecodePiece(-1, 3), " hi");
  EXPECT_EQ(t.DecodePiece(3, 1), "");
  EXPECT_EQ(t.DecodePiece(3, 2), "");
  EXPECT_EQ(t.DecodePiece(3, 999), "");
  EXPECT_EQ(t.DecodePiece(3, -5), "");
  EXPECT_EQ(t.Decode({1, 3, 4, 2}), "hi there");
}

TEST(TokenizerTest, ByteFlagsDecideWhichPiecesAreBytes) {
  Vocabulary v = SmallVocab({});
  v.is_byte_token.assign(v.pieces.size(), 0);  // "<0x61>" is then an ordinary piece
  Tokenizer t(v);
  EXPECT_EQ(t.DecodePiece(0, 3), "<0x61>");
  v.is_byte_token[3] = 1;
  Tokenizer u(v);
  EXPECT_EQ(u.DecodePiece(0, 3), "a");
}

class Tok512Test : public ::testing::Test {
 protected:
  void SetUp() override {
    QAQ_REQUIRE_SHARED_FILE(path, "models/tok512.bin");
    auto vocab = internal::ReadLlama2cVocabulary(path, 512);
    ASSERT_TRUE(vocab.ok()) << vocab.status().message();
    vocab_ = *vocab;
  }
  Vocabulary vocab_;
};

TEST_F(Tok512Test, OnceUponATime) {
  Tokenizer t(vocab_);
  EXPECT_THAT(t.Encode("Once upon a time"), ElementsAre(1, 403, 407, 261, 378));
  EXPECT_THAT(t.Encode("Once upon a time", false), ElementsAre(403, 407, 261, 378));
}

TEST_F(Tok512Test, ByteFallbackForNonAscii) {
  Tokenizer t(vocab_);
  // "ü" (C3 BC) and "日" (E6 97 A5) are not pieces: bytes + 3. "é" (C3 A9) is piece 485.
  std::vector<int> ids = t.Encode("\xC3\xBC\xE6\x97\xA5\xC3\xA9", false);
  EXPECT_THAT(ids, ElementsAre(410, 0xC3 + 3, 0xBC + 3, 0xE6 + 3, 0x97 + 3, 0xA5 + 3, 485));
  EXPECT_EQ(t.Decode(ids), " \xC3\xBC\xE6\x97\xA5\xC3\xA9");
  // A stray continuation byte and a 5-byte run are split as run.c splits them.
  EXPECT_THAT(t.Encode("\xA9\xF0\x80\x80\x80\x80", false),
              ElementsAre(410, 0xA9 + 3, 0xF0 + 3, 0x80 + 3, 0x80 + 3, 0x80 + 3, 0x80 + 3));
}

TEST_F(Tok512Test, MatchesReferenceEncoderOnRandomText) {
  Tokenizer t(vocab_);
  std::mt19937 rng(7);
  const std::string alphabet = "abcdeilnorst ,.'\n\xC3\xA9Tt";
  for (int trial = 0; trial < 200; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) text.push_back(alphabet[rng() % alphabet.size()]);
    SCOPED_TRACE(text);
    ASSERT_EQ(t.Encode(text, true), ReferenceEncode(vocab_, text, true));
    ASSERT_EQ(t.Encode(text, false), ReferenceEncode(vocab_, text, false));
  }
}

TEST(TokenizerTest, MatchesReferenceEncoderWithManyTies) {
  // Every piece of up to 3 letters from {a, b} scores the same: only the leftmost rule decides.
  std::vector<std::pair<std::string, float>> pieces;
  for (const char* p :
       {"a", "b", "aa", "ab", "ba", "bb", "aab", "aba", "abb", "baa", "bab", "bba", "aaa", "bbb"}) {
    pieces.emplace_back(p, std::string(p).size() == 3 ? -1.0f : -2.0f);
  }
  Vocabulary v = SmallVocab(pieces);
  v.add_dummy_prefix = false;
  Tokenizer t(v);
  std::mt19937 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 16);
    for (int i = 0; i < n; ++i) text.push_back("ab"[rng() % 2]);
    SCOPED_TRACE(text);
    ASSERT_EQ(t.Encode(text, false), ReferenceEncode(v, text, false));
  }
}

}  // namespace
}  // namespace qaq
