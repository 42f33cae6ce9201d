#include "kv/prompt_query_norms.h"

#include <algorithm>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kv/kv_test_util.h"

namespace qaq::internal {
namespace {

// Quantiles are taken of float samples in double: only the float rounding of each |q|^2 differs
// from an exact computation.
constexpr double kRelTolerance = 1e-6;

// q for (layer, kv_head, pos, query head j): distinct norms everywhere.
std::vector<float> Query(int layer, int kv_head, int pos, int j) {
  return {float(1 + layer), float(kv_head) * 0.5f, float(pos % 7) * 0.25f, float(j)};
}

double NormSq(const std::vector<float>& q) {
  double s = 0;
  for (float x : q) s += double(x) * double(x);
  return s;
}

TEST(PromptQueryNormsTest, PerHeadAndPooledQuantilesOfTheMaximumOverQueryHeads) {
  const int layers = 2, kv_heads = 3, positions = 20, group = 2;
  PromptQueryNorms norms(layers, kv_heads, 64, 0.9);
  norms.Reserve(positions);
  std::vector<double> all;
  std::vector<std::vector<double>> per(std::size_t(layers * kv_heads));
  for (int l = 0; l < layers; ++l) {
    for (int h = 0; h < kv_heads; ++h) {
      for (int t = 0; t < positions; ++t) {
        double max = 0;
        for (int j = 0; j < group; ++j) {
          const std::vector<float> q = Query(l, h, t, j);
          norms.Record(l, h, t, q);
          max = std::max(max, NormSq(q));
        }
        per[std::size_t(l * kv_heads + h)].push_back(max);
        all.push_back(max);
      }
    }
  }
  auto heads = norms.Calibrate(positions, true);
  ASSERT_TRUE(heads.ok()) << heads.status().message();
  for (int l = 0; l < layers; ++l) {
    for (int h = 0; h < kv_heads; ++h) {
      const double expected = test::NumpyQuantile(per[std::size_t(l * kv_heads + h)], 0.9);
      EXPECT_NEAR(heads->QNormSq(l, h), expected, kRelTolerance * expected) << l << " " << h;
    }
  }
  auto pooled = norms.Calibrate(positions, false);
  ASSERT_TRUE(pooled.ok());
  const double expected = test::NumpyQuantile(all, 0.9);
  for (int l = 0; l < layers; ++l) {
    for (int h = 0; h < kv_heads; ++h) EXPECT_NEAR(pooled->QNormSq(l, h), expected, kRelTolerance * expected);
  }
  EXPECT_EQ(norms.positions(), positions);
  EXPECT_FALSE(norms.complete());
}

TEST(PromptQueryNormsTest, ConcurrentRecordsKeepTheMaximum) {
  PromptQueryNorms norms(1, 1, 8, 1.0);
  norms.Reserve(1);
  std::vector<std::thread> threads;
  for (int j = 0; j < 8; ++j) {
    threads.emplace_back([&norms, j] {
      for (int r = 0; r < 1000; ++r) norms.Record(0, 0, 0, std::vector<float>{float(j + r % 3)});
    });
  }
  for (auto& t : threads) t.join();
  auto c = norms.Calibrate(1, true);
  ASSERT_TRUE(c.ok());
  EXPECT_DOUBLE_EQ(c->QNormSq(0, 0), 9.0 * 9.0);  // j = 7, r % 3 = 2
}

TEST(PromptQueryNormsTest, OnlyTheFirstPositionsAndTruncate) {
  PromptQueryNorms norms(1, 1, 4, 1.0);
  norms.Reserve(10);
  for (int t = 0; t < 10; ++t) norms.Record(0, 0, t, std::vector<float>{float(t + 1)});
  auto c = norms.Calibrate(10, true);
  ASSERT_TRUE(c.ok());
  EXPECT_DOUBLE_EQ(c->QNormSq(0, 0), 16.0);  // positions 0..3 only
  EXPECT_TRUE(norms.complete());
  norms.Truncate(0);  // a new sequence
  EXPECT_FALSE(norms.complete());
  norms.Reserve(2);
  norms.Record(0, 0, 0, std::vector<float>{0.5f});
  norms.Record(0, 0, 1, std::vector<float>{0.25f});
  c = norms.Calibrate(2, true);
  ASSERT_TRUE(c.ok());
  EXPECT_DOUBLE_EQ(c->QNormSq(0, 0), 0.25);  // the old samples are gone
  EXPECT_EQ(norms.positions(), 2);
}

TEST(PromptQueryNormsTest, ZeroQueriesAreAnError) {
  PromptQueryNorms norms(1, 2, 8, 0.9);
  norms.Reserve(3);
  for (int t = 0; t < 3; ++t) norms.Record(0, 0, t, std::vector<float>{1.0f});
  auto heads = norms.Calibrate(3, true);  // KV head 1 saw only zero queries
  ASSERT_FALSE(heads.ok());
  EXPECT_NE(heads.status().message().find("KV head 1"), std::string::npos) << heads.status().message();
  EXPECT_TRUE(norms.Calibrate(3, false).ok());  // pooled: head 0's samples carry it
}

}  // namespace
}  // namespace qaq::internal
