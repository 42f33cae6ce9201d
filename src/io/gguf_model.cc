#include "io/gguf_model.h"

#include <climits>
#include <filesystem>
#include <string>
#include <string_view>

#include "io/gguf_reader.h"
#include "io/gguf_types.h"
#include "io/model_validation.h"

namespace qaq::internal {
namespace {

constexpr int kGgufTokenTypeByte = 6;  // llama_token_type LLAMA_TOKEN_TYPE_BYTE

// An integer key as int; `fallback` when the key is absent and a default exists.
StatusOr<int> GetInt(const GgufFile& f, const std::string& key, std::optional<int> fallback = {}) {
  if (fallback && f.Find(key) == nullptr) return *fallback;
  QAQ_ASSIGN_OR_RETURN(const std::uint64_t v, f.GetUint(key));
  if (v > static_cast<std::uint64_t>(INT_MAX)) {
    return DataLossError("metadata '{}' = {} is out of range", key, v);
  }
  return static_cast<int>(v);
}

StatusOr<float> GetFloat(const GgufFile& f, const std::string& key, float fallback) {
  if (f.Find(key) == nullptr) return fallback;
  QAQ_ASSIGN_OR_RETURN(const double v, f.GetFloat(key));
  return static_cast<float>(v);
}

// The tensor `name` as a [rows, cols] view; a 1-D tensor is one row.
StatusOr<TensorView> MapTensor(const GgufFile& f, const std::string& name) {
  const GgufTensorInfo* t = f.FindTensor(name);
  if (t == nullptr) return DataLossError("missing tensor '{}'", name);
  const std::optional<TensorType> type = ToTensorType(t->type);
  if (!type) {
    return UnimplementedError(
        "tensor '{}' has type {}, which qaq does not read (supported: f32, f16, bf16, q8_0)", name,
        GgmlTypeName(t->type));
  }
  for (std::size_t d = 2; d < t->dims.size(); ++d) {
    if (t->dims[d] != 1) {
      return DataLossError("tensor '{}' has {} dimensions; a weight matrix has at most 2", name,
                           t->dims.size());
    }
  }
  TensorView view;
  view.name = name;
  view.type = *type;
  view.data = t->data;
  view.cols = static_cast<std::int64_t>(t->dims[0]);
  view.rows = t->dims.size() > 1 ? static_cast<std::int64_t>(t->dims[1]) : 1;
  view.bytes = static_cast<std::size_t>(*t->bytes);  // known for every supported type
  return view;
}

// RMSNorm weights are applied element-wise in fp32 by the forward pass.
Status RequireF32(const TensorView& t) {
  if (t.type != TensorType::kF32) {
    return UnimplementedError("norm tensor '{}' has type {}; qaq reads norms in f32 only", t.name,
                              TensorTypeName(t.type));
  }
  return OkStatus();
}

Status ReadConfig(const GgufFile& f, const std::string& path, ModelConfig* c) {
  QAQ_ASSIGN_OR_RETURN(const std::string_view arch, f.GetString("general.architecture"));
  if (arch != "llama") {
    return UnimplementedError("architecture '{}' is not supported (qaq reads 'llama')", arch);
  }
  c->architecture = std::string(arch);
  const std::string p = c->architecture + ".";
  if (f.Find("general.name") != nullptr) {
    QAQ_ASSIGN_OR_RETURN(const std::string_view name, f.GetString("general.name"));
    c->name = std::string(name);
  } else {
    c->name = std::filesystem::path(path).stem().string();
  }
  QAQ_ASSIGN_OR_RETURN(c->dim, GetInt(f, p + "embedding_length"));
  QAQ_ASSIGN_OR_RETURN(c->hidden_dim, GetInt(f, p + "feed_forward_length"));
  QAQ_ASSIGN_OR_RETURN(c->n_layers, GetInt(f, p + "block_count"));
  QAQ_ASSIGN_OR_RETURN(c->n_heads, GetInt(f, p + "attention.head_count"));
  QAQ_ASSIGN_OR_RETURN(c->n_kv_heads, GetInt(f, p + "attention.head_count_kv", c->n_heads));
  QAQ_ASSIGN_OR_RETURN(c->context_length, GetInt(f, p + "context_length"));
  c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
  QAQ_ASSIGN_OR_RETURN(c->rope_dim, GetInt(f, p + "rope.dimension_count", c->head_dim));
  QAQ_ASSIGN_OR_RETURN(c->rope_theta, GetFloat(f, p + "rope.freq_base", 10000.0f));
  QAQ_ASSIGN_OR_RETURN(c->rms_eps, GetFloat(f, p + "attention.layer_norm_rms_epsilon", 1e-5f));

  // Variants of the architecture the forward pass does not implement.
  for (const char* key : {"attention.key_length", "attention.value_length"}) {
    if (f.Find(p + key) == nullptr) continue;
    QAQ_ASSIGN_OR_RETURN(const int length, GetInt(f, p + key));
    if (length != c->head_dim) {
      return UnimplementedError("{}{} = {} differs from dim / n_heads = {}", p, key, length,
                                c->head_dim);
    }
  }
  if (f.Find(p + "rope.scaling.type") != nullptr) {
    QAQ_ASSIGN_OR_RETURN(const std::string_view scaling, f.GetString(p + "rope.scaling.type"));
    if (scaling != "none") {
      return UnimplementedError("RoPE scaling '{}' is not supported", scaling);
    }
  }
  if (f.FindTensor("rope_freqs.weight") != nullptr) {
    return UnimplementedError(
        "RoPE frequency factors (tensor 'rope_freqs.weight') are not supported");
  }
  if (f.Find(p + "expert_count") != nullptr) {
    QAQ_ASSIGN_OR_RETURN(const int experts, GetInt(f, p + "expert_count"));
    if (experts > 0) return UnimplementedError("mixture-of-experts models are not supported");
  }

  // The vocabulary size is the embedding's row count.
  const GgufTensorInfo* embd = f.FindTensor("token_embd.weight");
  if (embd == nullptr) return DataLossError("missing tensor 'token_embd.weight'");
  if (embd->dims.size() < 2 || embd->dims[1] > static_cast<std::uint64_t>(INT_MAX)) {
    return DataLossError("tensor 'token_embd.weight' is not a [vocab, dim] matrix");
  }
  c->vocab_size = static_cast<int>(embd->dims[1]);
  c->shared_classifier = f.FindTensor("output.weight") == nullptr;
  return ValidateConfig(*c);
}

Status ReadWeights(const GgufFile& f, const ModelConfig& c, ModelWeights* w) {
  QAQ_ASSIGN_OR_RETURN(w->token_embedding, MapTensor(f, "token_embd.weight"));
  w->layers.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& lw = w->layers[l];
    QAQ_ASSIGN_OR_RETURN(lw.attn_norm, MapTensor(f, LayerTensorName(l, "attn_norm")));
    QAQ_ASSIGN_OR_RETURN(lw.wq, MapTensor(f, LayerTensorName(l, "attn_q")));
    QAQ_ASSIGN_OR_RETURN(lw.wk, MapTensor(f, LayerTensorName(l, "attn_k")));
    QAQ_ASSIGN_OR_RETURN(lw.wv, MapTensor(f, LayerTensorName(l, "attn_v")));
    QAQ_ASSIGN_OR_RETURN(lw.wo, MapTensor(f, LayerTensorName(l, "attn_output")));
    QAQ_ASSIGN_OR_RETURN(lw.ffn_norm, MapTensor(f, LayerTensorName(l, "ffn_norm")));
    QAQ_ASSIGN_OR_RETURN(lw.w_gate, MapTensor(f, LayerTensorName(l, "ffn_gate")));
    QAQ_ASSIGN_OR_RETURN(lw.w_down, MapTensor(f, LayerTensorName(l, "ffn_down")));
    QAQ_ASSIGN_OR_RETURN(lw.w_up, MapTensor(f, LayerTensorName(l, "ffn_up")));
    QAQ_RETURN_IF_ERROR(RequireF32(lw.attn_norm));
    QAQ_RETURN_IF_ERROR(RequireF32(lw.ffn_norm));
  }
  QAQ_ASSIGN_OR_RETURN(w->output_norm, MapTensor(f, "output_norm.weight"));
  QAQ_RETURN_IF_ERROR(RequireF32(w->output_norm));
  if (c.shared_classifier) {
    w->output = w->token_embedding;
  } else {
    QAQ_ASSIGN_OR_RETURN(w->output, MapTensor(f, "output.weight"));
  }
  return ValidateWeights(c, *w);
}

// SentencePiece writes a space as U+2581 ("▁").
std::string SpacesFromMetaspace(std::string_view piece) {
  constexpr std::string_view kMetaspace = "\xE2\x96\x81";
  std::string out;
  out.reserve(piece.size());
  for (std::size_t i = 0; i < piece.size();) {
    if (piece.substr(i, kMetaspace.size()) == kMetaspace) {
      out.push_back(' ');
      i += kMetaspace.size();
    } else {
      out.push_back(piece[i++]);
    }
  }
  return out;
}

Status ReadVocabulary(const GgufFile& f, int vocab_size, Vocabulary* v) {
  if (f.Find("tokenizer.ggml.tokens") == nullptr) return OkStatus();  // none embedded
  if (f.Find("tokenizer.ggml.model") != nullptr) {
    QAQ_ASSIGN_OR_RETURN(const std::string_view model, f.GetString("tokenizer.ggml.model"));
    if (model != "llama") {
      return UnimplementedError(
          "tokenizer '{}' is not supported (qaq implements SentencePiece, 'llama')", model);
    }
  }
  QAQ_ASSIGN_OR_RETURN(const std::vector<std::string_view> tokens,
                       f.GetStringArray("tokenizer.ggml.tokens"));
  const std::size_t n = tokens.size();
  if (n != static_cast<std::size_t>(vocab_size)) {
    return DataLossError("the vocabulary has {} tokens but token_embd.weight has {} rows", n,
                         vocab_size);
  }
  v->pieces.reserve(n);
  for (std::string_view token : tokens) v->pieces.push_back(SpacesFromMetaspace(token));

  v->scores.assign(n, 0.0f);
  if (f.Find("tokenizer.ggml.scores") != nullptr) {
    QAQ_ASSIGN_OR_RETURN(const std::vector<double> scores,
                         f.GetNumberArray("tokenizer.ggml.scores"));
    if (scores.size() != n) {
      return DataLossError("{} token scores for {} tokens", scores.size(), n);
    }
    for (std::size_t k = 0; k < n; ++k) v->scores[k] = static_cast<float>(scores[k]);
  }
  if (f.Find("tokenizer.ggml.token_type") != nullptr) {
    QAQ_ASSIGN_OR_RETURN(const std::vector<double> types,
                         f.GetNumberArray("tokenizer.ggml.token_type"));
    if (types.size() != n) return DataLossError("{} token types for {} tokens", types.size(), n);
    v->is_byte_token.resize(n);
    for (std::size_t k = 0; k < n; ++k) v->is_byte_token[k] = types[k] == kGgufTokenTypeByte;
  }
  // Without types the tokenizer recognises byte tokens by their "<0xNN>" spelling.

  QAQ_ASSIGN_OR_RETURN(v->bos_id, GetInt(f, "tokenizer.ggml.bos_token_id", 1));
  QAQ_ASSIGN_OR_RETURN(v->eos_id, GetInt(f, "tokenizer.ggml.eos_token_id", 2));
  QAQ_ASSIGN_OR_RETURN(v->unk_id, GetInt(f, "tokenizer.ggml.unknown_token_id", 0));
  for (const auto& [what, id] : {std::pair{"BOS", v->bos_id}, std::pair{"EOS", v->eos_id},
                                 std::pair{"unknown", v->unk_id}}) {
    if (id < 0 || static_cast<std::size_t>(id) >= n) {
      return DataLossError("{} token id {} is outside the vocabulary of {}", what, id, n);
    }
  }
  if (f.Find("tokenizer.ggml.add_space_prefix") != nullptr) {
    QAQ_ASSIGN_OR_RETURN(v->add_dummy_prefix, f.GetBool("tokenizer.ggml.add_space_prefix"));
  }
  return OkStatus();
}

}  // namespace

StatusOr<Model> ReadGgufModel(std::unique_ptr<MappedFile> file) {
  QAQ_ASSIGN_OR_RETURN(const GgufFile gguf, GgufFile::Parse(file->bytes()));
  Model model;
  QAQ_RETURN_IF_ERROR(ReadConfig(gguf, file->path(), &model.mutable_config()));
  QAQ_RETURN_IF_ERROR(ReadWeights(gguf, model.config(), &model.mutable_weights()));
  QAQ_RETURN_IF_ERROR(ReadVocabulary(gguf, model.config().vocab_size, &model.mutable_vocabulary()));
  const std::string path = file->path();
  model.set_source(path, "gguf", std::move(file));
  return model;
}

}  // namespace qaq::internal
