#include "tokenizer/llama2c_vocab.h"

#include <cstring>
#include <memory>

#include "io/mmap_file.h"

namespace qaq::internal {
namespace {

// Far beyond any SentencePiece piece; a larger value means the file is not a tokenizer.
constexpr std::int32_t kMaxPieceBytes = 1 << 16;
constexpr std::int64_t kMaxTokens = 1 << 24;

bool IsBytePiece(const std::string& piece) {
  auto hex = [](char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F') || (ch >= 'a' && ch <= 'f');
  };
  return piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && hex(piece[3]) && hex(piece[4]) &&
         piece[5] == '>';
}

}  // namespace

StatusOr<Vocabulary> ParseLlama2cVocabulary(std::span<const std::uint8_t> bytes, int vocab_size) {
  std::size_t pos = 0;
  auto read_i32 = [&](std::int32_t* out) {
    if (bytes.size() - pos < 4) return false;
    std::memcpy(out, bytes.data() + pos, 4);
    pos += 4;
    return true;
  };
  std::int32_t max_length = 0;
  if (!read_i32(&max_length)) return DataLossError("too short for a llama2.c tokenizer header");
  if (max_length <= 0 || max_length > kMaxPieceBytes) {
    return DataLossError("max_token_length {} is out of range (1..{}): not a llama2.c tokenizer",
                         max_length, kMaxPieceBytes);
  }
  if (vocab_size > kMaxTokens) return DataLossError("vocab_size {} is out of range", vocab_size);

  Vocabulary v;
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  v.add_dummy_prefix = true;
  const bool read_to_end = vocab_size <= 0;
  while (read_to_end ? pos < bytes.size()
                     : v.pieces.size() < static_cast<std::size_t>(vocab_size)) {
    const std::size_t id = v.pieces.size();
    if (bytes.size() - pos < 8) {
      return DataLossError("tokenizer ends inside token {} (expected {} tokens)", id,
                           read_to_end ? std::string("more") : std::to_string(vocab_size));
    }
    float score;
    std::int32_t length = 0;
    std::memcpy(&score, bytes.data() + pos, 4);
    pos += 4;
    (void)read_i32(&length);
    if (length < 0 || length > max_length) {
      return DataLossError("token {} has length {} (max_token_length {})", id, length, max_length);
    }
    if (bytes.size() - pos < static_cast<std::size_t>(length)) {
      return DataLossError("tokenizer ends inside the text of token {}", id);
    }
    std::string piece(reinterpret_cast<const char*>(bytes.data() + pos), length);
    pos += length;
    v.is_byte_token.push_back(IsBytePiece(piece) ? 1 : 0);
    v.pieces.push_back(std::move(piece));
    v.scores.push_back(score);
  }
  if (pos != bytes.size()) {
    return DataLossError(
        "tokenizer holds more than the model's {} tokens ({} bytes left): made for another model?",
        vocab_size, bytes.size() - pos);
  }
  if (v.pieces.size() < 3) {
    return DataLossError("tokenizer has {} tokens; <unk>, BOS and EOS need at least 3",
                         v.pieces.size());
  }
  return v;
}

StatusOr<Vocabulary> ReadLlama2cVocabulary(const std::string& path, int vocab_size) {
  StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  StatusOr<Vocabulary> vocab = ParseLlama2cVocabulary((*file)->bytes(), vocab_size);
  if (!vocab.ok()) return vocab.status().WithContext(fmt::format("tokenizer '{}'", path));
  return vocab;
}

}  // namespace qaq::internal
