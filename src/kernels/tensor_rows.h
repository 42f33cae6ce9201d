// Row access to weight tensors of every supported type: sizes, dequantization, Q8_0 encoding.
//
// Q8_0 (GGML's layout): each row is cols/32 blocks of {fp16 scale d, int8 q[32]} (34 bytes), and
// value j of a block is d * q[j].
#pragma once

#include <cstddef>
#include <cstdint>

#include "qaq/model.h"

namespace qaq::internal {

inline constexpr std::int64_t kQ8BlockSize = 32;
inline constexpr std::size_t kQ8BlockBytes = 2 + kQ8BlockSize;

// Bytes of one row of `cols` values of `type` (cols must be a multiple of 32 for Q8_0).
std::size_t RowBytes(TensorType type, std::int64_t cols);

// Start of row `row` of `w`.
inline const std::byte* RowData(const TensorView& w, std::int64_t row) {
  return static_cast<const std::byte*>(w.data) + std::size_t(row) * RowBytes(w.type, w.cols);
}

// out[0..cols) = row `row` of `w` as floats.
void DequantizeRow(const TensorView& w, std::int64_t row, float* out);

// Encodes n floats as one row of `type` (fp16/bf16 round to nearest even; Q8_0 as below). out
// must hold RowBytes(type, n) bytes. For building weights in tests, benchmarks and converters.
void EncodeRow(TensorType type, const float* x, std::int64_t n, std::byte* out);

// Encodes n values (a multiple of 32) as Q8_0 blocks, as llama.cpp's reference quantizer does:
// d = max|x| / 127, q = round(x / d). out must hold RowBytes(kQ8_0, n) bytes.
void QuantizeRowQ8_0(const float* x, std::int64_t n, std::byte* out);

}  // namespace qaq::internal
