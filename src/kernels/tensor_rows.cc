#include "kernels/tensor_rows.h"

#include <cmath>
#include <cstring>

#include "core/check.h"
#include "kernels/half.h"

namespace qaq::internal {

std::size_t RowBytes(TensorType type, std::int64_t cols) {
  switch (type) {
    case TensorType::kF32:
      return std::size_t(cols) * 4;
    case TensorType::kF16:
    case TensorType::kBF16:
      return std::size_t(cols) * 2;
    case TensorType::kQ8_0:
      return std::size_t(cols / kQ8BlockSize) * kQ8BlockBytes;
  }
  QAQ_CHECK(false, "unknown tensor type {}", int(type));
}

void DequantizeRow(const TensorView& w, std::int64_t row, float* out) {
  QAQ_DCHECK(row >= 0 && row < w.rows);
  const std::byte* p = RowData(w, row);
  const std::int64_t n = w.cols;
  switch (w.type) {
    case TensorType::kF32:
      std::memcpy(out, p, std::size_t(n) * 4);
      return;
    case TensorType::kF16:
    case TensorType::kBF16: {
      for (std::int64_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = w.type == TensorType::kF16 ? HalfToFloatRef(h) : BFloat16ToFloatRef(h);
      }
      return;
    }
    case TensorType::kQ8_0: {
      for (std::int64_t b = 0; b < n / kQ8BlockSize; ++b) {
        const std::byte* block = p + std::size_t(b) * kQ8BlockBytes;
        std::uint16_t h;
        std::memcpy(&h, block, 2);
        const float d = HalfToFloatRef(h);
        const auto* q = reinterpret_cast<const std::int8_t*>(block + 2);
        for (std::int64_t j = 0; j < kQ8BlockSize; ++j) out[b * kQ8BlockSize + j] = d * float(q[j]);
      }
      return;
    }
  }
}

void EncodeRow(TensorType type, const float* x, std::int64_t n, std::byte* out) {
  switch (type) {
    case TensorType::kF32:
      std::memcpy(out, x, std::size_t(n) * 4);
      return;
    case TensorType::kF16:
    case TensorType::kBF16:
      for (std::int64_t i = 0; i < n; ++i) {
        const std::uint16_t h = type == TensorType::kF16 ? FloatToHalfRef(x[i]) : FloatToBFloat16Ref(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case TensorType::kQ8_0:
      QuantizeRowQ8_0(x, n, out);
      return;
  }
}

void QuantizeRowQ8_0(const float* x, std::int64_t n, std::byte* out) {
  QAQ_CHECK(n % kQ8BlockSize == 0, "Q8_0 rows need a multiple of 32 values, got {}", n);
  for (std::int64_t b = 0; b < n / kQ8BlockSize; ++b) {
    const float* xb = x + b * kQ8BlockSize;
    float amax = 0.0f;
    for (std::int64_t j = 0; j < kQ8BlockSize; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    std::byte* block = out + std::size_t(b) * kQ8BlockBytes;
    const std::uint16_t h = FloatToHalfRef(d);
    std::memcpy(block, &h, 2);
    auto* q = reinterpret_cast<std::int8_t*>(block + 2);
    for (std::int64_t j = 0; j < kQ8BlockSize; ++j) q[j] = std::int8_t(std::lround(xb[j] * id));
  }
}

}  // namespace qaq::internal
