// Scalar references for attention.h: one token at a time, dimensions in order.
#include "kernels/attention.h"
#include "kernels/half.h"

namespace qaq::internal {
namespace {

inline float ToFloat(float x) { return x; }
inline float ToFloat(std::uint16_t x) { return HalfToFloatRef(x); }

template <typename T>
void ScoresRefT(const T* keys, std::int64_t n, int head_dim, const float* q, float* scores) {
  for (std::int64_t t = 0; t < n; ++t) {
    float s = 0.0f;
    for (int d = 0; d < head_dim; ++d) s += q[d] * ToFloat(keys[BlockedKeyIndex(t, d, head_dim)]);
    scores[t] = s;
  }
}

template <typename T>
void WeightedSumRefT(const T* values, std::int64_t n, int head_dim, const float* probs, float* out) {
  for (std::int64_t t = 0; t < n; ++t) {
    const T* v = values + t * head_dim;
    for (int d = 0; d < head_dim; ++d) out[d] += probs[t] * ToFloat(v[d]);
  }
}

}  // namespace

void ScoresRef(const float* keys, std::int64_t n, int head_dim, const float* q, float* scores) {
  ScoresRefT(keys, n, head_dim, q, scores);
}
void ScoresF16Ref(const std::uint16_t* keys, std::int64_t n, int head_dim, const float* q,
                  float* scores) {
  ScoresRefT(keys, n, head_dim, q, scores);
}
void WeightedSumRef(const float* values, std::int64_t n, int head_dim, const float* probs,
                    float* out) {
  WeightedSumRefT(values, n, head_dim, probs, out);
}
void WeightedSumF16Ref(const std::uint16_t* values, std::int64_t n, int head_dim,
                       const float* probs, float* out) {
  WeightedSumRefT(values, n, head_dim, probs, out);
}

}  // namespace qaq::internal
