// How the SIMD kernels read a row of n packed B-bit codes without a byte shuffle per 8 codes
// (packed_dot.cc). A row is read as a few 32-byte windows, each split into 8 little-endian 32-bit
// lanes; in one "step" every lane shifts its 32-bit word right by its own amount and masks B
// bits, which yields one code per lane (a different code index per lane). Codes that straddle a
// lane's 32-bit boundary are taken from another window at a different byte offset. The query is
// permuted once per call into step order (q_plan[8 s + l] = q[code of lane l in step s], 0 for
// an unused lane), so a dot product costs shift, mask, convert and one multiply-add per 8 codes,
// and a weighted sum accumulates in step order and is permuted back once per call.
//
// The packed format (bitpack.h) is unchanged: this is only the order in which codes are read.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qaq::internal {

inline constexpr int kPlanLanes = 8;
inline constexpr int kPlanWindowBytes = 32;
inline constexpr int kPlanMaxSteps = 64;
inline constexpr int kPlanMaxWindows = 16;
inline constexpr int kPlanMaxN = 256;

struct LanePlan {
  int bits = 0;
  int n = 0;
  int n_windows = 0;
  int window_offset[kPlanMaxWindows] = {};  // byte offset of each window inside the row
  int window_steps[kPlanMaxWindows] = {};   // steps taken from each window, in window order
  int n_steps = 0;
  int read_end = 0;  // largest window offset + 32: bytes past the row start a row read touches
  alignas(32) std::uint32_t shifts[kPlanMaxSteps][kPlanLanes] = {};
  std::int16_t code[kPlanMaxSteps][kPlanLanes] = {};  // code index read by each lane, -1: none
};

// Greedy construction: repeatedly takes the window offset that yields the most codes per step
// among the codes not read yet. Every code 0..n-1 is read exactly once. bits 1..8, n a multiple
// of 8 up to kPlanMaxN; ok is false when the plan needs more than kPlanMaxSteps steps.
LanePlan BuildLanePlan(int bits, int n, bool* ok);

// The shared plan for (bits, n), built once; null when there is none or it reads fewer than 4
// codes per step on average (then the byte-shuffle decoder is as fast).
const LanePlan* GetLanePlan(int bits, int n);

// out[8 s + l] = q[code[s][l]] (0 for an unused lane), for s < n_steps.
void PermuteForPlan(const LanePlan& plan, const float* q, float* out);
// out[code[s][l]] += acc[8 s + l]: a step-order accumulator back in code order.
void AddFromPlanOrder(const LanePlan& plan, const float* acc, float* out);

// Per-row tables in plan order for two rows per vector: rows 2p and 2p + 1 interleaved by step,
// out[(p * n_steps + s) * 16 + (r % 2) * 8 + l] = rows[r][code[s][l]] (0 for an unused lane or
// the missing partner of an odd last row). rows: [n_rows][n]; out: PairTableSize floats.
std::size_t PairTableSize(const LanePlan& plan, int n_rows);
void PermuteRowPairsForPlan(const LanePlan& plan, const float* rows, int n_rows, float* out);

}  // namespace qaq::internal
