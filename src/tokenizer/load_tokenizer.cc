// LoadTokenizer: picks the vocabulary source for a model (see qaq/tokenizer.h).
#include <filesystem>
#include <string>

#include "qaq/tokenizer.h"
#include "tokenizer/llama2c_vocab.h"

namespace qaq {

StatusOr<Tokenizer> LoadTokenizer(const Model& model, const std::string& tokenizer_path) {
  const int vocab_size = model.config().vocab_size;
  if (!tokenizer_path.empty()) {
    QAQ_ASSIGN_OR_RETURN(Vocabulary v, internal::ReadLlama2cVocabulary(tokenizer_path, vocab_size));
    return Tokenizer(std::move(v));
  }
  if (!model.vocabulary().pieces.empty()) return Tokenizer(model.vocabulary());

  // llama2.c checkpoints keep the vocabulary in a separate file, usually beside the model.
  const std::filesystem::path dir = std::filesystem::path(model.path()).parent_path();
  for (const std::string& name :
       {"tok" + std::to_string(vocab_size) + ".bin", std::string("tokenizer.bin")}) {
    const std::filesystem::path candidate = dir / name;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(candidate, ec)) continue;
    QAQ_ASSIGN_OR_RETURN(Vocabulary v,
                         internal::ReadLlama2cVocabulary(candidate.string(), vocab_size));
    return Tokenizer(std::move(v));
  }
  return NotFoundError(
      "model '{}' has no vocabulary and neither tok{}.bin nor tokenizer.bin is beside it; pass a "
      "llama2.c tokenizer file",
      model.path(), vocab_size);
}

}  // namespace qaq
