// KV caches that store every element at one precision: fp32 (the reference every quantized
// cache is compared with) and fp16 (what llama.cpp keeps by default, and the baseline of the
// compression ratio).
//
// Keys are rotated on append (post-RoPE layout) and stored in the blocked, transposed layout of
// kernels/attention.h; values are stored as rows. Storage for the whole context is allocated when
// the cache is made, so appending never allocates.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "kernels/rope.h"
#include "qaq/kv_cache.h"

namespace qaq::internal {

// Element is float (fp32) or std::uint16_t (fp16 bits).
template <typename Element>
class DenseKvCache final : public KvCache {
 public:
  explicit DenseKvCache(const KvCacheShape& shape);

  std::string name() const override;
  const KvCacheShape& shape() const override { return shape_; }
  void Append(int layer, int pos, std::span<const float> k, std::span<const float> v) override;
  void Scores(int layer, int kv_head, std::span<const float> q,
              std::span<float> scores) const override;
  void WeightedSum(int layer, int kv_head, std::span<const float> probs,
                   std::span<float> out) const override;
  int n_tokens() const override { return layer_tokens_.back(); }
  void Truncate(int n) override;
  KvMemory Memory() const override;

 private:
  std::size_t Slot(int layer, int kv_head) const {
    return std::size_t(layer) * std::size_t(shape_.n_kv_heads) + std::size_t(kv_head);
  }

  KvCacheShape shape_;
  std::size_t slot_elements_;        // capacity rounded up to whole key blocks, times head_dim
  std::vector<Element> keys_;        // [n_layers][n_kv_heads] blocks of kernels/attention.h
  std::vector<Element> values_;      // [n_layers][n_kv_heads][capacity][head_dim]
  std::vector<int> layer_tokens_;    // positions stored per layer
  std::vector<float> rotated_;       // [n_kv_heads * head_dim] scratch for Append
  RopeTable rope_;
};

}  // namespace qaq::internal
