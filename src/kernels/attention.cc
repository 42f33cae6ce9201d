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

// out is accumulated in chunks of 8, 4 or 1 vectors; each chunk reads its part of every row in
// one pass (a chunk of several vectors spans whole cache lines of a row, so the values are read
// from memory once: one vector per pass would fetch every line several times). The order of the
// sums depends only on n and head_dim.
//
// Four vectors of out, in eight partial sums (four vectors, tokens t mod 2).
template <class D, typename T>
HWY_INLINE void WeightedSumChunk4(D dv, const T* v, std::int64_t n, int head_dim, const float* probs,
                                  float* out) {
  const std::size_t lanes = hn::Lanes(dv);
  auto a0 = hn::Zero(dv), a1 = hn::Zero(dv), a2 = hn::Zero(dv), a3 = hn::Zero(dv);
  auto b0 = hn::Zero(dv), b1 = hn::Zero(dv), b2 = hn::Zero(dv), b3 = hn::Zero(dv);
  std::int64_t t = 0;
  for (; t + 2 <= n; t += 2) {
    const T* r0 = v + t * head_dim;
    const T* r1 = r0 + head_dim;
    const auto p0 = hn::Set(dv, probs[t]), p1 = hn::Set(dv, probs[t + 1]);
    a0 = hn::MulAdd(p0, LoadAsFloat(dv, r0), a0);
    a1 = hn::MulAdd(p0, LoadAsFloat(dv, r0 + lanes), a1);
    a2 = hn::MulAdd(p0, LoadAsFloat(dv, r0 + 2 * lanes), a2);
    a3 = hn::MulAdd(p0, LoadAsFloat(dv, r0 + 3 * lanes), a3);
    b0 = hn::MulAdd(p1, LoadAsFloat(dv, r1), b0);
    b1 = hn::MulAdd(p1, LoadAsFloat(dv, r1 + lanes), b1);
    b2 = hn::MulAdd(p1, LoadAsFloat(dv, r1 + 2 * lanes), b2);
    b3 = hn::MulAdd(p1, LoadAsFloat(dv, r1 + 3 * lanes), b3);
  }
  if (t < n) {
    const T* r0 = v + t * head_dim;
    const auto p0 = hn::Set(dv, probs[t]);
    a0 = hn::MulAdd(p0, LoadAsFloat(dv, r0), a0);
    a1 = hn::MulAdd(p0, LoadAsFloat(dv, r0 + lanes), a1);
    a2 = hn::MulAdd(p0, LoadAsFloat(dv, r0 + 2 * lanes), a2);
    a3 = hn::MulAdd(p0, LoadAsFloat(dv, r0 + 3 * lanes), a3);
  }
  hn::StoreU(hn::Add(hn::LoadU(dv, out), hn::Add(a0, b0)), dv, out);
  hn::StoreU(hn::Add(hn::LoadU(dv, out + lanes), hn::Add(a1, b1)), dv, out + lanes);
  hn::StoreU(hn::Add(hn::LoadU(dv, out + 2 * lanes), hn::Add(a2, b2)), dv, out + 2 * lanes);
  hn::StoreU(hn::Add(hn::LoadU(dv, out + 3 * lanes), hn::Add(a3, b3)), dv, out + 3 * lanes);
}

// Eight vectors of out (a whole 128-wide row on AVX-512), one partial sum each.
template <class D, typename T>
HWY_INLINE void WeightedSumChunk8(D dv, const T* v, std::int64_t n, int head_dim, const float* probs,
                                  float* out) {
  const std::size_t lanes = hn::Lanes(dv);
  auto a0 = hn::Zero(dv), a1 = hn::Zero(dv), a2 = hn::Zero(dv), a3 = hn::Zero(dv);
  auto a4 = hn::Zero(dv), a5 = hn::Zero(dv), a6 = hn::Zero(dv), a7 = hn::Zero(dv);
  for (std::int64_t t = 0; t < n; ++t) {
    const T* r = v + t * head_dim;
    const auto p = hn::Set(dv, probs[t]);
    a0 = hn::MulAdd(p, LoadAsFloat(dv, r), a0);
    a1 = hn::MulAdd(p, LoadAsFloat(dv, r + lanes), a1);
    a2 = hn::MulAdd(p, LoadAsFloat(dv, r + 2 * lanes), a2);
    a3 = hn::MulAdd(p, LoadAsFloat(dv, r + 3 * lanes), a3);
    a4 = hn::MulAdd(p, LoadAsFloat(dv, r + 4 * lanes), a4);
    a5 = hn::MulAdd(p, LoadAsFloat(dv, r + 5 * lanes), a5);
    a6 = hn::MulAdd(p, LoadAsFloat(dv, r + 6 * lanes), a6);
    a7 = hn::MulAdd(p, LoadAsFloat(dv, r + 7 * lanes), a7);
  }
  hn::StoreU(hn::Add(hn::LoadU(dv, out), a0), dv, out);
  hn::StoreU(hn::Add(hn::LoadU(dv, out + lanes), a1), dv, out + lanes);
  hn::StoreU(hn::Add(hn::LoadU(dv, out + 2 * lanes), a2), dv, out + 2 * lanes);
  hn::StoreU(hn::Add(hn::LoadU(dv, out + 3 * lanes), a3), dv, out + 3 * lanes);
  hn::StoreU(hn::Add(hn::LoadU(dv, out + 4 * lanes), a4), dv, out + 4 * lanes);
  hn::StoreU(hn::Add(hn::LoadU(dv, out + 5 * lanes), a5), dv, out + 5 * lanes);
  hn::StoreU(hn::Add(hn::LoadU(dv, out + 6 * lanes), a6), dv, out + 6 * lanes);
  hn::StoreU(hn::Add(hn::LoadU(dv, out + 7 * lanes), a7), dv, out + 7 * lanes);
}

// The same for one vector of out (the part of head_dim that is not a multiple of 4 vectors), in
// four partial sums (t mod 4).
template <class D, typename T>
HWY_INLINE void WeightedSumChunk1(D dv, const T* v, std::int64_t n, int head_dim, const float* probs,
                                  float* out) {
  auto acc0 = hn::Zero(dv), acc1 = hn::Zero(dv), acc2 = hn::Zero(dv), acc3 = hn::Zero(dv);
  std::int64_t t = 0;
  for (; t + 4 <= n; t += 4) {
    acc0 = hn::MulAdd(hn::Set(dv, probs[t]), LoadAsFloat(dv, v + t * head_dim), acc0);
    acc1 = hn::MulAdd(hn::Set(dv, probs[t + 1]), LoadAsFloat(dv, v + (t + 1) * head_dim), acc1);
    acc2 = hn::MulAdd(hn::Set(dv, probs[t + 2]), LoadAsFloat(dv, v + (t + 2) * head_dim), acc2);
    acc3 = hn::MulAdd(hn::Set(dv, probs[t + 3]), LoadAsFloat(dv, v + (t + 3) * head_dim), acc3);
  }
  for (; t < n; ++t) acc0 = hn::MulAdd(hn::Set(dv, probs[t]), LoadAsFloat(dv, v + t * head_dim), acc0);
  const auto sum = hn::Add(hn::Add(acc0, acc1), hn::Add(acc2, acc3));
  hn::StoreU(hn::Add(hn::LoadU(dv, out), sum), dv, out);
}

template <class D, typename T>
HWY_INLINE void WeightedSumTagged(D dv, const T* values, std::int64_t n, int head_dim,
                                  const float* probs, float* out) {
  const std::size_t lanes = hn::Lanes(dv);
  std::size_t j = 0;
  for (; j + 8 * lanes <= std::size_t(head_dim); j += 8 * lanes) {
    WeightedSumChunk8(dv, values + j, n, head_dim, probs, out + j);
  }
  for (; j + 4 * lanes <= std::size_t(head_dim); j += 4 * lanes) {
    WeightedSumChunk4(dv, values + j, n, head_dim, probs, out + j);
  }
  for (; j < std::size_t(head_dim); j += lanes) WeightedSumChunk1(dv, values + j, n, head_dim, probs, out + j);
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
