#include "qaq/query_norm_samples.h"

#include <cmath>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

namespace qaq {
namespace {

TEST(LinearQuantileTest, NumpyValues) {
  // numpy.quantile([1, 2, 3, 4], q) for q = 0, 0.5, 0.9, 1.
  const std::vector<double> v = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(LinearQuantile(v, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(LinearQuantile(v, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(LinearQuantile(v, 0.9), 3.7);
  EXPECT_DOUBLE_EQ(LinearQuantile(v, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(LinearQuantile(std::vector<double>{7.5}, 0.9), 7.5);
}

TEST(SummarizeQueryNormsTest, OneToHundred) {
  std::vector<double> v(100);
  std::iota(v.rbegin(), v.rend(), 1.0);  // descending: the summary sorts
  const QueryNormStats s = SummarizeQueryNorms(v);
  EXPECT_EQ(s.count, 100u);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
  EXPECT_DOUBLE_EQ(s.p50, 50.5);
  EXPECT_NEAR(s.p90, 90.1, 1e-12);   // position 89.1 between 90 and 91
  EXPECT_NEAR(s.p99, 99.01, 1e-12);  // position 98.01
  EXPECT_DOUBLE_EQ(s.max, 100.0);
  EXPECT_EQ(SummarizeQueryNorms({}).count, 0u);
}

KvCacheShape Shape() {
  KvCacheShape s;
  s.n_layers = 2;
  s.n_kv_heads = 1;
  s.head_dim = 2;
  s.max_tokens = 16;
  s.n_heads = 2;
  s.rope_dim = 2;
  return s;
}

// Runs positions 0..n-1 through the recorder with queries (a, 0) for head 0 and (0, b) for
// head 1 of each layer, so |q~|^2 is a^2 and b^2.
void RunPositions(RecordingCache& cache, int first, int n, double a0, double b0) {
  std::vector<float> k = {0.5f, -0.25f};
  for (int t = first; t < first + n; ++t) {
    for (int l = 0; l < 2; ++l) cache.Append(l, t, k, k);
    for (int l = 0; l < 2; ++l) {
      for (int h = 0; h < 2; ++h) {
        const float x = float((h == 0 ? a0 : b0) * (t + 1) * (l + 1));
        const std::vector<float> q = h == 0 ? std::vector<float>{x, 0} : std::vector<float>{0, x};
        std::vector<float> scores(std::size_t(t) + 1);
        cache.Scores(l, 0, q, scores);
      }
    }
    cache.EndStep();
  }
}

TEST(QueryNormCollectorTest, MaxOverGroupAcrossSequences) {
  auto recorder = RecordingCache::Create("fp32", Shape(), RecordOptions::QueryNormsOnly());
  ASSERT_TRUE(recorder.ok());
  QueryNormCollector collector(2, 1);
  RunPositions(**recorder, 0, 4, 1.0, 0.5);  // head 0 is the larger: (t + 1)^2 (l + 1)^2
  ASSERT_TRUE(collector.Add(**recorder).ok());
  (*recorder)->Truncate(0);
  RunPositions(**recorder, 0, 2, 0.1, 3.0);  // head 1 is the larger: 9 (t + 1)^2 (l + 1)^2
  ASSERT_TRUE(collector.Add(**recorder).ok());
  const std::vector<double> expected = {1, 4, 9, 16, 9, 36};  // layer 0
  ASSERT_EQ(collector.samples(0, 0).size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(collector.samples(0, 0)[i], expected[i], 1e-4);
  EXPECT_NEAR(collector.samples(1, 0)[3], 64.0, 1e-4);

  auto calibration = collector.Calibration(0.9);
  ASSERT_TRUE(calibration.ok()) << calibration.status().message();
  // sorted {1, 4, 9, 9, 16, 36}: position 4.5 -> (16 + 36) / 2
  EXPECT_NEAR(calibration->QNormSq(0, 0), 26.0, 1e-4);
  EXPECT_NEAR(calibration->QNormSq(1, 0), 4 * 26.0, 4e-4);
  EXPECT_EQ(calibration->n_samples(0, 0), 6u);
  EXPECT_NEAR(collector.Stats(0, 0).p90, 26.0, 1e-4);
  EXPECT_NEAR(collector.Stats(0, 0).max, 36.0, 1e-4);

  QueryNormCollector each(2, 1);
  ASSERT_TRUE(each.Add(**recorder, QueryHeadReduction::kEach).ok());
  EXPECT_EQ(each.samples(0, 0).size(), 4u);  // 2 positions x 2 heads
}

TEST(QueryNormCollectorTest, Errors) {
  QueryNormCollector collector(2, 1);
  EXPECT_EQ(collector.Calibration(0.9).status().code(), StatusCode::kInvalidArgument);  // no samples
  auto recorder = RecordingCache::Create("fp32", Shape(), RecordOptions::QueryNormsOnly());
  ASSERT_TRUE(recorder.ok());
  RunPositions(**recorder, 0, 3, 1.0, 1.0);
  ASSERT_TRUE(collector.Add(**recorder).ok());
  EXPECT_EQ(collector.Calibration(0.0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(collector.Calibration(1.5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(collector.Calibration(std::nan("")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(collector.Calibration(1.0).ok());

  QueryNormCollector wrong(3, 1);
  EXPECT_EQ(wrong.Add(**recorder).code(), StatusCode::kInvalidArgument);
  RecordOptions no_norms = RecordOptions::Everything();
  no_norms.query_norms = false;
  auto other = RecordingCache::Create("fp32", Shape(), no_norms);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(collector.Add(**other).code(), StatusCode::kInvalidArgument);

  // All-zero queries: a 0 quantile is refused (the key formula divides by it).
  QueryNormCollector zeros(2, 1);
  (*recorder)->Truncate(0);
  RunPositions(**recorder, 0, 2, 0.0, 0.0);
  ASSERT_TRUE(zeros.Add(**recorder).ok());
  EXPECT_EQ(zeros.Calibration(0.9).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qaq
