#include "eval/statistics.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace qaq::internal {
namespace {

TEST(StatisticsTest, LogSoftmaxMatchesHandComputation) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  std::vector<float> out(3);
  LogSoftmax(logits, out);
  const double z = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(out[0], 1.0 - z, 1e-6);
  EXPECT_NEAR(out[1], 2.0 - z, 1e-6);
  EXPECT_NEAR(out[2], 3.0 - z, 1e-6);
  EXPECT_NEAR(NegLogLikelihood(logits, 0), z - 1.0, 1e-12);
  // Shifting every logit changes nothing.
  EXPECT_NEAR(NegLogLikelihood(std::vector<float>{101, 102, 103}, 2), z - 3.0, 1e-5);
}

TEST(StatisticsTest, KlOfIdenticalDistributionsIsExactlyZero) {
  const std::vector<float> logits = {0.3f, -1.7f, 4.25f, 2.0f, -30.0f};
  std::vector<float> log_p(logits.size());
  LogSoftmax(logits, log_p);
  EXPECT_EQ(KlDivergence(log_p, logits), 0.0);
  // Adding a constant to the logits gives the same distribution.
  std::vector<float> shifted = logits;
  for (float& x : shifted) x += 0.5f;
  EXPECT_NEAR(KlDivergence(log_p, shifted), 0.0, 1e-7);
}

TEST(StatisticsTest, KlMatchesHandComputationAndIsAsymmetric) {
  // P = (0.5, 0.5), Q = (0.9, 0.1): KL(P||Q) = 0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1).
  const std::vector<float> log_p = {float(std::log(0.5)), float(std::log(0.5))};
  const std::vector<float> logits_q = {float(std::log(0.9)), float(std::log(0.1))};
  const double expected = 0.5 * std::log(0.5 / 0.9) + 0.5 * std::log(0.5 / 0.1);
  EXPECT_NEAR(KlDivergence(log_p, logits_q), expected, 1e-6);
  const std::vector<float> log_q = {float(std::log(0.9)), float(std::log(0.1))};
  const std::vector<float> logits_p = {0.0f, 0.0f};
  const double reverse = 0.9 * std::log(0.9 / 0.5) + 0.1 * std::log(0.1 / 0.5);
  EXPECT_NEAR(KlDivergence(log_q, logits_p), reverse, 1e-6);
  EXPECT_GT(std::abs(expected - reverse), 0.1);
}

TEST(StatisticsTest, KlIgnoresZeroProbabilityTerms) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const std::vector<float> log_p = {0.0f, ninf};  // P = (1, 0)
  const std::vector<float> logits_q = {0.0f, 0.0f};  // Q = (0.5, 0.5)
  EXPECT_NEAR(KlDivergence(log_p, logits_q), std::log(2.0), 1e-6);
}

TEST(StatisticsTest, ArgmaxTakesTheFirstOnTies) {
  EXPECT_EQ(ArgmaxIndex(std::vector<float>{1, 3, 3, 2}), 1);
  EXPECT_EQ(ArgmaxIndex(std::vector<float>{-1}), 0);
}

TEST(StatisticsTest, MeanAndErrorUseLlamaCppsEstimator) {
  // values 1..4: mean 2.5, population variance 1.25, error sqrt(1.25 / 3).
  const std::vector<double> v = {1, 2, 3, 4};
  const Estimate e = MeanAndError(v);
  EXPECT_DOUBLE_EQ(e.value, 2.5);
  EXPECT_NEAR(e.error, std::sqrt(1.25 / 3.0), 1e-15);
  EXPECT_EQ(MeanAndError(std::vector<double>{7}).error, 0.0);
  EXPECT_EQ(MeanAndError(std::vector<double>{}).value, 0.0);
}

TEST(StatisticsTest, PerplexityErrorIsPplTimesStandardError) {
  const std::vector<double> nll = {1.0, 2.0, 3.0};
  const Estimate p = PerplexityOf(nll);
  EXPECT_NEAR(p.value, std::exp(2.0), 1e-12);
  // population variance 2/3, error sqrt((2/3) / 2)
  EXPECT_NEAR(p.error, std::exp(2.0) * std::sqrt((2.0 / 3.0) / 2.0), 1e-12);
}

TEST(StatisticsTest, PercentileInterpolatesLinearly) {
  const std::vector<double> v = {0, 10, 20, 30, 40};
  EXPECT_DOUBLE_EQ(Percentile(v, 0.5), 20);
  EXPECT_DOUBLE_EQ(Percentile(v, 0.9), 36);
  EXPECT_DOUBLE_EQ(Percentile(v, 0.0), 0);
  EXPECT_DOUBLE_EQ(Percentile(v, 1.0), 40);
  const std::vector<double> even = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(Percentile(even, 0.5), 2.5);  // the mean of the two middle values
}

TEST(StatisticsTest, BinomialShares) {
  const Estimate e = BinomialShare(97, 100);
  EXPECT_DOUBLE_EQ(e.value, 0.97);
  EXPECT_NEAR(e.error, std::sqrt(0.97 * 0.03 / 99), 1e-15);
  EXPECT_NEAR(Binomial95HalfWidth(0.25, 200), 1.96 * std::sqrt(0.25 * 0.75 / 200), 1e-15);
  EXPECT_EQ(BinomialShare(0, 0).value, 0.0);
}

TEST(StatisticsTest, FingerprintSeesOrderAndValues) {
  EXPECT_EQ(Fingerprint(std::vector<int>{1, 2, 3}), Fingerprint(std::vector<int>{1, 2, 3}));
  EXPECT_NE(Fingerprint(std::vector<int>{1, 2, 3}), Fingerprint(std::vector<int>{1, 3, 2}));
  EXPECT_NE(Fingerprint(std::vector<int>{1, 2}), Fingerprint(std::vector<int>{1, 2, 0}));
}

}  // namespace
}  // namespace qaq::internal
