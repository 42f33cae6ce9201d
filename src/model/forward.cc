#include "model/forward.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "io/model_validation.h"
#include "kernels/matvec.h"
#include "kernels/tensor_rows.h"
#include "kernels/vector_ops.h"
#include "model/parallel.h"

namespace qaq::internal {
namespace {

std::vector<float> NormWeights(const TensorView& t) {
  std::vector<float> w(std::size_t(t.cols));
  DequantizeRow(t, 0, w.data());
  return w;
}

// Q8_0 rows are whole blocks; the other types take any width.
Status CheckMatrixType(const TensorView& t) {
  if (t.type == TensorType::kQ8_0 && t.cols % kQ8BlockSize != 0) {
    return DataLossError("tensor '{}' is Q8_0 with {} columns, not a multiple of {}", t.name, t.cols,
                         kQ8BlockSize);
  }
  if (t.bytes < RowBytes(t.type, t.cols) * std::size_t(t.rows)) {
    return DataLossError("tensor '{}' holds {} bytes, its shape needs {}", t.name, t.bytes,
                         RowBytes(t.type, t.cols) * std::size_t(t.rows));
  }
  return OkStatus();
}

Status CheckCacheShape(const ModelConfig& c, const KvCacheShape& s) {
  if (s.n_layers != c.n_layers || s.n_kv_heads != c.n_kv_heads || s.head_dim != c.head_dim ||
      s.n_heads != c.n_heads || s.rope_dim != c.rope_dim || s.rope_theta != c.rope_theta) {
    return InvalidArgumentError(
        "KV cache shape (layers {}, heads {}/{}, head dim {}, rope {} theta {}) does not match the "
        "model (layers {}, heads {}/{}, head dim {}, rope {} theta {})",
        s.n_layers, s.n_heads, s.n_kv_heads, s.head_dim, s.rope_dim, s.rope_theta, c.n_layers,
        c.n_heads, c.n_kv_heads, c.head_dim, c.rope_dim, c.rope_theta);
  }
  if (s.max_tokens <= 0) return InvalidArgumentError("KV cache holds no positions");
  return OkStatus();
}

}  // namespace

StatusOr<std::unique_ptr<Forward>> Forward::Create(const ModelConfig& config,
                                                   const ModelWeights& weights,
                                                   std::unique_ptr<KvCache> cache, int n_threads) {
  if (n_threads < 1) return InvalidArgumentError("thread count {} must be at least 1", n_threads);
  if (cache == nullptr) return InvalidArgumentError("no KV cache given");
  QAQ_RETURN_IF_ERROR(ValidateConfig(config));
  QAQ_RETURN_IF_ERROR(ValidateWeights(config, weights));
  QAQ_RETURN_IF_ERROR(CheckCacheShape(config, cache->shape()));
  QAQ_RETURN_IF_ERROR(CheckMatrixType(weights.token_embedding));
  QAQ_RETURN_IF_ERROR(CheckMatrixType(weights.output_norm));
  if (weights.output.data != nullptr) QAQ_RETURN_IF_ERROR(CheckMatrixType(weights.output));
  for (const LayerWeights& l : weights.layers) {
    for (const TensorView* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate,
                                &l.w_down, &l.w_up}) {
      QAQ_RETURN_IF_ERROR(CheckMatrixType(*t));
    }
  }
  return std::make_unique<Forward>(ConstructorKey(), config, weights, std::move(cache), n_threads);
}

Forward::Forward(ConstructorKey, const ModelConfig& config, const ModelWeights& weights,
                 std::unique_ptr<KvCache> cache, int n_threads)
    : config_(config),
      weights_(weights),
      cache_(std::move(cache)),
      n_threads_(n_threads),
      min_parallel_work_(kMinParallelWork),
      q_dim_(config.n_heads * config.head_dim),
      kv_dim_(config.n_kv_heads * config.head_dim),
      query_scale_(1.0f / std::sqrt(float(config.head_dim))),
      rope_(config.rope_theta, config.rope_dim, cache_->shape().max_tokens) {
  // A shared classifier is the embedding; loaders may leave `output` empty then.
  if (weights_.output.data == nullptr) weights_.output = weights_.token_embedding;
  for (const LayerWeights& l : weights_.layers) {
    attn_norm_.push_back(NormWeights(l.attn_norm));
    ffn_norm_.push_back(NormWeights(l.ffn_norm));
  }
  output_norm_ = NormWeights(weights_.output_norm);

  const std::size_t rows = kMaxBatch;
  x_.resize(rows * config.dim);
  xb_.resize(rows * std::max(config.dim, q_dim_));
  xb2_.resize(rows * config.dim);
  q_.resize(rows * q_dim_);
  k_.resize(rows * kv_dim_);
  v_.resize(rows * kv_dim_);
  att_out_.resize(rows * q_dim_);
  hb_.resize(rows * config.hidden_dim);
  hb2_.resize(rows * config.hidden_dim);
  probs_.resize(std::size_t(config.n_heads) * context_length());
  logits_.resize(config.vocab_size);
}

StatusOr<std::span<const float>> Forward::Run(std::span<const int> tokens, bool all_logits) {
  const int n = int(tokens.size());
  if (n == 0) return InvalidArgumentError("no tokens to run");
  for (int token : tokens) {
    if (token < 0 || token >= config_.vocab_size) {
      return InvalidArgumentError("token id {} is outside the vocabulary (0..{})", token,
                                  config_.vocab_size - 1);
    }
  }
  const int pos0 = n_past();
  if (std::int64_t{pos0} + n > context_length()) {
    return OutOfRangeError("{} tokens after {} cached positions exceed the context of {} positions",
                           n, pos0, context_length());
  }
  const std::size_t vocab = std::size_t(config_.vocab_size);
  // Grows only when a longer all-logits request than any before arrives.
  if (all_logits && logits_.size() < std::size_t(n) * vocab) logits_.resize(std::size_t(n) * vocab);

  for (int c = 0; c < n; c += kMaxBatch) {
    const int m = std::min(kMaxBatch, n - c);
    const bool last_chunk = c + m == n;
    const int first_logit_row = all_logits ? 0 : (last_chunk ? m - 1 : m);
    float* out = all_logits ? logits_.data() + std::size_t(c) * vocab : logits_.data();
    RunChunk(tokens.data() + c, m, pos0 + c, first_logit_row, out);
  }
  cache_->EndStep();
  return std::span<const float>(logits_.data(), all_logits ? std::size_t(n) * vocab : vocab);
}

void Forward::RunChunk(const int* tokens, int n, int pos0, int first_logit_row, float* logits_out) {
  const int dim = config_.dim, hidden = config_.hidden_dim, head_dim = config_.head_dim;
  const float eps = config_.rms_eps;
  for (int i = 0; i < n; ++i) DequantizeRow(weights_.token_embedding, tokens[i], &x_[i * dim]);

  for (int l = 0; l < config_.n_layers; ++l) {
    const LayerWeights& lw = weights_.layers[l];
    for (int i = 0; i < n; ++i) RmsNorm(&x_[i * dim], attn_norm_[l].data(), &xb_[i * dim], dim, eps);
    MatMuls({{&lw.wq, q_.data()}, {&lw.wk, k_.data()}, {&lw.wv, v_.data()}}, xb_.data(), n);
    for (int i = 0; i < n; ++i) {
      float* q = &q_[i * q_dim_];
      rope_.Apply(q, config_.n_heads, head_dim, pos0 + i);
      for (int j = 0; j < q_dim_; ++j) q[j] *= query_scale_;  // the cache expects a scaled query
      cache_->Append(l, pos0 + i, std::span<const float>(&k_[i * kv_dim_], kv_dim_),
                     std::span<const float>(&v_[i * kv_dim_], kv_dim_));
    }
    Attention(l, n, pos0);
    MatMuls({{&lw.wo, xb2_.data()}}, att_out_.data(), n);
    for (int i = 0; i < n; ++i) AddInPlace(&x_[i * dim], &xb2_[i * dim], dim);

    for (int i = 0; i < n; ++i) RmsNorm(&x_[i * dim], ffn_norm_[l].data(), &xb_[i * dim], dim, eps);
    MatMuls({{&lw.w_gate, hb_.data()}, {&lw.w_up, hb2_.data()}}, xb_.data(), n);
    for (int i = 0; i < n; ++i) SwiGlu(&hb_[i * hidden], &hb2_[i * hidden], &hb_[i * hidden], hidden);
    MatMuls({{&lw.w_down, xb2_.data()}}, hb_.data(), n);
    for (int i = 0; i < n; ++i) AddInPlace(&x_[i * dim], &xb2_[i * dim], dim);
  }

  if (first_logit_row >= n) return;
  for (int i = first_logit_row; i < n; ++i) {
    RmsNorm(&x_[i * dim], output_norm_.data(), &xb_[(i - first_logit_row) * dim], dim, eps);
  }
  MatMuls({{&weights_.output, logits_out}}, xb_.data(), n - first_logit_row);
}

void Forward::Attention(int layer, int n, int pos0) {
  const int head_dim = config_.head_dim, n_heads = config_.n_heads;
  const int group = config_.n_heads / config_.n_kv_heads;  // query heads per KV head
  const std::size_t row_stride = std::size_t(context_length());
  for (int i = 0; i < n; ++i) {
    const int pos = pos0 + i;
    const std::size_t n_keys = std::size_t(pos) + 1;  // causal: tokens 0..pos
    const float* q = &q_[i * q_dim_];
    float* out = &att_out_[i * q_dim_];
    const std::int64_t work = std::int64_t{n_heads} * std::int64_t(n_keys) * head_dim * 2;
    RunOnThreads(ThreadsFor(work, n_threads_, min_parallel_work_), [&](int thread, int n_running) {
      const auto [first, last] = ShareOf(n_heads, thread, n_running);
      for (int h = int(first); h < int(last); ++h) {
        const std::span<float> probs(&probs_[h * row_stride], n_keys);
        const std::span<float> head_out(out + h * head_dim, std::size_t(head_dim));
        cache_->Scores(layer, h / group, std::span<const float>(q + h * head_dim, head_dim), probs);
        Softmax(probs.data(), n_keys);
        std::fill(head_out.begin(), head_out.end(), 0.0f);
        cache_->WeightedSum(layer, h / group, probs, head_out);
      }
    });
    // Serially and in head order, so an adapting cache sees the same sequence for any thread count.
    for (int h = 0; h < n_heads; ++h) {
      cache_->ObserveAttention(layer, h, pos, std::span<const float>(&probs_[h * row_stride], n_keys));
    }
  }
}

void Forward::MatMuls(std::initializer_list<Product> products, const float* x, int n) {
  std::int64_t work = 0;
  for (const Product& p : products) work += p.w->rows * p.w->cols * n;
  RunOnThreads(ThreadsFor(work, n_threads_, min_parallel_work_), [&](int thread, int n_running) {
    for (const Product& p : products) {
      const auto [first, last] = ShareOf(p.w->rows, thread, n_running);
      MatMul(*p.w, x, n, p.y, first, last);
    }
  });
}

}  // namespace qaq::internal
