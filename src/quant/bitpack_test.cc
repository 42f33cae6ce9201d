#include "quant/bitpack.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "qaq/quant.h"

namespace qaq {
namespace {

TEST(BitpackTest, BytesForHandCounts) {
  EXPECT_EQ(BytesFor(8, 0), 0u);
  EXPECT_EQ(BytesFor(8, 1), 1u);
  EXPECT_EQ(BytesFor(8, 3), 3u);
  EXPECT_EQ(BytesFor(9, 3), 4u);    // 27 bits
  EXPECT_EQ(BytesFor(64, 5), 40u);
  EXPECT_EQ(BytesFor(1, 7), 1u);
  EXPECT_EQ(BytesFor(3, 7), 3u);    // 21 bits
  EXPECT_EQ(BytesFor(128, 8), 128u);
  EXPECT_EQ(BytesFor(0, 4), 0u);
  EXPECT_EQ(BytesFor(10, kPassThroughBits), 20u);
}

TEST(BitpackTest, KnownLayout) {
  // Codes 1, 2, 3 at 2 bits: bits 01 10 11 -> byte 0b00111001.
  const std::vector<std::uint8_t> codes = {1, 2, 3};
  std::uint8_t packed[1] = {0xff};
  PackCodes(codes, 2, packed);
  EXPECT_EQ(packed[0], 0x39);
  // 3-bit codes 5, 6, 7: 101 110 111 -> stream bits 0..8 = 1,0,1,0,1,1,1,1,1.
  const std::vector<std::uint8_t> c3 = {5, 6, 7};
  std::uint8_t p3[2] = {0xff, 0xff};
  PackCodes(c3, 3, p3);
  EXPECT_EQ(p3[0], 0xf5);
  EXPECT_EQ(p3[1], 0x01);  // padding bits are zero
}

// Every width, many lengths (tails of every size), random codes: the fast packer equals the
// bit-by-bit reference byte for byte, and unpacking returns the codes.
TEST(BitpackTest, RoundTripEveryWidth) {
  std::mt19937 rng(1);
  for (int bits = 1; bits <= kMaxCodeBits; ++bits) {
    std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
    for (std::size_t n : {1u, 2u, 7u, 8u, 9u, 15u, 16u, 17u, 63u, 64u, 127u, 128u, 1000u}) {
      std::vector<std::uint8_t> codes(n);
      for (auto& c : codes) c = static_cast<std::uint8_t>(code(rng));
      std::vector<std::uint8_t> fast(BytesFor(n, bits) + 1, 0xAB), ref(BytesFor(n, bits));
      PackCodes(codes, bits, fast.data());
      internal::PackCodesRef(codes.data(), n, bits, ref.data());
      ASSERT_EQ(std::vector<std::uint8_t>(fast.begin(), fast.end() - 1), ref) << bits << " " << n;
      EXPECT_EQ(fast.back(), 0xAB) << "wrote past BytesFor";
      std::vector<std::uint8_t> back(n, 0xff);
      UnpackCodes(fast.data(), bits, back);
      ASSERT_EQ(back, codes) << bits << " " << n;
      for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(internal::ReadCode(fast.data(), bits, i), codes[i]);
    }
  }
}

TEST(BitpackTest, ZeroBitsWritesNothingAndUnpacksZeros) {
  std::vector<std::uint8_t> codes(5, 0);
  std::uint8_t guard = 0x5a;
  PackCodes(codes, 0, &guard);
  EXPECT_EQ(guard, 0x5a);
  std::vector<std::uint8_t> back(5, 9);
  UnpackCodes(&guard, 0, back);
  EXPECT_EQ(back, codes);
}

}  // namespace
}  // namespace qaq
