// qaq/kv_cache.h: the KV cache as a pluggable component.
//
// The forward pass (src/model) talks to the cache only through `KvCache`. A backend decides how
// keys and values are stored (fp32, fp16, packed codes at per-token bit widths, ...) and computes
// the two attention products on its own storage, so no dequantized copy of the cache is needed.
//
// Contract, per decoding step (one token) or prefill batch (many tokens):
//   1. Append(layer, pos, k, v) for every new position of every layer. `k` is the key BEFORE RoPE:
//      the cache owns the rotation (post-RoPE layouts rotate on append, pre-RoPE layouts rotate the
//      dequantized key when scoring). Positions arrive in order 0, 1, 2, ... per layer.
//   2. Scores(layer, kv_head, q, scores): scores[t] = q . RoPE(K[t], t) for t < scores.size(). The
//      query is already rotated and multiplied by the softmax scale. A batch prefill asks for
//      fewer tokens than are stored (causal attention inside the prompt).
//   3. ObserveAttention(...) with every query head's softmax row; caches that adapt use it.
//   4. WeightedSum(layer, kv_head, probs, out): out[d] += sum_t probs[t] * V[t][d].
//   5. EndStep() once the step's forward pass is complete: the only place a cache may change the
//      stored precision of tokens already in it.
// Virtual calls happen once per (layer, kv head) per step; inner loops live in the backends.
// Threads: Scores and WeightedSum (const) may run concurrently for different query heads of one
// layer; Append, ObserveAttention, EndStep and Truncate are called from one thread at a time, and
// ObserveAttention in a fixed order (position, then query head) whatever the thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "qaq/status.h"

namespace qaq {

// Dimensions a cache needs, taken from the model.
struct KvCacheShape {
  int n_layers = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int max_tokens = 0;          // context length: Append beyond it is a caller bug
  int n_heads = 0;             // query heads (n_heads / n_kv_heads share one KV head)
  float rope_theta = 10000.0f;
  int rope_dim = 0;            // rotated dimensions per head (<= head_dim), adjacent pairs
};

// Bytes held by a cache, split so a user can see where memory goes. All counts are exact.
struct KvMemory {
  std::size_t code_bytes = 0;            // packed codes or raw fp16/fp32 elements
  std::size_t metadata_bytes = 0;        // per-group min/max or scale/offset
  std::size_t outlier_bytes = 0;         // exact outlier values and their positions
  std::size_t table_bytes = 0;           // per-token bookkeeping (bit widths, offsets)
  std::size_t full_precision_bytes = 0;  // the full-precision tier (RAM or disk), if any
  std::size_t fp16_reference_bytes = 0;  // what an fp16 cache of the same tokens would hold

  // The cache proper, without the full-precision tier.
  std::size_t cache_bytes() const { return code_bytes + metadata_bytes + outlier_bytes + table_bytes; }
  // fp16 cache size / this cache's size (the paper's compression ratio, every byte counted).
  double compression_ratio() const {
    return cache_bytes() == 0 ? 1.0 : double(fp16_reference_bytes) / double(cache_bytes());
  }
};

class KvCache {
 public:
  virtual ~KvCache() = default;

  // Short name for logs and reports, e.g. "fp16" or "qaq".
  virtual std::string name() const = 0;
  virtual const KvCacheShape& shape() const = 0;

  // k, v: [n_kv_heads * head_dim] for one position of one layer; k before RoPE.
  virtual void Append(int layer, int pos, std::span<const float> k, std::span<const float> v) = 0;

  // scores: [n] for tokens 0..n-1 of this layer and KV head; q: [head_dim], rotated and scaled.
  virtual void Scores(int layer, int kv_head, std::span<const float> q,
                      std::span<float> scores) const = 0;

  // out: [head_dim] accumulated with sum over t < probs.size() of probs[t] * V[t].
  virtual void WeightedSum(int layer, int kv_head, std::span<const float> probs,
                           std::span<float> out) const = 0;

  // The softmax row of query head `q_head` at position `query_pos` over tokens 0..probs.size()-1.
  virtual void ObserveAttention(int layer, int q_head, int query_pos, std::span<const float> probs) {
    (void)layer, (void)q_head, (void)query_pos, (void)probs;
  }

  // Called after every forward pass (prefill batch or decode step).
  virtual void EndStep() {}

  // Number of positions stored (the same in every layer after a complete forward pass).
  virtual int n_tokens() const = 0;

  // Drops every position >= n (n = 0 clears the cache), e.g. between perplexity chunks.
  virtual void Truncate(int n) = 0;

  virtual KvMemory Memory() const = 0;

  // A one-paragraph, human-readable account of the cache's state (bits, ratio, ...), for the end
  // of `qaq generate`. Backends without anything special report their memory.
  virtual std::string Summary() const;
};

// Creates a cache from a `--kv` spec such as "fp32" or "fp16" (src/kv/kv_registry.cc lists them).
StatusOr<std::unique_ptr<KvCache>> MakeKvCache(std::string_view spec, const KvCacheShape& shape);

}  // namespace qaq
