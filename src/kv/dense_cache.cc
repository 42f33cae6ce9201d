#include "kv/dense_cache.h"

#include <algorithm>

#include "core/check.h"
#include "kernels/attention.h"
#include "kernels/half.h"

namespace qaq::internal {
namespace {

inline void Store(float x, float* out) { *out = x; }
inline void Store(float x, std::uint16_t* out) { *out = FloatToHalfRef(x); }

constexpr std::size_t kBytesPerFp16 = 2;

}  // namespace

template <typename Element>
DenseKvCache<Element>::DenseKvCache(const KvCacheShape& shape)
    : shape_(shape),
      slot_elements_(std::size_t((shape.max_tokens + kKeyBlock - 1) / kKeyBlock) * kKeyBlock *
                     std::size_t(shape.head_dim)),
      keys_(std::size_t(shape.n_layers) * shape.n_kv_heads * slot_elements_),
      values_(keys_.size()),
      layer_tokens_(std::size_t(shape.n_layers), 0),
      rotated_(std::size_t(shape.n_kv_heads) * shape.head_dim),
      rope_(shape.rope_theta, shape.rope_dim, shape.max_tokens) {}

template <typename Element>
std::string DenseKvCache<Element>::name() const {
  return sizeof(Element) == 4 ? "fp32" : "fp16";
}

template <typename Element>
void DenseKvCache<Element>::Append(int layer, int pos, std::span<const float> k,
                                   std::span<const float> v) {
  const int head_dim = shape_.head_dim;
  QAQ_CHECK(layer >= 0 && layer < shape_.n_layers);
  QAQ_CHECK(pos == layer_tokens_[layer] && pos < shape_.max_tokens,
            "layer {}: position {} appended after {} of {} positions", layer, pos,
            layer_tokens_[layer], shape_.max_tokens);
  QAQ_CHECK(k.size() == rotated_.size() && v.size() == rotated_.size());
  std::copy(k.begin(), k.end(), rotated_.begin());
  rope_.Apply(rotated_.data(), shape_.n_kv_heads, head_dim, pos);
  for (int h = 0; h < shape_.n_kv_heads; ++h) {
    Element* keys = keys_.data() + Slot(layer, h) * slot_elements_;
    Element* value = values_.data() + Slot(layer, h) * slot_elements_ + std::size_t(pos) * head_dim;
    for (int d = 0; d < head_dim; ++d) {
      Store(rotated_[h * head_dim + d], keys + BlockedKeyIndex(pos, d, head_dim));
      Store(v[h * head_dim + d], value + d);
    }
  }
  ++layer_tokens_[layer];
}

template <typename Element>
void DenseKvCache<Element>::Scores(int layer, int kv_head, std::span<const float> q,
                                   std::span<float> scores) const {
  QAQ_DCHECK(int(scores.size()) <= layer_tokens_[layer] && int(q.size()) == shape_.head_dim);
  const Element* keys = keys_.data() + Slot(layer, kv_head) * slot_elements_;
  if constexpr (sizeof(Element) == 4) {
    internal::Scores(keys, std::int64_t(scores.size()), shape_.head_dim, q.data(), scores.data());
  } else {
    ScoresF16(keys, std::int64_t(scores.size()), shape_.head_dim, q.data(), scores.data());
  }
}

template <typename Element>
void DenseKvCache<Element>::WeightedSum(int layer, int kv_head, std::span<const float> probs,
                                        std::span<float> out) const {
  QAQ_DCHECK(int(probs.size()) <= layer_tokens_[layer] && int(out.size()) == shape_.head_dim);
  const Element* values = values_.data() + Slot(layer, kv_head) * slot_elements_;
  if constexpr (sizeof(Element) == 4) {
    internal::WeightedSum(values, std::int64_t(probs.size()), shape_.head_dim, probs.data(),
                          out.data());
  } else {
    WeightedSumF16(values, std::int64_t(probs.size()), shape_.head_dim, probs.data(), out.data());
  }
}

template <typename Element>
void DenseKvCache<Element>::Truncate(int n) {
  QAQ_CHECK(n >= 0);
  for (int& count : layer_tokens_) count = std::min(count, n);
}

template <typename Element>
KvMemory DenseKvCache<Element>::Memory() const {
  // Elements of the stored tokens (keys and values); the capacity beyond them is reserved, not used.
  const std::size_t elements = std::size_t(n_tokens()) * shape_.n_layers * shape_.n_kv_heads *
                               shape_.head_dim * 2;
  KvMemory m;
  m.code_bytes = elements * sizeof(Element);
  m.fp16_reference_bytes = elements * kBytesPerFp16;
  return m;
}

template class DenseKvCache<float>;
template class DenseKvCache<std::uint16_t>;

}  // namespace qaq::internal
