#include <vector>

#include <gtest/gtest.h>

#include "qaq/quant.h"

namespace qaq {
namespace {

// 2 layers, 4 query heads on 2 KV heads, head dim 8.
const KvShape kShape{2, 2, 4, 8};

KvQuantConfig ValueConfig(Granularity g) {
  KvQuantConfig c;
  c.kind = KvKind::kValue;
  c.target = 0.1;
  c.window = 2;
  c.granularity = g;
  return c;
}

// Every (layer, head, position) row: token t gets weight a(l, head, t) at every position p >= t.
AttentionWindow WindowWith(float (*weight)(int layer, int head, int token), int n_tokens, int window) {
  AttentionWindow w(kShape, window);
  for (int l = 0; l < kShape.n_layers; ++l) {
    for (int h = 0; h < kShape.n_heads; ++h) {
      for (int p = 0; p < n_tokens; ++p) {
        std::vector<float> row(static_cast<std::size_t>(p) + 1);
        for (int t = 0; t <= p; ++t) row[static_cast<std::size_t>(t)] = weight(l, h, t);
        EXPECT_TRUE(w.Observe(l, h, p, row).ok());
      }
    }
  }
  return w;
}

float Weight(int layer, int head, int token) {
  // Distinct per layer and head so that the max over a group is visible.
  return 0.01f * static_cast<float>(1 + token) * static_cast<float>(1 + head + 4 * layer);
}

TEST(BitPolicyTest, HeadGranularityUsesTheKvHeadsOwnQueryHeads) {
  const int T = 6;
  AttentionWindow w = WindowWith(Weight, T, 2);
  auto policy = BitPolicy::Create(ValueConfig(Granularity::kHead), kShape);
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->groups_per_token(), 4);
  for (int t = 0; t < T; ++t) {
    for (int l = 0; l < 2; ++l) {
      for (int kv = 0; kv < 2; ++kv) {
        const int g = l * 2 + kv;
        auto bits = policy->GroupBits(t, T, g, 1.5, &w);
        ASSERT_TRUE(bits.ok());
        if (t >= T - 1) {  // seen by 1 < window rows: young
          EXPECT_EQ(*bits, 8);
          continue;
        }
        // S = max over query heads 2kv, 2kv+1 of the group.
        const double s = Weight(l, 2 * kv + 1, t);
        EXPECT_EQ(*bits, *ValueBits(policy->config(), 1.5, T, s)) << t << " " << g;
      }
    }
  }
}

TEST(BitPolicyTest, CoarseGranularitiesTakeTheMaxOverTheGroup) {
  const int T = 5;
  AttentionWindow w = WindowWith(Weight, T, 2);
  auto layer = BitPolicy::Create(ValueConfig(Granularity::kLayer), kShape);
  auto token = BitPolicy::Create(ValueConfig(Granularity::kToken), kShape);
  ASSERT_TRUE(layer.ok() && token.ok());
  EXPECT_EQ(layer->groups_per_token(), 2);
  EXPECT_EQ(token->groups_per_token(), 1);
  const int t = 1;
  EXPECT_EQ(*layer->GroupBits(t, T, 1, 2.0, &w), *ValueBits(layer->config(), 2.0, T, Weight(1, 3, t)));
  EXPECT_EQ(*token->GroupBits(t, T, 0, 2.0, &w), *ValueBits(token->config(), 2.0, T, Weight(1, 3, t)));
  // Hand check of one: S = 0.01 * 2 * 8 = 0.16, sigma = 0.1 / (sqrt5 0.16) = 0.2795,
  // 2 / (2 sqrt3 0.2795) = 2.066 -> log2 1.05 -> 2 bits.
  EXPECT_EQ(*token->GroupBits(t, T, 0, 2.0, &w), 2);
}

TEST(BitPolicyTest, PlanFillsEveryGroup) {
  const int T = 4;
  AttentionWindow w = WindowWith(Weight, T, 1);
  KvQuantConfig c = ValueConfig(Granularity::kLayer);
  c.window = 1;
  auto policy = BitPolicy::Create(c, kShape);
  ASSERT_TRUE(policy.ok());
  std::vector<float> ranges(T * 2, 1.0f);
  std::vector<int> bits(T * 2, -1);
  ASSERT_TRUE(policy->Plan(T, ranges, &w, bits).ok());
  for (int t = 0; t < T; ++t) {
    for (int g = 0; g < 2; ++g) EXPECT_EQ(bits[static_cast<std::size_t>(t * 2 + g)], *policy->GroupBits(t, T, g, 1.0, &w));
  }
  std::vector<int> wrong(3);
  EXPECT_EQ(policy->Plan(T, ranges, &w, wrong).code(), StatusCode::kInvalidArgument);
}

TEST(BitPolicyTest, KeysUseCalibratedNormsAndIgnoreAttention) {
  KvQuantConfig c;
  c.kind = KvKind::kKey;
  c.target = 0.01;
  c.granularity = Granularity::kHead;
  QueryNormCalibration calibration = QueryNormCalibration::Constant(2, 2, 1.0);
  ASSERT_TRUE(calibration.AddSample(0, 0, 1.0).ok());  // samples do not matter for Constant
  auto policy = BitPolicy::Create(c, kShape, &calibration);
  ASSERT_TRUE(policy.ok());
  // No window needed for keys; young tokens are not forced in the paper's formula.
  for (int t = 0; t < 64; ++t) EXPECT_EQ(*policy->GroupBits(t, 64, 3, 3.0, nullptr), *KeyBits(c, 3.0, 64, 1.0));
  // Layer granularity: max over the layer's heads of a non-uniform calibration.
  QueryNormCalibration uneven(2, 2);
  for (double v : {1.0, 2.0}) ASSERT_TRUE(uneven.AddSample(0, 0, v).ok());
  ASSERT_TRUE(uneven.AddSample(0, 1, 9.0).ok());
  ASSERT_TRUE(uneven.AddSample(1, 0, 4.0).ok());
  ASSERT_TRUE(uneven.AddSample(1, 1, 3.0).ok());
  ASSERT_TRUE(uneven.Finalize().ok());
  c.granularity = Granularity::kLayer;
  auto layer = BitPolicy::Create(c, kShape, &uneven);
  ASSERT_TRUE(layer.ok());
  EXPECT_DOUBLE_EQ(layer->GroupQNormSq(0), 9.0);
  EXPECT_DOUBLE_EQ(layer->GroupQNormSq(1), 4.0);
  // Without calibration: the config's constant, else the fallback 300 / head_dim.
  auto fallback = BitPolicy::Create(c, kShape, nullptr);
  EXPECT_DOUBLE_EQ(fallback->GroupQNormSq(0), 300.0 / 8.0);
  c.q_norm_sq = 2.0;
  auto constant = BitPolicy::Create(c, kShape, nullptr);
  EXPECT_DOUBLE_EQ(constant->GroupQNormSq(1), 2.0);
}

TEST(BitPolicyTest, AuthorsFormulaKeepsYoungKeysAtMax) {
  KvQuantConfig c;
  c.kind = KvKind::kKey;
  c.formula = BitsFormula::kAuthors;
  c.window = 3;
  c.q_norm_sq = 20.0;
  c.target = 5.0;
  auto policy = BitPolicy::Create(c, kShape);
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(*policy->GroupBits(9, 12, 0, 4.0, nullptr), *KeyBits(c, 4.0, 12, 20.0));
  EXPECT_EQ(*policy->GroupBits(10, 12, 0, 4.0, nullptr), 8);
  EXPECT_EQ(*policy->GroupBits(11, 12, 0, 4.0, nullptr), 8);
}

TEST(BitPolicyTest, UniformBitsAndErrors) {
  KvQuantConfig c = ValueConfig(Granularity::kHead);
  c.uniform_bits = 3;
  auto uniform = BitPolicy::Create(c, kShape);
  ASSERT_TRUE(uniform.ok());
  EXPECT_EQ(*uniform->GroupBits(0, 1, 0, 100.0, nullptr), 3);

  auto values = BitPolicy::Create(ValueConfig(Granularity::kHead), kShape);
  ASSERT_TRUE(values.ok());
  EXPECT_EQ(values->GroupBits(0, 4, 0, 1.0, nullptr).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(values->GroupBits(4, 4, 0, 1.0, nullptr).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(values->GroupBits(0, 4, 4, 1.0, nullptr).status().code(), StatusCode::kInvalidArgument);
  AttentionWindow other({3, 2, 4, 8}, 2);
  EXPECT_EQ(values->GroupBits(0, 4, 0, 1.0, &other).status().code(), StatusCode::kInvalidArgument);

  KvQuantConfig bad = ValueConfig(Granularity::kHead);
  bad.target = -1;
  EXPECT_FALSE(BitPolicy::Create(bad, kShape).ok());
  EXPECT_FALSE(BitPolicy::Create(ValueConfig(Granularity::kHead), {2, 3, 4, 8}).ok());  // 4 % 3 != 0
  QueryNormCalibration wrong_shape = QueryNormCalibration::Constant(5, 2, 1.0);
  EXPECT_FALSE(BitPolicy::Create(ValueConfig(Granularity::kHead), kShape, &wrong_shape).ok());
}

}  // namespace
}  // namespace qaq
