// Reader for llama2.c tokenizer files (tokenizer.bin, tok512.bin):
//   int32 max_token_length, then per token: float32 score, int32 length, `length` bytes.
// The file does not store the token count; it is the model's vocab_size. Ids 0, 1, 2 are
// <unk>, BOS and EOS (run.c hard-codes them); "<0xNN>" pieces are the byte-fallback tokens.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "qaq/model.h"
#include "qaq/status.h"

namespace qaq::internal {

// Parses `bytes` (the whole file) as `vocab_size` tokens; vocab_size <= 0 reads to the end.
// Errors (kDataLoss): truncated entries, negative or oversized lengths, a token count different
// from vocab_size (a tokenizer made for another model).
StatusOr<Vocabulary> ParseLlama2cVocabulary(std::span<const std::uint8_t> bytes, int vocab_size);

// Maps and parses the file at `path`; errors name the file.
StatusOr<Vocabulary> ReadLlama2cVocabulary(const std::string& path, int vocab_size);

}  // namespace qaq::internal
