#include "kernels/vector_ops.h"

#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/for_each_target.h"

namespace qaq::internal {
namespace {

std::vector<float> RandomVector(std::size_t n, std::uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  return x;
}

TEST(RmsNormTest, KnownValues) {
  const std::vector<float> x = {1, 2, 3, 4}, w = {1, 1, 2, 0.5f};
  std::vector<float> out(4);
  RmsNormRef(x.data(), w.data(), out.data(), 4, 0.0f);
  const float scale = 1.0f / std::sqrt(30.0f / 4.0f);  // mean of squares 7.5
  EXPECT_FLOAT_EQ(out[0], scale);
  EXPECT_FLOAT_EQ(out[2], 6 * scale);
  EXPECT_FLOAT_EQ(out[3], 2 * scale);
}

TEST(RmsNormTest, FastMatchesReference) {
  ForEachSimdTarget([&] {
    for (std::size_t n : {1u, 7u, 64u, 100u, 4096u}) {
      const auto x = RandomVector(n, 1, 3.0f), w = RandomVector(n, 2, 1.0f);
      std::vector<float> ref(n), fast(n);
      RmsNormRef(x.data(), w.data(), ref.data(), n, 1e-5f);
      RmsNorm(x.data(), w.data(), fast.data(), n, 1e-5f);
      for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(fast[i], ref[i], 2e-6f * std::fabs(ref[i]) + 1e-7f);
      // In place gives the same result.
      auto inplace = x;
      RmsNorm(inplace.data(), w.data(), inplace.data(), n, 1e-5f);
      EXPECT_EQ(inplace, fast);
    }
  });
}

TEST(SoftmaxTest, KnownValues) {
  std::vector<float> x = {0.0f, std::log(2.0f), 0.0f};
  SoftmaxRef(x.data(), 3);
  EXPECT_FLOAT_EQ(x[0], 0.25f);
  EXPECT_FLOAT_EQ(x[1], 0.5f);
  std::vector<float> one = {-1e30f};
  Softmax(one.data(), 1);
  EXPECT_EQ(one[0], 1.0f);
}

TEST(SoftmaxTest, FastMatchesReferenceAndSumsToOne) {
  ForEachSimdTarget([&] {
    for (std::size_t n : {1u, 3u, 16u, 17u, 100u, 512u}) {
      auto ref = RandomVector(n, 3, 20.0f);
      ref[n / 2] = -500.0f;  // underflows to 0
      auto fast = ref;
      SoftmaxRef(ref.data(), n);
      Softmax(fast.data(), n);
      double sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        EXPECT_NEAR(fast[i], ref[i], 1e-6f * ref[i] + 1e-12f) << "n=" << n << " i=" << i;
        sum += fast[i];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
  });
}

TEST(SwiGluTest, KnownValues) {
  const std::vector<float> g = {0.0f, 1.0f, -1.0f, -200.0f, 200.0f}, u = {5, 2, 1, 1, 0.5f};
  std::vector<float> ref(5), fast(5);
  SwiGluRef(g.data(), u.data(), ref.data(), 5);
  SwiGlu(g.data(), u.data(), fast.data(), 5);
  for (const auto& out : {ref, fast}) {
    EXPECT_EQ(out[0], 0.0f);
    EXPECT_NEAR(out[1], 2 * 0.7310585786f, 1e-6f);
    EXPECT_NEAR(out[2], -0.2689414214f, 1e-6f);
    EXPECT_NEAR(out[3], 0.0f, 1e-30f);
    EXPECT_FLOAT_EQ(out[4], 100.0f);
  }
}

TEST(SwiGluTest, FastMatchesReference) {
  ForEachSimdTarget([&] {
    const std::size_t n = 1000;
    const auto g = RandomVector(n, 4, 12.0f), u = RandomVector(n, 5, 2.0f);
    std::vector<float> ref(n), fast(n);
    SwiGluRef(g.data(), u.data(), ref.data(), n);
    SwiGlu(g.data(), u.data(), fast.data(), n);
    for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(fast[i], ref[i], 1e-6f * std::fabs(ref[i]) + 1e-9f);
  });
}

}  // namespace
}  // namespace qaq::internal
