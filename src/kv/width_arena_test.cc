#include "kv/width_arena.h"

#include <algorithm>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace qaq::internal {
namespace {

// Each slot's outliers are kept in increasing position (the attention kernels find one plane's
// outliers by binary search), with each value staying beside its position, through SwapRemove.
TEST(WidthArenaTest, OutliersAreStoredByPositionWithTheirValues) {
  ArenaGeometry geometry;
  geometry.n_planes = 4;
  geometry.head_dim = 16;
  geometry.outliers_per_group = 6;
  geometry.max_tokens = 100;
  WidthArena arena(3, geometry);
  std::mt19937 rng(3);
  std::vector<std::vector<Outlier>> given;
  for (std::uint32_t t = 0; t < 5; ++t) {
    std::vector<std::uint32_t> positions(64);
    for (std::uint32_t i = 0; i < 64; ++i) positions[i] = i;
    std::shuffle(positions.begin(), positions.end(), rng);
    std::vector<Outlier> outliers;
    for (int j = 0; j < 6; ++j) outliers.push_back({positions[std::size_t(j)], float(positions[std::size_t(j)]) * 0.5f + 100.0f * float(t)});
    const std::size_t slot = arena.Add(t);
    arena.SetOutliers(slot, outliers);
    given.push_back(outliers);
  }
  arena.SwapRemove(1);  // token 4 moves into slot 1
  ASSERT_EQ(arena.size(), 4u);
  for (std::size_t slot = 0; slot < arena.size(); ++slot) {
    const std::uint32_t t = arena.token(slot);
    std::vector<Outlier> expected = given[t];
    std::sort(expected.begin(), expected.end(), [](const Outlier& a, const Outlier& b) { return a.index < b.index; });
    for (int j = 0; j < 6; ++j) {
      EXPECT_EQ(arena.outlier_index(slot, j), expected[std::size_t(j)].index) << "token " << t << " j " << j;
      EXPECT_EQ(arena.outlier_value(slot, j), expected[std::size_t(j)].value) << "token " << t << " j " << j;
    }
  }
}

}  // namespace
}  // namespace qaq::internal
