#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "qaq/quant.h"

namespace qaq {
namespace {

KvQuantConfig Config(KvKind kind, BitsFormula formula, double target) {
  KvQuantConfig c;
  c.kind = kind;
  c.formula = formula;
  c.target = target;
  c.bits_min = 0;
  c.bits_max = 8;
  return c;
}

int Value(BitsFormula f, double target, double range, int n_tokens, double attention) {
  auto bits = ValueBits(Config(KvKind::kValue, f, target), range, n_tokens, attention);
  EXPECT_TRUE(bits.ok()) << bits.status().message();
  return bits.ok() ? *bits : -1;
}

int Key(BitsFormula f, double target, double range, int n_tokens, double q_norm_sq) {
  auto bits = KeyBits(Config(KvKind::kKey, f, target), range, n_tokens, q_norm_sq);
  EXPECT_TRUE(bits.ok()) << bits.status().message();
  return bits.ok() ? *bits : -1;
}

// §1 + §3 by hand. paper: B = ceil(log2(range / (2 sqrt3 sigma))); authors:
// B = ceil(log2(range / (4 sqrt3 sigma) + 1)); sigma = target / (sqrt(T) S).
TEST(BitFormulasTest, ValueBitsByHand) {
  // sigma = 0.01 / (10 * 0.05) = 0.02. paper: 2 / 0.069282 = 28.87, log2 4.85 -> 5.
  // authors: 2 / 0.138564 + 1 = 15.43, log2 3.95 -> 4.
  EXPECT_DOUBLE_EQ(ValueSigma(0.01, 100, 0.05), 0.02);
  EXPECT_EQ(Value(BitsFormula::kPaper, 0.01, 2.0, 100, 0.05), 5);
  EXPECT_EQ(Value(BitsFormula::kAuthors, 0.01, 2.0, 100, 0.05), 4);
  // strict: 2 / 0.04 = 50, log2 5.64 -> 6 (paper's 28.87 times sqrt3).
  EXPECT_EQ(Value(BitsFormula::kStrict, 0.01, 2.0, 100, 0.05), 6);
  // sigma = 0.1 / (4 * 0.5) = 0.05. paper: 5.77 -> 2.53 -> 3; authors: 3.89 -> 1.96 -> 2.
  EXPECT_EQ(Value(BitsFormula::kPaper, 0.1, 1.0, 16, 0.5), 3);
  EXPECT_EQ(Value(BitsFormula::kAuthors, 0.1, 1.0, 16, 0.5), 2);
  EXPECT_EQ(Value(BitsFormula::kStrict, 0.1, 1.0, 16, 0.5), 4);  // 10 -> 3.32 -> 4
  // sigma = 0.002 / (sqrt(50) 0.02) = 0.014142. paper: 61.2 -> 5.94 -> 6; authors 4.98 -> 5.
  EXPECT_EQ(Value(BitsFormula::kPaper, 0.002, 3.0, 50, 0.02), 6);
  EXPECT_EQ(Value(BitsFormula::kAuthors, 0.002, 3.0, 50, 0.02), 5);
  // sigma = 0.2 / (2 * 0.25) = 0.4. paper: 0.36 -> -1.47 -> clamped to 0; authors: 1.18 -> 0.24 -> 1
  // (the "+1" makes 0 bits almost impossible in the authors' formula).
  EXPECT_EQ(Value(BitsFormula::kPaper, 0.2, 0.5, 4, 0.25), 0);
  EXPECT_EQ(Value(BitsFormula::kAuthors, 0.2, 0.5, 4, 0.25), 1);
  EXPECT_EQ(Value(BitsFormula::kStrict, 0.2, 0.5, 4, 0.25), 0);  // 0.625 -> -0.68 -> 0
  // sigma = 0.001 / sqrt(1000) = 3.16e-5: 16.5 bits needed, clamped to 8 in both.
  EXPECT_EQ(Value(BitsFormula::kPaper, 0.001, 10.0, 1000, 1.0), 8);
  EXPECT_EQ(Value(BitsFormula::kAuthors, 0.001, 10.0, 1000, 1.0), 8);
}

// §2 + §3 by hand: sigma^2 = ln(T^3 / (T - 1) target^2 + 1) / |q~|^2.
TEST(BitFormulasTest, KeyBitsByHand) {
  // T^3/(T-1) = 262144/63 = 4161.0, * 1e-4 + 1 = 1.41610, ln = 0.347916, / 4, sqrt: 0.294919.
  EXPECT_NEAR(KeySigma(0.01, 64, 4.0), 0.2949185, 1e-6);
  // paper: 3 / (2 sqrt3 0.294919) = 2.936 -> 1.55 -> 2; authors: 1.468 + 1 -> 1.30 -> 2.
  EXPECT_EQ(Key(BitsFormula::kPaper, 0.01, 3.0, 64, 4.0), 2);
  EXPECT_EQ(Key(BitsFormula::kAuthors, 0.01, 3.0, 64, 4.0), 2);
  // sigma = 0.107986: paper 13.37 -> 3.74 -> 4; authors 6.68 + 1 -> 2.94 -> 3.
  EXPECT_EQ(Key(BitsFormula::kPaper, 0.001, 5.0, 512, 20.0), 4);
  EXPECT_EQ(Key(BitsFormula::kAuthors, 0.001, 5.0, 512, 20.0), 3);
  // T = 2: T^3/(T-1) = 8, ln(1.08) = 0.076961, sigma = 0.277419: paper 1.04 -> 0.057 -> 1;
  // authors 0.52 + 1 -> 0.60 -> 1.
  EXPECT_NEAR(KeySigma(0.1, 2, 1.0), std::sqrt(std::log(1.08)), 1e-12);
  EXPECT_EQ(Key(BitsFormula::kPaper, 0.1, 1.0, 2, 1.0), 1);
  EXPECT_EQ(Key(BitsFormula::kAuthors, 0.1, 1.0, 2, 1.0), 1);
}

TEST(BitFormulasTest, ExactPowersOfTwo) {
  // range / (2 sqrt3 sigma) = 4 exactly (sigma chosen so): ceil(log2 4) = 2, not 3.
  const double sigma = 1.0 / (8.0 * std::sqrt(3.0));
  EXPECT_EQ(BitsForSigma(1.0, sigma, 0, 8, BitsFormula::kPaper), 2);
  // Authors: range / (4 sqrt3 sigma) + 1 = 3 + 1 = 4 with sigma = 1 / (12 sqrt3).
  EXPECT_EQ(BitsForSigma(1.0, 1.0 / (12.0 * std::sqrt(3.0)), 0, 8, BitsFormula::kAuthors), 2);
}

TEST(BitFormulasTest, GuardsAndDocumentedRules) {
  const KvQuantConfig v = Config(KvKind::kValue, BitsFormula::kPaper, 0.05);
  const KvQuantConfig k = Config(KvKind::kKey, BitsFormula::kPaper, 0.05);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  // Range 0: nothing to quantize, B_min.
  EXPECT_EQ(*ValueBits(v, 0.0, 10, 0.5), 0);
  EXPECT_EQ(*KeyBits(k, 0.0, 10, 2.0), 0);
  // Attention 0 or denormal: sigma infinite or huge, B_min; no overflow.
  EXPECT_EQ(*ValueBits(v, 5.0, 10, 0.0), 0);
  EXPECT_EQ(*ValueBits(v, 5.0, 10, 1e-40), 0);
  EXPECT_EQ(*ValueBits(v, 5.0, 10, static_cast<double>(std::numeric_limits<float>::denorm_min())), 0);
  EXPECT_EQ(ValueSigma(0.05, 10, 0.0), inf);
  // T = 1: one key, softmax is 1 whatever the key: B_min. Values at T = 1 follow §1.
  EXPECT_EQ(KeySigma(0.05, 1, 2.0), inf);
  EXPECT_EQ(*KeyBits(k, 5.0, 1, 2.0), 0);
  // sigma = 0.05 / (1 * 1): 5 / 0.1732 = 28.9 -> log2 4.85 -> 5.
  EXPECT_EQ(*ValueBits(v, 5.0, 1, 1.0), 5);
  // NaN / Inf / negative inputs and T < 1 are errors naming the input.
  EXPECT_EQ(ValueBits(v, nan, 10, 0.5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValueBits(v, inf, 10, 0.5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValueBits(v, -1.0, 10, 0.5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValueBits(v, 1.0, 10, nan).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValueBits(v, 1.0, 10, inf).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValueBits(v, 1.0, 10, -0.1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValueBits(v, 1.0, 0, 0.5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(KeyBits(k, 1.0, 10, nan).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(KeyBits(k, 1.0, 10, 0.0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(KeyBits(k, 1.0, 10, inf).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(KeyBits(k, nan, 10, 1.0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(KeyBits(k, 1.0, -3, 1.0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ValueBits(v, nan, 10, 0.5).status().message().find("range"), std::string::npos);
}

TEST(BitFormulasTest, ClampsToConfiguredRange) {
  KvQuantConfig v = Config(KvKind::kValue, BitsFormula::kPaper, 0.01);
  v.bits_min = 2;
  v.bits_max = 4;
  EXPECT_EQ(*ValueBits(v, 2.0, 100, 0.05), 4);  // 5 unclamped
  EXPECT_EQ(*ValueBits(v, 2.0, 100, 0.0), 2);   // B_min
  EXPECT_EQ(*ValueBits(v, 1.0, 16, 0.005), 2);
}

}  // namespace
}  // namespace qaq
