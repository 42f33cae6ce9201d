// SIMD attention products on the layouts of attention.h (Highway, dynamic dispatch).
#include "kernels/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstring>

#include "kernels/attention.h"

HWY_BEFORE_NAMESPACE();
namespace qaq::internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class D>
HWY_INLINE hn::Vec<D> LoadAsFloat(D d, const float* p) {
  return hn::LoadU(d, p);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadAsFloat(D d, const std::uint16_t* p) {
  return hn::PromoteTo(d, hn::LoadU(hn::Rebind<hwy::float16_t, D>(), reinterpret_cast<const hwy::float16_t*>(p)));
}

// One vector covers kKeyBlock tokens (or a part of them on narrower targets); the D products of a
// score are accumulated in dimension order.
template <typename T>
void ScoresT(const T* keys, std::int64_t n, int head_dim, const float* q, float* scores) {
  const hn::CappedTag<float, kKeyBlock> df;
  const std::size_t lanes = hn::Lanes(df);
  const std::int64_t full_blocks = n / kKeyBlock;
  const std::int64_t rest = n % kKeyBlock;
  HWY_ALIGN float tail[kKeyBlock];
  for (std::int64_t b = 0; b < full_blocks + (rest != 0); ++b) {
    const T* block = keys + b * kKeyBlock * head_dim;
    float* dst = b < full_blocks ? scores + b * kKeyBlock : tail;
    for (std::size_t j = 0; j < std::size_t(kKeyBlock); j += lanes) {
      auto acc = hn::Zero(df);
      for (int d = 0; d < head_dim; ++d) {
        acc = hn::MulAdd(hn::Set(df, q[d]), LoadAsFloat(df, block + d * kKeyBlock + j), acc);
      }
      hn::StoreU(acc, df, dst + j);
    }
  }
  if (rest != 0) std::memcpy(scores + full_blocks * kKeyBlock, tail, std::size_t(rest) * sizeof(float));
}

// Each group of lanes of out (dimension chunk) is accumulated over tokens in four interleaved
// partial sums (t mod 4), combined at the end; the order depends only on n and head_dim.
template <class D, typename T>
HWY_INLINE void WeightedSumTagged(D dv, const T* values, std::int64_t n, int head_dim,
                                  const float* probs, float* out) {
  const std::size_t lanes = hn::Lanes(dv);
  for (std::size_t j = 0; j < std::size_t(head_dim); j += lanes) {
    auto acc0 = hn::Zero(dv), acc1 = hn::Zero(dv), acc2 = hn::Zero(dv), acc3 = hn::Zero(dv);
    const T* v = values + j;
    std::int64_t t = 0;
    for (; t + 4 <= n; t += 4) {
      acc0 = hn::MulAdd(hn::Set(dv, probs[t]), LoadAsFloat(dv, v + t * head_dim), acc0);
      acc1 = hn::MulAdd(hn::Set(dv, probs[t + 1]), LoadAsFloat(dv, v + (t + 1) * head_dim), acc1);
      acc2 = hn::MulAdd(hn::Set(dv, probs[t + 2]), LoadAsFloat(dv, v + (t + 2) * head_dim), acc2);
      acc3 = hn::MulAdd(hn::Set(dv, probs[t + 3]), LoadAsFloat(dv, v + (t + 3) * head_dim), acc3);
    }
    for (; t < n; ++t) acc0 = hn::MulAdd(hn::Set(dv, probs[t]), LoadAsFloat(dv, v + t * head_dim), acc0);
    const auto sum = hn::Add(hn::Add(acc0, acc1), hn::Add(acc2, acc3));
    hn::StoreU(hn::Add(hn::LoadU(dv, out + j), sum), dv, out + j);
  }
}

// The widest vector whose lane count divides head_dim.
template <typename T>
void WeightedSumT(const T* values, std::int64_t n, int head_dim, const float* probs, float* out) {
  const hn::ScalableTag<float> d_full;
  const hn::CappedTag<float, 8> d8;
  const hn::CappedTag<float, 4> d4;
  const hn::CappedTag<float, 1> d1;
  const std::size_t dim = std::size_t(head_dim);
  if (dim % hn::Lanes(d_full) == 0) return WeightedSumTagged(d_full, values, n, head_dim, probs, out);
  if (dim % hn::Lanes(d8) == 0) return WeightedSumTagged(d8, values, n, head_dim, probs, out);
  if (dim % hn::Lanes(d4) == 0) return WeightedSumTagged(d4, values, n, head_dim, probs, out);
  WeightedSumTagged(d1, values, n, head_dim, probs, out);
}

void ScoresImpl(const float* keys, std::int64_t n, int head_dim, const float* q, float* scores) {
  ScoresT(keys, n, head_dim, q, scores);
}
void ScoresF16Impl(const std::uint16_t* keys, std::int64_t n, int head_dim, const float* q,
                   float* scores) {
  ScoresT(keys, n, head_dim, q, scores);
}
void WeightedSumImpl(const float* values, std::int64_t n, int head_dim, const float* probs,
                     float* out) {
  WeightedSumT(values, n, head_dim, probs, out);
}
void WeightedSumF16Impl(const std::uint16_t* values, std::int64_t n, int head_dim,
                        const float* probs, float* out) {
  WeightedSumT(values, n, head_dim, probs, out);
}

}  // namespace HWY_NAMESPACE
}  // namespace qaq::internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qaq::internal {

HWY_EXPORT(ScoresImpl);
HWY_EXPORT(ScoresF16Impl);
HWY_EXPORT(WeightedSumImpl);
HWY_EXPORT(WeightedSumF16Impl);

void Scores(const float* keys, std::int64_t n, int head_dim, const float* q, float* scores) {
  HWY_DYNAMIC_DISPATCH(ScoresImpl)(keys, n, head_dim, q, scores);
}
void ScoresF16(const std::uint16_t* keys, std::int64_t n, int head_dim, const float* q,
               float* scores) {
  HWY_DYNAMIC_DISPATCH(ScoresF16Impl)(keys, n, head_dim, q, scores);
}
void WeightedSum(const float* values, std::int64_t n, int head_dim, const float* probs, float* out) {
  HWY_DYNAMIC_DISPATCH(WeightedSumImpl)(values, n, head_dim, probs, out);
}
void WeightedSumF16(const std::uint16_t* values, std::int64_t n, int head_dim, const float* probs,
                    float* out) {
  HWY_DYNAMIC_DISPATCH(WeightedSumF16Impl)(values, n, head_dim, probs, out);
}

}  // namespace qaq::internal
#endif  // HWY_ONCE
