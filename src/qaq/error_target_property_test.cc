// Codec + policy together: does the quantization error meet the target sigma the policy chose
// the bits for (QAQ-method.md §3)? What is guaranteed, what holds on average, and where the
// per-group statement fails.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "qaq/quant.h"

namespace qaq {
namespace {

struct ErrorStats {
  double rms = 0.0;      // sqrt(mean e^2)
  double stddev = 0.0;   // sqrt(mean e^2 - (mean e)^2)
  double max_abs = 0.0;
};

ErrorStats Measure(const std::vector<float>& x, const PackedGroup& g) {
  std::vector<float> y(x.size());
  DecodeGroup(g, y);
  double sum = 0.0, sum_sq = 0.0;
  ErrorStats s;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double e = static_cast<double>(y[i]) - static_cast<double>(x[i]);
    sum += e;
    sum_sq += e * e;
    s.max_abs = std::max(s.max_abs, std::abs(e));
  }
  const double n = static_cast<double>(x.size());
  s.rms = std::sqrt(sum_sq / n);
  s.stddev = std::sqrt(std::max(0.0, sum_sq / n - (sum / n) * (sum / n)));
  return s;
}

std::vector<std::vector<float>> Groups(std::mt19937& rng, bool adversarial) {
  std::vector<std::vector<float>> groups;
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::exponential_distribution<float> expo(1.0f);
  for (int n : {8, 64, 128}) {
    for (int rep = 0; rep < 20; ++rep) {
      std::vector<float> g(static_cast<std::size_t>(n));
      for (auto& v : g) v = normal(rng);
      groups.push_back(g);
      for (auto& v : g) v = uniform(rng);
      groups.push_back(g);
      if (!adversarial) continue;
      for (auto& v : g) v = expo(rng) * expo(rng);
      groups.push_back(g);  // skewed
      std::fill(g.begin(), g.end(), 0.3f);
      g[static_cast<std::size_t>(rep) % g.size()] = 1.7f;
      groups.push_back(g);  // all equal but one
      for (auto& v : g) v = normal(rng) * 0.01f;
      g[0] = 50.0f;
      groups.push_back(g);  // one huge value
    }
  }
  return groups;
}

// Runs `check(x, q, sigma, bits)` on random and adversarial groups (with and without outliers)
// and random targets sigma, wherever `formula`'s width is not clamped; returns how many ran.
template <class Check>
int ForUnclampedGroups(std::uint32_t seed, BitsFormula formula, Check check) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> log_ratio(-7.5, 0.5);
  const BitsFormulaTerms terms = FormulaTerms(formula);
  int checked = 0;
  for (double alpha : {0.0, 0.02}) {
    for (const auto& x : Groups(rng, /*adversarial=*/true)) {
      GroupQuantizer q(alpha);
      const double range = q.Analyze(x).range();
      if (range == 0.0) continue;
      for (int k = 0; k < 8; ++k) {
        const double sigma = range * std::exp2(log_ratio(rng));
        const double unclamped = std::ceil(std::log2(range / (terms.divisor * sigma) + terms.offset));
        if (unclamped < 0 || unclamped > kMaxCodeBits) continue;
        const int bits = BitsForSigma(range, sigma, 0, kMaxCodeBits, formula);
        EXPECT_EQ(bits, static_cast<int>(unclamped));
        check(x, q, sigma, bits);
        ++checked;
      }
    }
  }
  return checked;
}

// What every group gets, adversarial ones included, whenever B is not clamped: the segment width
// s meets s <= 2 sqrt3 sigma, every error is at most s / 2, so the RMS error is at most
// sqrt3 sigma. (Not sigma: see ErrorCanExceedSigmaOnAGroup.)
TEST(ErrorTargetPropertyTest, GuaranteedBoundOnEveryGroup) {
  const int checked = ForUnclampedGroups(21, BitsFormula::kPaper, [](const std::vector<float>& x, GroupQuantizer& q,
                                                                     double sigma, int bits) {
    const PackedGroup g = q.Pack(x, bits);
    const double s = AffineFromMeta(g.meta, bits).scale;
    ASSERT_LE(s, 2.0 * std::sqrt(3.0) * sigma * (1.0 + 1e-6));
    // The error of outliers is 0; measure over all values.
    const ErrorStats e = Measure(x, g);
    ASSERT_LE(e.max_abs, 0.5 * s * (1.0 + 1e-5) + 1e-7) << "n " << x.size() << " bits " << bits;
    ASSERT_LE(e.rms, std::sqrt(3.0) * sigma * (1.0 + 1e-5)) << "n " << x.size() << " bits " << bits;
  });
  EXPECT_GT(checked, 2000);
}

// formula=strict: what the issue asked of the paper's formula, on every group (adversarial ones
// included) whenever B is not clamped: the error's standard deviation (and RMS, and every single
// error) is at most sigma.
TEST(ErrorTargetPropertyTest, StrictFormulaMeetsSigmaOnEveryGroup) {
  const int checked = ForUnclampedGroups(22, BitsFormula::kStrict, [](const std::vector<float>& x, GroupQuantizer& q,
                                                                      double sigma, int bits) {
    const ErrorStats e = Measure(x, q.Pack(x, bits));
    ASSERT_LE(e.max_abs, sigma * (1.0 + 1e-5)) << "n " << x.size() << " bits " << bits;
    ASSERT_LE(e.stddev, sigma * (1.0 + 1e-5)) << "n " << x.size() << " bits " << bits;
  });
  EXPECT_GT(checked, 2000);
  // The counterexample of ErrorCanExceedSigmaOnAGroup gets one bit more and meets sigma.
  const std::vector<float> x = {0, 0, 0, 0, 0, 0, 0, 1};
  const double sigma = 0.25 / std::sqrt(3.0);  // the paper's formula gives 1 bit, RMS sqrt3 sigma
  ASSERT_EQ(BitsForSigma(1.0, sigma, 0, 8, BitsFormula::kPaper), 1);
  ASSERT_EQ(BitsForSigma(1.0, sigma, 0, 8, BitsFormula::kStrict), 2);
  GroupQuantizer q(0.0);
  q.Analyze(x);
  EXPECT_LE(Measure(x, q.Pack(x, 2)).stddev, sigma);
}

// The paper's model (error uniform over a segment, std = s / sqrt12 <= sigma) on the groups it
// describes: many values spread over the range. With 4096 uniform values the measured std is
// within sampling noise (about 1% at 3 standard errors, bound 3%) of s / sqrt12, hence <= sigma.
TEST(ErrorTargetPropertyTest, MeetsSigmaWhenValuesFillTheSegments) {
  std::mt19937 rng(22);
  std::uniform_real_distribution<float> uniform(-3.0f, 5.0f);
  std::uniform_real_distribution<double> log_ratio(-7.5, 0.5);
  std::vector<float> x(4096);
  int checked = 0;
  for (int rep = 0; rep < 200; ++rep) {
    for (auto& v : x) v = uniform(rng);
    GroupQuantizer q(0.0);
    const double range = q.Analyze(x).range();
    const double sigma = range * std::exp2(log_ratio(rng));
    const double unclamped = std::ceil(std::log2(range / (2.0 * std::sqrt(3.0) * sigma)));
    if (unclamped < 1 || unclamped > kMaxCodeBits) continue;
    const ErrorStats e = Measure(x, q.Pack(x, BitsForSigma(range, sigma, 0, 8, BitsFormula::kPaper)));
    EXPECT_LE(e.stddev, 1.03 * sigma) << "unclamped bits " << unclamped;
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

// On average over targets the error is well below sigma, because ceil() leaves slack; but a
// fraction of (group, target) pairs exceed sigma. Printed for README.md; the bounds
// below have margin over the measured values (mean RMS / sigma 0.86 at 8 values, 0.72 at 64,
// 0.71 at 128; std > sigma in 20.5%, 4.2% and 2.8% of the pairs).
TEST(ErrorTargetPropertyTest, AverageRatioBelowOne) {
  std::mt19937 rng(23);
  std::uniform_real_distribution<double> log_ratio(-7.5, 0.5);
  std::vector<std::vector<float>> groups;
  for (int rep = 0; rep < 10; ++rep) {
    for (auto& g : Groups(rng, /*adversarial=*/false)) groups.push_back(std::move(g));
  }
  for (int n : {8, 64, 128}) {
    double ratio_sum = 0.0, worst = 0.0;
    int count = 0, above = 0;
    for (const auto& x : groups) {
      if (static_cast<int>(x.size()) != n) continue;
      GroupQuantizer q(0.0);
      const double range = q.Analyze(x).range();
      for (int k = 0; k < 20; ++k) {
        const double sigma = range * std::exp2(log_ratio(rng));
        const double unclamped = std::ceil(std::log2(range / (2.0 * std::sqrt(3.0) * sigma)));
        if (unclamped < 0 || unclamped > kMaxCodeBits) continue;
        const ErrorStats e = Measure(x, q.Pack(x, static_cast<int>(unclamped)));
        ratio_sum += e.rms / sigma;
        worst = std::max(worst, e.stddev / sigma);
        above += e.stddev > sigma ? 1 : 0;
        ++count;
      }
    }
    ASSERT_GT(count, 5000);
    std::printf("n = %3d: %d (group, target) pairs, mean RMS/sigma %.3f, std > sigma in %.1f%%, worst std/sigma %.3f\n",
                n, count, ratio_sum / count, 100.0 * above / count, worst);
    EXPECT_LT(ratio_sum / count, n == 8 ? 0.95 : 0.8) << "n " << n;
    EXPECT_LE(worst, std::sqrt(3.0) * (1.0 + 1e-6));
  }
}

// The per-group statement "error std <= sigma" does not hold for every group: the extreme
// values sit on segment edges (error s/2), which small groups cannot average away. By hand:
// {0 x 7, 1}, sigma = 1 / (4 sqrt3) so range / (2 sqrt3 sigma) = 2 exactly -> B = 1, s = 0.5.
// Reconstructions 0.25 and 0.75: every error is 0.25 in magnitude (+0.25 x 7, -0.25 x 1).
// RMS 0.25 = sqrt3 sigma; std around the mean sqrt(1/16 - (3/16)^2) = 0.1654 = 1.146 sigma.
TEST(ErrorTargetPropertyTest, ErrorCanExceedSigmaOnAGroup) {
  const std::vector<float> x = {0, 0, 0, 0, 0, 0, 0, 1};
  const double sigma = 1.0 / (4.0 * std::sqrt(3.0));
  ASSERT_EQ(BitsForSigma(1.0, sigma, 0, 8, BitsFormula::kPaper), 1);
  const ErrorStats e = Measure(x, *EncodeGroup(x, 1, 0.0));
  EXPECT_DOUBLE_EQ(e.rms, 0.25);
  EXPECT_NEAR(e.rms / sigma, std::sqrt(3.0), 1e-12);
  EXPECT_NEAR(e.stddev, std::sqrt(1.0 / 16.0 - 9.0 / 256.0), 1e-12);
  EXPECT_GT(e.stddev, sigma);
}

}  // namespace
}  // namespace qaq
