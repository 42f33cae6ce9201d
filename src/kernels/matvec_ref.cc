// Scalar matrix-vector product: the oracle for the SIMD kernels in matvec.cc.
#include <cstring>

#include "core/check.h"
#include "kernels/half.h"
#include "kernels/matvec.h"
#include "kernels/tensor_rows.h"

namespace qaq::internal {

void MatVecRef(const TensorView& w, const float* x, float* y, std::int64_t row_begin,
               std::int64_t row_end) {
  QAQ_CHECK(row_begin >= 0 && row_begin <= row_end && row_end <= w.rows);
  const std::int64_t n = w.cols;
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const std::byte* p = RowData(w, r);
    float sum = 0.0f;
    switch (w.type) {
      case TensorType::kF32: {
        const auto* wr = reinterpret_cast<const float*>(p);
        for (std::int64_t c = 0; c < n; ++c) sum += wr[c] * x[c];
        break;
      }
      case TensorType::kF16:
      case TensorType::kBF16: {
        for (std::int64_t c = 0; c < n; ++c) {
          std::uint16_t h;
          std::memcpy(&h, p + 2 * c, 2);
          sum += (w.type == TensorType::kF16 ? HalfToFloatRef(h) : BFloat16ToFloatRef(h)) * x[c];
        }
        break;
      }
      case TensorType::kQ8_0: {
        for (std::int64_t b = 0; b < n / kQ8BlockSize; ++b) {
          const std::byte* block = p + std::size_t(b) * kQ8BlockBytes;
          std::uint16_t h;
          std::memcpy(&h, block, 2);
          const auto* q = reinterpret_cast<const std::int8_t*>(block + 2);
          const float* xb = x + b * kQ8BlockSize;
          float block_sum = 0.0f;
          for (std::int64_t j = 0; j < kQ8BlockSize; ++j) block_sum += float(q[j]) * xb[j];
          sum += HalfToFloatRef(h) * block_sum;
        }
        break;
      }
    }
    y[r] = sum;
  }
}

}  // namespace qaq::internal
