// Scores of keys quantized per channel (kv/channel_keys.h, keys after RoPE): channel i of every
// row in a block shares one [min, max] (GroupMeta i), so dequant(c_ri) = offset_i + scale_i c_ri
// (AffineFromMeta at the block's width) and
//   out[r] = q . dequant(row r) = q . offset + (q * scale) . c_r
// One call per block: the scaled query and the constant q . offset are formed with SIMD straight
// from the fp16 metadata, and the scaled query is put into the lane plan's order once for all
// rows (lane_plan.h), instead of converting the metadata, scaling and permuting in separate
// scalar passes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "qaq/quant.h"

namespace qaq::internal {

// out[r] for rows r < n_rows of n codes at `bits` (0..8) stored row_bytes apart, channel_metas:
// n entries.
void DotChannelRows(const float* q, const GroupMeta* channel_metas, const std::uint8_t* codes, std::size_t row_bytes,
                    int n_rows, int bits, int n, float* out);

// Scalar reference for one row: sum_i q[i] * AffineFromMeta(channel_metas[i], bits)(c_i).
float DotChannelRowRef(const float* q, const GroupMeta* channel_metas, const std::uint8_t* codes, int bits, int n);

}  // namespace qaq::internal
