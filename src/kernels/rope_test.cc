#include "kernels/rope.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace qaq::internal {
namespace {

TEST(RopeTest, RotatesAdjacentPairsByPosTimesFrequency) {
  // head_dim 4, rope_dim 4: pair 0 turns by pos, pair 1 by pos * theta^(-1/2).
  std::vector<float> x = {1, 0, 0, 2};
  RopeRef(x.data(), 1, 4, 4, 100.0f, 3);
  EXPECT_NEAR(x[0], std::cos(3.0f), 1e-6f);
  EXPECT_NEAR(x[1], std::sin(3.0f), 1e-6f);
  EXPECT_NEAR(x[2], -2 * std::sin(0.3f), 1e-6f);
  EXPECT_NEAR(x[3], 2 * std::cos(0.3f), 1e-6f);
}

TEST(RopeTest, PositionZeroIsIdentityAndRopeDimLimitsTheRotation) {
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};
  auto y = x;
  RopeRef(y.data(), 2, 4, 4, 10000.0f, 0);
  EXPECT_EQ(y, x);
  RopeRef(y.data(), 2, 4, 2, 10000.0f, 5);  // only the first pair of each head turns
  EXPECT_EQ(y[2], 3.0f);
  EXPECT_EQ(y[3], 4.0f);
  EXPECT_EQ(y[6], 7.0f);
  EXPECT_NE(y[0], 1.0f);
  EXPECT_NEAR(std::hypot(y[4], y[5]), std::hypot(5.0f, 6.0f), 1e-5f);
}

TEST(RopeTest, TableMatchesReferenceBitwise) {
  const int head_dim = 8, n_heads = 3, max_pos = 300;
  for (int rope_dim : {8, 6}) {
    RopeTable table(10000.0f, rope_dim, max_pos);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1, 1);
    for (int pos : {0, 1, 7, 299}) {
      std::vector<float> x(n_heads * head_dim);
      for (auto& v : x) v = dist(rng);
      auto y = x;
      RopeRef(x.data(), n_heads, head_dim, rope_dim, 10000.0f, pos);
      table.Apply(y.data(), n_heads, head_dim, pos);
      EXPECT_EQ(0, std::memcmp(x.data(), y.data(), x.size() * 4)) << pos;
    }
  }
}

}  // namespace
}  // namespace qaq::internal
