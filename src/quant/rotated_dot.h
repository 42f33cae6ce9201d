// Scores of keys stored before RoPE (kv/channel_keys.h): every row r (token) is taken against
// its own rotation of the query, written per element as
//   w_r[i] = cos_r[i] a[i] + sin_r[i] b[i]        (a, b: the query and its pair-swapped copy;
//                                                   cos_r, sin_r: R_r as below)
//   out[r] = sum_i w_r[i] (offset[i] + scale[i] c_ri)
// i.e. q . R_r dequant(k_r) with per-channel dequant = offset + scale * code, in one pass over
// the codes instead of a rotated query, a separate dot product and a dispatch per token.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qaq::internal {

// Rows are taken in groups of kRotatedGroup = 16: row r = 16u + v is rotated by R_v R_16u, the
// query first by group (a_u = G_u a + H_u b, b_u = G_u b - H_u a, elementwise in plan order:
// rotating the query's pairs by 16u) and then by v (cos_v, sin_v), so that the per-row tables
// stay small enough for the first-level cache whatever the number of rows.
inline constexpr int kRotatedGroup = 16;

struct RotatedRowsQuery {
  const float* a_plan;     // [n_steps * 8]: a in the order of GetLanePlan(bits, n)
  const float* b_plan;     // [n_steps * 8]
  const float* cos_plan;   // cos_v for v < 16 in plan order, PermuteRowPairsForPlan's layout
  const float* sin_plan;   // the same for sin_v
  const float* group_cos;  // [u][n_steps * 8]: G_u in plan order, u < ceil(n_rows / 16)
  const float* group_sin;  // [u][n_steps * 8]: H_u
  const float* scale;      // [n_steps * 8]: per-channel scale in plan order
  const float* offset;     // [n_steps * 8]: per-channel offset in plan order
};

// out[r] for rows r < n_rows stored row_bytes apart; false (nothing written) when this CPU's
// kernels have no plan for (bits, n): the caller then computes the rows another way.
bool DotRotatedRows(const RotatedRowsQuery& query, const std::uint8_t* codes, std::size_t row_bytes, int n_rows,
                    int bits, int n, float* out);

// Scalar reference for one row, everything in code order (n values each).
float DotRotatedRowRef(const float* a, const float* b, const float* cos, const float* sin, const float* scale,
                       const float* offset, const std::uint8_t* codes, int bits, int n);

}  // namespace qaq::internal
