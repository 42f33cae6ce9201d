// SIMD matrix-vector products (Highway, dynamic dispatch). See matvec.h for the contract; the
// scalar oracle is matvec_ref.cc.
#include "kernels/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matvec.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstring>

#include "core/check.h"
#include "kernels/half.h"
#include "kernels/matvec.h"
#include "kernels/tensor_rows.h"

HWY_BEFORE_NAMESPACE();
namespace qaq::internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

// Loads Lanes(df) weights starting at w as floats.
HWY_INLINE hn::Vec<DF> LoadWeights(DF df, const float* w) { return hn::LoadU(df, w); }
HWY_INLINE hn::Vec<DF> LoadWeights(DF df, const hwy::float16_t* w) {
  return hn::PromoteTo(df, hn::LoadU(hn::Rebind<hwy::float16_t, DF>(), w));
}
HWY_INLINE hn::Vec<DF> LoadWeights(DF df, const hwy::bfloat16_t* w) {
  return hn::PromoteTo(df, hn::LoadU(hn::Rebind<hwy::bfloat16_t, DF>(), w));
}
HWY_INLINE float WeightToFloat(float w) { return w; }
HWY_INLINE float WeightToFloat(hwy::float16_t w) { return HalfToFloatRef(w.bits); }
HWY_INLINE float WeightToFloat(hwy::bfloat16_t w) { return BFloat16ToFloatRef(w.bits); }

// dot(w, x) over n values. Four accumulators hide the FMA latency; the order (4-vector steps,
// then single vectors into acc0, then the lanes, then a scalar tail) depends only on n.
template <typename W>
HWY_INLINE float DotRow(const W* HWY_RESTRICT w, const float* HWY_RESTRICT x, std::size_t n) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  auto acc0 = hn::Zero(df), acc1 = hn::Zero(df), acc2 = hn::Zero(df), acc3 = hn::Zero(df);
  std::size_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    acc0 = hn::MulAdd(LoadWeights(df, w + i), hn::LoadU(df, x + i), acc0);
    acc1 = hn::MulAdd(LoadWeights(df, w + i + lanes), hn::LoadU(df, x + i + lanes), acc1);
    acc2 = hn::MulAdd(LoadWeights(df, w + i + 2 * lanes), hn::LoadU(df, x + i + 2 * lanes), acc2);
    acc3 = hn::MulAdd(LoadWeights(df, w + i + 3 * lanes), hn::LoadU(df, x + i + 3 * lanes), acc3);
  }
  for (; i + lanes <= n; i += lanes) acc0 = hn::MulAdd(LoadWeights(df, w + i), hn::LoadU(df, x + i), acc0);
  acc0 = hn::Add(hn::Add(acc0, acc1), hn::Add(acc2, acc3));
  float sum = hn::GetLane(hn::SumOfLanes(df, acc0));
  for (; i < n; ++i) sum += WeightToFloat(w[i]) * x[i];
  return sum;
}

// Q8_0: per block, the 32 products are summed in vectors, then scaled by d and accumulated.
HWY_INLINE float DotRowQ8_0(const std::byte* HWY_RESTRICT row, const float* HWY_RESTRICT x,
                            std::size_t n) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<std::int8_t, DF> di8;
  const hn::CappedTag<float, 1> d1;
  const hn::Rebind<hwy::float16_t, decltype(d1)> dh1;
  const std::size_t lanes = hn::Lanes(df);
  auto acc = hn::Zero(df);
  for (std::size_t b = 0; b < n / kQ8BlockSize; ++b) {
    const std::byte* block = row + b * kQ8BlockBytes;
    const auto* q = reinterpret_cast<const std::int8_t*>(block + 2);
    const float* xb = x + b * kQ8BlockSize;
    auto block_acc = hn::Zero(df);
    for (std::size_t j = 0; j < std::size_t(kQ8BlockSize); j += lanes) {
      const auto qf = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(di8, q + j)));
      block_acc = hn::MulAdd(qf, hn::LoadU(df, xb + j), block_acc);
    }
    const auto d = hn::PromoteTo(d1, hn::LoadU(dh1, reinterpret_cast<const hwy::float16_t*>(block)));
    acc = hn::MulAdd(hn::Set(df, hn::GetLane(d)), block_acc, acc);
  }
  return hn::GetLane(hn::SumOfLanes(df, acc));
}

HWY_INLINE float DotAnyRow(const TensorView& w, std::int64_t r, const float* x) {
  const std::byte* p = RowData(w, r);
  const std::size_t n = std::size_t(w.cols);
  switch (w.type) {
    case TensorType::kF32:
      return DotRow(reinterpret_cast<const float*>(p), x, n);
    case TensorType::kF16:
      return DotRow(reinterpret_cast<const hwy::float16_t*>(p), x, n);
    case TensorType::kBF16:
      return DotRow(reinterpret_cast<const hwy::bfloat16_t*>(p), x, n);
    case TensorType::kQ8_0:
      return DotRowQ8_0(p, x, n);
  }
  return 0.0f;
}

// Rows outer, batch inner: each weight row is read from memory once and then from L1 for the
// remaining inputs.
void MatMulImpl(const TensorView& w, const float* x, std::int64_t n, float* y,
                std::int64_t row_begin, std::int64_t row_end) {
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    for (std::int64_t b = 0; b < n; ++b) y[b * w.rows + r] = DotAnyRow(w, r, x + b * w.cols);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace qaq::internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qaq::internal {

HWY_EXPORT(MatMulImpl);

void MatVec(const TensorView& w, const float* x, float* y, std::int64_t row_begin,
            std::int64_t row_end) {
  QAQ_DCHECK(row_begin >= 0 && row_begin <= row_end && row_end <= w.rows);
  HWY_DYNAMIC_DISPATCH(MatMulImpl)(w, x, 1, y, row_begin, row_end);
}

void MatMul(const TensorView& w, const float* x, std::int64_t n, float* y, std::int64_t row_begin,
            std::int64_t row_end) {
  QAQ_DCHECK(row_begin >= 0 && row_begin <= row_end && row_end <= w.rows);
  HWY_DYNAMIC_DISPATCH(MatMulImpl)(w, x, n, y, row_begin, row_end);
}

}  // namespace qaq::internal
#endif  // HWY_ONCE
