// The LLaMA forward pass over a batch of consecutive positions (one token when decoding):
//
//   x = embedding[token]
//   per layer:  xb = rmsnorm(x);  q, k, v = Wq xb, Wk xb, Wv xb;  q = RoPE(q) / sqrt(head_dim)
//               cache.Append(k, v)        k before RoPE: the cache owns its rotation
//               per query head: scores = cache.Scores(q) -> softmax -> cache.ObserveAttention
//                               out = cache.WeightedSum(probs)
//               x += Wo out;  xb = rmsnorm(x);  x += Wdown (silu(Wgate xb) * Wup xb)
//   logits = Wcls rmsnorm(x)
//   cache.EndStep()
//
// A batch of n positions appends all n positions of a layer first; query i then scores the
// pos0 + i + 1 tokens up to itself (causal attention inside the batch). Batches longer than
// kMaxBatch run in chunks. The engine talks to the cache only through the KvCache interface.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kernels/rope.h"
#include "model/parallel.h"
#include "qaq/kv_cache.h"
#include "qaq/model.h"
#include "qaq/status.h"

namespace qaq::internal {

class Forward {
 public:
  // Positions per chunk of a batch: bounds the activation buffers ([kMaxBatch][hidden_dim]).
  static constexpr int kMaxBatch = 64;

  static StatusOr<std::unique_ptr<Forward>> Create(const ModelConfig& config,
                                                   const ModelWeights& weights,
                                                   std::unique_ptr<KvCache> cache, int n_threads);

  // Runs `tokens` at positions n_past().. and returns the logits of the last token, or of every
  // token ([n][vocab]) when all_logits.
  StatusOr<std::span<const float>> Run(std::span<const int> tokens, bool all_logits);

  int n_past() const { return cache_->n_tokens(); }
  int context_length() const { return cache_->shape().max_tokens; }
  int n_threads() const { return n_threads_; }
  // Work below which a step runs on one thread (parallel.h); tests lower it to split everything.
  void set_min_parallel_work(std::int64_t work) { min_parallel_work_ = work; }
  const ModelConfig& config() const { return config_; }
  KvCache& cache() { return *cache_; }
  const KvCache& cache() const { return *cache_; }

  // Only Create can make one (a key type no one else can name), through std::make_unique.
  class ConstructorKey {
    friend class Forward;
    explicit ConstructorKey() = default;
  };
 public:
  Forward(ConstructorKey, const ModelConfig& config, const ModelWeights& weights, std::unique_ptr<KvCache> cache,
          int n_threads);

 private:

  // Positions pos0..pos0+n-1 (n <= kMaxBatch); writes logits of rows [first_logit_row, n) to
  // logits_out (consecutive rows of vocab_size).
  void RunChunk(const int* tokens, int n, int pos0, int first_logit_row, float* logits_out);
  void Attention(int layer, int n, int pos0);
  // y_j = W_j x for each (W_j, y_j) pair, x: [n][cols]; rows of every matrix split over threads.
  struct Product {
    const TensorView* w;
    float* y;
  };
  void MatMuls(std::initializer_list<Product> products, const float* x, int n);

  ModelConfig config_;
  ModelWeights weights_;  // views into the model's mapped file
  std::unique_ptr<KvCache> cache_;
  int n_threads_;
  std::int64_t min_parallel_work_;
  int q_dim_, kv_dim_;
  float query_scale_;
  RopeTable rope_;

  // Norm weights as floats, whatever their stored type.
  std::vector<std::vector<float>> attn_norm_, ffn_norm_;
  std::vector<float> output_norm_;

  // Activations, [kMaxBatch][width] each (allocated once).
  std::vector<float> x_, xb_, xb2_, q_, k_, v_, att_out_, hb_, hb2_;
  std::vector<float> probs_;   // [n_heads][context]: one softmax row per query head
  std::vector<float> logits_;  // [vocab] for the last row, or [n][vocab] with all_logits
};

}  // namespace qaq::internal
