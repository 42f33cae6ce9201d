#include "quant/fp16.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include <gtest/gtest.h>
#include <immintrin.h>

namespace qaq::internal {
namespace {

bool IsNan(std::uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

TEST(Fp16Test, EveryHalfRoundTripsInAllModes) {
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<std::uint16_t>(i);
    if (IsNan(h)) continue;
    const float f = Fp16ToFloat(h);
    EXPECT_EQ(FloatToFp16(f), h) << i;
    EXPECT_EQ(FloatToFp16(f, Fp16Rounding::kDown), h) << i;
    EXPECT_EQ(FloatToFp16(f, Fp16Rounding::kUp), h) << i;
  }
}

TEST(Fp16Test, KnownValues) {
  EXPECT_EQ(FloatToFp16(1.0f), 0x3c00);
  EXPECT_EQ(FloatToFp16(-2.0f), 0xc000);
  EXPECT_EQ(FloatToFp16(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToFp16(65519.0f), 0x7bff);  // below the halfway point to 65536
  EXPECT_EQ(FloatToFp16(65520.0f), 0x7c00);  // rounds to +Inf
  EXPECT_EQ(FloatToFp16(1e9f, Fp16Rounding::kDown), 0x7bff);
  EXPECT_EQ(FloatToFp16(-1e9f, Fp16Rounding::kUp), 0xfbff);
  EXPECT_EQ(FloatToFp16(5.9604644775390625e-8f), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToFp16(1e-9f, Fp16Rounding::kUp), 0x0001);
  EXPECT_EQ(FloatToFp16(1e-9f, Fp16Rounding::kDown), 0x0000);
  EXPECT_EQ(FloatToFp16(-1e-9f, Fp16Rounding::kDown), 0x8001);
  EXPECT_EQ(Fp16ToFloat(FloatToFp16(0.1f, Fp16Rounding::kDown)), 0.0999755859375f);
  EXPECT_EQ(Fp16ToFloat(FloatToFp16(0.1f, Fp16Rounding::kUp)), 0.10003662109375f);
  EXPECT_TRUE(std::isnan(Fp16ToFloat(FloatToFp16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(Fp16ToFloat(FloatToFp16(std::numeric_limits<float>::infinity())),
            std::numeric_limits<float>::infinity());
}

// Directed rounding brackets x with adjacent fp16 values; nearest picks the closer one.
TEST(Fp16Test, DirectedRoundingBracketsRandomFloats) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> exponent(-30, 17);
  std::uniform_real_distribution<float> mantissa(-2.0f, 2.0f);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::ldexp(mantissa(rng), exponent(rng));
    if (!Fp16Representable(x)) continue;
    const float down = Fp16ToFloat(FloatToFp16(x, Fp16Rounding::kDown));
    const float up = Fp16ToFloat(FloatToFp16(x, Fp16Rounding::kUp));
    const float nearest = Fp16ToFloat(FloatToFp16(x));
    ASSERT_LE(down, x);
    ASSERT_GE(up, x);
    if (down == up) {
      ASSERT_EQ(down, x);
    } else {
      // Adjacent: nothing representable strictly between.
      const std::uint16_t hd = FloatToFp16(down);
      ASSERT_EQ(FloatToFp16(up, Fp16Rounding::kUp), FloatToFp16(up));
      ASSERT_TRUE(std::abs(down - x) > 0 && std::abs(up - x) > 0);
      (void)hd;
    }
    ASSERT_LE(std::abs(nearest - x), std::min(x - down, up - x));
  }
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) std::uint16_t HardwareFp16(float x) {
  return static_cast<std::uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) std::uint16_t HardwareFp16Down(float x) {
  return static_cast<std::uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEG_INF));
}
__attribute__((target("f16c"))) std::uint16_t HardwareFp16Up(float x) {
  return static_cast<std::uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_POS_INF));
}

// The F16C instruction is an independent oracle for all three rounding directions.
TEST(Fp16Test, MatchesF16cHardware) {
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "no F16C on this CPU";
  std::mt19937 rng(11);
  std::uniform_int_distribution<std::uint32_t> bits;
  for (int i = 0; i < 1000000; ++i) {
    const float x = std::bit_cast<float>(bits(rng));
    if (std::isnan(x)) continue;
    ASSERT_EQ(FloatToFp16(x), HardwareFp16(x)) << x;
    if (!Fp16Representable(x)) continue;  // hardware overflows directed modes differently
    ASSERT_EQ(FloatToFp16(x, Fp16Rounding::kDown), HardwareFp16Down(x)) << x;
    ASSERT_EQ(FloatToFp16(x, Fp16Rounding::kUp), HardwareFp16Up(x)) << x;
  }
}
#endif

}  // namespace
}  // namespace qaq::internal
