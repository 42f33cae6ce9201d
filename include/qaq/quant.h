// qaq/quant.h: the QAQ codec, one group of values at a time (no model knowledge).
//
// A "group" is the set of values that share one bit width and one [min, max] (QAQ-method.md §7):
// one token of one KV head (head granularity), of one layer (layer) or of the whole model
// (token). Encoding a group takes two steps, because the bit width depends on the group's range:
//
//   qaq::GroupQuantizer quantizer(/*outlier_alpha=*/0.01);
//   const qaq::GroupAnalysis& a = quantizer.Analyze(values);   // outliers, stored min/max
//   int bits = ...;                                             // the policy, from a.range()
//   qaq::PackedGroup group = quantizer.Pack(values, bits);
//   std::vector<float> back(values.size());
//   qaq::DecodeGroup(group, back);
//
// The rules, all in one place (docs/readme/method.md explains them for users):
// - Outliers (§4): values beyond the alpha/2 quantiles at each end. Per side the count is
//   round(alpha/2 * n) (halves up), possibly 0, and never so many that no value is left.
//   Values are ordered by (value, position), so ties are broken by position and the count is
//   exact. Non-finite values and values beyond the fp16 range (|x| > 65504) are always outliers,
//   in addition to those. Outliers are kept exactly (fp32) with their position.
// - Metadata (§3, §8): min and max of the other values, stored as fp16, min rounded down and max
//   rounded up, so that every value still lies in [min, max] after rounding. Encoding and
//   decoding both use the rounded values, and so does the policy (GroupAnalysis::range()).
// - Codes (§3): [min, max] is split into 2^B equal segments of width s = (max - min) / 2^B;
//   a value gets the code c in 0..2^B-1 of the nearest segment midpoint and is reconstructed as
//   min + (c + 1/2) s. The error is at most s/2. B = 0 stores no code: every value becomes the
//   midpoint (min + max) / 2. B = 16 is a pass-through: every value as an fp16, no metadata.
// - Packing: code i occupies bits [i*B, i*B + B) of a little-endian bit stream, so 8 codes take
//   exactly B bytes. Codes exist for every position, outlier positions included (they hold code
//   0), so that a group's codes have a fixed size and the dot product needs no index remapping.
//
// The hot loops of attention run on packed codes without decoding a group first
// (ARCHITECTURE.md "The three concerns of the cache"): with dequant(c) = m + s c,
//   q . dequant(codes) = m * sum(q) + s * (q . codes)        DotPacked
//   out += w * dequant(codes)                               AxpyPacked
// plus a small correction for the outliers. The *Rows variants take the tokens of one
// (layer, KV head) stored back to back at one bit width.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "qaq/status.h"

namespace qaq {

// Widest quantized code; 0..kMaxCodeBits are valid quantized widths.
inline constexpr int kMaxCodeBits = 8;
// The "not quantized" width: every value stored as an fp16.
inline constexpr int kPassThroughBits = 16;

// True for 0..8 and 16.
bool IsValidBits(int bits);

// Bytes of `n` codes packed at `bits` (0..8) bits each: ceil(n * bits / 8). For
// kPassThroughBits: 2 n.
std::size_t BytesFor(std::size_t n, int bits);

// ---------------------------------------------------------------------------------------------
// Stored form of a group.

// min and max as fp16 bit patterns (min rounded down, max rounded up). 4 bytes.
struct GroupMeta {
  std::uint16_t min_fp16 = 0;
  std::uint16_t max_fp16 = 0;
};

// The affine form of a group's reconstruction, dequant(c) = offset + scale * c, derived from
// GroupMeta and the bit width by AffineFromMeta: scale = (max - min) / 2^B,
// offset = min + scale / 2. For the pass-through width: offset 0, scale 1 (codes are fp16).
struct AffineMeta {
  float offset = 0.0f;
  float scale = 0.0f;
};
AffineMeta AffineFromMeta(GroupMeta meta, int bits);

// One value kept exactly. `index` is the position inside the group.
struct Outlier {
  std::uint32_t index = 0;
  float value = 0.0f;
};

// A quantized group that owns its data.
struct PackedGroup {
  int bits = 0;                   // 0..8, or kPassThroughBits
  int size = 0;                   // number of values n
  GroupMeta meta;                 // unused for the pass-through width
  std::vector<std::uint8_t> codes;   // BytesFor(size, bits) bytes
  std::vector<Outlier> outliers;     // sorted by index

  // Exact stored bytes: GroupBytes(size, bits, outliers.size()).
  std::size_t bytes() const;
};

// Exact bytes of a stored group (§8): packed codes + metadata (2 x 16 bits; none for the
// pass-through width) + outliers (fp32 value + position: 16 bits when n <= 65536, else 32).
std::size_t GroupBytes(std::size_t n, int bits, std::size_t n_outliers);
// Bytes of one outlier in a group of n values (4 + 2 or 4 + 4).
std::size_t OutlierBytes(std::size_t n);

// Outliers per side for a group of n values and ratio alpha (both sides together, in [0, 1]):
// round(alpha / 2 * n), halves up, at most (n - 1) / 2.
int OutliersPerSide(std::size_t n, double alpha);

// What Analyze found out about a group: its outliers and its stored range.
struct GroupAnalysis {
  GroupMeta meta;             // fp16 min (rounded down) and max (rounded up)
  float min = 0.0f;           // the rounded values as floats
  float max = 0.0f;
  std::vector<Outlier> outliers;  // sorted by index

  // The range the bit policy must use: the stored (rounded) range, max - min.
  float range() const { return max - min; }
};

// Encodes groups; keeps scratch buffers so that encoding many groups does not allocate.
// Not thread-safe: use one per thread.
class GroupQuantizer {
 public:
  // alpha: the outlier ratio (both sides together), in [0, 1). 0 disables outliers except for
  // the non-finite and out-of-fp16-range values, which are always outliers.
  explicit GroupQuantizer(double outlier_alpha = 0.0);

  double outlier_alpha() const { return outlier_alpha_; }

  // Selects the outliers and computes the stored range of `values` (at most 2^32 - 1 values).
  const GroupAnalysis& Analyze(std::span<const float> values);
  const GroupAnalysis& analysis() const { return analysis_; }

  // Packs `values` (the same values as the last Analyze) at `bits` (0..8 or 16).
  PackedGroup Pack(std::span<const float> values, int bits);

  // Allocation-free form of Pack for a cache: writes BytesFor(values.size(), bits) bytes to
  // `codes`. The metadata and outliers to store are analysis().meta and analysis().outliers
  // (for the pass-through width only the non-finite and out-of-range values are outliers; see
  // PassThroughOutliers).
  void PackCodesTo(std::span<const float> values, int bits, std::uint8_t* codes);

 private:
  double outlier_alpha_;
  GroupAnalysis analysis_;
  std::vector<std::uint32_t> order_;
  std::vector<std::uint8_t> is_outlier_;
  std::vector<std::uint8_t> codes_;
};

// The outliers of a pass-through (fp16) group: the values fp16 cannot hold (non-finite or
// |x| > 65504), kept exactly.
std::vector<Outlier> PassThroughOutliers(std::span<const float> values);

// Convenience: Analyze + Pack. bits must be 0..8 or 16, alpha in [0, 1).
StatusOr<PackedGroup> EncodeGroup(std::span<const float> values, int bits, double outlier_alpha);

// Reconstructs every value of the group (outliers exactly). out.size() must equal group.size.
void DecodeGroup(const PackedGroup& group, std::span<float> out);

// q . decode(group) and out += w * decode(group), without decoding; q and out have group.size
// elements. Uses the fast kernels below plus the outlier correction.
float GroupDot(std::span<const float> q, const PackedGroup& group);
void GroupAxpy(float w, const PackedGroup& group, std::span<float> out);

// ---------------------------------------------------------------------------------------------
// Bit packing (codes are 0..2^bits - 1, bits 1..8; bits 0 writes nothing).

void PackCodes(std::span<const std::uint8_t> codes, int bits, std::uint8_t* packed);
void UnpackCodes(const std::uint8_t* packed, int bits, std::span<std::uint8_t> codes);

// ---------------------------------------------------------------------------------------------
// Hot loops on packed codes. `codes` is BytesFor(n, bits) bytes (n fp16 values for the
// pass-through width), `q`/`out` have n floats. Outliers are not included: add
// OutlierDot / OutlierAxpy (or use GroupDot / GroupAxpy). All variants are exact up to float
// rounding; the order of the additions differs from the scalar references in src/quant.

// q . dequant(codes) = m.offset * q_sum + m.scale * (q . codes), q_sum = sum of q.
float DotPacked(const float* q, float q_sum, const std::uint8_t* codes, int bits, AffineMeta m,
                int n);
// out[i] += w * dequant(codes)[i].
void AxpyPacked(float w, const std::uint8_t* codes, int bits, AffineMeta m, int n, float* out);

// n_rows groups of the same width stored `row_bytes` apart (row r at codes + r * row_bytes):
// out[r] = q . dequant(row r).
void DotPackedRows(const float* q, float q_sum, const std::uint8_t* codes, std::size_t row_bytes,
                   const AffineMeta* metas, int n_rows, int bits, int n, float* out);
// out[i] += sum over rows r of w[r] * dequant(row r)[i].
void AxpyPackedRows(const float* w, const std::uint8_t* codes, std::size_t row_bytes,
                    const AffineMeta* metas, int n_rows, int bits, int n, float* out);

// Outlier corrections for a group encoded by GroupQuantizer (outlier positions hold code 0, whose
// reconstruction is m.offset, or +0 for the pass-through width):
//   OutlierDot  = sum over outliers of q[i] * (value - dequant(0))
//   OutlierAxpy: out[i] += w * (value - dequant(0)) for every outlier.
float OutlierDot(const float* q, std::span<const Outlier> outliers, int bits, AffineMeta m);
void OutlierAxpy(float w, std::span<const Outlier> outliers, int bits, AffineMeta m, float* out);

// Reference points for benchmarks and tests: plain fp32 and fp16 dot products (fast versions).
float DotF32(const float* a, const float* b, int n);
float DotF16(const float* a, const std::uint16_t* b_fp16, int n);

}  // namespace qaq
