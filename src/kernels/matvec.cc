// SIMD matrix-vector products (Highway, dynamic dispatch). See matvec.h for the contract; the
// scalar oracle is matvec_ref.cc.
#include "kernels/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matvec.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

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

// out[0..3] = the lane sums of v0..v3. The lane pattern of each sum is fixed (pairs within a
// 128-bit block, then blocks halved in order), so a row's result does not depend on the rows it
// is grouped with.
#if HWY_TARGET == HWY_SCALAR
HWY_INLINE void StoreSumsOfFour(DF /*df*/, hn::Vec<DF> v0, hn::Vec<DF> v1, hn::Vec<DF> v2,
                                hn::Vec<DF> v3, float* out) {
  out[0] = hn::GetLane(v0);
  out[1] = hn::GetLane(v1);
  out[2] = hn::GetLane(v2);
  out[3] = hn::GetLane(v3);
}
#else
HWY_INLINE hn::Vec<hn::Full128<float>> FoldBlocks(hn::Full128<float> /*d*/,
                                                 hn::Vec<hn::Full128<float>> v) {
  return v;
}
template <class D>
HWY_INLINE hn::Vec<hn::Full128<float>> FoldBlocks(D /*d*/, hn::Vec<D> v) {
  const hn::Half<D> dh;
  return FoldBlocks(dh, hn::Add(hn::LowerHalf(dh, v), hn::UpperHalf(dh, v)));
}

HWY_INLINE void StoreSumsOfFour(DF df, hn::Vec<DF> v0, hn::Vec<DF> v1, hn::Vec<DF> v2,
                                hn::Vec<DF> v3, float* out) {
  const hn::Repartition<std::uint64_t, DF> d64;
  // Per 128-bit block: [v0_0 + v0_2, v1_0 + v1_2, v0_1 + v0_3, v1_1 + v1_3], likewise for v2, v3.
  const auto t01 = hn::Add(hn::InterleaveLower(df, v0, v1), hn::InterleaveUpper(df, v0, v1));
  const auto t23 = hn::Add(hn::InterleaveLower(df, v2, v3), hn::InterleaveUpper(df, v2, v3));
  const auto lo = hn::BitCast(df, hn::InterleaveLower(d64, hn::BitCast(d64, t01), hn::BitCast(d64, t23)));
  const auto hi = hn::BitCast(df, hn::InterleaveUpper(d64, hn::BitCast(d64, t01), hn::BitCast(d64, t23)));
  hn::StoreU(FoldBlocks(df, hn::Add(lo, hi)), hn::Full128<float>(), out);
}
#endif

// Tail of 16-bit weights: copied into a zero-padded buffer (no masked 16-bit loads on every
// target), then one multiply-add per row, as for the whole vectors.
template <typename W>
HWY_INLINE void TailOfFour16(const W* HWY_RESTRICT const rows[4], std::size_t i, std::size_t n,
                             hn::Vec<DF> x0, hn::Vec<DF>& a0, hn::Vec<DF>& a1, hn::Vec<DF>& a2,
                             hn::Vec<DF>& a3) {
  const DF df;
  W w_tail[hn::MaxLanes(DF())] = {};
  std::memcpy(w_tail, rows[0] + i, (n - i) * sizeof(W));
  a0 = hn::MulAdd(LoadWeights(df, w_tail), x0, a0);
  std::memcpy(w_tail, rows[1] + i, (n - i) * sizeof(W));
  a1 = hn::MulAdd(LoadWeights(df, w_tail), x0, a1);
  std::memcpy(w_tail, rows[2] + i, (n - i) * sizeof(W));
  a2 = hn::MulAdd(LoadWeights(df, w_tail), x0, a2);
  std::memcpy(w_tail, rows[3] + i, (n - i) * sizeof(W));
  a3 = hn::MulAdd(LoadWeights(df, w_tail), x0, a3);
}

// out[r] = dot(rows[r], x) for four rows of n values. x is loaded once for all four rows; each
// row has two accumulators (even and odd vectors) to hide the FMA latency; values past the last
// whole vector form one zero-padded vector. The order depends only on n.
template <typename W>
HWY_INLINE void DotFourRows(const W* HWY_RESTRICT const rows[4], const float* HWY_RESTRICT x,
                            std::size_t n, float* HWY_RESTRICT out) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  auto a00 = hn::Zero(df), a01 = hn::Zero(df), a10 = hn::Zero(df), a11 = hn::Zero(df);
  auto a20 = hn::Zero(df), a21 = hn::Zero(df), a30 = hn::Zero(df), a31 = hn::Zero(df);
  std::size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    const auto x0 = hn::LoadU(df, x + i), x1 = hn::LoadU(df, x + i + lanes);
    a00 = hn::MulAdd(LoadWeights(df, rows[0] + i), x0, a00);
    a01 = hn::MulAdd(LoadWeights(df, rows[0] + i + lanes), x1, a01);
    a10 = hn::MulAdd(LoadWeights(df, rows[1] + i), x0, a10);
    a11 = hn::MulAdd(LoadWeights(df, rows[1] + i + lanes), x1, a11);
    a20 = hn::MulAdd(LoadWeights(df, rows[2] + i), x0, a20);
    a21 = hn::MulAdd(LoadWeights(df, rows[2] + i + lanes), x1, a21);
    a30 = hn::MulAdd(LoadWeights(df, rows[3] + i), x0, a30);
    a31 = hn::MulAdd(LoadWeights(df, rows[3] + i + lanes), x1, a31);
  }
  if (i + lanes <= n) {
    const auto x0 = hn::LoadU(df, x + i);
    a00 = hn::MulAdd(LoadWeights(df, rows[0] + i), x0, a00);
    a10 = hn::MulAdd(LoadWeights(df, rows[1] + i), x0, a10);
    a20 = hn::MulAdd(LoadWeights(df, rows[2] + i), x0, a20);
    a30 = hn::MulAdd(LoadWeights(df, rows[3] + i), x0, a30);
    i += lanes;
  }
  if (i < n) {  // the last n - i < lanes values, zero-padded to one more vector
    const auto tail = hn::FirstN(df, n - i);
    const auto x0 = hn::MaskedLoad(tail, df, x + i);
    if constexpr (std::is_same_v<W, float>) {
      a00 = hn::MulAdd(hn::MaskedLoad(tail, df, rows[0] + i), x0, a00);
      a10 = hn::MulAdd(hn::MaskedLoad(tail, df, rows[1] + i), x0, a10);
      a20 = hn::MulAdd(hn::MaskedLoad(tail, df, rows[2] + i), x0, a20);
      a30 = hn::MulAdd(hn::MaskedLoad(tail, df, rows[3] + i), x0, a30);
    } else {
      TailOfFour16(rows, i, n, x0, a00, a10, a20, a30);
    }
  }
  StoreSumsOfFour(df, hn::Add(a00, a01), hn::Add(a10, a11), hn::Add(a20, a21), hn::Add(a30, a31), out);
}

// The fp16 scale d of a Q8_0 block (F16C where available).
HWY_INLINE float ScaleOf(const std::byte* block) {
  const hn::CappedTag<float, 1> d1;
  const hn::Rebind<hwy::float16_t, decltype(d1)> dh1;
  return hn::GetLane(hn::PromoteTo(d1, hn::LoadU(dh1, reinterpret_cast<const hwy::float16_t*>(block))));
}

// Q8_0: per block, each row's 32 products are summed in a vector, scaled by the row's d and
// accumulated; x is loaded once per block for the four rows.
HWY_INLINE void DotFourRowsQ8_0(const std::byte* HWY_RESTRICT const rows[4],
                                const float* HWY_RESTRICT x, std::size_t n,
                                float* HWY_RESTRICT out) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<std::int8_t, DF> di8;
  const std::size_t lanes = hn::Lanes(df);
  hn::Vec<DF> acc[4] = {hn::Zero(df), hn::Zero(df), hn::Zero(df), hn::Zero(df)};
  for (std::size_t b = 0; b < n / kQ8BlockSize; ++b) {
    const float* xb = x + b * kQ8BlockSize;
    for (int r = 0; r < 4; ++r) {
      const std::byte* block = rows[r] + b * kQ8BlockBytes;
      const auto* q = reinterpret_cast<const std::int8_t*>(block + 2);
      auto block_acc = hn::Zero(df);
      for (std::size_t j = 0; j < std::size_t(kQ8BlockSize); j += lanes) {
        const auto qf = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(di8, q + j)));
        block_acc = hn::MulAdd(qf, hn::LoadU(df, xb + j), block_acc);
      }
      acc[r] = hn::MulAdd(hn::Set(df, ScaleOf(block)), block_acc, acc[r]);
    }
  }
  StoreSumsOfFour(df, acc[0], acc[1], acc[2], acc[3], out);
}

// Rows in groups of four (the last group padded by repeating its last row, whose extra results
// are dropped); for each group, every input of the batch, so the group's weights are read from
// memory once and then from L1.
template <typename Row>
HWY_INLINE void MatMulRows(const TensorView& w, const float* x, std::int64_t n, float* y,
                           std::int64_t row_begin, std::int64_t row_end) {
  const std::size_t row_bytes = RowBytes(w.type, w.cols);
  const auto* base = static_cast<const std::byte*>(w.data);
  HWY_ALIGN float sums[4];
  for (std::int64_t r = row_begin; r < row_end; r += 4) {
    const Row* rows[4];
    const int valid = int(std::min<std::int64_t>(4, row_end - r));
    for (int k = 0; k < 4; ++k) {
      rows[k] = reinterpret_cast<const Row*>(base + std::size_t(r + std::min(k, valid - 1)) * row_bytes);
    }
    for (std::int64_t b = 0; b < n; ++b) {
      if constexpr (std::is_same_v<Row, std::byte>) {
        DotFourRowsQ8_0(rows, x + b * w.cols, std::size_t(w.cols), sums);
      } else {
        DotFourRows(rows, x + b * w.cols, std::size_t(w.cols), sums);
      }
      float* yb = y + b * w.rows + r;
      for (int k = 0; k < valid; ++k) yb[k] = sums[k];
    }
  }
}

void MatMulImpl(const TensorView& w, const float* x, std::int64_t n, float* y,
                std::int64_t row_begin, std::int64_t row_end) {
  switch (w.type) {
    case TensorType::kF32:
      return MatMulRows<float>(w, x, n, y, row_begin, row_end);
    case TensorType::kF16:
      return MatMulRows<hwy::float16_t>(w, x, n, y, row_begin, row_end);
    case TensorType::kBF16:
      return MatMulRows<hwy::bfloat16_t>(w, x, n, y, row_begin, row_end);
    case TensorType::kQ8_0:
      return MatMulRows<std::byte>(w, x, n, y, row_begin, row_end);
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
