#include "io/llama2c_reader.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>

#include "core/check.h"
#include "io/model_validation.h"

namespace qaq::internal {
namespace {

// llama2.c's newer exports (version 1 and 2) start with this magic; only the legacy layout is
// read (it is what run.c and the published tinyllamas checkpoints use).
constexpr std::uint32_t kLlama2cVersionedMagic = 0x616b3432;  // "ak42"

// Lays out consecutive fp32 tensors from `offset` on; the total was checked against the file.
class Cursor {
 public:
  Cursor(const std::uint8_t* base, std::size_t offset) : base_(base), offset_(offset) {}

  TensorView Take(std::string name, std::int64_t rows, std::int64_t cols) {
    TensorView t;
    t.name = std::move(name);
    t.type = TensorType::kF32;
    t.data = base_ + offset_;
    t.rows = rows;
    t.cols = cols;
    t.bytes = static_cast<std::size_t>(rows * cols) * sizeof(float);
    offset_ += t.bytes;
    return t;
  }
  void Skip(std::size_t bytes) { offset_ += bytes; }
  std::size_t offset() const { return offset_; }

 private:
  const std::uint8_t* base_;
  std::size_t offset_;
};

// Number of fp32 values the file must hold after the header, or an error if it overflows.
StatusOr<std::uint64_t> ExpectedFloats(const ModelConfig& c) {
  const std::uint64_t dim = c.dim, hidden = c.hidden_dim, layers = c.n_layers;
  const std::uint64_t kv_dim = std::uint64_t(c.n_kv_heads) * c.head_dim;
  const std::uint64_t vocab = c.vocab_size;
  const std::uint64_t per_layer =
      2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * hidden * dim;  // norms, wq wo, wk wv, ffn
  std::uint64_t layer_total = 0, freq = 0;
  // The limits of ValidateConfig keep each product far below 2^64; checked anyway.
  if (!CheckedMul(per_layer, layers, &layer_total) ||
      !CheckedMul(std::uint64_t(c.context_length), std::uint64_t(c.head_dim), &freq)) {
    return DataLossError("dimensions overflow 64-bit sizes");
  }
  const std::uint64_t classifier = c.shared_classifier ? 0 : vocab * dim;
  return vocab * dim + layer_total + dim + freq + classifier;
}

}  // namespace

StatusOr<Model> ReadLlama2cModel(std::unique_ptr<MappedFile> file) {
  const std::size_t file_size = file->size();
  if (file_size < kLlama2cHeaderBytes) {
    return DataLossError("{} bytes is too short for a llama2.c header ({} bytes)", file_size,
                         kLlama2cHeaderBytes);
  }
  std::int32_t header[7];
  std::memcpy(header, file->data(), sizeof(header));
  if (static_cast<std::uint32_t>(header[0]) == kLlama2cVersionedMagic) {
    return UnimplementedError(
        "llama2.c versioned export (magic \"ak42\", version {}) is not supported; use the legacy "
        "export or GGUF",
        header[1]);
  }

  Model model;
  ModelConfig& c = model.mutable_config();
  c.architecture = "llama";
  c.name = std::filesystem::path(file->path()).stem().string();
  c.dim = header[0];
  c.hidden_dim = header[1];
  c.n_layers = header[2];
  c.n_heads = header[3];
  c.n_kv_heads = header[4];
  // A negative vocabulary size marks an unshared classifier (wcls follows the other weights).
  c.shared_classifier = header[5] > 0;
  c.vocab_size = header[5] == INT32_MIN ? 0 : (header[5] < 0 ? -header[5] : header[5]);
  c.context_length = header[6];
  c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
  c.rope_dim = c.head_dim;
  c.rope_theta = 10000.0f;  // run.c's constants
  c.rms_eps = 1e-5f;
  Status valid = ValidateConfig(c);
  if (!valid.ok()) {
    return valid.WithContext(
        fmt::format("not a valid llama2.c checkpoint (header {} {} {} {} {} {} {})", header[0],
                    header[1], header[2], header[3], header[4], header[5], header[6]));
  }

  QAQ_ASSIGN_OR_RETURN(const std::uint64_t floats, ExpectedFloats(c));
  std::uint64_t expected = 0;
  if (!CheckedMul(floats, sizeof(float), &expected) ||
      expected > UINT64_MAX - kLlama2cHeaderBytes) {
    return DataLossError("dimensions overflow 64-bit sizes");
  }
  expected += kLlama2cHeaderBytes;
  if (file_size < expected) {
    return DataLossError("truncated llama2.c checkpoint: {} bytes, the header implies {}",
                         file_size, expected);
  }
  if (file_size > expected) {
    return DataLossError(
        "llama2.c checkpoint has {} bytes after the weights the header implies ({} bytes); "
        "wrong format?",
        file_size - expected, expected);
  }

  const std::int64_t dim = c.dim, hidden = c.hidden_dim, vocab = c.vocab_size;
  const std::int64_t kv_dim = std::int64_t{c.n_kv_heads} * c.head_dim;
  ModelWeights& w = model.mutable_weights();
  w.layers.resize(c.n_layers);
  Cursor cur(file->data(), kLlama2cHeaderBytes);
  w.token_embedding = cur.Take("token_embd.weight", vocab, dim);
  // Each kind of tensor is stored for all layers before the next kind.
  auto take_layers = [&](const char* part, TensorView LayerWeights::*member, std::int64_t rows,
                         std::int64_t cols) {
    for (int l = 0; l < c.n_layers; ++l) {
      w.layers[l].*member = cur.Take(LayerTensorName(l, part), rows, cols);
    }
  };
  take_layers("attn_norm", &LayerWeights::attn_norm, 1, dim);
  take_layers("attn_q", &LayerWeights::wq, dim, dim);
  take_layers("attn_k", &LayerWeights::wk, kv_dim, dim);
  take_layers("attn_v", &LayerWeights::wv, kv_dim, dim);
  take_layers("attn_output", &LayerWeights::wo, dim, dim);
  take_layers("ffn_norm", &LayerWeights::ffn_norm, 1, dim);
  take_layers("ffn_gate", &LayerWeights::w_gate, hidden, dim);  // w1
  take_layers("ffn_down", &LayerWeights::w_down, dim, hidden);  // w2
  take_layers("ffn_up", &LayerWeights::w_up, hidden, dim);      // w3
  w.output_norm = cur.Take("output_norm.weight", 1, dim);
  cur.Skip(2 * static_cast<std::size_t>(c.context_length) * (c.head_dim / 2) * sizeof(float));
  if (c.shared_classifier) {
    w.output = w.token_embedding;
    w.output.name = "token_embd.weight";
  } else {
    w.output = cur.Take("output.weight", vocab, dim);
  }
  QAQ_CHECK(cur.offset() == expected, "layout {} != expected {}", cur.offset(), expected);
  QAQ_RETURN_IF_ERROR(ValidateWeights(c, w));

  const std::string path = file->path();
  model.set_source(path, "llama2c", std::move(file));
  return model;
}

}  // namespace qaq::internal
