// qaq/model.h: a LLaMA-family model loaded from a GGUF file or a llama2.c checkpoint.
//
//   QAQ_ASSIGN_OR_RETURN(qaq::Model model, qaq::LoadModel("stories260K.gguf"));
//   model.config().n_layers ...
//
// Weights stay in the memory-mapped file; `TensorView`s point into it. F32, F16, BF16 and Q8_0
// tensors are supported; the matrix-vector kernels convert on the fly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "qaq/status.h"

namespace qaq {

enum class TensorType { kF32, kF16, kBF16, kQ8_0 };

// "f32", "f16", "bf16", "q8_0".
const char* TensorTypeName(TensorType type);

// A 2-D (or 1-D: rows = 1) weight tensor in row-major order: `rows` outputs of `cols` inputs.
// For kQ8_0, each row is cols/32 blocks of {fp16 scale, 32 x int8}.
struct TensorView {
  std::string name;
  TensorType type = TensorType::kF32;
  const void* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::size_t bytes = 0;  // exact bytes of data
};

struct ModelConfig {
  std::string architecture = "llama";
  std::string name;             // general.name, or the file name
  int dim = 0;                  // embedding width
  int hidden_dim = 0;           // feed-forward width
  int n_layers = 0;
  int n_heads = 0;              // query heads
  int n_kv_heads = 0;           // key/value heads (grouped-query attention when < n_heads)
  int head_dim = 0;             // dim / n_heads
  int vocab_size = 0;
  int context_length = 0;       // maximum positions
  float rope_theta = 10000.0f;
  int rope_dim = 0;             // rotated dimensions per head (adjacent pairs), <= head_dim
  float rms_eps = 1e-5f;
  bool shared_classifier = true;  // output weights are the token embedding
};

struct LayerWeights {
  TensorView attn_norm;  // [dim], always kF32 (loaders refuse other types)
  TensorView wq;         // [n_heads * head_dim, dim]
  TensorView wk;         // [n_kv_heads * head_dim, dim]
  TensorView wv;         // [n_kv_heads * head_dim, dim]
  TensorView wo;         // [dim, n_heads * head_dim]
  TensorView ffn_norm;   // [dim], always kF32
  TensorView w_gate;     // [hidden_dim, dim]   (llama2.c w1)
  TensorView w_down;     // [dim, hidden_dim]   (llama2.c w2)
  TensorView w_up;       // [hidden_dim, dim]   (llama2.c w3)
};

struct ModelWeights {
  TensorView token_embedding;  // [vocab_size, dim]
  std::vector<LayerWeights> layers;
  TensorView output_norm;      // [dim], always kF32
  TensorView output;           // [vocab_size, dim]; equals token_embedding when shared
};

// The vocabulary stored in the model file (GGUF) or read from a llama2.c tokenizer file.
struct Vocabulary {
  std::vector<std::string> pieces;  // SentencePiece pieces; "▁" already replaced by ' '
  std::vector<float> scores;        // merge priority (higher merges first)
  std::vector<std::uint8_t> is_byte_token;  // 1 for "<0xNN>" byte-fallback tokens
  int bos_id = 1;
  int eos_id = 2;
  int unk_id = 0;
  bool add_dummy_prefix = true;     // SentencePiece prepends a space to the text
};

class MappedFile;  // src/io/mmap_file.h

class Model {
 public:
  Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  // Empty for llama2.c checkpoints (their vocabulary is a separate tokenizer file).
  const Vocabulary& vocabulary() const { return vocabulary_; }
  const std::string& path() const { return path_; }
  // "gguf" or "llama2c".
  const std::string& format() const { return format_; }
  // Bytes of all weight tensors.
  std::size_t weight_bytes() const;

  // For loaders only.
  ModelConfig& mutable_config() { return config_; }
  ModelWeights& mutable_weights() { return weights_; }
  Vocabulary& mutable_vocabulary() { return vocabulary_; }
  void set_source(std::string path, std::string format, std::unique_ptr<MappedFile> file);
  // Storage for tensors the loader had to create (none for the supported formats today).
  std::vector<std::vector<std::byte>>& owned_buffers() { return owned_; }

 private:
  ModelConfig config_;
  ModelWeights weights_;
  Vocabulary vocabulary_;
  std::string path_;
  std::string format_;
  std::unique_ptr<MappedFile> file_;
  std::vector<std::vector<std::byte>> owned_;
};

// Loads a GGUF v3 file (architecture "llama") or a llama2.c checkpoint (.bin), chosen by the
// file's magic. Every problem with the file is a Status naming it; nothing aborts.
StatusOr<Model> LoadModel(const std::string& path);

}  // namespace qaq
