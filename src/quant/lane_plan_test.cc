#include "quant/lane_plan.h"

#include <vector>

#include <gtest/gtest.h>

namespace qaq::internal {
namespace {

// Every code of the row is read exactly once, from a window lane that holds all of its bits, and
// the shift puts it at the bottom of the lane.
TEST(LanePlanTest, EveryCodeReadExactlyOnceFromItsBits) {
  for (int bits = 1; bits <= 8; ++bits) {
    for (int n = 8; n <= kPlanMaxN; n += 8) {
      bool ok = false;
      const LanePlan plan = BuildLanePlan(bits, n, &ok);
      if (!ok) continue;  // too many steps: the kernels use the byte-shuffle decoder
      std::vector<int> reads(static_cast<std::size_t>(n), 0);
      int s = 0;
      for (int w = 0; w < plan.n_windows; ++w) {
        ASSERT_LT(plan.window_offset[w], n * bits / 8);
        ASSERT_LE(plan.window_offset[w] + kPlanWindowBytes, plan.read_end);
        for (int end = s + plan.window_steps[w]; s < end; ++s) {
          for (int l = 0; l < kPlanLanes; ++l) {
            const int c = plan.code[s][l];
            if (c < 0) continue;
            ASSERT_LT(c, n);
            ++reads[std::size_t(c)];
            // Bit position of the code inside the window, as the kernel sees it.
            EXPECT_EQ(8 * plan.window_offset[w] + 32 * l + int(plan.shifts[s][l]), c * bits) << bits << " " << n;
            EXPECT_LE(int(plan.shifts[s][l]) + bits, 32) << bits << " " << n;
          }
        }
      }
      EXPECT_EQ(s, plan.n_steps);
      for (int c = 0; c < n; ++c) ASSERT_EQ(reads[std::size_t(c)], 1) << bits << " " << n << " code " << c;
    }
  }
}

TEST(LanePlanTest, CommonHeadDimsHavePlans) {
  // head_dim 128 at the widths a QAQ cache mostly uses; 8 codes per step where B divides 32.
  for (int bits = 1; bits <= 8; ++bits) ASSERT_NE(GetLanePlan(bits, 128), nullptr) << bits;
  EXPECT_EQ(GetLanePlan(2, 128)->n_steps, 16);
  EXPECT_EQ(GetLanePlan(4, 128)->n_steps, 16);
  EXPECT_EQ(GetLanePlan(0, 128), nullptr);
  EXPECT_EQ(GetLanePlan(4, 12), nullptr);
}

TEST(LanePlanTest, PermuteAndAddBackAreInverse) {
  const LanePlan* plan = GetLanePlan(5, 128);
  ASSERT_NE(plan, nullptr);
  std::vector<float> q(128), permuted(std::size_t(plan->n_steps * kPlanLanes)), back(128, 1.0f);
  for (int i = 0; i < 128; ++i) q[std::size_t(i)] = float(i) * 0.5f;
  PermuteForPlan(*plan, q.data(), permuted.data());
  AddFromPlanOrder(*plan, permuted.data(), back.data());
  for (int i = 0; i < 128; ++i) EXPECT_EQ(back[std::size_t(i)], 1.0f + q[std::size_t(i)]);
}

}  // namespace
}  // namespace qaq::internal
