#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "qaq/quant.h"

namespace qaq {
namespace {

std::vector<float> RandomCache(int L, int H, int T, int D, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<std::size_t>(L * H * T * D));
  for (auto& v : x) v = normal(rng);
  return x;
}

// Causal rows: row p spreads its weight evenly over tokens 0..p.
std::vector<float> EvenAttention(int L, int Hq, int T) {
  std::vector<float> a(static_cast<std::size_t>(L * Hq * T * T), 0.0f);
  for (int l = 0; l < L; ++l)
    for (int h = 0; h < Hq; ++h)
      for (int p = 0; p < T; ++p)
        for (int t = 0; t <= p; ++t) a[static_cast<std::size_t>(((l * Hq + h) * T + p) * T + t)] = 1.0f / static_cast<float>(p + 1);
  return a;
}

TEST(KvQuantizeTest, UniformBitsSizesAndLayout) {
  const int L = 2, H = 2, T = 5, D = 8;
  const std::vector<float> cache = RandomCache(L, H, T, D, 1);
  KvQuantConfig c;
  c.uniform_bits = 4;
  c.outlier_alpha = 0.0;
  auto r = QuantizeKv(c, {L, H, T, D, cache}, nullptr, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->bits_shape, (std::vector<int>{L, H, T}));
  for (int b : r->bits) EXPECT_EQ(b, 4);
  // Per head group: 8 codes at 4 bits (4 bytes) + 4 bytes metadata; fp16: 16 bytes.
  EXPECT_EQ(r->code_bytes, static_cast<std::size_t>(L * H * T * 4));
  EXPECT_EQ(r->metadata_bytes, static_cast<std::size_t>(L * H * T * 4));
  EXPECT_EQ(r->outlier_bytes, 0u);
  EXPECT_DOUBLE_EQ(r->compression_ratio(), 2.0);
  EXPECT_DOUBLE_EQ(r->mean_bits, 4.0);
  // Each group decodes exactly as the codec decodes it alone.
  GroupQuantizer q(0.0);
  for (int l = 0; l < L; ++l)
    for (int h = 0; h < H; ++h)
      for (int t = 0; t < T; ++t) {
        const std::size_t base = static_cast<std::size_t>(((l * H + h) * T + t) * D);
        const std::span<const float> group(cache.data() + base, D);
        q.Analyze(group);
        std::vector<float> expected(D);
        DecodeGroup(q.Pack(group, 4), expected);
        for (int d = 0; d < D; ++d) ASSERT_EQ(r->dequantized[base + static_cast<std::size_t>(d)], expected[static_cast<std::size_t>(d)]);
      }
}

// Value bits by hand: 1 layer, 1 head, T = 4, window 2. Rows 2 and 3 form the window: tokens 0..2
// have S = max(1/3, 1/4) = 1/3, token 3 was seen by one row only (young -> B_max).
// sigma = 0.05 / (sqrt(4) / 3) = 0.075. Token values k * 0.25 (k = 0..7): range 1.75 (exact
// in fp16): 1.75 / (2 sqrt3 0.075) = 6.74 -> log2 2.75 -> 3 bits. Token 1 is ten times wider:
// 67.4 -> 6.07 -> 7 bits.
TEST(KvQuantizeTest, ValueBitsByHand) {
  const int T = 4, D = 8;
  std::vector<float> cache(static_cast<std::size_t>(T * D));
  for (int t = 0; t < T; ++t)
    for (int d = 0; d < D; ++d) cache[static_cast<std::size_t>(t * D + d)] = 0.25f * static_cast<float>(d) * (t == 1 ? 10.0f : 1.0f);
  const std::vector<float> attention = EvenAttention(1, 1, T);
  KvQuantConfig c;
  c.target = 0.05;
  c.window = 2;
  c.outlier_alpha = 0.0;
  const AttentionTensorView attn{1, 1, T, attention};
  auto r = QuantizeKv(c, {1, 1, T, D, cache}, &attn, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->bits, (std::vector<std::int32_t>{3, 7, 3, 8}));
  // Paper's formula vs the authors' on the same numbers: 1.75 / (4 sqrt3 0.075) + 1 = 4.37 -> 3.
  c.formula = BitsFormula::kAuthors;
  auto a = QuantizeKv(c, {1, 1, T, D, cache}, &attn, nullptr);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->bits[0], 3);
}

TEST(KvQuantizeTest, GranularitiesAndGroupedQueryAttention) {
  const int L = 2, H = 2, Hq = 4, T = 6, D = 8;
  const std::vector<float> cache = RandomCache(L, H, T, D, 2);
  const std::vector<float> attention = EvenAttention(L, Hq, T);
  const AttentionTensorView attn{L, Hq, T, attention};
  for (Granularity g : {Granularity::kToken, Granularity::kLayer, Granularity::kHead}) {
    KvQuantConfig c;
    c.granularity = g;
    c.target = 0.02;
    c.window = 3;
    auto r = QuantizeKv(c, {L, H, T, D, cache}, &attn, nullptr);
    ASSERT_TRUE(r.ok()) << r.status().message();
    const std::size_t groups = g == Granularity::kToken ? 1 : g == Granularity::kLayer ? L : L * H;
    EXPECT_EQ(r->bits.size(), groups * T);
    // Young tokens: the last window - 1 = 2.
    for (std::size_t gi = 0; gi < groups; ++gi) {
      EXPECT_EQ(r->bits[gi * T + 4], 8);
      EXPECT_EQ(r->bits[gi * T + 5], 8);
      EXPECT_LT(r->bits[gi * T + 0], 8);
    }
    EXPECT_EQ(r->metadata_bytes, groups * T * 4);
  }
}

TEST(KvQuantizeTest, OutliersAndNonFiniteValuesAreExact) {
  const int T = 3, D = 128;
  std::vector<float> cache = RandomCache(1, 1, T, D, 3);
  cache[5] = std::numeric_limits<float>::quiet_NaN();
  cache[D + 7] = 1e6f;
  KvQuantConfig c;
  c.uniform_bits = 2;
  c.outlier_alpha = 0.01;  // one per side at D = 128
  auto r = QuantizeKv(c, {1, 1, T, D, cache}, nullptr, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(std::isnan(r->dequantized[5]));
  EXPECT_EQ(r->outlier_mask[5], 1);
  EXPECT_EQ(r->dequantized[D + 7], 1e6f);
  // Token 0: NaN + 1 per side; token 1: 1e6 (beyond fp16, always an outlier) + 1 per side;
  // token 2: 1 per side.
  EXPECT_EQ(r->n_outliers, 3u + 3u + 2u);
  EXPECT_EQ(r->outlier_bytes, 8u * 6u);
  for (std::size_t i = 0; i < cache.size(); ++i) {
    if (r->outlier_mask[i]) {
      EXPECT_TRUE(r->dequantized[i] == cache[i] || std::isnan(cache[i]));
    }
  }
}

TEST(KvQuantizeTest, KeysWithCalibration) {
  const int L = 1, H = 2, T = 16, D = 8;
  const std::vector<float> cache = RandomCache(L, H, T, D, 4);
  KvQuantConfig c;
  c.kind = KvKind::kKey;
  c.target = 0.05;
  QueryNormCalibration calibration = QueryNormCalibration::Constant(L, H, 1.0);
  auto r = QuantizeKv(c, {L, H, T, D, cache}, nullptr, &calibration);
  ASSERT_TRUE(r.ok()) << r.status().message();
  GroupQuantizer q(c.outlier_alpha);
  for (int h = 0; h < H; ++h)
    for (int t = 0; t < T; ++t) {
      const float range = q.Analyze(std::span<const float>(cache.data() + (h * T + t) * D, D)).range();
      EXPECT_EQ(r->bits[static_cast<std::size_t>(h * T + t)], *KeyBits(c, range, T, 1.0));
    }
}

TEST(KvQuantizeTest, BadInputsAreStatuses) {
  const std::vector<float> cache = RandomCache(1, 2, 4, 8, 5);
  const std::vector<float> attention = EvenAttention(1, 2, 4);
  KvQuantConfig c;
  // Values need attention.
  EXPECT_EQ(QuantizeKv(c, {1, 2, 4, 8, cache}, nullptr, nullptr).status().code(), StatusCode::kInvalidArgument);
  // Size mismatch.
  EXPECT_EQ(QuantizeKv(c, {1, 2, 4, 9, cache}, nullptr, nullptr).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(QuantizeKv(c, {0, 2, 4, 8, {}}, nullptr, nullptr).status().code(), StatusCode::kInvalidArgument);
  // Attention shape: 3 heads is not a multiple of 2 KV heads; tokens must match.
  const AttentionTensorView three{1, 3, 4, attention};
  EXPECT_EQ(QuantizeKv(c, {1, 2, 4, 8, cache}, &three, nullptr).status().code(), StatusCode::kInvalidArgument);
  const AttentionTensorView short_rows{1, 2, 3, attention};
  EXPECT_EQ(QuantizeKv(c, {1, 2, 4, 8, cache}, &short_rows, nullptr).status().code(), StatusCode::kInvalidArgument);
  // A NaN in the window's attention rows.
  std::vector<float> bad = attention;
  bad[static_cast<std::size_t>(3 * 4 + 1)] = std::numeric_limits<float>::quiet_NaN();
  const AttentionTensorView nan_attn{1, 2, 4, bad};
  EXPECT_EQ(QuantizeKv(c, {1, 2, 4, 8, cache}, &nan_attn, nullptr).status().code(), StatusCode::kInvalidArgument);
  c.target = 0;
  const AttentionTensorView ok{1, 2, 4, attention};
  EXPECT_EQ(QuantizeKv(c, {1, 2, 4, 8, cache}, &ok, nullptr).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qaq
