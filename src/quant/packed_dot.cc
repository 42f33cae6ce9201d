// Fast dot product and weighted accumulation on packed codes (qaq/quant.h), specialised per bit
// width and compiled by Highway for several x86/Arm SIMD targets; the best one the CPU supports
// is picked at run time. Tested against the scalar references in packed_dot_ref.cc on every
// target (packed_dot_test.cc).
//
// Runs of rows (DotPackedRows / AxpyPackedRows, and the channel-key kernels of channel_dot.h and
// rotated_dot.h) on 8-lane targets and up read codes through a LanePlan (lane_plan.h): 32-byte windows of a row,
// a per-lane variable shift and a mask per 8 codes, with the query permuted once per call (a
// weighted sum accumulates in plan order and is permuted back once). Four rows per iteration
// (eight, two per 512-bit vector, on AVX-512 targets).
//
// Otherwise (single rows, mixed widths, sizes without a plan): 8 codes of B bits are exactly B
// bytes. They are loaded as one 64-bit word and broadcast into every 128-bit block; a byte
// shuffle then moves the (at most two) bytes holding code j into 32-bit lane j, a per-lane shift
// by (j*B) % 8 and a mask leave the code, and a conversion makes it a float. About six
// instructions per 8 codes, for every B.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/packed_dot.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "core/check.h"
#include "qaq/quant.h"
#include "quant/bitpack.h"
#include "quant/channel_dot.h"
#include "quant/fp16.h"
#include "quant/lane_plan.h"
#include "quant/rotated_dot.h"
#include "quant/split_int8_rows.h"

// Tables shared by every target (plain data, defined once).
#ifndef QAQ_QUANT_PACKED_DOT_TABLES_
#define QAQ_QUANT_PACKED_DOT_TABLES_
namespace qaq::internal {

// For code j of a group of 8 (32-bit lane j): which bytes of the word to gather, and the shift.
struct UnpackTable {
  std::uint8_t bytes[32];   // lane j: {off, off + 1, off + 1, off + 1}, off = j*B / 8
  std::uint32_t shifts[8];  // lane j: (j*B) % 8
};

constexpr UnpackTable MakeUnpackTable(int bits) {
  UnpackTable t{};
  for (int j = 0; j < 8; ++j) {
    const int off = j * bits / 8;
    t.bytes[4 * j] = static_cast<std::uint8_t>(off);
    // The second byte may lie past the 8 codes (then it only holds bits the mask removes).
    for (int b = 1; b < 4; ++b) t.bytes[4 * j + b] = static_cast<std::uint8_t>(off + 1);
    t.shifts[j] = static_cast<std::uint32_t>((j * bits) % 8);
  }
  return t;
}

alignas(64) inline constexpr UnpackTable kUnpackTables[9] = {
    MakeUnpackTable(0), MakeUnpackTable(1), MakeUnpackTable(2), MakeUnpackTable(3), MakeUnpackTable(4),
    MakeUnpackTable(5), MakeUnpackTable(6), MakeUnpackTable(7), MakeUnpackTable(8)};

// Exactly B (< 8) bytes at p as a little-endian word, assembled in registers: a partial copy
// through memory would stall on store forwarding.
template <int B>
inline std::uint64_t LoadPartialWord(const std::uint8_t* p) {
  static_assert(B >= 1 && B < 8);
  std::uint64_t word = 0;
  constexpr int kOff2 = B & 4, kOff1 = (B & 4) + (B & 2);
  if constexpr ((B & 4) != 0) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    word = v;
  }
  if constexpr ((B & 2) != 0) {
    std::uint16_t v;
    std::memcpy(&v, p + kOff2, 2);
    word |= static_cast<std::uint64_t>(v) << (8 * kOff2);
  }
  if constexpr ((B & 1) != 0) word |= static_cast<std::uint64_t>(p[kOff1]) << (8 * kOff1);
  return word;
}

// The 64-bit word holding codes [i, i + 8) of a B-bit stream starting at `p` (= codes + i*B/8):
// an 8-byte load when the stream has 8 bytes left (the extra bytes hold later codes, which the
// decoder masks off), else only the B bytes that belong to it.
template <int B>
inline std::uint64_t LoadCodeWord(const std::uint8_t* p, const std::uint8_t* end) {
  if (end - p >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    return word;
  }
  return LoadPartialWord<B>(p);
}

// ceil(n * B / 8) without the checks of BytesFor (the hot loops get valid widths only).
constexpr std::size_t PackedBytes(int n, int bits) {
  return (static_cast<std::size_t>(n) * static_cast<std::size_t>(bits) + 7) / 8;
}

}  // namespace qaq::internal
#endif  // QAQ_QUANT_PACKED_DOT_TABLES_

HWY_BEFORE_NAMESPACE();
namespace qaq::internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_SCALAR

// No SIMD: one code at a time through the same 64-bit words.
template <int B>
float DotCodes(const float* q, const std::uint8_t* codes, int n) {
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) sum += q[i] * static_cast<float>(ReadCode(codes, B, static_cast<std::size_t>(i)));
  return sum;
}

template <int B>
void AxpyCodes(float a, float b, const std::uint8_t* codes, int n, float* out) {
  for (int i = 0; i < n; ++i) {
    out[i] += a + b * static_cast<float>(ReadCode(codes, B, static_cast<std::size_t>(i)));
  }
}

float DotF32Impl(const float* a, const float* b, int n) {
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float DotF16Impl(const float* a, const std::uint16_t* b, int n) {
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) sum += a[i] * Fp16ToFloat(b[i]);
  return sum;
}

void AxpyF16(float w, const std::uint16_t* b, int n, float* out) {
  for (int i = 0; i < n; ++i) out[i] += w * Fp16ToFloat(b[i]);
}

#else  // SIMD targets

using DF = hn::CappedTag<float, 8>;  // 8 lanes on 256-bit+ targets, 4 on 128-bit ones
using VF = hn::Vec<DF>;

// Codes j0 .. j0 + Lanes(df) - 1 of the 8 held in `word_bytes` (the broadcast word), as floats.
template <int B>
HWY_INLINE VF DecodeLanes(DF df, hn::Vec<hn::Repartition<std::uint8_t, DF>> word_bytes,
                          hn::Vec<hn::Repartition<std::uint8_t, DF>> gather,
                          hn::Vec<hn::RebindToUnsigned<DF>> shifts) {
  const hn::RebindToUnsigned<DF> du32;
  const hn::RebindToSigned<DF> di32;
  const auto picked = hn::BitCast(du32, hn::TableLookupBytes(word_bytes, gather));
  const auto codes = hn::And(hn::Shr(picked, shifts), hn::Set(du32, (1u << B) - 1u));
  return hn::ConvertTo(df, hn::BitCast(di32, codes));
}

// The 8 codes at p as floats: `lo` gets codes 0..N-1 and, on 128-bit targets (N = 4), `hi`
// codes 4..7. B = 8 is a plain byte widening.
template <int B>
struct CodeDecoder {
  DF df;
  hn::Repartition<std::uint8_t, DF> du8;
  hn::Repartition<std::uint64_t, DF> du64;
  hn::RebindToUnsigned<DF> du32;
  hn::Vec<hn::Repartition<std::uint8_t, DF>> gather_lo, gather_hi;
  hn::Vec<hn::RebindToUnsigned<DF>> shift_lo, shift_hi;

  CodeDecoder()
      : gather_lo(hn::LoadU(du8, kUnpackTables[B].bytes)),
        gather_hi(hn::LoadU(du8, kUnpackTables[B].bytes + 4 * hn::Lanes(df) % 32)),
        shift_lo(hn::LoadU(du32, kUnpackTables[B].shifts)),
        shift_hi(hn::LoadU(du32, kUnpackTables[B].shifts + hn::Lanes(df) % 8)) {}

  HWY_INLINE void Decode(const std::uint8_t* p, const std::uint8_t* end, VF& lo, VF& hi) const {
    if constexpr (B == 8) {
      const hn::Rebind<std::uint8_t, DF> d8;
      const hn::RebindToSigned<DF> di32;
      lo = hn::ConvertTo(df, hn::PromoteTo(di32, hn::LoadU(d8, p)));
      if (hn::Lanes(df) < 8) hi = hn::ConvertTo(df, hn::PromoteTo(di32, hn::LoadU(d8, p + 4)));
    } else {
      const auto word = hn::BitCast(du8, hn::Set(du64, LoadCodeWord<B>(p, end)));
      lo = DecodeLanes<B>(df, word, gather_lo, shift_lo);
      if (hn::Lanes(df) < 8) hi = DecodeLanes<B>(df, word, gather_hi, shift_hi);
    }
  }
};

// sum_i q[i] * c[i] over n codes.
template <int B>
float DotCodes(const float* q, const std::uint8_t* codes, int n) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  const std::uint8_t* end = codes + PackedBytes(n, B);
  const CodeDecoder<B> decoder;
  VF acc0 = hn::Zero(df), acc1 = hn::Zero(df), lo = hn::Zero(df), hi = hn::Zero(df);
  int i = 0;
  const std::uint8_t* p = codes;
  if (N >= 8) {
    // Two chunks per iteration into two accumulators to hide the multiply-add latency.
    VF lo2 = hn::Zero(df), unused = hn::Zero(df);
    for (; i + 16 <= n; i += 16, p += 2 * B) {
      decoder.Decode(p, end, lo, unused);
      decoder.Decode(p + B, end, lo2, unused);
      acc0 = hn::MulAdd(hn::LoadU(df, q + i), lo, acc0);
      acc1 = hn::MulAdd(hn::LoadU(df, q + i + 8), lo2, acc1);
    }
  }
  for (; i + 8 <= n; i += 8, p += B) {
    decoder.Decode(p, end, lo, hi);
    acc0 = hn::MulAdd(hn::LoadU(df, q + i), lo, acc0);
    if (N < 8) acc1 = hn::MulAdd(hn::LoadU(df, q + i + 4), hi, acc1);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
  for (; i < n; ++i) sum += q[i] * static_cast<float>(ReadCode(codes, B, static_cast<std::size_t>(i)));
  return sum;
}

// out[i] += a + b * c[i] over n codes.
template <int B>
void AxpyCodes(float a, float b, const std::uint8_t* codes, int n, float* out) {
  const DF df;
  const std::size_t N = hn::Lanes(df);
  const std::uint8_t* end = codes + PackedBytes(n, B);
  const CodeDecoder<B> decoder;
  const VF va = hn::Set(df, a), vb = hn::Set(df, b);
  VF lo = hn::Zero(df), hi = hn::Zero(df);
  int i = 0;
  const std::uint8_t* p = codes;
  for (; i + 8 <= n; i += 8, p += B) {
    decoder.Decode(p, end, lo, hi);
    hn::StoreU(hn::MulAdd(vb, lo, hn::Add(hn::LoadU(df, out + i), va)), df, out + i);
    if (N < 8) hn::StoreU(hn::MulAdd(vb, hi, hn::Add(hn::LoadU(df, out + i + 4), va)), df, out + i + 4);
  }
  for (; i < n; ++i) out[i] += a + b * static_cast<float>(ReadCode(codes, B, static_cast<std::size_t>(i)));
}

float DotF32Impl(const float* a, const float* b, int n) {
  const DF df;
  const int N = static_cast<int>(hn::Lanes(df));
  VF acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  int i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc0);
    acc1 = hn::MulAdd(hn::LoadU(df, a + i + N), hn::LoadU(df, b + i + N), acc1);
  }
  for (; i + N <= n; i += N) acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float DotF16Impl(const float* a, const std::uint16_t* b, int n) {
  const DF df;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto* bh = reinterpret_cast<const hwy::float16_t*>(b);
  VF acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  int i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::PromoteTo(df, hn::LoadU(dh, bh + i)), acc0);
    acc1 = hn::MulAdd(hn::LoadU(df, a + i + N), hn::PromoteTo(df, hn::LoadU(dh, bh + i + N)), acc1);
  }
  for (; i + N <= n; i += N) acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::PromoteTo(df, hn::LoadU(dh, bh + i)), acc0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
  for (; i < n; ++i) sum += a[i] * Fp16ToFloat(b[i]);
  return sum;
}

void AxpyF16(float w, const std::uint16_t* b, int n, float* out) {
  const DF df;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto* bh = reinterpret_cast<const hwy::float16_t*>(b);
  const VF vw = hn::Set(df, w);
  int i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::MulAdd(vw, hn::PromoteTo(df, hn::LoadU(dh, bh + i)), hn::LoadU(df, out + i)), df, out + i);
  }
  for (; i < n; ++i) out[i] += w * Fp16ToFloat(b[i]);
}


// ---------------------------------------------------------------------------------------------
// Rows through a LanePlan (lane_plan.h), four rows at a time: shift, mask, convert and one
// multiply-add per 8 codes and row, with the plan's per-lane shifts and the query in plan order.

constexpr bool kPlanTarget = hn::MaxLanes(DF()) == kPlanLanes;

// Rows are read through whole 32-byte windows that may reach past a row's end; a row whose
// windows would leave the caller's buffer is copied into a zero-padded one first.
constexpr int kPadBytes = kPlanMaxN + kPlanWindowBytes;

template <int B>
HWY_INLINE hn::Vec<DF> PlanCodes(hn::Vec<hn::RebindToUnsigned<DF>> word, hn::Vec<hn::RebindToUnsigned<DF>> shifts) {
  const DF df;
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  return hn::ConvertTo(df, hn::BitCast(di, hn::And(hn::Shr(word, shifts), hn::Set(du, (1u << B) - 1u))));
}

HWY_INLINE hn::Vec<hn::RebindToUnsigned<DF>> PlanWindow(const std::uint8_t* p) {
  const DF df;
  const hn::RebindToUnsigned<DF> du;
  const hn::Repartition<std::uint8_t, DF> du8;
  return hn::BitCast(du, hn::LoadU(du8, p));
}

// sums[j] = q . codes of rows[j] (q_plan: the query in plan order).
template <int B>
HWY_INLINE void DotFourRows(const LanePlan& plan, const float* HWY_RESTRICT q_plan, const std::uint8_t* const* rows,
                            float* sums) {
  const DF df;
  const hn::RebindToUnsigned<DF> du;
  VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  int s = 0;
  for (int w = 0; w < plan.n_windows; ++w) {
    const int off = plan.window_offset[w];
    const auto w0 = PlanWindow(rows[0] + off), w1 = PlanWindow(rows[1] + off);
    const auto w2 = PlanWindow(rows[2] + off), w3 = PlanWindow(rows[3] + off);
    for (const int end = s + plan.window_steps[w]; s < end; ++s) {
      const auto sh = hn::Load(du, plan.shifts[s]);
      const VF qv = hn::Load(df, q_plan + kPlanLanes * s);
      a0 = hn::MulAdd(qv, PlanCodes<B>(w0, sh), a0);
      a1 = hn::MulAdd(qv, PlanCodes<B>(w1, sh), a1);
      a2 = hn::MulAdd(qv, PlanCodes<B>(w2, sh), a2);
      a3 = hn::MulAdd(qv, PlanCodes<B>(w3, sh), a3);
    }
  }
  sums[0] = hn::GetLane(hn::SumOfLanes(df, a0));
  sums[1] = hn::GetLane(hn::SumOfLanes(df, a1));
  sums[2] = hn::GetLane(hn::SumOfLanes(df, a2));
  sums[3] = hn::GetLane(hn::SumOfLanes(df, a3));
}

// acc (plan order) += sum_j b[j] * codes of rows[j].
template <int B>
HWY_INLINE void AxpyFourRows(const LanePlan& plan, const float* b, const std::uint8_t* const* rows,
                             float* HWY_RESTRICT acc) {
  const DF df;
  const hn::RebindToUnsigned<DF> du;
  const VF b0 = hn::Set(df, b[0]), b1 = hn::Set(df, b[1]), b2 = hn::Set(df, b[2]), b3 = hn::Set(df, b[3]);
  int s = 0;
  for (int w = 0; w < plan.n_windows; ++w) {
    const int off = plan.window_offset[w];
    const auto w0 = PlanWindow(rows[0] + off), w1 = PlanWindow(rows[1] + off);
    const auto w2 = PlanWindow(rows[2] + off), w3 = PlanWindow(rows[3] + off);
    for (const int end = s + plan.window_steps[w]; s < end; ++s) {
      const auto sh = hn::Load(du, plan.shifts[s]);
      VF a = hn::Load(df, acc + kPlanLanes * s);
      a = hn::MulAdd(b0, PlanCodes<B>(w0, sh), a);
      a = hn::MulAdd(b1, PlanCodes<B>(w1, sh), a);
      a = hn::MulAdd(b2, PlanCodes<B>(w2, sh), a);
      a = hn::MulAdd(b3, PlanCodes<B>(w3, sh), a);
      hn::Store(a, df, acc + kPlanLanes * s);
    }
  }
}

// Calls body(r, rows) for groups of K rows (rows[j] = row r + j; past n_rows: a zero row whose
// result the body must drop), safe for the plan's whole-window reads.
template <int K, typename Body>
HWY_INLINE void ForRowGroups(const LanePlan& plan, const std::uint8_t* codes, std::size_t row_bytes, int n_rows,
                             std::size_t last_row_bytes, const Body& body) {
  const std::size_t total = static_cast<std::size_t>(n_rows - 1) * row_bytes + last_row_bytes;
  const auto read_end = static_cast<std::size_t>(plan.read_end);
  // Rows r < n_safe can be read in place: r * row_bytes + read_end <= total.
  int n_safe = 0;
  if (total >= read_end) n_safe = row_bytes == 0 ? n_rows : std::min<int>(n_rows, int((total - read_end) / row_bytes) + 1);
  const std::uint8_t* rows[K];
  int r = 0;
  for (; r + K <= n_safe; r += K) {
    for (int j = 0; j < K; ++j) rows[j] = codes + static_cast<std::size_t>(r + j) * row_bytes;
    body(r, rows);
  }
  if (r == n_rows) return;
  alignas(64) std::uint8_t pad[K][kPadBytes] = {};
  for (; r < n_rows; r += K) {
    for (int j = 0; j < K; ++j) {
      if (r + j < n_safe) {
        rows[j] = codes + static_cast<std::size_t>(r + j) * row_bytes;
      } else {
        if (r + j < n_rows) std::memcpy(pad[j], codes + static_cast<std::size_t>(r + j) * row_bytes, last_row_bytes);
        rows[j] = pad[j];
      }
    }
    body(r, rows);
  }
}

template <typename Body>
HWY_INLINE void ForFourRows(const LanePlan& plan, const std::uint8_t* codes, std::size_t row_bytes, int n_rows,
                            std::size_t last_row_bytes, const Body& body) {
  ForRowGroups<4>(plan, codes, row_bytes, n_rows, last_row_bytes, body);
}

// 512-bit targets: two rows per vector (row 2k in lanes 0..7, row 2k + 1 in lanes 8..15), eight
// rows per iteration, the same plan; shifts and the query duplicated into both halves. (A macro
// of HWY_TARGET, so that it is evaluated anew in every target's pass.)
#define QAQ_WIDE_PLAN (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3)
#if QAQ_WIDE_PLAN
using DW = hn::CappedTag<float, 2 * kPlanLanes>;
using VW = hn::Vec<DW>;
using VWU = hn::Vec<hn::RebindToUnsigned<DW>>;

// The windows at p0 (lanes 0..7) and p1 (lanes 8..15).
HWY_INLINE VWU WideWindow(const std::uint8_t* p0, const std::uint8_t* p1) {
  const hn::RebindToUnsigned<DW> du;
  const hn::Half<decltype(du)> dh;
  const hn::Repartition<std::uint8_t, decltype(dh)> d8;
  return hn::Combine(du, hn::BitCast(dh, hn::LoadU(d8, p1)), hn::BitCast(dh, hn::LoadU(d8, p0)));
}

template <int B>
HWY_INLINE VW WideCodes(VWU word, VWU shifts) {
  const DW dw;
  const hn::RebindToUnsigned<DW> du;
  const hn::RebindToSigned<DW> di;
  return hn::ConvertTo(dw, hn::BitCast(di, hn::And(hn::Shr(word, shifts), hn::Set(du, (1u << B) - 1u))));
}

// [step][16]: the plan's shifts, or a plan-order vector, in both halves.
HWY_INLINE void Duplicate(const float* plan_order, int n_steps, float* wide) {
  for (int s = 0; s < n_steps; ++s) {
    std::memcpy(wide + 2 * kPlanLanes * s, plan_order + kPlanLanes * s, sizeof(float) * kPlanLanes);
    std::memcpy(wide + 2 * kPlanLanes * s + kPlanLanes, plan_order + kPlanLanes * s, sizeof(float) * kPlanLanes);
  }
}

struct WideShifts {
  alignas(64) std::uint32_t v[kPlanMaxSteps][2 * kPlanLanes];
  explicit WideShifts(const LanePlan& plan) {
    for (int s = 0; s < plan.n_steps; ++s) {
      for (int l = 0; l < 2 * kPlanLanes; ++l) v[s][l] = plan.shifts[s][l % kPlanLanes];
    }
  }
};

// The shared duplicated shifts of a plan, built once per (bits, n).
HWY_INLINE const WideShifts& GetWideShifts(const LanePlan& plan) {
  static std::once_flag flags[9][kPlanMaxN / 8 + 1];
  static std::unique_ptr<WideShifts> shifts[9][kPlanMaxN / 8 + 1];
  std::unique_ptr<WideShifts>& slot = shifts[plan.bits][plan.n / 8];
  std::call_once(flags[plan.bits][plan.n / 8], [&] { slot = std::make_unique<WideShifts>(plan); });
  return *slot;
}

// Walks the plan over eight rows, two per vector: for each window, the rows' windows are loaded
// once, then step(s, v0, v1, v2, v3) runs for each of the window's steps s (v_k: rows 2k, 2k + 1).
template <typename Step>
HWY_INLINE void ForEachWideStep(const LanePlan& plan, const std::uint8_t* const* rows, const Step& step) {
  int s = 0;
  for (int w = 0; w < plan.n_windows; ++w) {
    const int off = plan.window_offset[w];
    const VWU v0 = WideWindow(rows[0] + off, rows[1] + off), v1 = WideWindow(rows[2] + off, rows[3] + off);
    const VWU v2 = WideWindow(rows[4] + off, rows[5] + off), v3 = WideWindow(rows[6] + off, rows[7] + off);
    for (const int end = s + plan.window_steps[w]; s < end; ++s) step(s, v0, v1, v2, v3);
  }
}

// sums[2k] and sums[2k + 1] = the lanes 0..7 and 8..15 of a_k summed (rows 2k and 2k + 1), in
// one transposing tree instead of eight separate lane sums: within each 128-bit block,
// interleave and add pairs of vectors, then pairs of pairs (64-bit lanes), so that block j holds
// block j's sum of each a_k; blocks 0 + 1 then give the even rows, blocks 2 + 3 the odd ones.
HWY_INLINE void SumRowPairs(VW a0, VW a1, VW a2, VW a3, float* sums) {
  const DW dw;
  const hn::Repartition<double, DW> dd;
  const hn::Half<DW> dh;
  const hn::Half<decltype(dh)> dq;
  const VW u01 = hn::Add(hn::InterleaveLower(dw, a0, a1), hn::InterleaveUpper(dw, a0, a1));
  const VW u23 = hn::Add(hn::InterleaveLower(dw, a2, a3), hn::InterleaveUpper(dw, a2, a3));
  const auto d01 = hn::BitCast(dd, u01), d23 = hn::BitCast(dd, u23);
  const VW v = hn::Add(hn::BitCast(dw, hn::InterleaveLower(dd, d01, d23)), hn::BitCast(dw, hn::InterleaveUpper(dd, d01, d23)));
  const auto lo = hn::LowerHalf(dh, v), hi = hn::UpperHalf(dh, v);
  const auto even = hn::Add(hn::LowerHalf(dq, lo), hn::UpperHalf(dq, lo));  // rows 0, 2, 4, 6
  const auto odd = hn::Add(hn::LowerHalf(dq, hi), hn::UpperHalf(dq, hi));   // rows 1, 3, 5, 7
  hn::StoreU(hn::InterleaveLower(dq, even, odd), dq, sums);
  hn::StoreU(hn::InterleaveUpper(dq, even, odd), dq, sums + 4);
}

template <int B>
HWY_INLINE void DotEightRows(const LanePlan& plan, const WideShifts& shifts, const float* HWY_RESTRICT q_wide,
                             const std::uint8_t* const* rows, float* sums) {
  const DW dw;
  const hn::RebindToUnsigned<DW> du;
  VW a0 = hn::Zero(dw), a1 = hn::Zero(dw), a2 = hn::Zero(dw), a3 = hn::Zero(dw);
  ForEachWideStep(plan, rows, [&](int s, VWU v0, VWU v1, VWU v2, VWU v3) {
    const VWU sh = hn::Load(du, shifts.v[s]);
    const VW qv = hn::Load(dw, q_wide + 2 * kPlanLanes * s);
    a0 = hn::MulAdd(qv, WideCodes<B>(v0, sh), a0);
    a1 = hn::MulAdd(qv, WideCodes<B>(v1, sh), a1);
    a2 = hn::MulAdd(qv, WideCodes<B>(v2, sh), a2);
    a3 = hn::MulAdd(qv, WideCodes<B>(v3, sh), a3);
  });
  SumRowPairs(a0, a1, a2, a3, sums);
}

// acc ([step][16]: even rows in lanes 0..7, odd rows in 8..15) += sum_j b[j] * codes of rows[j].
template <int B>
HWY_INLINE void AxpyEightRows(const LanePlan& plan, const WideShifts& shifts, const float* b,
                              const std::uint8_t* const* rows, float* HWY_RESTRICT acc) {
  const DW dw;
  const hn::RebindToUnsigned<DW> du;
  const hn::Half<DW> dh;
  const VW b01 = hn::Combine(dw, hn::Set(dh, b[1]), hn::Set(dh, b[0]));
  const VW b23 = hn::Combine(dw, hn::Set(dh, b[3]), hn::Set(dh, b[2]));
  const VW b45 = hn::Combine(dw, hn::Set(dh, b[5]), hn::Set(dh, b[4]));
  const VW b67 = hn::Combine(dw, hn::Set(dh, b[7]), hn::Set(dh, b[6]));
  ForEachWideStep(plan, rows, [&](int s, VWU v0, VWU v1, VWU v2, VWU v3) {
    const VWU sh = hn::Load(du, shifts.v[s]);
    VW a = hn::Load(dw, acc + 2 * kPlanLanes * s);
    a = hn::MulAdd(b01, WideCodes<B>(v0, sh), a);
    a = hn::MulAdd(b23, WideCodes<B>(v1, sh), a);
    a = hn::MulAdd(b45, WideCodes<B>(v2, sh), a);
    a = hn::MulAdd(b67, WideCodes<B>(v3, sh), a);
    hn::Store(a, dw, acc + 2 * kPlanLanes * s);
  });
}
#endif  // 512-bit targets

// ---------------------------------------------------------------------------------------------
// Short rows stacked in one vector: when a row of codes is at most half a vector and its bytes
// are whole 32-bit words holding whole codes (B = 1, 2, 4, 8), consecutive rows fill one vector
// load, lane l holding word l % L of row l / L (L words per row). Every lane then reads code
// (l % L) * 32/B + s with the same shift s B in step s, so each step converts a full vector of
// codes; a row whose plan would leave lanes idle or that has no plan (1 bit with 64 codes; on
// 512-bit vectors also 1 bit with 128 and 2 bits with 64) costs no more per code than a long row.

using DS = hn::ScalableTag<float>;

struct StackedShape {
  int words_per_row = 0;  // L
  int rows = 0;           // rows per vector
};

// The stacking of rows of n B-bit codes `row_bytes` apart; rows == 0 when it does not apply.
template <int B>
StackedShape StackedShapeFor(std::size_t row_bytes, int n) {
  StackedShape shape;
  if constexpr (32 % B != 0) {
    return shape;
  } else {
    const std::size_t vector_bytes = hn::Lanes(DS()) * sizeof(float);
    const std::size_t packed = PackedBytes(n, B);
    // Four or more rows per vector (so at most 4 words per row, within a 128-bit block): with
    // fewer, the lane plan fills its lanes as well.
    if (row_bytes != packed || packed % 4 != 0 || vector_bytes % packed != 0 || vector_bytes / packed < 4 ||
        packed > 16) {
      return shape;
    }
    shape.words_per_row = int(packed / 4);
    shape.rows = int(vector_bytes / packed);
    return shape;
  }
}

// q_stack[s * N + l] = q[(l % L) * 32/B + s]: the query in the order of a stacked step.
template <int B>
void StackQuery(const float* q, int words_per_row, float* q_stack) {
  const int n_lanes = int(hn::Lanes(DS()));
  for (int s = 0; s < 32 / B; ++s) {
    for (int l = 0; l < n_lanes; ++l) q_stack[s * n_lanes + l] = q[(l % words_per_row) * (32 / B) + s];
  }
}

template <int B>
HWY_INLINE hn::Vec<DS> StackedCodes(hn::Vec<hn::RebindToUnsigned<DS>> words, int s) {
  const DS df;
  const hn::RebindToUnsigned<DS> du;
  const hn::RebindToSigned<DS> di;
  const auto codes = hn::And(hn::ShiftRightSame(words, s * B), hn::Set(du, (1u << B) - 1u));
  return hn::ConvertTo(df, hn::BitCast(di, codes));
}

template <int B>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<DS>> StackedWords(const std::uint8_t* p) {
  const hn::RebindToUnsigned<DS> du;
  const hn::Repartition<std::uint8_t, DS> du8;
  return hn::BitCast(du, hn::LoadU(du8, p));
}

// Lane L k of the result holds the sum of lanes L k .. L k + L - 1 of v (L = 1, 2 or 4).
HWY_INLINE hn::Vec<DS> SumWordsOfRow(hn::Vec<DS> v, int words_per_row) {
  if (words_per_row >= 2) v = hn::Add(v, hn::Shuffle2301(v));
  if (words_per_row >= 4) v = hn::Add(v, hn::Shuffle1032(v));
  return v;
}

// DotRowsT for stacked rows; false when the stacking does not apply. Rows past the last whole
// vector go through DotCodes.
template <int B>
bool DotRowsStacked(const float* q, float q_sum, const std::uint8_t* codes, std::size_t row_bytes,
                    const AffineMeta* metas, int n_rows, int n, float* out) {
  const StackedShape shape = StackedShapeFor<B>(row_bytes, n);
  if (shape.rows == 0 || n_rows < 2 * shape.rows) return false;
  const DS df;
  const int n_lanes = int(hn::Lanes(df));
  constexpr int kSteps = 32 / B;
  alignas(64) float q_stack[kSteps * hn::MaxLanes(DS())];
  StackQuery<B>(q, shape.words_per_row, q_stack);
  alignas(64) float lanes[2 * hn::MaxLanes(DS())];
  const int per_pair = 2 * shape.rows;
  int r = 0;
  for (; r + per_pair <= n_rows; r += per_pair) {
    const auto w0 = StackedWords<B>(codes + std::size_t(r) * row_bytes);
    const auto w1 = StackedWords<B>(codes + std::size_t(r + shape.rows) * row_bytes);
    auto a0 = hn::Zero(df), a1 = hn::Zero(df);
    for (int s = 0; s < kSteps; ++s) {
      const auto qv = hn::Load(df, q_stack + s * n_lanes);
      a0 = hn::MulAdd(qv, StackedCodes<B>(w0, s), a0);
      a1 = hn::MulAdd(qv, StackedCodes<B>(w1, s), a1);
    }
    hn::Store(SumWordsOfRow(a0, shape.words_per_row), df, lanes);
    hn::Store(SumWordsOfRow(a1, shape.words_per_row), df, lanes + n_lanes);
    for (int j = 0; j < per_pair; ++j) {
      out[r + j] = metas[r + j].offset * q_sum + metas[r + j].scale * lanes[j * shape.words_per_row];
    }
  }
  for (; r < n_rows; ++r) {
    out[r] = metas[r].offset * q_sum + metas[r].scale * DotCodes<B>(q, codes + std::size_t(r) * row_bytes, n);
  }
  return true;
}

// The code part of AxpyRowsT for stacked rows; false when the stacking does not apply.
template <int B>
bool AxpyRowsStacked(const float* w, const std::uint8_t* codes, std::size_t row_bytes, const AffineMeta* metas,
                     int n_rows, int n, float* out) {
  const StackedShape shape = StackedShapeFor<B>(row_bytes, n);
  if (shape.rows == 0 || n_rows < 2 * shape.rows) return false;
  const DS df;
  const int n_lanes = int(hn::Lanes(df));
  constexpr int kSteps = 32 / B;
  alignas(64) float acc[kSteps * hn::MaxLanes(DS())] = {};
  alignas(64) float b[2 * hn::MaxLanes(DS())];
  const int per_pair = 2 * shape.rows;
  int r = 0;
  for (; r + per_pair <= n_rows; r += per_pair) {
    for (int j = 0; j < per_pair; ++j) {
      const float bj = w[r + j] * metas[r + j].scale;
      for (int l = 0; l < shape.words_per_row; ++l) b[j * shape.words_per_row + l] = bj;
    }
    const auto b0 = hn::Load(df, b), b1 = hn::Load(df, b + n_lanes);
    const auto w0 = StackedWords<B>(codes + std::size_t(r) * row_bytes);
    const auto w1 = StackedWords<B>(codes + std::size_t(r + shape.rows) * row_bytes);
    for (int s = 0; s < kSteps; ++s) {
      auto a = hn::Load(df, acc + s * n_lanes);
      a = hn::MulAdd(b0, StackedCodes<B>(w0, s), a);
      a = hn::MulAdd(b1, StackedCodes<B>(w1, s), a);
      hn::Store(a, df, acc + s * n_lanes);
    }
  }
  for (int s = 0; s < kSteps; ++s) {
    for (int l = 0; l < n_lanes; ++l) out[(l % shape.words_per_row) * kSteps + s] += acc[s * n_lanes + l];
  }
  for (; r < n_rows; ++r) AxpyCodes<B>(0.0f, w[r] * metas[r].scale, codes + std::size_t(r) * row_bytes, n, out);
  return true;
}

// DotRowsT through the plan; false when (B, n) has none.
template <int B>
bool DotRowsPlanned(const float* q, float q_sum, const std::uint8_t* codes, std::size_t row_bytes,
                    const AffineMeta* metas, int n_rows, int n, float* out) {
  const LanePlan* plan = GetLanePlan(B, n);
  if (plan == nullptr || n_rows < 4) return false;
  alignas(64) float q_plan[kPlanMaxSteps * kPlanLanes];
  PermuteForPlan(*plan, q, q_plan);
#if QAQ_WIDE_PLAN
  if (n_rows >= 8) {
    alignas(64) float q_wide[kPlanMaxSteps * 2 * kPlanLanes];
    Duplicate(q_plan, plan->n_steps, q_wide);
    const WideShifts& shifts = GetWideShifts(*plan);
    ForRowGroups<8>(*plan, codes, row_bytes, n_rows, PackedBytes(n, B), [&](int r, const std::uint8_t* const* rows) {
      float sums[8];
      DotEightRows<B>(*plan, shifts, q_wide, rows, sums);
      for (int j = 0; j < 8 && r + j < n_rows; ++j) out[r + j] = metas[r + j].offset * q_sum + metas[r + j].scale * sums[j];
    });
    return true;
  }
#endif
  ForFourRows(*plan, codes, row_bytes, n_rows, PackedBytes(n, B), [&](int r, const std::uint8_t* const* rows) {
    float sums[4];
    DotFourRows<B>(*plan, q_plan, rows, sums);
    for (int j = 0; j < 4 && r + j < n_rows; ++j) out[r + j] = metas[r + j].offset * q_sum + metas[r + j].scale * sums[j];
  });
  return true;
}

// The code part of AxpyRowsT through the plan; false when (B, n) has none.
template <int B>
bool AxpyRowsPlanned(const float* w, const std::uint8_t* codes, std::size_t row_bytes, const AffineMeta* metas,
                     int n_rows, int n, float* out) {
  const LanePlan* plan = GetLanePlan(B, n);
  if (plan == nullptr || n_rows < 4) return false;
  alignas(64) float acc[kPlanMaxSteps * kPlanLanes];
  std::memset(acc, 0, sizeof(float) * static_cast<std::size_t>(plan->n_steps * kPlanLanes));
#if QAQ_WIDE_PLAN
  if (n_rows >= 8) {
    alignas(64) float wide[kPlanMaxSteps * 2 * kPlanLanes];
    std::memset(wide, 0, sizeof(float) * static_cast<std::size_t>(plan->n_steps * 2 * kPlanLanes));
    const WideShifts& shifts = GetWideShifts(*plan);
    ForRowGroups<8>(*plan, codes, row_bytes, n_rows, PackedBytes(n, B), [&](int r, const std::uint8_t* const* rows) {
      float b[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
      for (int j = 0; j < 8 && r + j < n_rows; ++j) b[j] = w[r + j] * metas[r + j].scale;
      AxpyEightRows<B>(*plan, shifts, b, rows, wide);
    });
    for (int s = 0; s < plan->n_steps; ++s) {
      for (int l = 0; l < kPlanLanes; ++l) {
        acc[kPlanLanes * s + l] = wide[2 * kPlanLanes * s + l] + wide[2 * kPlanLanes * s + kPlanLanes + l];
      }
    }
    AddFromPlanOrder(*plan, acc, out);
    return true;
  }
#endif
  ForFourRows(*plan, codes, row_bytes, n_rows, PackedBytes(n, B), [&](int r, const std::uint8_t* const* rows) {
    float b[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int j = 0; j < 4 && r + j < n_rows; ++j) b[j] = w[r + j] * metas[r + j].scale;
    AxpyFourRows<B>(*plan, b, rows, acc);
  });
  AddFromPlanOrder(*plan, acc, out);
  return true;
}

// The query of row group u in plan order (rotated_dot.h): a_u = G_u a + H_u b, b_u = G_u b - H_u a.
HWY_INLINE void GroupQuery(const RotatedRowsQuery& rq, int n_steps, int u, float* a_u, float* b_u) {
  const DF df;
  const auto stride = static_cast<std::size_t>(n_steps * kPlanLanes);
  const float* g = rq.group_cos + static_cast<std::size_t>(u) * stride;
  const float* h = rq.group_sin + static_cast<std::size_t>(u) * stride;
  for (std::size_t k = 0; k < stride; k += kPlanLanes) {
    const VF a = hn::LoadU(df, rq.a_plan + k), b = hn::LoadU(df, rq.b_plan + k);
    const VF gk = hn::LoadU(df, g + k), hk = hn::LoadU(df, h + k);
    hn::StoreU(hn::MulAdd(gk, a, hn::Mul(hk, b)), df, a_u + k);
    hn::StoreU(hn::NegMulAdd(hk, a, hn::Mul(gk, b)), df, b_u + k);
  }
}

// DotRotatedRows (rotated_dot.h) through the plan.
template <int B>
bool DotRotatedRowsPlanned(const RotatedRowsQuery& rq, const std::uint8_t* codes, std::size_t row_bytes,
                           int n_rows, int n, float* out) {
  const LanePlan* plan = GetLanePlan(B, n);
  if (plan == nullptr) return false;
  const std::size_t pair_stride = 2 * static_cast<std::size_t>(plan->n_steps * kPlanLanes);
  alignas(64) float a_u[kPlanMaxSteps * kPlanLanes];
  alignas(64) float b_u[kPlanMaxSteps * kPlanLanes];
#if QAQ_WIDE_PLAN
  {
    const DW dw;
    const hn::RebindToUnsigned<DW> du;
    alignas(64) float a_wide[kPlanMaxSteps * 2 * kPlanLanes];
    alignas(64) float b_wide[kPlanMaxSteps * 2 * kPlanLanes];
    alignas(64) float scale_wide[kPlanMaxSteps * 2 * kPlanLanes];
    alignas(64) float offset_wide[kPlanMaxSteps * 2 * kPlanLanes];
    Duplicate(rq.scale, plan->n_steps, scale_wide);
    Duplicate(rq.offset, plan->n_steps, offset_wide);
    const WideShifts& shifts = GetWideShifts(*plan);
    static_assert(kRotatedGroup % 8 == 0);
    ForRowGroups<8>(*plan, codes, row_bytes, n_rows, PackedBytes(n, B), [&](int r, const std::uint8_t* const* rows) {
      // Row groups start on multiples of 8, in order: the group query is made at its first rows.
      if (r % kRotatedGroup == 0) {
        GroupQuery(rq, plan->n_steps, r / kRotatedGroup, a_u, b_u);
        Duplicate(a_u, plan->n_steps, a_wide);
        Duplicate(b_u, plan->n_steps, b_wide);
      }
      const float* cp[4];
      const float* sp[4];
      for (int k = 0; k < 4; ++k) {
        const auto pair = static_cast<std::size_t>((r % kRotatedGroup) / 2 + k);
        cp[k] = rq.cos_plan + pair * pair_stride, sp[k] = rq.sin_plan + pair * pair_stride;
      }
      VW a0 = hn::Zero(dw), a1 = hn::Zero(dw), a2 = hn::Zero(dw), a3 = hn::Zero(dw);
      ForEachWideStep(*plan, rows, [&](int s, VWU v0, VWU v1, VWU v2, VWU v3) {
        const VWU sh = hn::Load(du, shifts.v[s]);
        const std::size_t k = static_cast<std::size_t>(2 * kPlanLanes * s);
        const VW a = hn::Load(dw, a_wide + k), b = hn::Load(dw, b_wide + k);
        const VW sc = hn::Load(dw, scale_wide + k), of = hn::Load(dw, offset_wide + k);
        a0 = hn::MulAdd(hn::MulAdd(hn::LoadU(dw, cp[0] + k), a, hn::Mul(hn::LoadU(dw, sp[0] + k), b)), hn::MulAdd(sc, WideCodes<B>(v0, sh), of), a0);
        a1 = hn::MulAdd(hn::MulAdd(hn::LoadU(dw, cp[1] + k), a, hn::Mul(hn::LoadU(dw, sp[1] + k), b)), hn::MulAdd(sc, WideCodes<B>(v1, sh), of), a1);
        a2 = hn::MulAdd(hn::MulAdd(hn::LoadU(dw, cp[2] + k), a, hn::Mul(hn::LoadU(dw, sp[2] + k), b)), hn::MulAdd(sc, WideCodes<B>(v2, sh), of), a2);
        a3 = hn::MulAdd(hn::MulAdd(hn::LoadU(dw, cp[3] + k), a, hn::Mul(hn::LoadU(dw, sp[3] + k), b)), hn::MulAdd(sc, WideCodes<B>(v3, sh), of), a3);
      });
      float sums[8];
      SumRowPairs(a0, a1, a2, a3, sums);
      for (int j = 0; j < 8 && r + j < n_rows; ++j) out[r + j] = sums[j];
    });
    return true;
  }
#else
  const DF df;
  const hn::RebindToUnsigned<DF> du;
  ForFourRows(*plan, codes, row_bytes, n_rows, PackedBytes(n, B), [&](int r, const std::uint8_t* const* rows) {
    // Row r = 16u + v: group u's query (made at the group's first rows: groups of 4 rows come in
    // order), then v's tables (its pair's, at lane offset 8 for odd v).
    if (r % kRotatedGroup == 0) GroupQuery(rq, plan->n_steps, r / kRotatedGroup, a_u, b_u);
    const float* cp[4];
    const float* sp[4];
    for (int j = 0; j < 4; ++j) {
      const int v = (r + j) % kRotatedGroup;
      const std::size_t at = static_cast<std::size_t>(v / 2) * pair_stride + static_cast<std::size_t>(v % 2) * kPlanLanes;
      cp[j] = rq.cos_plan + at, sp[j] = rq.sin_plan + at;
    }
    VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
    int s = 0;
    for (int w = 0; w < plan->n_windows; ++w) {
      const int off = plan->window_offset[w];
      const auto v0 = PlanWindow(rows[0] + off), v1 = PlanWindow(rows[1] + off);
      const auto v2 = PlanWindow(rows[2] + off), v3 = PlanWindow(rows[3] + off);
      for (const int end = s + plan->window_steps[w]; s < end; ++s) {
        const auto sh = hn::Load(du, plan->shifts[s]);
        const std::size_t k = static_cast<std::size_t>(kPlanLanes * s), kt = 2 * k;
        const VF a = hn::Load(df, a_u + k), b = hn::Load(df, b_u + k);
        const VF sc = hn::LoadU(df, rq.scale + k), of = hn::LoadU(df, rq.offset + k);
        a0 = hn::MulAdd(hn::MulAdd(hn::LoadU(df, cp[0] + kt), a, hn::Mul(hn::LoadU(df, sp[0] + kt), b)), hn::MulAdd(sc, PlanCodes<B>(v0, sh), of), a0);
        a1 = hn::MulAdd(hn::MulAdd(hn::LoadU(df, cp[1] + kt), a, hn::Mul(hn::LoadU(df, sp[1] + kt), b)), hn::MulAdd(sc, PlanCodes<B>(v1, sh), of), a1);
        a2 = hn::MulAdd(hn::MulAdd(hn::LoadU(df, cp[2] + kt), a, hn::Mul(hn::LoadU(df, sp[2] + kt), b)), hn::MulAdd(sc, PlanCodes<B>(v2, sh), of), a2);
        a3 = hn::MulAdd(hn::MulAdd(hn::LoadU(df, cp[3] + kt), a, hn::Mul(hn::LoadU(df, sp[3] + kt), b)), hn::MulAdd(sc, PlanCodes<B>(v3, sh), of), a3);
      }
    }
    const VF acc[4] = {a0, a1, a2, a3};
    for (int j = 0; j < 4 && r + j < n_rows; ++j) out[r + j] = hn::GetLane(hn::SumOfLanes(df, acc[j]));
  });
  return true;
#endif
}

#endif  // HWY_TARGET == HWY_SCALAR

// Per-width instantiation, chosen once per call (or once per run of rows).
template <int B>
void DotRowsT(const float* q, float q_sum, const std::uint8_t* codes, std::size_t row_bytes,
              const AffineMeta* metas, int n_rows, int n, float* out) {
  if constexpr (B > 0) {
    if (DotRowsSplitInt8(q, codes, row_bytes, n_rows, B, n, out)) {
      for (int r = 0; r < n_rows; ++r) out[r] = metas[r].offset * q_sum + metas[r].scale * out[r];
      return;
    }
  }
#if HWY_TARGET != HWY_SCALAR
  if constexpr (B > 0) {
    if (DotRowsStacked<B>(q, q_sum, codes, row_bytes, metas, n_rows, n, out)) return;
  }
  if constexpr (B > 0 && kPlanTarget) {
    if (DotRowsPlanned<B>(q, q_sum, codes, row_bytes, metas, n_rows, n, out)) return;
  }
#endif
  for (int r = 0; r < n_rows; ++r) {
    float qc = 0.0f;
    if constexpr (B > 0) qc = DotCodes<B>(q, codes + static_cast<std::size_t>(r) * row_bytes, n);
    out[r] = metas[r].offset * q_sum + metas[r].scale * qc;
  }
}

template <int B>
void AxpyRowsT(const float* w, const std::uint8_t* codes, std::size_t row_bytes,
               const AffineMeta* metas, int n_rows, int n, float* out) {
  // out += sum_r w_r (offset_r + scale_r c_r): the offsets add one constant to every element.
  bool planned = false;
  if constexpr (B > 0) planned = AxpyRowsSplitInt8(w, codes, row_bytes, metas, n_rows, B, n, out);
#if HWY_TARGET != HWY_SCALAR
  if constexpr (B > 0) {
    if (!planned) planned = AxpyRowsStacked<B>(w, codes, row_bytes, metas, n_rows, n, out);
  }
  if constexpr (B > 0 && kPlanTarget) {
    if (!planned) planned = AxpyRowsPlanned<B>(w, codes, row_bytes, metas, n_rows, n, out);
  }
#endif
  if constexpr (B > 0) {
    if (!planned) {
      for (int r = 0; r < n_rows; ++r) {
        AxpyCodes<B>(0.0f, w[r] * metas[r].scale, codes + static_cast<std::size_t>(r) * row_bytes, n, out);
      }
    }
  }
  // Four partial sums: one running sum would wait on the previous add at every row.
  float partial[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  int r = 0;
  for (; r + 4 <= n_rows; r += 4) {
    for (int j = 0; j < 4; ++j) partial[j] += w[r + j] * metas[r + j].offset;
  }
  for (; r < n_rows; ++r) partial[0] += w[r] * metas[r].offset;
  const float constant = (partial[0] + partial[1]) + (partial[2] + partial[3]);
  for (int i = 0; i < n; ++i) out[i] += constant;
}

// ---------------------------------------------------------------------------------------------
// Rows of per-channel codes (channel_dot.h).

#if HWY_TARGET != HWY_SCALAR
// Lanes(DF) metas from their fp16 pairs to the affine form, as AffineFromMeta: scale =
// (max - min) 2^-B (step = 2^-B), offset = min + scale / 2 (both exact).
HWY_INLINE void LoadAffine(const GroupMeta* metas, VF step, VF& offset, VF& scale) {
  const DF df;
  const hn::Rebind<std::uint16_t, DF> du16;
  const hn::Rebind<hwy::float16_t, DF> df16;
  static_assert(sizeof(GroupMeta) == 2 * sizeof(std::uint16_t));
  hn::Vec<decltype(du16)> lo16, hi16;
  hn::LoadInterleaved2(du16, reinterpret_cast<const std::uint16_t*>(metas), lo16, hi16);
  const VF lo = hn::PromoteTo(df, hn::BitCast(df16, lo16)), hi = hn::PromoteTo(df, hn::BitCast(df16, hi16));
  scale = hn::Mul(hn::Sub(hi, lo), step);
  offset = hn::MulAdd(hn::Set(df, 0.5f), scale, lo);
}
#endif

void AffineFromMetasImpl(const GroupMeta* metas, std::size_t n, int bits, AffineMeta* out) {
  std::size_t i = 0;
#if HWY_TARGET != HWY_SCALAR
  // In the interleaved layout: v = [min_i, max_i, ...], t = (v - swapped pairs) 2^-B =
  // [-scale_i, scale_i, ...]; even lanes become min - t / 2 = min + scale / 2 (exact steps).
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> df16;
  static_assert(sizeof(AffineMeta) == 2 * sizeof(float));
  const std::size_t pairs = hn::Lanes(df) / 2;
  const auto step = hn::Set(df, std::ldexp(1.0f, -bits)), half = hn::Set(df, 0.5f);
  for (; i + pairs <= n; i += pairs) {
    const auto v = hn::PromoteTo(df, hn::LoadU(df16, reinterpret_cast<const hwy::float16_t*>(metas + i)));
    const auto t = hn::Mul(hn::Sub(v, hn::Shuffle2301(v)), step);
    hn::StoreU(hn::OddEven(t, hn::NegMulAdd(half, t, v)), df, reinterpret_cast<float*>(out + i));
  }
#endif
  for (; i < n; ++i) out[i] = AffineFromMeta(metas[i], bits);
}

// scaled[i] = q[i] scale_i for the channel metas (AffineFromMeta at B bits); returns q . offset.
template <int B>
float ChannelQuery(const float* q, const GroupMeta* metas, int n, float* scaled) {
  float constant = 0.0f;
  int i = 0;
#if HWY_TARGET != HWY_SCALAR
  const DF df;
  const int lanes = int(hn::Lanes(df));
  const VF step = hn::Set(df, std::ldexp(1.0f, -B));
  VF acc = hn::Zero(df);
  for (; i + lanes <= n; i += lanes) {
    VF offset, scale;
    LoadAffine(metas + i, step, offset, scale);
    const VF qv = hn::LoadU(df, q + i);
    hn::StoreU(hn::Mul(qv, scale), df, scaled + i);
    acc = hn::MulAdd(qv, offset, acc);
  }
  constant = hn::GetLane(hn::SumOfLanes(df, acc));
#endif
  for (; i < n; ++i) {
    const AffineMeta m = AffineFromMeta(metas[i], B);
    scaled[i] = q[i] * m.scale;
    constant += q[i] * m.offset;
  }
  return constant;
}

template <int B>
void DotChannelRowsT(const float* q, const GroupMeta* metas, const std::uint8_t* codes, std::size_t row_bytes,
                     int n_rows, int n, float* out) {
  if constexpr (B > 0) {
    if (DotChannelRowsSplitInt8(q, metas, codes, row_bytes, n_rows, B, n, out)) return;
  }
  alignas(64) float local[kPlanMaxN];
  std::vector<float> heap;
  float* scaled = local;
  if (n > kPlanMaxN) {
    heap.resize(static_cast<std::size_t>(n));
    scaled = heap.data();
  }
  const float constant = ChannelQuery<B>(q, metas, n, scaled);
  if constexpr (B == 0) {
    for (int r = 0; r < n_rows; ++r) out[r] = constant;
  } else {
#if QAQ_WIDE_PLAN
    // The plan path of DotRowsPlanned with the scaled query put straight into the duplicated plan
    // order (stacked short rows keep their own path, as in DotRowsT).
    const LanePlan* plan = GetLanePlan(B, n);
    if (plan != nullptr && n_rows >= 8 && StackedShapeFor<B>(row_bytes, n).rows == 0) {
      alignas(64) float q_wide[kPlanMaxSteps * 2 * kPlanLanes];
      for (int s = 0; s < plan->n_steps; ++s) {
        for (int l = 0; l < kPlanLanes; ++l) {
          const int c = plan->code[s][l];
          q_wide[2 * kPlanLanes * s + l] = q_wide[2 * kPlanLanes * s + kPlanLanes + l] = c >= 0 ? scaled[c] : 0.0f;
        }
      }
      const WideShifts& shifts = GetWideShifts(*plan);
      ForRowGroups<8>(*plan, codes, row_bytes, n_rows, PackedBytes(n, B), [&](int r, const std::uint8_t* const* rows) {
        float sums[8];
        DotEightRows<B>(*plan, shifts, q_wide, rows, sums);
        for (int j = 0; j < 8 && r + j < n_rows; ++j) out[r + j] = constant + sums[j];
      });
      return;
    }
#endif
    thread_local std::vector<AffineMeta> rows;
    rows.assign(static_cast<std::size_t>(n_rows), AffineMeta{constant, 1.0f});
    DotRowsT<B>(scaled, 1.0f, codes, row_bytes, rows.data(), n_rows, n, out);
  }
}

// Calls fn(std::integral_constant<int, B>()) for bits = B in 0..8: the one switch from a run-time
// width to the kernels' compile-time one. False for any other width.
template <typename Fn>
HWY_INLINE bool WithCodeBits(int bits, const Fn& fn) {
  switch (bits) {
    case 0: fn(std::integral_constant<int, 0>()); return true;
    case 1: fn(std::integral_constant<int, 1>()); return true;
    case 2: fn(std::integral_constant<int, 2>()); return true;
    case 3: fn(std::integral_constant<int, 3>()); return true;
    case 4: fn(std::integral_constant<int, 4>()); return true;
    case 5: fn(std::integral_constant<int, 5>()); return true;
    case 6: fn(std::integral_constant<int, 6>()); return true;
    case 7: fn(std::integral_constant<int, 7>()); return true;
    case 8: fn(std::integral_constant<int, 8>()); return true;
    default: return false;
  }
}

void DotChannelRowsImpl(const float* q, const GroupMeta* metas, const std::uint8_t* codes, std::size_t row_bytes,
                        int n_rows, int bits, int n, float* out) {
  WithCodeBits(bits, [&](auto b) { DotChannelRowsT<b()>(q, metas, codes, row_bytes, n_rows, n, out); });
}

void DotPackedRowsImpl(const float* q, float q_sum, const std::uint8_t* codes, std::size_t row_bytes,
                       const AffineMeta* metas, int n_rows, int bits, int n, float* out) {
  if (WithCodeBits(bits, [&](auto b) { DotRowsT<b()>(q, q_sum, codes, row_bytes, metas, n_rows, n, out); })) return;
  if (bits != kPassThroughBits) return;
  for (int r = 0; r < n_rows; ++r) {
    const auto* row = reinterpret_cast<const std::uint16_t*>(codes + static_cast<std::size_t>(r) * row_bytes);
    out[r] = DotF16Impl(q, row, n);
  }
}

void AxpyPackedRowsImpl(const float* w, const std::uint8_t* codes, std::size_t row_bytes,
                        const AffineMeta* metas, int n_rows, int bits, int n, float* out) {
  if (WithCodeBits(bits, [&](auto b) { AxpyRowsT<b()>(w, codes, row_bytes, metas, n_rows, n, out); })) return;
  if (bits != kPassThroughBits) return;
  for (int r = 0; r < n_rows; ++r) {
    const auto* row = reinterpret_cast<const std::uint16_t*>(codes + static_cast<std::size_t>(r) * row_bytes);
    AxpyF16(w[r], row, n, out);
  }
}

bool DotRotatedRowsImpl(const RotatedRowsQuery& rq, const std::uint8_t* codes, std::size_t row_bytes, int n_rows,
                        int bits, int n, float* out) {
#if HWY_TARGET == HWY_SCALAR
  (void)rq, (void)codes, (void)row_bytes, (void)n_rows, (void)bits, (void)n, (void)out;
  return false;
#else
  if constexpr (!kPlanTarget) {
    (void)rq, (void)codes, (void)row_bytes, (void)n_rows, (void)bits, (void)n, (void)out;
    return false;
  } else {
    if (n_rows <= 0 || n % kPlanLanes != 0) return false;
    bool done = false;
    WithCodeBits(bits, [&](auto b) {
      if constexpr (b() > 0) done = DotRotatedRowsPlanned<b()>(rq, codes, row_bytes, n_rows, n, out);
    });
    return done;
  }
#endif
}

// One row of any width: q . dequant(row).
HWY_INLINE float DotOneRow(const float* q, float q_sum, const PackedRowRef& row, int n) {
  float qc = 0.0f;
  switch (row.bits) {
    case 0: break;
    case 1: qc = DotCodes<1>(q, row.codes, n); break;
    case 2: qc = DotCodes<2>(q, row.codes, n); break;
    case 3: qc = DotCodes<3>(q, row.codes, n); break;
    case 4: qc = DotCodes<4>(q, row.codes, n); break;
    case 5: qc = DotCodes<5>(q, row.codes, n); break;
    case 6: qc = DotCodes<6>(q, row.codes, n); break;
    case 7: qc = DotCodes<7>(q, row.codes, n); break;
    case 8: qc = DotCodes<8>(q, row.codes, n); break;
    default: return DotF16Impl(q, reinterpret_cast<const std::uint16_t*>(row.codes), n);
  }
  return row.meta.offset * q_sum + row.meta.scale * qc;
}

void DotPackedMixedImpl(const float* q, float q_sum, const PackedRowRef* rows, int n_rows, int n, float* out) {
  for (int r = 0; r < n_rows; ++r) out[r] = DotOneRow(q, q_sum, rows[r], n);
}

void AxpyPackedMixedImpl(const float* w, const PackedRowRef* rows, int n_rows, int n, float* out) {
  float constant = 0.0f;
  for (int r = 0; r < n_rows; ++r) {
    const PackedRowRef& row = rows[r];
    const float b = w[r] * row.meta.scale;
    if (row.bits != kPassThroughBits) constant += w[r] * row.meta.offset;
    switch (row.bits) {
      case 0: break;
      case 1: AxpyCodes<1>(0.0f, b, row.codes, n, out); break;
      case 2: AxpyCodes<2>(0.0f, b, row.codes, n, out); break;
      case 3: AxpyCodes<3>(0.0f, b, row.codes, n, out); break;
      case 4: AxpyCodes<4>(0.0f, b, row.codes, n, out); break;
      case 5: AxpyCodes<5>(0.0f, b, row.codes, n, out); break;
      case 6: AxpyCodes<6>(0.0f, b, row.codes, n, out); break;
      case 7: AxpyCodes<7>(0.0f, b, row.codes, n, out); break;
      case 8: AxpyCodes<8>(0.0f, b, row.codes, n, out); break;
      default: AxpyF16(w[r], reinterpret_cast<const std::uint16_t*>(row.codes), n, out); break;
    }
  }
  for (int i = 0; i < n; ++i) out[i] += constant;
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace qaq::internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qaq {
namespace internal {
HWY_EXPORT(DotPackedRowsImpl);
HWY_EXPORT(AxpyPackedRowsImpl);
HWY_EXPORT(DotF32Impl);
HWY_EXPORT(DotF16Impl);
HWY_EXPORT(DotPackedMixedImpl);
HWY_EXPORT(AxpyPackedMixedImpl);
HWY_EXPORT(DotRotatedRowsImpl);
HWY_EXPORT(DotChannelRowsImpl);
HWY_EXPORT(AffineFromMetasImpl);

void DotChannelRows(const float* q, const GroupMeta* channel_metas, const std::uint8_t* codes, std::size_t row_bytes,
                    int n_rows, int bits, int n, float* out) {
  QAQ_CHECK(bits >= 0 && bits <= kMaxCodeBits, "bit width {}", bits);
  HWY_DYNAMIC_DISPATCH(DotChannelRowsImpl)(q, channel_metas, codes, row_bytes, n_rows, bits, n, out);
}

bool DotRotatedRows(const RotatedRowsQuery& query, const std::uint8_t* codes, std::size_t row_bytes, int n_rows,
                    int bits, int n, float* out) {
  return HWY_DYNAMIC_DISPATCH(DotRotatedRowsImpl)(query, codes, row_bytes, n_rows, bits, n, out);
}
}  // namespace internal

float DotPacked(const float* q, float q_sum, const std::uint8_t* codes, int bits, AffineMeta m, int n) {
  QAQ_CHECK(IsValidBits(bits), "bit width {}", bits);
  float out = 0.0f;
  HWY_DYNAMIC_DISPATCH(internal::DotPackedRowsImpl)(q, q_sum, codes, 0, &m, 1, bits, n, &out);
  return out;
}

void AxpyPacked(float w, const std::uint8_t* codes, int bits, AffineMeta m, int n, float* out) {
  QAQ_CHECK(IsValidBits(bits), "bit width {}", bits);
  HWY_DYNAMIC_DISPATCH(internal::AxpyPackedRowsImpl)(&w, codes, 0, &m, 1, bits, n, out);
}

void DotPackedRows(const float* q, float q_sum, const std::uint8_t* codes, std::size_t row_bytes,
                   const AffineMeta* metas, int n_rows, int bits, int n, float* out) {
  QAQ_CHECK(IsValidBits(bits), "bit width {}", bits);
  HWY_DYNAMIC_DISPATCH(internal::DotPackedRowsImpl)(q, q_sum, codes, row_bytes, metas, n_rows, bits, n, out);
}

void AxpyPackedRows(const float* w, const std::uint8_t* codes, std::size_t row_bytes,
                    const AffineMeta* metas, int n_rows, int bits, int n, float* out) {
  QAQ_CHECK(IsValidBits(bits), "bit width {}", bits);
  HWY_DYNAMIC_DISPATCH(internal::AxpyPackedRowsImpl)(w, codes, row_bytes, metas, n_rows, bits, n, out);
}

void DotPackedMixed(const float* q, float q_sum, const PackedRowRef* rows, int n_rows, int n, float* out) {
  for (int r = 0; r < n_rows; ++r) QAQ_CHECK(IsValidBits(rows[r].bits), "row {}: bit width {}", r, rows[r].bits);
  HWY_DYNAMIC_DISPATCH(internal::DotPackedMixedImpl)(q, q_sum, rows, n_rows, n, out);
}

void AxpyPackedMixed(const float* w, const PackedRowRef* rows, int n_rows, int n, float* out) {
  for (int r = 0; r < n_rows; ++r) QAQ_CHECK(IsValidBits(rows[r].bits), "row {}: bit width {}", r, rows[r].bits);
  HWY_DYNAMIC_DISPATCH(internal::AxpyPackedMixedImpl)(w, rows, n_rows, n, out);
}

void AffineFromMetas(const GroupMeta* metas, std::size_t n, int bits, AffineMeta* out) {
  QAQ_CHECK(IsValidBits(bits), "bit width {}", bits);
  if (bits == kPassThroughBits) {
    std::fill(out, out + n, AffineMeta{0.0f, 1.0f});
    return;
  }
  HWY_DYNAMIC_DISPATCH(internal::AffineFromMetasImpl)(metas, n, bits, out);
}

float DotF32(const float* a, const float* b, int n) {
  return HWY_DYNAMIC_DISPATCH(internal::DotF32Impl)(a, b, n);
}

float DotF16(const float* a, const std::uint16_t* b_fp16, int n) {
  return HWY_DYNAMIC_DISPATCH(internal::DotF16Impl)(a, b_fp16, n);
}

}  // namespace qaq
#endif  // HWY_ONCE
