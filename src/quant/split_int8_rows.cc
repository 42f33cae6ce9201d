// Integer kernels for rows of packed codes (split_int8_rows.h). The arithmetic needs AVX-512 VNNI
// (vpdpbusd) and VBMI (vpermb, vpmultishiftqb), which Highway 1.0 has no portable ops for: the
// kernels are written once with x86 intrinsics in functions compiled for those extensions, and
// Highway's dispatch (with its AVX3_DL target enabled for this file) decides at run time whether
// they may run; every other target answers false and the caller keeps its float path.
#define HWY_WANT_AVX3_DL 1  // before any Highway header: also compile this file for AVX3_DL

#include "quant/split_int8_rows.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/split_int8_rows.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#ifndef QAQ_QUANT_SPLIT_INT8_ROWS_ONCE_
#define QAQ_QUANT_SPLIT_INT8_ROWS_ONCE_
namespace qaq::internal {
namespace {

// The split's scales for a vector whose largest magnitude is `max_abs` (finite, > 0): the vector
// is first multiplied by 2^-exponent (exact) so that its maximum lies in [0.5, 1) whatever its
// magnitude, the levels are taken there, and the returned scales carry 2^exponent back.
struct SplitScales {
  int exponent = 0;
  float step[3] = {};     // s1', s2', s3' for the normalised vector
  float inverse[3] = {};  // 1 / step
  float scale[3] = {};    // step * 2^exponent: what a level is worth
};

// 2^e as a float, exact for e in [-126, 127] (a normal number: built from its bits, where
// std::ldexp is a library call per use).
float PowerOfTwo(int e) {
  const auto bits = static_cast<std::uint32_t>(e + 127) << 23;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

SplitScales MakeSplitScales(float max_abs) {
  SplitScales s;
  float normalised;
  std::uint32_t bits;
  std::memcpy(&bits, &max_abs, sizeof bits);
  const int biased = int((bits >> 23) & 0xffu);
  if (biased != 0) {  // normal: std::frexp from the bits
    s.exponent = biased - 126;
    bits = (bits & 0x807fffffu) | (126u << 23);
    std::memcpy(&normalised, &bits, sizeof bits);
  } else {
    normalised = std::frexp(max_abs, &s.exponent);
  }
  // |level 1| <= 127 and the residual after it is <= step / 2, so with step 2 = step 1 / 254
  // |level 2| <= 127, and the same again for level 3. With the roundings (the product by the
  // inverse, and step * inverse = 1 within 2 ulp) a residual is at most 0.50003 steps, so
  // |v * inverse| <= 127.006 before rounding at every level: the levels need no clamp. Each step
  // and inverse is its own division (127 254 and 127 254^2 are exact in float): six independent
  // divisions overlap.
  constexpr float kDivisors[3] = {127.0f, 127.0f * 254.0f, 127.0f * 254.0f * 254.0f};
  for (int l = 0; l < 3; ++l) {
    s.step[l] = normalised / kDivisors[l];
    s.inverse[l] = kDivisors[l] / normalised;
  }
  // step[l] * 2^exponent in one product where 2^exponent is normal and the results stay normal
  // (steps lie in [2^-24, 2^-7]); ldexp where a scale would be subnormal or the power is not.
  const bool normal = s.exponent >= -102 && s.exponent <= 127;
  const float power = normal ? PowerOfTwo(s.exponent) : 0.0f;
  for (int l = 0; l < 3; ++l) s.scale[l] = normal ? s.step[l] * power : std::ldexp(s.step[l], s.exponent);
  return s;
}

float Level(float v, float inverse) { return std::nearbyint(v * inverse); }  // in [-127, 127] (above)

}  // namespace

bool SplitInt8Ref(const float* x, int n, std::int8_t* levels0, std::int8_t* levels1, std::int8_t* levels2,
                  float scales[3]) {
  float max_abs = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return false;
    max_abs = std::max(max_abs, std::abs(x[i]));
  }
  std::int8_t* levels[3] = {levels0, levels1, levels2};
  if (max_abs == 0.0f) {
    for (auto* l : levels) std::fill(l, l + n, std::int8_t{0});
    std::fill(scales, scales + 3, 0.0f);
    return true;
  }
  const SplitScales s = MakeSplitScales(max_abs);
  for (int i = 0; i < n; ++i) {
    float residual = std::ldexp(x[i], -s.exponent);
    for (int l = 0; l < 3; ++l) {
      const float a = Level(residual, s.inverse[l]);
      levels[l][i] = static_cast<std::int8_t>(a);
      residual = std::fma(-a, s.step[l], residual);
    }
  }
  std::copy(s.scale, s.scale + 3, scales);
  return true;
}

}  // namespace qaq::internal

#if HWY_ARCH_X86
#include <immintrin.h>

// GCC 12's AVX-512 headers initialise the pass-through operand of masked intrinsics with itself
// (_mm512_undefined_*), which -Wuninitialized reports at every use.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define QAQ_VNNI_ATTR __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi")))

namespace qaq::internal {
namespace {

constexpr int kChunk = 64;        // codes per byte vector
constexpr int kMaxChunks = 4;     // n <= 256
constexpr int kWeightBlock = 64;  // rows sharing one weight split (and flushed to float together)

// Widens 64 codes of B bits (8B bytes) to one byte each, in order: a 64-byte load (masked to the
// 8B bytes near the end of the rows, so that no byte past the last row is touched: masked loads
// are several times slower on some CPUs), a byte permute that puts the B bytes of codes 8k .. 8k + 7 at the
// start of 64-bit word k, a multishift that takes each code's 8 bits at offset j B of its word,
// and a mask.
struct WidenTables {
  std::uint8_t permute[9][64], shifts[9][64], mask[9][64];
};

constexpr WidenTables MakeWidenTables() {
  WidenTables t{};
  for (int bits = 1; bits <= 8; ++bits) {
    for (int j = 0; j < 64; ++j) {
      t.permute[bits][j] = static_cast<std::uint8_t>(std::min((j / 8) * bits + j % 8, 63));
      t.shifts[bits][j] = static_cast<std::uint8_t>((j % 8) * bits);
      t.mask[bits][j] = static_cast<std::uint8_t>((1u << bits) - 1u);
    }
  }
  return t;
}

// Built at compile time: a call on one 64-row block should not spend 200 stores on them.
alignas(64) constexpr WidenTables kWidenTables = MakeWidenTables();

struct CodeWidener {
  __m512i permute, shifts, mask;
  __mmask64 load_mask;

  QAQ_VNNI_ATTR explicit CodeWidener(int bits)
      : permute(_mm512_loadu_si512(kWidenTables.permute[bits])),
        shifts(_mm512_loadu_si512(kWidenTables.shifts[bits])),
        mask(_mm512_loadu_si512(kWidenTables.mask[bits])),
        load_mask(bits == 8 ? ~__mmask64{0} : (__mmask64{1} << (8 * bits)) - 1) {}

  // `end`: one past the last byte of the run of rows (the bytes between p and end are readable).
  QAQ_VNNI_ATTR __m512i Widen(const std::uint8_t* p, const std::uint8_t* end) const {
    return end - p >= 64 ? Widen(p) : FromBytes(_mm512_maskz_loadu_epi8(load_mask, p));
  }
  // p + 64 <= end.
  QAQ_VNNI_ATTR __m512i Widen(const std::uint8_t* p) const { return FromBytes(_mm512_loadu_si512(p)); }

  QAQ_VNNI_ATTR __m512i FromBytes(__m512i raw) const {
    return _mm512_and_si512(_mm512_multishift_epi64_epi8(shifts, _mm512_permutexvar_epi8(permute, raw)), mask);
  }
};

// The affine forms (AffineFromMeta) of 16 fp16 metadata pairs: scale = (max - min) step with
// step = 2^-B, offset = min + scale / 2, both exact as there.
QAQ_VNNI_ATTR inline void AffineFromSixteenMetas(__m512i metas, __m512 step, __m512& scale, __m512& offset) {
  const __m512 lo = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(metas));
  const __m512 hi = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(metas, 16)));
  scale = _mm512_mul_ps(_mm512_sub_ps(hi, lo), step);
  offset = _mm512_fmadd_ps(_mm512_set1_ps(0.5f), scale, lo);
}

// Asks for the cache lines of bytes [from, to) after `base`. The addresses are formed as
// integers: they may lie past the array (a prefetch never faults), where pointer arithmetic
// would not be allowed.
inline void PrefetchBytes(const void* base, std::size_t from, std::size_t to) {
  const auto address = reinterpret_cast<std::uintptr_t>(base);
  for (std::size_t i = from; i < to; i += 64) _mm_prefetch(reinterpret_cast<const char*>(address + i), _MM_HINT_T0);
}

// max |x_i|, or NaN when some x_i is NaN (max alone would drop it).
QAQ_VNNI_ATTR float MaxAbs(const float* x, int n) {
  __m512 m = _mm512_setzero_ps();
  __mmask16 nan = 0;
  for (int i = 0; i < n; i += 16) {
    const __m512 v = n - i >= 16 ? _mm512_loadu_ps(x + i) : _mm512_maskz_loadu_ps(__mmask16((1u << (n - i)) - 1u), x + i);
    const __m512 a = _mm512_abs_ps(v);
    nan |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
    m = _mm512_max_ps(m, a);
  }
  return nan != 0 ? std::numeric_limits<float>::quiet_NaN() : _mm512_reduce_max_ps(m);
}

// The vector form of SplitInt8Ref's loop (the same operations in the same order): n floats (n a
// multiple of 16) into three rows of int8 levels.
QAQ_VNNI_ATTR void SplitLevels(const float* x, int n, const SplitScales& s, std::int8_t* levels0,
                               std::int8_t* levels1, std::int8_t* levels2) {
  std::int8_t* levels[3] = {levels0, levels1, levels2};
  const __m512 down = _mm512_set1_ps(float(-s.exponent));
  for (int i = 0; i < n; i += 16) {
    __m512 residual = _mm512_scalef_ps(_mm512_loadu_ps(x + i), down);
    for (int l = 0; l < 3; ++l) {
      const __m512 a = _mm512_roundscale_ps(_mm512_mul_ps(residual, _mm512_set1_ps(s.inverse[l])),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(levels[l] + i), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(a)));
      residual = _mm512_fnmadd_ps(a, _mm512_set1_ps(s.step[l]), residual);
    }
  }
}

// The three level sums of one lane combined into floats.
QAQ_VNNI_ATTR inline __m512 Combine(const __m512i a[3], const float scale[3]) {
  __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(a[0]), _mm512_set1_ps(scale[0]));
  f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[1]), _mm512_set1_ps(scale[1]), f);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[2]), _mm512_set1_ps(scale[2]), f);
}

// Sums of 16 vectors' lanes, one per lane of the result (sums[i] = sum of v[i]): a transposing
// tree that halves the width at each level (46 shuffles and adds instead of 16 full reductions).
// Its first two levels depend on four vectors at a time (SumFour), so a caller can fold rows in as
// they come and keep 4 vectors live instead of 16; FinishSixteen takes the four partial results.
QAQ_VNNI_ATTR inline __m512 SumFour(__m512 v0, __m512 v1, __m512 v2, __m512 v3) {
  // lanes 0-7 of a01: partial sums of v0, 8-15: of v1 (and a23 for v2, v3)
  const __m512 a01 = _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0x44), _mm512_shuffle_f32x4(v0, v1, 0xee));
  const __m512 a23 = _mm512_add_ps(_mm512_shuffle_f32x4(v2, v3, 0x44), _mm512_shuffle_f32x4(v2, v3, 0xee));
  // 128-bit block k: partial sums of v_k
  return _mm512_add_ps(_mm512_shuffle_f32x4(a01, a23, 0x88), _mm512_shuffle_f32x4(a01, a23, 0xdd));
}

// b[i] = SumFour of v[4i .. 4i + 3].
QAQ_VNNI_ATTR inline __m512 FinishSixteen(const __m512 b[4]) {
  __m512 c[2];
  for (int i = 0; i < 2; ++i) {
    c[i] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * i], b[2 * i + 1], 0x44), _mm512_shuffle_ps(b[2 * i], b[2 * i + 1], 0xee));
  }
  // Lane 4 k + m now holds the sum of v[k + 4 m]; one permute puts v[i] in lane i.
  const __m512 sums = _mm512_add_ps(_mm512_shuffle_ps(c[0], c[1], 0x88), _mm512_shuffle_ps(c[0], c[1], 0xdd));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(order, sums);
}

// acc += the byte products of u (unsigned) and w (signed), four per 32-bit lane. Written in inline
// assembly because GCC 12 copies the accumulator of _mm512_dpbusd_epi32 into a fresh register at
// every call (two moves per instruction in these loops); the constraint keeps it in place.
QAQ_VNNI_ATTR inline void DotBytesAccumulate(__m512i& acc, __m512i u, __m512i w) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(w));
}

// a[j][l] += products of four rows' widened codes u (one chunk) with their weight levels
// levels[l][g .. g + 3]. The bytes of the four rows are first interleaved so that each 32-bit lane
// holds one element of the four: lane (L, m) of x[j] is element 16 L + 4 j + m of the chunk.
QAQ_VNNI_ATTR inline void AccumulateFourRows(const __m512i u[4], const std::int8_t levels[3][kWeightBlock], int g,
                                             __m512i a[4][3]) {
  const __m512i t01lo = _mm512_unpacklo_epi8(u[0], u[1]), t01hi = _mm512_unpackhi_epi8(u[0], u[1]);
  const __m512i t23lo = _mm512_unpacklo_epi8(u[2], u[3]), t23hi = _mm512_unpackhi_epi8(u[2], u[3]);
  const __m512i x[4] = {_mm512_unpacklo_epi16(t01lo, t23lo), _mm512_unpackhi_epi16(t01lo, t23lo),
                        _mm512_unpacklo_epi16(t01hi, t23hi), _mm512_unpackhi_epi16(t01hi, t23hi)};
  for (int l = 0; l < 3; ++l) {
    std::int32_t four;
    std::memcpy(&four, levels[l] + g, 4);
    const __m512i wl = _mm512_set1_epi32(four);
    for (int j = 0; j < 4; ++j) DotBytesAccumulate(a[j][l], x[j], wl);
  }
}

// a[l] += the products of 64 bytes of 4-bit codes with a split query: the low nibbles (the even
// codes) with q_low, the high nibbles (the odd codes) with q_high. No byte permute.
QAQ_VNNI_ATTR inline void AccumulateNibbles(__m512i bytes, const __m512i q_low[3], const __m512i q_high[3],
                                            __m512i a[3]) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i low = _mm512_and_si512(bytes, low4), high = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low4);
  for (int l = 0; l < 3; ++l) DotBytesAccumulate(a[l], low, q_low[l]);
  for (int l = 0; l < 3; ++l) DotBytesAccumulate(a[l], high, q_high[l]);
}

// x in the order AccumulateNibbles takes it: each group of `group` values (64 or 128; n a
// multiple of it) as its group / 2 even values, then its group / 2 odd ones.
QAQ_VNNI_ATTR void EvenThenOdd(const float* x, int n, int group, float* out) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int b = 0; b < n; b += group) {
    for (int j = 0; j < group / 32; ++j) {
      const __m512 lo = _mm512_loadu_ps(x + b + 32 * j), hi = _mm512_loadu_ps(x + b + 32 * j + 16);
      _mm512_store_ps(out + b + 16 * j, _mm512_permutex2var_ps(lo, even, hi));
      _mm512_store_ps(out + b + group / 2 + 16 * j, _mm512_permutex2var_ps(lo, odd, hi));
    }
  }
}

// One row's products with the split query, lane by lane (the caller sums the lanes): kChunks
// chunks of 64 codes. kNibbles (4-bit codes, an even number of chunks): each 64 bytes of the row
// give two chunks without a byte permute, the low nibbles (codes 2j) and the high ones (codes
// 2j + 1); the query was split in that order. The 64 bytes belong to the row, so no load passes
// `end`.
template <bool kNibbles, int kChunks>
QAQ_VNNI_ATTR inline __m512 RowDot(const CodeWidener& widen, const std::uint8_t* row, const std::uint8_t* end,
                                   std::size_t chunk_bytes, const __m512i q[][3], const float scale[3]) {
  __m512i a[3] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  if constexpr (kNibbles) {
    for (int c = 0; c < kChunks; c += 2) {
      AccumulateNibbles(_mm512_loadu_si512(row + std::size_t(c) * chunk_bytes), q[c], q[c + 1], a);
    }
  } else {
    for (int c = 0; c < kChunks; ++c) {
      const __m512i u = widen.Widen(row + std::size_t(c) * chunk_bytes, end);
      for (int l = 0; l < 3; ++l) DotBytesAccumulate(a[l], u, q[c][l]);
    }
  }
  return Combine(a, scale);
}

// out[r] = constant + the row's products with the query split into q, for every row.
template <bool kNibbles, int kChunks>
QAQ_VNNI_ATTR void DotRowsSplit(const CodeWidener& widen, const std::uint8_t* codes, std::size_t row_bytes, int n_rows,
                                std::size_t chunk_bytes, const __m512i q[][3], const float scale[3], float constant,
                                float* out) {
  const std::uint8_t* end = codes + std::size_t(n_rows - 1) * row_bytes + std::size_t(kChunks) * chunk_bytes;
  // (No lambda for the row: it would be compiled without the target's extensions.)
#define QAQ_ROW_DOT(r) RowDot<kNibbles, kChunks>(widen, codes + std::size_t(r) * row_bytes, end, chunk_bytes, q, scale)
  int r = 0;
  for (; r + 16 <= n_rows; r += 16) {
    // Rows 32 ahead (past the last row too: the blocks of channel keys follow each other, and a
    // prefetch never faults).
    PrefetchBytes(codes, std::size_t(r + 32) * row_bytes, std::size_t(r + 48) * row_bytes);
    __m512 b[4];
    for (int i = 0; i < 4; ++i) {
      const int f = r + 4 * i;
      b[i] = SumFour(QAQ_ROW_DOT(f), QAQ_ROW_DOT(f + 1), QAQ_ROW_DOT(f + 2), QAQ_ROW_DOT(f + 3));
    }
    _mm512_storeu_ps(out + r, _mm512_add_ps(FinishSixteen(b), _mm512_set1_ps(constant)));
  }
  for (; r < n_rows; ++r) out[r] = constant + _mm512_reduce_add_ps(QAQ_ROW_DOT(r));
#undef QAQ_ROW_DOT
}

// Rows of 64 4-bit codes stored back to back (32 bytes each), two rows per 64-byte load: the low
// nibbles are the even codes of both rows, the high ones the odd codes, and the query, split in
// that order (32 even values, then 32 odd), stands in both 256-bit halves of q_even and q_odd.
// One row's products are then half a vector, so the byte permute and multishift of the widening,
// the float combination and the first level of the lane sums are paid once per two rows (at
// head_dim 64 these, not the integer products, were most of a row's instructions).
QAQ_VNNI_ATTR inline __m512 RowPairDot(__m512i bytes, const __m512i q_even[3], const __m512i q_odd[3],
                                       const float scale[3]) {
  __m512i a[3] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  AccumulateNibbles(bytes, q_even, q_odd, a);
  return Combine(a, scale);
}

// out[r] = constant + the products of row r (RowPairDot's layout) for every row.
QAQ_VNNI_ATTR void DotRowPairsSplit(const std::uint8_t* codes, int n_rows, const __m512i q_even[3],
                                    const __m512i q_odd[3], const float scale[3], float constant, float* out) {
  constexpr std::size_t kRowBytes = 32;
  int r = 0;
  for (; r + 16 <= n_rows; r += 16) {
    PrefetchBytes(codes, std::size_t(r + 32) * kRowBytes, std::size_t(r + 48) * kRowBytes);
    __m512 b[4];
    for (int i = 0; i < 4; ++i) {
      const std::uint8_t* p = codes + std::size_t(r + 4 * i) * kRowBytes;
      const __m512 v01 = RowPairDot(_mm512_loadu_si512(p), q_even, q_odd, scale);       // rows 4i, 4i + 1
      const __m512 v23 = RowPairDot(_mm512_loadu_si512(p + 64), q_even, q_odd, scale);  // rows 4i + 2, 4i + 3
      // 128-bit block k: four partial sums of row 4 i + k, as SumFour leaves them.
      b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v01, v23, 0x88), _mm512_shuffle_f32x4(v01, v23, 0xdd));
    }
    _mm512_storeu_ps(out + r, _mm512_add_ps(FinishSixteen(b), _mm512_set1_ps(constant)));
  }
  for (; r < n_rows; ++r) {  // one row in the low half, zeros above (a 32-byte load stays in the row)
    const __m512i bytes =
        _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + std::size_t(r) * kRowBytes)));
    out[r] = constant + _mm512_reduce_add_ps(RowPairDot(bytes, q_even, q_odd, scale));
  }
}

// out[r] = constant + x . codes of row r: x (n values, finite) split and the rows run.
QAQ_VNNI_ATTR void DotSplitQuery(const float* x, float max_abs, const std::uint8_t* codes, std::size_t row_bytes,
                                 int n_rows, int bits, int n, float constant, float* out) {
  if (max_abs == 0.0f) {
    std::fill(out, out + n_rows, constant);
    return;
  }
  const SplitScales s = MakeSplitScales(max_abs);
  alignas(64) std::int8_t levels[3][kChunk * kMaxChunks];
  alignas(64) float in_nibble_order[kChunk * kMaxChunks];
  if (bits == 4 && n == kChunk && row_bytes == 32) {  // two rows per vector (DotRowPairsSplit)
    EvenThenOdd(x, n, kChunk, in_nibble_order);
    SplitLevels(in_nibble_order, kChunk, s, levels[0], levels[1], levels[2]);
    __m512i q_even[3], q_odd[3];
    for (int l = 0; l < 3; ++l) {
      q_even[l] = _mm512_broadcast_i64x4(_mm256_load_si256(reinterpret_cast<const __m256i*>(levels[l])));
      q_odd[l] = _mm512_broadcast_i64x4(_mm256_load_si256(reinterpret_cast<const __m256i*>(levels[l] + kChunk / 2)));
    }
    DotRowPairsSplit(codes, n_rows, q_even, q_odd, s.scale, constant, out);
    return;
  }
  const bool nibbles = bits == 4 && n % (2 * kChunk) == 0;
  if (nibbles) {  // each 128 values: the 64 even ones, then the 64 odd ones
    EvenThenOdd(x, n, 2 * kChunk, in_nibble_order);
    x = in_nibble_order;
  }
  SplitLevels(x, n, s, levels[0], levels[1], levels[2]);
  const int chunks = n / kChunk;
  __m512i q[kMaxChunks][3];
  for (int c = 0; c < chunks; ++c) {
    for (int l = 0; l < 3; ++l) q[c][l] = _mm512_load_si512(levels[l] + c * kChunk);
  }
  const CodeWidener widen(bits);
  const std::size_t chunk_bytes = std::size_t(8 * bits);
  switch (chunks + (nibbles ? 4 : 0)) {
    case 1: DotRowsSplit<false, 1>(widen, codes, row_bytes, n_rows, chunk_bytes, q, s.scale, constant, out); break;
    case 2: DotRowsSplit<false, 2>(widen, codes, row_bytes, n_rows, chunk_bytes, q, s.scale, constant, out); break;
    case 3: DotRowsSplit<false, 3>(widen, codes, row_bytes, n_rows, chunk_bytes, q, s.scale, constant, out); break;
    case 4: DotRowsSplit<false, 4>(widen, codes, row_bytes, n_rows, chunk_bytes, q, s.scale, constant, out); break;
    case 6: DotRowsSplit<true, 2>(widen, codes, row_bytes, n_rows, chunk_bytes, q, s.scale, constant, out); break;
    case 8: DotRowsSplit<true, 4>(widen, codes, row_bytes, n_rows, chunk_bytes, q, s.scale, constant, out); break;
  }
}

}  // namespace

QAQ_VNNI_ATTR bool DotRowsSplitInt8Vnni(const float* x, const std::uint8_t* codes, std::size_t row_bytes, int n_rows,
                                        int bits, int n, float* out) {
  const float max_abs = MaxAbs(x, n);
  if (!std::isfinite(max_abs)) return false;
  DotSplitQuery(x, max_abs, codes, row_bytes, n_rows, bits, n, 0.0f, out);
  return true;
}

// The scaled query q * scale_i and q . offset formed from the fp16 metadata in one pass with its
// largest magnitude (ChannelQuery and MaxAbs fused: this runs once per block of rows).
QAQ_VNNI_ATTR bool DotChannelRowsSplitInt8Vnni(const float* q, const GroupMeta* metas, const std::uint8_t* codes,
                                               std::size_t row_bytes, int n_rows, int bits, int n, float* out) {
  alignas(64) float scaled[kChunk * kMaxChunks];
  const __m512 step = _mm512_set1_ps(PowerOfTwo(-bits));
  __m512 constant = _mm512_setzero_ps(), max = _mm512_setzero_ps();
  __mmask16 nan = 0;
  for (int i = 0; i < n; i += 16) {
    __m512 scale, offset;
    AffineFromSixteenMetas(_mm512_loadu_si512(metas + i), step, scale, offset);
    const __m512 qv = _mm512_loadu_ps(q + i);
    const __m512 x = _mm512_mul_ps(qv, scale);
    _mm512_store_ps(scaled + i, x);
    constant = _mm512_fmadd_ps(qv, offset, constant);
    const __m512 a = _mm512_abs_ps(x);
    nan |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
    max = _mm512_max_ps(max, a);
  }
  const float max_abs = _mm512_reduce_max_ps(max), sum = _mm512_reduce_add_ps(constant);
  if (nan != 0 || !std::isfinite(max_abs) || !std::isfinite(sum)) return false;
  DotSplitQuery(scaled, max_abs, codes, row_bytes, n_rows, bits, n, sum, out);
  return true;
}

namespace {

// The weighted sum's running state over blocks of kWeightBlock rows: float sums per element, in
// the order the byte transpose leaves them (acc[c][j] lane 4 L + m holds element
// 64 c + 16 L + 4 j + m).
class RowSums {
 public:
  QAQ_VNNI_ATTR RowSums(const std::uint8_t* codes, std::size_t row_bytes, int n_rows, int bits, int n)
      : widen_(bits),
        codes_(codes),
        row_bytes_(row_bytes),
        chunks_(n / kChunk),
        chunk_bytes_(std::size_t(8 * bits)),
        end_(codes + std::size_t(n_rows - 1) * row_bytes + std::size_t(chunks_) * chunk_bytes_) {
    for (auto& per_chunk : acc_) {
      for (auto& v : per_chunk) v = _mm512_setzero_ps();
    }
  }

  // Adds sum_r weights[r] codes of row r0 + r for r < rows (weights[rows..] are 0); false, adding
  // nothing, when a weight is not finite.
  QAQ_VNNI_ATTR bool AddBlock(int r0, int rows, const float weights[kWeightBlock]) {
    // The next block's codes: without this the loads below waited on memory (the hardware
    // prefetchers follow these short runs too late), 20-30% of the weighted sum's time.
    const std::size_t next = std::size_t(r0 + kWeightBlock) * row_bytes_;
    PrefetchBytes(codes_, next, std::min(next + kWeightBlock * row_bytes_, std::size_t(end_ - codes_)));
    const float max_abs = MaxAbs(weights, rows);
    if (!std::isfinite(max_abs)) return false;
    if (max_abs == 0.0f) return true;
    const SplitScales s = MakeSplitScales(max_abs);
    alignas(64) std::int8_t levels[3][kWeightBlock];
    SplitLevels(weights, kWeightBlock, s, levels[0], levels[1], levels[2]);
    for (int c = 0; c < chunks_; ++c) {
      __m512i a[4][3];
      for (auto& per_j : a) {
        for (auto& v : per_j) v = _mm512_setzero_si512();
      }
      const std::uint8_t* row = codes_ + std::size_t(r0) * row_bytes_ + std::size_t(c) * chunk_bytes_;
      const std::size_t group_bytes = 4 * row_bytes_;
      int g = 0;
      // Groups of four whole rows whose loads all end before `end`: no tests per load.
      for (; g + 4 <= rows && end_ - (row + 3 * row_bytes_) >= 64; g += 4, row += group_bytes) {
        const __m512i u[4] = {widen_.Widen(row), widen_.Widen(row + row_bytes_), widen_.Widen(row + 2 * row_bytes_),
                              widen_.Widen(row + 3 * row_bytes_)};
        AccumulateFourRows(u, levels, g, a);
      }
      for (; g < rows; g += 4, row += group_bytes) {
        __m512i u[4];
        for (int i = 0; i < 4; ++i) {
          u[i] = g + i < rows ? widen_.Widen(row + std::size_t(i) * row_bytes_, end_) : _mm512_setzero_si512();
        }
        AccumulateFourRows(u, levels, g, a);
      }
      for (int j = 0; j < 4; ++j) acc_[c][j] = _mm512_add_ps(acc_[c][j], Combine(a[j], s.scale));
    }
    return true;
  }

  QAQ_VNNI_ATTR void AddTo(float* out) const {
    alignas(64) float sums[16];
    for (int c = 0; c < chunks_; ++c) {
      for (int j = 0; j < 4; ++j) {
        _mm512_store_ps(sums, acc_[c][j]);
        for (int lane = 0; lane < 16; ++lane) out[kChunk * c + 16 * (lane / 4) + 4 * j + lane % 4] += sums[lane];
      }
    }
  }

 private:
  const CodeWidener widen_;
  const std::uint8_t* codes_;
  std::size_t row_bytes_;
  int chunks_;
  std::size_t chunk_bytes_;
  const std::uint8_t* end_;  // one past the last byte of the last row's codes
  __m512 acc_[kMaxChunks][4];
};

// 16 token numbers from p, of which the first `valid` are read, as 32-bit lanes.
QAQ_VNNI_ATTR inline __m512i LoadTokens(const std::uint16_t* p, int valid) {
  return _mm512_cvtepu16_epi32(valid >= 16 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                                           : _mm256_maskz_loadu_epi16(__mmask16((1u << valid) - 1u), p));
}
QAQ_VNNI_ATTR inline __m512i LoadTokens(const std::uint32_t* p, int valid) {
  return valid >= 16 ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi32(__mmask16((1u << valid) - 1u), p);
}

template <typename Token>
QAQ_VNNI_ATTR bool WeightedSumVnni(const WeightedRows& in, const Token* tokens, float* out) {
  RowSums sums(in.codes, in.row_bytes, in.n_rows, in.bits, in.n);
  const __m512 step = _mm512_set1_ps(PowerOfTwo(-in.bits));
  const __m512i limit = _mm512_set1_epi32(std::int32_t(std::min<std::uint32_t>(in.n_probs, 0x7fffffffu)));
  __m512 offsets_sum = _mm512_setzero_ps();
  alignas(64) float corrections[kChunk * kMaxChunks] = {};
  alignas(64) float weights[kWeightBlock], w[kWeightBlock], offsets[kWeightBlock];
  const auto k = std::size_t(in.outliers);
  for (int r0 = 0; r0 < in.n_rows; r0 += kWeightBlock) {
    const int rows = std::min(kWeightBlock, in.n_rows - r0);
    for (int i = 0; i < kWeightBlock; i += 16) {
      const int valid = std::clamp(rows - i, 0, 16);
      if (valid == 0) {
        _mm512_store_ps(weights + i, _mm512_setzero_ps());
        continue;
      }
      const __m512i token = LoadTokens(tokens + r0 + i, valid);
      const __mmask16 live = __mmask16(valid >= 16 ? 0xffffu : (1u << valid) - 1u);
      const __m512 wv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live & _mm512_cmplt_epi32_mask(token, limit),
                                                 token, in.probs, 4);
      const __m512i m = valid >= 16 ? _mm512_loadu_si512(in.metas + r0 + i) : _mm512_maskz_loadu_epi32(live, in.metas + r0 + i);
      __m512 scale, offset;
      AffineFromSixteenMetas(m, step, scale, offset);
      _mm512_store_ps(w + i, wv);
      _mm512_store_ps(offsets + i, offset);
      _mm512_store_ps(weights + i, _mm512_mul_ps(wv, scale));
      offsets_sum = _mm512_fmadd_ps(wv, offset, offsets_sum);
    }
    if (in.bits > 0 && !sums.AddBlock(r0, rows, weights)) return false;  // nothing written yet
    // An outlier's code is 0, reconstructed as the offset: the exact value adds w (value - offset).
    const std::uint16_t* index = in.outlier_index + std::size_t(r0) * k;
    const float* values = in.outlier_values + std::size_t(r0) * k;
    if (k == 2) {  // the usual case (1% of 128 values: one outlier per side)
      for (int r = 0; r < rows; ++r) {
        corrections[index[2 * r]] += w[r] * (values[2 * r] - offsets[r]);
        corrections[index[2 * r + 1]] += w[r] * (values[2 * r + 1] - offsets[r]);
      }
    } else {
      for (int r = 0; r < rows; ++r, index += k, values += k) {
        for (std::size_t j = 0; j < k; ++j) corrections[index[j]] += w[r] * (values[j] - offsets[r]);
      }
    }
  }
  const float constant = _mm512_reduce_add_ps(offsets_sum);
  if (!std::isfinite(constant)) return false;
  for (int i = 0; i < in.n; ++i) {
    if (!std::isfinite(corrections[i])) return false;
  }
  sums.AddTo(out);
  for (int i = 0; i < in.n; ++i) out[i] += constant + corrections[i];
  return true;
}

}  // namespace

QAQ_VNNI_ATTR bool AxpyRowsSplitInt8Vnni(const float* w, const std::uint8_t* codes, std::size_t row_bytes,
                                         const AffineMeta* metas, int n_rows, int bits, int n, float* out) {
  RowSums sums(codes, row_bytes, n_rows, bits, n);
  alignas(64) float weights[kWeightBlock];
  for (int r0 = 0; r0 < n_rows; r0 += kWeightBlock) {
    const int rows = std::min(kWeightBlock, n_rows - r0);
    for (int i = 0; i < kWeightBlock; ++i) weights[i] = i < rows ? w[r0 + i] * metas[r0 + i].scale : 0.0f;
    if (!sums.AddBlock(r0, rows, weights)) return false;  // nothing written yet
  }
  sums.AddTo(out);
  return true;
}

QAQ_VNNI_ATTR bool WeightedSumSplitInt8Vnni(const WeightedRows& rows, float* out) {
  return rows.tokens16 != nullptr ? WeightedSumVnni(rows, rows.tokens16, out) : WeightedSumVnni(rows, rows.tokens32, out);
}

}  // namespace qaq::internal
#pragma GCC diagnostic pop
#endif  // HWY_ARCH_X86
#endif  // QAQ_QUANT_SPLIT_INT8_ROWS_ONCE_

HWY_BEFORE_NAMESPACE();
namespace qaq::internal {
namespace HWY_NAMESPACE {

bool ShapeApplies(int n_rows, int n) { return n > 0 && n % 64 == 0 && n <= 256 && n_rows >= kSplitInt8MinRows; }

bool Applies(int n_rows, int bits, int n) { return bits >= 1 && bits <= 8 && ShapeApplies(n_rows, n); }

bool DotRowsSplitInt8Impl(const float* x, const std::uint8_t* codes, std::size_t row_bytes, int n_rows, int bits,
                          int n, float* out) {
#if HWY_TARGET == HWY_AVX3_DL
  return Applies(n_rows, bits, n) && DotRowsSplitInt8Vnni(x, codes, row_bytes, n_rows, bits, n, out);
#else
  (void)x, (void)codes, (void)row_bytes, (void)n_rows, (void)bits, (void)n, (void)out;
  return false;
#endif
}

bool AxpyRowsSplitInt8Impl(const float* w, const std::uint8_t* codes, std::size_t row_bytes, const AffineMeta* metas,
                           int n_rows, int bits, int n, float* out) {
#if HWY_TARGET == HWY_AVX3_DL
  return Applies(n_rows, bits, n) && AxpyRowsSplitInt8Vnni(w, codes, row_bytes, metas, n_rows, bits, n, out);
#else
  (void)w, (void)codes, (void)row_bytes, (void)metas, (void)n_rows, (void)bits, (void)n, (void)out;
  return false;
#endif
}

bool DotChannelRowsSplitInt8Impl(const float* q, const GroupMeta* metas, const std::uint8_t* codes,
                                 std::size_t row_bytes, int n_rows, int bits, int n, float* out) {
#if HWY_TARGET == HWY_AVX3_DL
  return Applies(n_rows, bits, n) && DotChannelRowsSplitInt8Vnni(q, metas, codes, row_bytes, n_rows, bits, n, out);
#else
  (void)q, (void)metas, (void)codes, (void)row_bytes, (void)n_rows, (void)bits, (void)n, (void)out;
  return false;
#endif
}

bool WeightedSumSplitInt8Impl(const WeightedRows& rows, float* out) {
#if HWY_TARGET == HWY_AVX3_DL
  // Width 0 too: no codes, the weights, offsets and outliers only.
  return rows.bits >= 0 && rows.bits <= 8 && ShapeApplies(rows.n_rows, rows.n) && WeightedSumSplitInt8Vnni(rows, out);
#else
  (void)rows, (void)out;
  return false;
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace qaq::internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qaq::internal {
HWY_EXPORT(DotRowsSplitInt8Impl);
HWY_EXPORT(AxpyRowsSplitInt8Impl);
HWY_EXPORT(WeightedSumSplitInt8Impl);
HWY_EXPORT(DotChannelRowsSplitInt8Impl);

bool DotChannelRowsSplitInt8(const float* q, const GroupMeta* metas, const std::uint8_t* codes, std::size_t row_bytes,
                             int n_rows, int bits, int n, float* out) {
  return HWY_DYNAMIC_DISPATCH(DotChannelRowsSplitInt8Impl)(q, metas, codes, row_bytes, n_rows, bits, n, out);
}

bool WeightedSumSplitInt8(const WeightedRows& rows, float* out) {
  return HWY_DYNAMIC_DISPATCH(WeightedSumSplitInt8Impl)(rows, out);
}

bool DotRowsSplitInt8(const float* x, const std::uint8_t* codes, std::size_t row_bytes, int n_rows, int bits, int n,
                      float* out) {
  return HWY_DYNAMIC_DISPATCH(DotRowsSplitInt8Impl)(x, codes, row_bytes, n_rows, bits, n, out);
}

bool AxpyRowsSplitInt8(const float* w, const std::uint8_t* codes, std::size_t row_bytes, const AffineMeta* metas,
                       int n_rows, int bits, int n, float* out) {
  return HWY_DYNAMIC_DISPATCH(AxpyRowsSplitInt8Impl)(w, codes, row_bytes, metas, n_rows, bits, n, out);
}
}  // namespace qaq::internal
#endif  // HWY_ONCE
