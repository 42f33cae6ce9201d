// The per-step fast path of the bit planner equals the policy (BitPolicy::GroupBits through
// TokenBits) for every group, and the window's bulk accessor equals Max / Young.
#include "kv/bit_planner.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "kv/kv_test_util.h"

namespace qaq {
namespace {

// A window fed with random rows for positions 0..n-1 (some heads skip some positions).
AttentionWindow RandomWindow(const KvCacheShape& s, int window, int n, std::uint32_t seed) {
  AttentionWindow w(KvShape{s.n_layers, s.n_kv_heads, s.n_heads, s.head_dim}, window);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int pos = 0; pos < n; ++pos) {
    for (int l = 0; l < s.n_layers; ++l) {
      for (int h = 0; h < s.n_heads; ++h) {
        if (pos == n - 3 && h == 1) continue;  // a hole in the window
        std::vector<float> row(static_cast<std::size_t>(pos + 1));
        for (float& p : row) p = u(rng) * u(rng) * u(rng) / float(pos + 1);
        EXPECT_TRUE(w.Observe(l, h, pos, row).ok());
      }
    }
  }
  return w;
}

TEST(BitPlannerTest, WindowMaxRowEqualsMaxAndYoung) {
  const KvCacheShape s = test::SmallShape(16, 64);
  for (const int window : {1, 3, 5}) {
    const AttentionWindow w = RandomWindow(s, window, 30, 7);
    for (const int n : {30, 12}) {
      std::vector<float> max(static_cast<std::size_t>(n));
      std::vector<std::uint8_t> young(static_cast<std::size_t>(n));
      for (int l = 0; l < s.n_layers; ++l) {
        for (int h = 0; h < s.n_kv_heads; ++h) {
          w.MaxRow(l, h, max, young);
          for (int t = 0; t < n; ++t) {
            EXPECT_EQ(max[static_cast<std::size_t>(t)], w.Max(l, h, t)) << window << " " << l << " " << h << " " << t;
            EXPECT_EQ(young[static_cast<std::size_t>(t)] != 0, w.Young(l, h, t)) << window << " " << t;
          }
        }
      }
    }
  }
}

TEST(BitPlannerTest, FastPathEqualsThePolicyForEveryGroup) {
  const KvCacheShape s = test::SmallShape(16, 64);
  const int n = 40;
  const AttentionWindow w = RandomWindow(s, 4, n, 8);
  std::mt19937 rng(9);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  int checked = 0, near_bounds = 0, screened = 0;
  for (const std::string g : {"head", "layer", "token"}) {
    for (const std::string formula : {"paper", "authors", "strict"}) {
      for (const std::string bits : {"0:8", "2:5"}) {
        const std::string spec =
            fmt::format("qaq,window=4,granularity={},formula={},bits={},key_error=0.003,value_error=0.02", g, formula, bits);
        auto config = ParseKvCacheSpec(spec);
        ASSERT_TRUE(config.ok());
        config->auto_granularity = false;
        auto planner = internal::BitPlanner::Create(*config, s, nullptr);
        ASSERT_TRUE(planner.ok()) << planner.status().message();
        planner->BeginStep(n, &w);
        const int units = g == "head" ? s.n_layers * s.n_kv_heads : (g == "layer" ? s.n_layers : 1);
        for (const KvKind kind : {KvKind::kKey, KvKind::kValue}) {
          for (int unit = 0; unit < units; ++unit) {
            planner->BeginUnit(kind, unit);
            for (int t = 0; t < n; ++t) {
              double range = 12.0 * u(rng) * u(rng);
              if (t % 2 == 0) {
                // Half the time, a range right at a width's boundary: bisect for the point where
                // the policy's width steps up and take the last range below it.
                const int at = planner->TokenBits(kind, unit, t, n, range, &w);
                double lo = range, hi = 1e9;
                if (planner->TokenBits(kind, unit, t, n, hi, &w) > at) {
                  for (int i = 0; i < 200; ++i) {
                    const double mid = 0.5 * (lo + hi);
                    (planner->TokenBits(kind, unit, t, n, mid, &w) > at ? hi : lo) = mid;
                  }
                  range = t % 4 == 0 ? lo : hi;
                  ++near_bounds;
                }
              }
              const int want = planner->TokenBits(kind, unit, t, n, range, &w);
              for (int current : {0, 1, 2, 3, 4, 5, 6, 7, 8, 16}) {
                ASSERT_EQ(planner->UnitTokenBits(t, range, current), want)
                    << spec << " kind " << int(kind) << " unit " << unit << " token " << t << " range " << range
                    << " current " << current;
                // Without a tier the cache keeps min(result, current).
                ASSERT_EQ(std::min(planner->UnitTokenBits(t, range, current, false), current), std::min(want, current));
                // A slot UnitCandidates leaves out keeps its width.
                internal::IndexVector tokens(std::uint64_t(s.max_tokens));
                tokens.PushBack(std::uint32_t(t));
                const float range_f = float(range);
                std::vector<std::uint32_t> slots;
                for (const bool can_rise : {true, false}) {
                  planner->UnitCandidates(tokens, &range_f, current, can_rise, slots);
                  if (!slots.empty()) continue;
                  const int exact = planner->TokenBits(kind, unit, t, n, double(range_f), &w);
                  ASSERT_EQ(can_rise ? exact : std::min(exact, current), current)
                      << spec << " kind " << int(kind) << " unit " << unit << " token " << t << " current " << current;
                  ++screened;
                }
                ++checked;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 10000);
  EXPECT_GT(screened, 1000);
  EXPECT_GT(near_bounds, 500);
}

}  // namespace
}  // namespace qaq
