#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "qaq/engine.h"

namespace qaq {
namespace {

// Logits whose softmax at temperature 1 is {0.5, 0.3, 0.15, 0.05}.
std::vector<float> TestLogits() {
  return {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
}

TEST(SamplerTest, GreedyTakesTheArgmax) {
  Sampler sampler(4, {.temperature = 0.0f});
  EXPECT_EQ(sampler.Sample(std::vector<float>{1, 3, 2, 3}), 1);  // first of the ties
  EXPECT_EQ(Argmax(std::vector<float>{-5, -1, -2}), 1);
}

std::vector<int> Draw(const SamplerOptions& options, int n) {
  Sampler sampler(4, options);
  const auto logits = TestLogits();
  std::vector<int> tokens;
  for (int i = 0; i < n; ++i) tokens.push_back(sampler.Sample(logits));
  return tokens;
}

TEST(SamplerTest, SeedDeterminesTheSequence) {
  EXPECT_EQ(Draw({.temperature = 1.0f, .top_p = 1.0f, .seed = 7}, 50),
            Draw({.temperature = 1.0f, .top_p = 1.0f, .seed = 7}, 50));
  EXPECT_NE(Draw({.temperature = 1.0f, .top_p = 1.0f, .seed = 7}, 50),
            Draw({.temperature = 1.0f, .top_p = 1.0f, .seed = 8}, 50));
  EXPECT_EQ(Draw({.temperature = 1.0f, .top_p = 0.5f, .seed = 0}, 50),
            Draw({.temperature = 1.0f, .top_p = 0.5f, .seed = 0}, 50));
}

TEST(SamplerTest, FrequenciesFollowTheDistribution) {
  const int n = 20000;
  std::vector<int> counts(4);
  for (int t : Draw({.temperature = 1.0f, .top_p = 1.0f, .seed = 3}, n)) ++counts[t];
  const double expected[] = {0.5, 0.3, 0.15, 0.05};
  for (int i = 0; i < 4; ++i) {
    // 4 standard deviations of a binomial proportion
    const double sd = std::sqrt(expected[i] * (1 - expected[i]) / n);
    EXPECT_NEAR(double(counts[i]) / n, expected[i], 4 * sd) << "token " << i;
  }
}

TEST(SamplerTest, TopPKeepsTheNucleus) {
  // top_p 0.7: {0.5, 0.3} reaches it, so only tokens 0 and 1, at 5:3.
  const int n = 20000;
  std::vector<int> counts(4);
  for (int t : Draw({.temperature = 1.0f, .top_p = 0.7f, .seed = 4}, n)) ++counts[t];
  EXPECT_EQ(counts[2] + counts[3], 0);
  EXPECT_NEAR(double(counts[0]) / n, 0.625, 0.015);
  // A very low temperature makes sampling greedy in practice.
  for (int t : Draw({.temperature = 0.01f, .top_p = 0.9f, .seed = 5}, 100)) EXPECT_EQ(t, 0);
}

TEST(SamplerTest, ValidatesOptions) {
  EXPECT_TRUE(ValidateSamplerOptions({}).ok());
  EXPECT_EQ(ValidateSamplerOptions({.temperature = -1.0f}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSamplerOptions({.temperature = NAN}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSamplerOptions({.top_p = 0.0f}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSamplerOptions({.top_p = 1.5f}).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qaq
