#include "qaq/model.h"

#include <cstring>
#include <utility>

#include "io/gguf_model.h"
#include "io/llama2c_reader.h"
#include "io/mmap_file.h"

namespace qaq {

const char* TensorTypeName(TensorType type) {
  switch (type) {
    case TensorType::kF32:
      return "f32";
    case TensorType::kF16:
      return "f16";
    case TensorType::kBF16:
      return "bf16";
    case TensorType::kQ8_0:
      return "q8_0";
  }
  return "unknown";
}

Model::Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

std::size_t Model::weight_bytes() const {
  std::size_t total = weights_.token_embedding.bytes + weights_.output_norm.bytes;
  for (const LayerWeights& l : weights_.layers) {
    total += l.attn_norm.bytes + l.wq.bytes + l.wk.bytes + l.wv.bytes + l.wo.bytes +
             l.ffn_norm.bytes + l.w_gate.bytes + l.w_down.bytes + l.w_up.bytes;
  }
  // A shared classifier is the embedding itself: count its bytes once.
  if (!config_.shared_classifier) total += weights_.output.bytes;
  return total;
}

void Model::set_source(std::string path, std::string format, std::unique_ptr<MappedFile> file) {
  path_ = std::move(path);
  format_ = std::move(format);
  file_ = std::move(file);
}

StatusOr<Model> LoadModel(const std::string& path) {
  QAQ_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path));
  // GGUF files start with the magic "GGUF"; llama2.c checkpoints have no magic (their header is
  // validated instead).
  const bool gguf = file->size() >= 4 && std::memcmp(file->data(), "GGUF", 4) == 0;
  StatusOr<Model> model =
      gguf ? internal::ReadGgufModel(std::move(file)) : internal::ReadLlama2cModel(std::move(file));
  if (!model.ok()) return model.status().WithContext(fmt::format("'{}'", path));
  return model;
}

}  // namespace qaq
