// SIMD fp16 <-> fp32 bulk conversions (F16C on AVX2/AVX-512 targets).
#include "kernels/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/half.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/half.h"

HWY_BEFORE_NAMESPACE();
namespace qaq::internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void HalfToFloatImpl(const std::uint16_t* in, float* out, std::size_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const auto* src = reinterpret_cast<const hwy::float16_t*>(in);
  const std::size_t lanes = hn::Lanes(df);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, src + i)), df, out + i);
  for (; i < n; ++i) out[i] = HalfToFloatRef(in[i]);
}

void FloatToHalfImpl(const float* in, std::uint16_t* out, std::size_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  auto* dst = reinterpret_cast<hwy::float16_t*>(out);
  const std::size_t lanes = hn::Lanes(df);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, in + i)), dh, dst + i);
  for (; i < n; ++i) out[i] = FloatToHalfRef(in[i]);
}

}  // namespace HWY_NAMESPACE
}  // namespace qaq::internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qaq::internal {

HWY_EXPORT(HalfToFloatImpl);
HWY_EXPORT(FloatToHalfImpl);

void HalfToFloat(const std::uint16_t* in, float* out, std::size_t n) {
  HWY_DYNAMIC_DISPATCH(HalfToFloatImpl)(in, out, n);
}
void FloatToHalf(const float* in, std::uint16_t* out, std::size_t n) {
  HWY_DYNAMIC_DISPATCH(FloatToHalfImpl)(in, out, n);
}

}  // namespace qaq::internal
#endif  // HWY_ONCE
