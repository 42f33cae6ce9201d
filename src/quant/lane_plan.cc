#include "quant/lane_plan.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <vector>

namespace qaq::internal {

LanePlan BuildLanePlan(int bits, int n, bool* ok) {
  LanePlan p;
  p.bits = bits;
  p.n = n;
  *ok = false;
  if (bits < 1 || bits > 8 || n < 8 || n % 8 != 0 || n > kPlanMaxN) return p;
  const int row_bytes = n * bits / 8;
  std::vector<char> read(static_cast<std::size_t>(n), 0);
  int remaining = n;
  std::vector<int> lane_codes[kPlanLanes];
  while (remaining > 0) {
    // The window with the most codes per step (ties: more codes, then the lower offset).
    int best_off = -1, best_codes = 0, best_steps = 1;
    for (int off = 0; off < row_bytes; ++off) {
      int codes = 0, steps = 0;
      for (int l = 0; l < kPlanLanes; ++l) {
        const int start = 8 * off + 32 * l, end = start + 32;
        int count = 0;
        for (int c = (start + bits - 1) / bits; c < n && c * bits + bits <= end; ++c) count += read[std::size_t(c)] ? 0 : 1;
        codes += count;
        steps = count > steps ? count : steps;
      }
      if (codes == 0) continue;
      if (best_off < 0 || codes * best_steps > best_codes * steps ||
          (codes * best_steps == best_codes * steps && codes > best_codes)) {
        best_off = off, best_codes = codes, best_steps = steps;
      }
    }
    if (p.n_windows == kPlanMaxWindows || p.n_steps + best_steps > kPlanMaxSteps) return p;
    for (int l = 0; l < kPlanLanes; ++l) {
      lane_codes[l].clear();
      const int start = 8 * best_off + 32 * l, end = start + 32;
      for (int c = (start + bits - 1) / bits; c < n && c * bits + bits <= end; ++c) {
        if (!read[std::size_t(c)]) lane_codes[l].push_back(c);
      }
    }
    for (int s = 0; s < best_steps; ++s) {
      for (int l = 0; l < kPlanLanes; ++l) {
        const bool used = s < int(lane_codes[l].size());
        const int c = used ? lane_codes[l][std::size_t(s)] : -1;
        p.code[p.n_steps + s][l] = std::int16_t(c);
        p.shifts[p.n_steps + s][l] = used ? std::uint32_t(c * bits - 8 * best_off - 32 * l) : 0u;
        if (used) read[std::size_t(c)] = 1;
      }
    }
    p.window_offset[p.n_windows] = best_off;
    p.window_steps[p.n_windows] = best_steps;
    ++p.n_windows;
    p.n_steps += best_steps;
    p.read_end = best_off + kPlanWindowBytes > p.read_end ? best_off + kPlanWindowBytes : p.read_end;
    remaining -= best_codes;
  }
  *ok = true;
  return p;
}

const LanePlan* GetLanePlan(int bits, int n) {
  if (bits < 1 || bits > 8 || n < 8 || n % 8 != 0 || n > kPlanMaxN) return nullptr;
  static std::once_flag flags[9][kPlanMaxN / 8 + 1];
  static std::unique_ptr<LanePlan> plans[9][kPlanMaxN / 8 + 1];
  std::unique_ptr<LanePlan>& slot = plans[bits][n / 8];
  std::call_once(flags[bits][n / 8], [&] {
    bool ok = false;
    auto plan = std::make_unique<LanePlan>(BuildLanePlan(bits, n, &ok));
    // Fewer than 4 codes per step: not faster than the byte-shuffle decoder (measured at 1 bit,
    // head_dim 128: 4 codes per step, about twice as fast as it through the row kernels).
    if (ok && plan->n >= 4 * plan->n_steps) slot = std::move(plan);
  });
  return slot.get();
}

void PermuteForPlan(const LanePlan& plan, const float* q, float* out) {
  for (int s = 0; s < plan.n_steps; ++s) {
    for (int l = 0; l < kPlanLanes; ++l) {
      const int c = plan.code[s][l];
      out[kPlanLanes * s + l] = c >= 0 ? q[c] : 0.0f;
    }
  }
}

void AddFromPlanOrder(const LanePlan& plan, const float* acc, float* out) {
  for (int s = 0; s < plan.n_steps; ++s) {
    for (int l = 0; l < kPlanLanes; ++l) {
      const int c = plan.code[s][l];
      if (c >= 0) out[c] += acc[kPlanLanes * s + l];
    }
  }
}

std::size_t PairTableSize(const LanePlan& plan, int n_rows) {
  return static_cast<std::size_t>((n_rows + 1) / 2) * 2 * static_cast<std::size_t>(plan.n_steps) * kPlanLanes;
}

void PermuteRowPairsForPlan(const LanePlan& plan, const float* rows, int n_rows, float* out) {
  std::vector<float> permuted(static_cast<std::size_t>(plan.n_steps) * kPlanLanes);
  std::fill(out, out + PairTableSize(plan, n_rows), 0.0f);
  for (int r = 0; r < n_rows; ++r) {
    PermuteForPlan(plan, rows + static_cast<std::size_t>(r) * static_cast<std::size_t>(plan.n), permuted.data());
    for (int s = 0; s < plan.n_steps; ++s) {
      const std::size_t to = (static_cast<std::size_t>(r / 2) * static_cast<std::size_t>(plan.n_steps) + std::size_t(s)) * 2 * kPlanLanes +
                             static_cast<std::size_t>(r % 2) * kPlanLanes;
      std::copy(permuted.begin() + s * kPlanLanes, permuted.begin() + (s + 1) * kPlanLanes, out + to);
    }
  }
}

}  // namespace qaq::internal
