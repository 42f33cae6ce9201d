#include "kernels/half.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/for_each_target.h"

namespace qaq::internal {
namespace {

TEST(HalfTest, KnownValues) {
  EXPECT_EQ(FloatToHalfRef(1.0f), 0x3C00);
  EXPECT_EQ(FloatToHalfRef(-2.0f), 0xC000);
  EXPECT_EQ(FloatToHalfRef(0.1f), 0x2E66);
  EXPECT_EQ(FloatToHalfRef(65504.0f), 0x7BFF);        // largest finite half
  EXPECT_EQ(FloatToHalfRef(65519.0f), 0x7BFF);        // rounds down
  EXPECT_EQ(FloatToHalfRef(65520.0f), 0x7C00);        // the tie rounds to even: inf
  EXPECT_EQ(FloatToHalfRef(std::ldexp(1.0f, -24)), 0x0001);   // smallest subnormal
  EXPECT_EQ(FloatToHalfRef(std::ldexp(1.0f, -25)), 0x0000);   // tie between 0 and 2^-24: even
  EXPECT_EQ(FloatToHalfRef(std::ldexp(3.0f, -26)), 0x0001);   // above the tie
  EXPECT_EQ(FloatToHalfRef(std::ldexp(3.0f, -25)), 0x0002);   // tie 1.5 * 2^-24 -> 2
  EXPECT_EQ(FloatToHalfRef(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalfRef(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(FloatToHalfRef(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie: even mantissa stays
  EXPECT_EQ(FloatToHalfRef(1.0f + std::ldexp(3.0f, -11)), 0x3C02);  // tie: odd mantissa rounds up
  EXPECT_EQ(HalfToFloatRef(0x3555), 0.333251953125f);
  EXPECT_EQ(HalfToFloatRef(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloatRef(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_TRUE(std::isinf(HalfToFloatRef(0xFC00)));
  EXPECT_TRUE(std::isnan(HalfToFloatRef(0x7E00)));
  EXPECT_TRUE(std::isnan(HalfToFloatRef(FloatToHalfRef(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(HalfTest, EveryHalfRoundTrips) {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = HalfToFloatRef(std::uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToHalfRef(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(HalfTest, BulkConversionsMatchReference) {
  ForEachSimdTarget([&] {
    std::vector<std::uint16_t> halves(0x10000 + 3);
    for (std::size_t i = 0; i < halves.size(); ++i) halves[i] = std::uint16_t(i);
    std::vector<float> floats(halves.size());
    HalfToFloat(halves.data(), floats.data(), halves.size());
    for (std::size_t i = 0; i < halves.size(); ++i) {
      const float ref = HalfToFloatRef(halves[i]);
      if (std::isnan(ref)) {
        ASSERT_TRUE(std::isnan(floats[i]));
      } else {
        ASSERT_EQ(std::bit_cast<std::uint32_t>(floats[i]), std::bit_cast<std::uint32_t>(ref)) << i;
      }
    }

    // Random floats over the whole half range, including subnormals, ties and overflow.
    std::mt19937 rng(7);
    std::vector<float> in(100003);
    for (auto& f : in) {
      const std::uint32_t bits = (rng() & 0x80000000u) | (0x32000000u + rng() % (0x48000000u - 0x32000000u));
      f = std::bit_cast<float>(bits);
    }
    std::vector<std::uint16_t> out(in.size());
    FloatToHalf(in.data(), out.data(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], FloatToHalfRef(in[i])) << in[i];
  });
}

TEST(HalfTest, BFloat16) {
  EXPECT_EQ(FloatToBFloat16Ref(1.0f), 0x3F80);
  EXPECT_EQ(BFloat16ToFloatRef(0x3F80), 1.0f);
  EXPECT_EQ(BFloat16ToFloatRef(0xC040), -3.0f);
  EXPECT_EQ(FloatToBFloat16Ref(1.0f + std::ldexp(1.0f, -8)), 0x3F80);  // tie to even
  EXPECT_EQ(FloatToBFloat16Ref(1.0f + std::ldexp(3.0f, -8)), 0x3F82);
  EXPECT_TRUE(std::isnan(BFloat16ToFloatRef(FloatToBFloat16Ref(std::nanf("")))));
}

}  // namespace
}  // namespace qaq::internal
