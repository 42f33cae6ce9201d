// Rows of packed codes through 8-bit integer dot products, on x86 CPUs with AVX-512 VNNI and VBMI
// (Highway's AVX3_DL target: Ice Lake and later, Zen 4 and later).
//
// Why: the float kernels (packed_dot.cc) spend a shift, a mask, a conversion and a multiply-add
// per 8 or 16 codes whatever the width, so a 3-bit cache costs as much arithmetic per value as an
// fp16 one. Here a float vector x (the query, or a block of rows' weights) is split once into three
// int8 vectors, x = s1 l1 + s2 l2 + s3 l3 + e with s2 = s1 / 254, s3 = s2 / 254 and
// s1 = max|x| / 127, so |e| <= s3 / 2 = max|x| / (2 127 254^2) = 6.1e-8 max|x| (kSplitInt8Error),
// and codes . x is three exact integer sums (vpdpbusd: 64 byte products per instruction) and one
// float combination. The only rounding is that of x to a multiple of s3 = 1.2e-7 max|x| (max
// per call for a query, per 64-row block for weights), so the error of a dot product is at most
// kSplitInt8Error max|x| sum_i code_i: of the order of float rounding relative to |x|max |codes|,
// not to sum_i |x_i code_i| as in the float kernels, which matters only for a query whose
// elements span many orders of magnitude (split_int8_rows_test.cc measures both).
// Codes of any width B become bytes with one byte permute and one multishift per 64 codes
// (8 codes are exactly B bytes), so no code pays a float conversion.
//
// Each function returns false, writing nothing, where it does not apply (the caller then takes the
// float path): a CPU or test target without AVX3_DL, bits outside 1..8, n not a multiple of 64 or
// above 256, fewer than kSplitInt8MinRows rows, or a non-finite x (the float path then carries the
// NaN or Inf through as dequantize-then-compute would).
#pragma once

#include <cstddef>
#include <cstdint>

#include "qaq/quant.h"

namespace qaq::internal {

inline constexpr int kSplitInt8MinRows = 8;
// The split's bound: |x_i - sum_l s_l l_li| <= kSplitInt8Error max|x|.
inline constexpr double kSplitInt8Error = 1.0 / (2.0 * 127.0 * 254.0 * 254.0);

// Rows are row_bytes apart; every byte from the first row to the end of the last may be read.

// out[r] = x . codes of row r (codes only: no scale, no offset).
bool DotRowsSplitInt8(const float* x, const std::uint8_t* codes, std::size_t row_bytes, int n_rows, int bits, int n,
                      float* out);

// out[r] = q . dequant(row r) for rows of per-channel codes (channel_dot.h): channel i of every
// row has the affine form of channel_metas[i] at `bits`.
bool DotChannelRowsSplitInt8(const float* q, const GroupMeta* channel_metas, const std::uint8_t* codes,
                             std::size_t row_bytes, int n_rows, int bits, int n, float* out);

// out[i] += sum over rows r of w[r] * metas[r].scale * code_ri (the offsets are the caller's).
bool AxpyRowsSplitInt8(const float* w, const std::uint8_t* codes, std::size_t row_bytes, const AffineMeta* metas,
                       int n_rows, int bits, int n, float* out);

// One width arena's share of a decode weighted sum, read where it is stored: row r belongs to
// token tokens[r] (16-bit or 32-bit numbers: one of the two pointers is set) and has weight
// probs[token] (0 for tokens >= n_probs), metadata metas[r] (AffineFromMeta at `bits`), n codes
// of `bits` bits, and `outliers` exact values at positions outlier_index[r * outliers + j] < n
// whose codes are 0 (reconstructed as the offset).
struct WeightedRows {
  const float* probs = nullptr;
  std::uint32_t n_probs = 0;
  const std::uint16_t* tokens16 = nullptr;
  const std::uint32_t* tokens32 = nullptr;
  const GroupMeta* metas = nullptr;
  const std::uint8_t* codes = nullptr;
  std::size_t row_bytes = 0;
  int n_rows = 0;
  int bits = 0;
  int n = 0;
  int outliers = 0;
  const std::uint16_t* outlier_index = nullptr;
  const float* outlier_values = nullptr;
};

// out[i] += sum over rows r of w_r dequant_r(i), w_r = probs[tokens[r]], outliers included: the
// weights, the metadata's affine form, the offsets' sum and the outlier corrections are formed
// block by block beside the integer products (one pass over the arena instead of four). Takes
// width 0 too (offsets and outliers only); false, writing nothing, as the functions above, and
// also for a non-finite weight, offset or outlier correction.
bool WeightedSumSplitInt8(const WeightedRows& rows, float* out);

// The split itself, scalar, for tests: levels[l][i] and scales[l] with
// x[i] ~ sum_l scales[l] * levels[l][i]. False for a non-finite x.
bool SplitInt8Ref(const float* x, int n, std::int8_t* levels0, std::int8_t* levels1, std::int8_t* levels2,
                  float scales[3]);

}  // namespace qaq::internal
