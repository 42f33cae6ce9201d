#include "kernels/attention.h"

#include <cmath>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "kernels/for_each_target.h"

#include "kernels/half.h"

namespace qaq::internal {
namespace {

struct Case {
  int head_dim;
  std::int64_t n;
};
void PrintTo(const Case& c, std::ostream* os) { *os << "head_dim " << c.head_dim << ", n " << c.n; }

class AttentionTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const auto [head_dim, n] = GetParam();
    std::mt19937 rng(head_dim * 1000 + int(n));
    std::uniform_real_distribution<float> dist(-1, 1);
    const std::int64_t capacity = (n + kKeyBlock - 1) / kKeyBlock * kKeyBlock;
    k_rows.resize(n * head_dim);
    v_rows.resize(n * head_dim);
    keys.assign(capacity * head_dim, 0.0f);
    keys16.assign(capacity * head_dim, 0);
    values16.resize(n * head_dim);
    for (auto& x : k_rows) x = dist(rng);
    for (auto& x : v_rows) x = dist(rng);
    for (std::int64_t t = 0; t < n; ++t) {
      for (int d = 0; d < head_dim; ++d) {
        keys[BlockedKeyIndex(t, d, head_dim)] = k_rows[t * head_dim + d];
        keys16[BlockedKeyIndex(t, d, head_dim)] = FloatToHalfRef(k_rows[t * head_dim + d]);
        values16[t * head_dim + d] = FloatToHalfRef(v_rows[t * head_dim + d]);
      }
    }
    q.resize(head_dim);
    for (auto& x : q) x = dist(rng);
    probs.resize(n);
    for (auto& x : probs) x = std::fabs(dist(rng)) / float(n);
  }
  std::vector<float> k_rows, v_rows, keys, q, probs;
  std::vector<std::uint16_t> keys16, values16;
};

TEST_P(AttentionTest, ScoresAreDotsWithRowKeys) {
  ForEachSimdTarget([&] {
    const auto [head_dim, n] = GetParam();
    std::vector<float> ref(n), fast(n + 1, 42.0f), ref16(n), fast16(n);
    ScoresRef(keys.data(), n, head_dim, q.data(), ref.data());
    Scores(keys.data(), n, head_dim, q.data(), fast.data());
    ScoresF16Ref(keys16.data(), n, head_dim, q.data(), ref16.data());
    ScoresF16(keys16.data(), n, head_dim, q.data(), fast16.data());
    EXPECT_EQ(fast[n], 42.0f) << "wrote past n";
    for (std::int64_t t = 0; t < n; ++t) {
      double exact = 0, abs = 0;
      for (int d = 0; d < head_dim; ++d) {
        exact += double(q[d]) * k_rows[t * head_dim + d];
        abs += std::fabs(double(q[d]) * k_rows[t * head_dim + d]);
      }
      EXPECT_NEAR(ref[t], exact, 1e-6 * abs + 1e-7);
      EXPECT_NEAR(fast[t], ref[t], 1e-6 * abs + 1e-7);
      EXPECT_NEAR(fast16[t], ref16[t], 1e-6 * abs + 1e-7);
      EXPECT_NEAR(ref16[t], exact, 2e-3 * abs);  // fp16 keys: 2^-11 relative per element
    }
  });
}

TEST_P(AttentionTest, WeightedSumAccumulatesRows) {
  ForEachSimdTarget([&] {
    const auto [head_dim, n] = GetParam();
    std::vector<float> ref(head_dim, 0.5f), fast(head_dim, 0.5f), ref16(head_dim, 0.5f),
        fast16(head_dim, 0.5f);
    WeightedSumRef(v_rows.data(), n, head_dim, probs.data(), ref.data());
    WeightedSum(v_rows.data(), n, head_dim, probs.data(), fast.data());
    WeightedSumF16Ref(values16.data(), n, head_dim, probs.data(), ref16.data());
    WeightedSumF16(values16.data(), n, head_dim, probs.data(), fast16.data());
    for (int d = 0; d < head_dim; ++d) {
      double exact = 0.5, abs = 0.5;
      for (std::int64_t t = 0; t < n; ++t) {
        exact += double(probs[t]) * v_rows[t * head_dim + d];
        abs += std::fabs(double(probs[t]) * v_rows[t * head_dim + d]);
      }
      EXPECT_NEAR(ref[d], exact, 1e-6 * abs);
      EXPECT_NEAR(fast[d], ref[d], 1e-6 * abs);
      EXPECT_NEAR(fast16[d], ref16[d], 1e-6 * abs);
      EXPECT_NEAR(ref16[d], exact, 1e-3 * abs);
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionTest,
                         ::testing::Values(Case{8, 1}, Case{8, 15}, Case{8, 16}, Case{8, 17},
                                           Case{8, 200}, Case{12, 33}, Case{64, 40},
                                           Case{128, 70}, Case{96, 33}, Case{192, 9},
                                           Case{64, 7}, Case{6, 5}),
                         [](const auto& info) {
                           return fmt::format("d{}_n{}", info.param.head_dim, info.param.n);
                         });

}  // namespace
}  // namespace qaq::internal
