// Matrix-vector and matrix-matrix products with weights of any supported type.
//
// W is a TensorView of `rows` outputs by `cols` inputs (F32, F16, BF16 or Q8_0, converted on the
// fly). Every function computes outputs for rows [row_begin, row_end) only, so callers can split
// rows between threads; y is indexed by absolute row.
//
// Determinism: the fast kernels compute each output with a reduction order that depends only on
// `cols` (and the CPU's SIMD target), never on the row range or on the batch size. MatMul's row
// b therefore equals MatVec on x[b] bit for bit, and any split of rows gives the same results.
#pragma once

#include <cstdint>

#include "qaq/model.h"

namespace qaq::internal {

// Scalar reference: y[r] = sum_c W[r][c] * x[c], summed in order c = 0, 1, ... (Q8_0: per block,
// then scaled by the block's d and added).
void MatVecRef(const TensorView& w, const float* x, float* y, std::int64_t row_begin,
               std::int64_t row_end);

// Fast version of MatVecRef.
void MatVec(const TensorView& w, const float* x, float* y, std::int64_t row_begin,
            std::int64_t row_end);

// A batch of n input rows: x is [n][cols], y is [n][rows]; y[b][r] = MatVec(w, x[b])[r].
void MatMul(const TensorView& w, const float* x, std::int64_t n, float* y, std::int64_t row_begin,
            std::int64_t row_end);

}  // namespace qaq::internal
