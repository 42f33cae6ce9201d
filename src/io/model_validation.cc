#include "io/model_validation.h"

#include <cmath>

#include <fmt/format.h>

namespace qaq::internal {
namespace {

Status CheckRange(const char* what, std::int64_t value, std::int64_t max) {
  if (value <= 0 || value > max) {
    return DataLossError("{} = {} is out of range (expected 1..{})", what, value, max);
  }
  return OkStatus();
}

Status CheckShape(const TensorView& t, const std::string& name, std::int64_t rows,
                  std::int64_t cols) {
  if (t.data == nullptr) return DataLossError("tensor '{}' is missing", name);
  if (t.rows != rows || t.cols != cols) {
    return DataLossError("tensor '{}' has shape [{}, {}], expected [{}, {}] (rows, columns)", name,
                         t.rows, t.cols, rows, cols);
  }
  return OkStatus();
}

}  // namespace

Status ValidateConfig(const ModelConfig& c) {
  QAQ_RETURN_IF_ERROR(CheckRange("dim", c.dim, kMaxWidth));
  QAQ_RETURN_IF_ERROR(CheckRange("hidden_dim", c.hidden_dim, kMaxWidth));
  QAQ_RETURN_IF_ERROR(CheckRange("n_layers", c.n_layers, kMaxLayers));
  QAQ_RETURN_IF_ERROR(CheckRange("n_heads", c.n_heads, kMaxHeads));
  QAQ_RETURN_IF_ERROR(CheckRange("n_kv_heads", c.n_kv_heads, kMaxHeads));
  QAQ_RETURN_IF_ERROR(CheckRange("vocab_size", c.vocab_size, kMaxVocab));
  QAQ_RETURN_IF_ERROR(CheckRange("context_length", c.context_length, kMaxContext));
  if (c.dim % c.n_heads != 0) {
    return DataLossError("dim {} is not a multiple of n_heads {}", c.dim, c.n_heads);
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    return DataLossError("n_heads {} is not a multiple of n_kv_heads {}", c.n_heads, c.n_kv_heads);
  }
  if (c.head_dim != c.dim / c.n_heads) {
    return DataLossError("head_dim {} differs from dim / n_heads = {}", c.head_dim,
                         c.dim / c.n_heads);
  }
  // RoPE rotates adjacent pairs, so the rotated part of a head has an even width.
  if (c.rope_dim <= 0 || c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
    return DataLossError("rope dimension {} must be even and in 2..head_dim {}", c.rope_dim,
                         c.head_dim);
  }
  if (!std::isfinite(c.rope_theta) || c.rope_theta <= 0.0f) {
    return DataLossError("rope theta {} must be finite and positive", c.rope_theta);
  }
  if (!std::isfinite(c.rms_eps) || c.rms_eps <= 0.0f) {
    return DataLossError("RMSNorm epsilon {} must be finite and positive", c.rms_eps);
  }
  return OkStatus();
}

Status ValidateWeights(const ModelConfig& c, const ModelWeights& w) {
  const std::int64_t q_dim = std::int64_t{c.n_heads} * c.head_dim;
  const std::int64_t kv_dim = std::int64_t{c.n_kv_heads} * c.head_dim;
  QAQ_RETURN_IF_ERROR(CheckShape(w.token_embedding, "token_embd.weight", c.vocab_size, c.dim));
  if (w.layers.size() != static_cast<std::size_t>(c.n_layers)) {
    return DataLossError("{} layers of weights for {} layers", w.layers.size(), c.n_layers);
  }
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& lw = w.layers[l];
    QAQ_RETURN_IF_ERROR(CheckShape(lw.attn_norm, LayerTensorName(l, "attn_norm"), 1, c.dim));
    QAQ_RETURN_IF_ERROR(CheckShape(lw.wq, LayerTensorName(l, "attn_q"), q_dim, c.dim));
    QAQ_RETURN_IF_ERROR(CheckShape(lw.wk, LayerTensorName(l, "attn_k"), kv_dim, c.dim));
    QAQ_RETURN_IF_ERROR(CheckShape(lw.wv, LayerTensorName(l, "attn_v"), kv_dim, c.dim));
    QAQ_RETURN_IF_ERROR(CheckShape(lw.wo, LayerTensorName(l, "attn_output"), c.dim, q_dim));
    QAQ_RETURN_IF_ERROR(CheckShape(lw.ffn_norm, LayerTensorName(l, "ffn_norm"), 1, c.dim));
    QAQ_RETURN_IF_ERROR(CheckShape(lw.w_gate, LayerTensorName(l, "ffn_gate"), c.hidden_dim, c.dim));
    QAQ_RETURN_IF_ERROR(CheckShape(lw.w_down, LayerTensorName(l, "ffn_down"), c.dim, c.hidden_dim));
    QAQ_RETURN_IF_ERROR(CheckShape(lw.w_up, LayerTensorName(l, "ffn_up"), c.hidden_dim, c.dim));
  }
  QAQ_RETURN_IF_ERROR(CheckShape(w.output_norm, "output_norm.weight", 1, c.dim));
  QAQ_RETURN_IF_ERROR(CheckShape(w.output, "output.weight", c.vocab_size, c.dim));
  return OkStatus();
}

std::string LayerTensorName(int layer, const char* part) {
  return fmt::format("blk.{}.{}.weight", layer, part);
}

bool CheckedMul(std::uint64_t a, std::uint64_t b, std::uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

}  // namespace qaq::internal
