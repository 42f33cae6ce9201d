// SIMD versions of the kernels in vector_ops.h (Highway, dynamic dispatch). exp comes from
// Highway's contrib/math (max error 1 ulp), so results differ from the scalar reference by a few
// ulp; vector_ops_test.cc states the tolerances.
#include "kernels/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/vector_ops.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <cmath>
#include <limits>

#include "kernels/vector_ops.h"

HWY_BEFORE_NAMESPACE();
namespace qaq::internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

void RmsNormImpl(const float* x, const float* weight, float* out, std::size_t n, float eps) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  auto acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  std::size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    const auto a = hn::LoadU(df, x + i), b = hn::LoadU(df, x + i + lanes);
    acc0 = hn::MulAdd(a, a, acc0);
    acc1 = hn::MulAdd(b, b, acc1);
  }
  for (; i + lanes <= n; i += lanes) {
    const auto a = hn::LoadU(df, x + i);
    acc0 = hn::MulAdd(a, a, acc0);
  }
  float ss = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
  for (; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(ss / float(n) + eps);
  const auto vscale = hn::Set(df, scale);
  for (i = 0; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::Mul(hn::LoadU(df, weight + i), hn::Mul(vscale, hn::LoadU(df, x + i))), df, out + i);
  }
  for (; i < n; ++i) out[i] = weight[i] * (scale * x[i]);
}

// Lanes past the end are handled with masked loads and stores, so no scalar exp is needed.
void SoftmaxImpl(float* x, std::size_t n) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  const std::size_t full = n - n % lanes;
  const auto tail = hn::FirstN(df, n - full);
  const auto neg_inf = hn::Set(df, -std::numeric_limits<float>::infinity());

  auto vmax = neg_inf;
  for (std::size_t i = 0; i < full; i += lanes) vmax = hn::Max(vmax, hn::LoadU(df, x + i));
  if (full < n) vmax = hn::Max(vmax, hn::IfThenElse(tail, hn::MaskedLoad(tail, df, x + full), neg_inf));
  const auto vneg_max = hn::Neg(hn::MaxOfLanes(df, vmax));

  auto vsum = hn::Zero(df);
  for (std::size_t i = 0; i < full; i += lanes) {
    const auto e = hn::Exp(df, hn::Add(hn::LoadU(df, x + i), vneg_max));
    hn::StoreU(e, df, x + i);
    vsum = hn::Add(vsum, e);
  }
  if (full < n) {
    const auto e = hn::IfThenElseZero(tail, hn::Exp(df, hn::Add(hn::MaskedLoad(tail, df, x + full), vneg_max)));
    hn::BlendedStore(e, tail, df, x + full);
    vsum = hn::Add(vsum, e);
  }
  const auto inv = hn::Div(hn::Set(df, 1.0f), hn::SumOfLanes(df, vsum));
  for (std::size_t i = 0; i < full; i += lanes) hn::StoreU(hn::Mul(hn::LoadU(df, x + i), inv), df, x + i);
  if (full < n) hn::BlendedStore(hn::Mul(hn::MaskedLoad(tail, df, x + full), inv), tail, df, x + full);
}

HWY_INLINE hn::Vec<DF> Silu(DF df, hn::Vec<DF> g) {
  // exp(-g) overflows for g < -88; silu(g) is 0 to float precision there, which the clamp keeps.
  const auto e = hn::Exp(df, hn::Min(hn::Neg(g), hn::Set(df, 88.0f)));
  return hn::Div(g, hn::Add(hn::Set(df, 1.0f), e));
}

void SwiGluImpl(const float* gate, const float* up, float* out, std::size_t n) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::Mul(Silu(df, hn::LoadU(df, gate + i)), hn::LoadU(df, up + i)), df, out + i);
  }
  if (i < n) {
    const auto tail = hn::FirstN(df, n - i);
    const auto silu = Silu(df, hn::MaskedLoad(tail, df, gate + i));
    hn::BlendedStore(hn::Mul(silu, hn::MaskedLoad(tail, df, up + i)), tail, df, out + i);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace qaq::internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qaq::internal {

HWY_EXPORT(RmsNormImpl);
HWY_EXPORT(SoftmaxImpl);
HWY_EXPORT(SwiGluImpl);

void RmsNorm(const float* x, const float* weight, float* out, std::size_t n, float eps) {
  HWY_DYNAMIC_DISPATCH(RmsNormImpl)(x, weight, out, n, eps);
}
void Softmax(float* x, std::size_t n) { HWY_DYNAMIC_DISPATCH(SoftmaxImpl)(x, n); }
void SwiGlu(const float* gate, const float* up, float* out, std::size_t n) {
  HWY_DYNAMIC_DISPATCH(SwiGluImpl)(gate, up, out, n);
}

}  // namespace qaq::internal
#endif  // HWY_ONCE
