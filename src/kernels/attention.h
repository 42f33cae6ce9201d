// The two attention products on stored keys and values, for caches that keep fp32 or fp16
// elements (src/kv). A cache stores, per (layer, KV head):
//   keys   in blocks of kKeyBlock tokens, transposed: element (t, d) at BlockedKeyIndex(t, d, D),
//          so one SIMD vector holds dimension d of consecutive tokens and a score needs D
//          multiply-adds per block instead of a horizontal sum per token;
//   values row-major [tokens][head_dim], so a weighted sum adds whole rows.
// Storage for keys must be allocated in whole blocks (the fast kernel reads complete blocks; the
// entries past n are ignored).
#pragma once

#include <cstddef>
#include <cstdint>

namespace qaq::internal {

inline constexpr int kKeyBlock = 16;

inline std::size_t BlockedKeyIndex(std::int64_t t, int d, int head_dim) {
  return std::size_t(t / kKeyBlock) * kKeyBlock * head_dim + std::size_t(d) * kKeyBlock +
         std::size_t(t % kKeyBlock);
}

// scores[t] = sum_d q[d] * K(t, d) for t < n.
void ScoresRef(const float* keys, std::int64_t n, int head_dim, const float* q, float* scores);
void Scores(const float* keys, std::int64_t n, int head_dim, const float* q, float* scores);
void ScoresF16Ref(const std::uint16_t* keys, std::int64_t n, int head_dim, const float* q,
                  float* scores);
void ScoresF16(const std::uint16_t* keys, std::int64_t n, int head_dim, const float* q,
               float* scores);

// out[d] += sum_{t < n} probs[t] * V[t][d].
void WeightedSumRef(const float* values, std::int64_t n, int head_dim, const float* probs,
                    float* out);
void WeightedSum(const float* values, std::int64_t n, int head_dim, const float* probs, float* out);
void WeightedSumF16Ref(const std::uint16_t* values, std::int64_t n, int head_dim,
                       const float* probs, float* out);
void WeightedSumF16(const std::uint16_t* values, std::int64_t n, int head_dim, const float* probs,
                    float* out);

}  // namespace qaq::internal
