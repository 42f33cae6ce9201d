// Scores of keys stored before RoPE (kv/channel_keys.h): every row r (token) is taken against
// its own rotation of the query, written per element as
//   w_r[i] = cos_r[i] a[i] + sin_r[i] b[i]        (a, b: the query and its pair-swapped copy,
//                                                   both already multiplied by the channel scales)
//   out[r] = sum_i w_r[i] c_ri + (kcos_r . x + ksin_r . y)
// i.e. q . R_r dequant(k_r) with dequant = offset + scale * code, in one pass over the codes
// instead of a rotated query, a separate dot product and a dispatch per token. The constant
// (offset) part has its own, shorter tables: the caller folds RoPE's pairs (equal cosines,
// opposite sines) into one term each.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qaq::internal {

struct RotatedRowsQuery {
  const float* a_plan;    // [n_steps * 8]: a in the order of GetLanePlan(bits, n)
  const float* b_plan;    // [n_steps * 8]
  const float* cos_plan;  // cos_r of every row in plan order, PermuteRowPairsForPlan's layout
  const float* sin_plan;  // the same for sin_r
  const float* kcos;      // [n_const][k_stride]: kcos_r is column r (rows in lanes)
  const float* ksin;      // [n_const][k_stride]
  const float* x;         // [n_const]
  const float* y;         // [n_const]
  int n_const;
  int k_stride;           // >= n_rows rounded up to a multiple of 8 (columns past n_rows are read)
};

// out[r] for rows r < n_rows stored row_bytes apart; false (nothing written) when this CPU's
// kernels have no plan for (bits, n): the caller then computes the rows another way.
bool DotRotatedRows(const RotatedRowsQuery& query, const std::uint8_t* codes, std::size_t row_bytes, int n_rows,
                    int bits, int n, float* out);

// Scalar reference for one row, in code order: cos, sin have n values; kcos, ksin, x, y n_const.
float DotRotatedRowRef(const float* a, const float* b, const float* cos, const float* sin, const float* kcos,
                       const float* ksin, const float* x, const float* y, int n_const, const std::uint8_t* codes,
                       int bits, int n);

}  // namespace qaq::internal
