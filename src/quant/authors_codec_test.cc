#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "qaq/quant.h"

namespace qaq {
namespace {

TEST(AuthorsCodecTest, OutlierRuleTakesAtLeastOnePerSide) {
  // G = 8, alpha = 1%: thresholds are the ceil(0.04) = 1st and floor(7.96) = 7th smallest, so the
  // minimum (<=) and the maximum (>) are outliers: 25% of an 8-wide head.
  const std::vector<float> x = {0.5f, -2.0f, 1.0f, 3.0f, 0.0f, 0.25f, -1.0f, 2.0f};
  std::vector<std::uint8_t> mask(8);
  AuthorsOutlierMask(x, 0.01, mask);
  EXPECT_EQ(mask, (std::vector<std::uint8_t>{0, 1, 0, 1, 0, 0, 0, 0}));
  EXPECT_FLOAT_EQ(AuthorsRange(x, mask), 3.0f);  // 2 - (-1)
  AuthorsOutlierMask(x, 0.0, mask);
  EXPECT_EQ(mask, std::vector<std::uint8_t>(8, 0));
  // Ties at the lower threshold are all outliers (<=).
  const std::vector<float> ties = {1.0f, 1.0f, 2.0f, 3.0f};
  std::vector<std::uint8_t> m2(4);
  AuthorsOutlierMask(ties, 0.1, m2);
  // Upper threshold: floor(0.95 * 4) = 3rd smallest = 2, and 3 > 2.
  EXPECT_EQ(m2, (std::vector<std::uint8_t>{1, 1, 0, 1}));
}

TEST(AuthorsCodecTest, MeanCentredClampedGrid) {
  // Mean 1.0, range 4, B = 2: step 1, codes clamp to [-2, 1]. 3.0 -> round(2) clamps to 1 -> 2.0:
  // the values far from the mean are clipped (the reason the authors' grid stays lossy).
  const std::vector<float> x = {-1.0f, 0.5f, 1.5f, 3.0f};
  const std::vector<std::uint8_t> none(4, 0);
  std::vector<float> out(4);
  AuthorsQuantizeGroup(x, none, 2, out);
  // mean = 1.0; (x - 1) / 1 = -2, -0.5, 0.5, 2 -> round half even: -2, -0, 0, 2 -> clamp 1.
  EXPECT_EQ(out, (std::vector<float>{-1.0f, 1.0f, 1.0f, 2.0f}));
  // B = 0: every value becomes mean - range / 2.
  AuthorsQuantizeGroup(x, none, 0, out);
  EXPECT_EQ(out, std::vector<float>(4, -1.0f));
  // Outliers are copied and excluded from the statistics.
  const std::vector<std::uint8_t> mask = {0, 0, 0, 1};
  AuthorsQuantizeGroup(x, mask, 8, out);
  EXPECT_EQ(out[3], 3.0f);
  EXPECT_NEAR(out[1], 0.5f, 2.5f / 256.0f);
  // Constant group: every value is the mean.
  const std::vector<float> flat(5, 0.3f);
  std::vector<float> flat_out(5);
  AuthorsQuantizeGroup(flat, std::vector<std::uint8_t>(5, 0), 3, flat_out);
  for (float v : flat_out) EXPECT_FLOAT_EQ(v, 0.3f);
}

}  // namespace
}  // namespace qaq
