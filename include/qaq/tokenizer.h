// qaq/tokenizer.h: SentencePiece-style BPE over a model's vocabulary, as llama2.c does it.
//
// The same algorithm serves both vocabulary sources: the one embedded in a GGUF file and a
// llama2.c tokenizer file (tok512.bin). Encoding prepends BOS and (SentencePiece's dummy prefix)
// a space, merges pairs by score, and falls back to byte tokens <0xNN> for unknown characters.
#pragma once

#include <array>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "qaq/model.h"
#include "qaq/status.h"

namespace qaq {

class Tokenizer {
 public:
  explicit Tokenizer(Vocabulary vocabulary);

  // Text to token ids; `add_bos` prepends the BOS id.
  std::vector<int> Encode(std::string_view text, bool add_bos = true) const;

  // The text of `token` when it follows `previous` (for streaming): byte tokens become their byte,
  // and the leading space of the first piece after BOS is dropped, as llama2.c prints.
  std::string DecodePiece(int previous, int token) const;

  // Concatenated DecodePiece over a sequence.
  std::string Decode(const std::vector<int>& tokens) const;

  int vocab_size() const { return static_cast<int>(vocabulary_.pieces.size()); }
  int bos_id() const { return vocabulary_.bos_id; }
  int eos_id() const { return vocabulary_.eos_id; }
  const Vocabulary& vocabulary() const { return vocabulary_; }

 private:
  // Heterogeneous lookup: Encode probes with string_views, no copy per probe.
  struct PieceHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  // Id of `piece`, or -1. The first id wins when a vocabulary repeats a piece.
  int Lookup(std::string_view piece) const;

  Vocabulary vocabulary_;
  std::unordered_map<std::string, int, PieceHash, std::equal_to<>> piece_to_id_;
  std::array<int, 256> byte_to_id_{};  // id of "<0xNN>", or unk_id when the vocabulary lacks it
  std::vector<int> id_to_byte_;        // byte value of a byte token, -1 for other tokens
};

// The tokenizer for `model`: its embedded vocabulary (GGUF), or the llama2.c tokenizer file at
// `tokenizer_path`. When `tokenizer_path` is empty and the model has no vocabulary, looks for
// tok<vocab_size>.bin and tokenizer.bin beside the model file.
StatusOr<Tokenizer> LoadTokenizer(const Model& model, const std::string& tokenizer_path = "");

}  // namespace qaq
