// Dense bit packing of codes: code i occupies bits [i*B, i*B + B) of a little-endian bit stream
// (bit j of byte k is stream bit 8k + j), so every 8 codes take exactly B bytes. The public
// PackCodes / UnpackCodes (qaq/quant.h) are specialised per width; ReadCode is the scalar
// accessor for single positions (outliers, tails).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace qaq::internal {

static_assert(std::endian::native == std::endian::little, "packed codes assume little-endian");

// The code at position i of a packed stream of `bits`-bit codes (bits 1..8).
inline unsigned ReadCode(const std::uint8_t* packed, int bits, std::size_t i) {
  const std::size_t bit = i * static_cast<std::size_t>(bits);
  const std::size_t byte = bit / 8;
  const unsigned shift = static_cast<unsigned>(bit % 8);
  // A code spans at most two bytes (shift <= 7, bits <= 8); read the second only if needed.
  unsigned window = packed[byte];
  if (shift + static_cast<unsigned>(bits) > 8) window |= static_cast<unsigned>(packed[byte + 1]) << 8;
  return (window >> shift) & ((1u << bits) - 1u);
}

// Bit-by-bit packing: the obviously correct reference the fast packers are tested against.
void PackCodesRef(const std::uint8_t* codes, std::size_t n, int bits, std::uint8_t* packed);

}  // namespace qaq::internal
