// Scalar fp16/bf16 conversions: bit manipulation, independent of the CPU's conversion units.
#include <bit>
#include <cstdint>

#include "kernels/half.h"

namespace qaq::internal {

float HalfToFloatRef(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu;
  std::uint32_t mantissa = h & 0x3FFu;
  std::uint32_t bits;
  if (exponent == 0x1F) {  // inf or NaN: keep the payload
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal: normalise the mantissa
    int e = -1;
    do {
      ++e;
      mantissa <<= 1;
    } while ((mantissa & 0x400u) == 0);
    bits = sign | std::uint32_t(112 - e) << 23 | ((mantissa & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

std::uint16_t FloatToHalfRef(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = std::uint16_t((x >> 16) & 0x8000u);
  const std::uint32_t abs = x & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) {  // inf or NaN (NaN stays quiet NaN)
    return std::uint16_t(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u | ((abs >> 13) & 0x3FFu) : 0u));
  }
  if (abs >= 0x477FF000u) return std::uint16_t(sign | 0x7C00u);  // rounds to >= 65520: inf
  if (abs >= 0x38800000u) {  // normal half (|f| >= 2^-14)
    const std::uint32_t mantissa = abs & 0x7FFFFFu;
    std::uint32_t h = ((abs >> 23) - 112) << 10 | (mantissa >> 13);
    const std::uint32_t rest = mantissa & 0x1FFFu;  // dropped bits: round to nearest even
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent
    return std::uint16_t(sign | h);
  }
  if (abs < 0x33000000u) return sign;  // below half the smallest subnormal (2^-25): zero
  // Subnormal half: value = m * 2^-24 with m = round(|f| * 2^24).
  const std::uint32_t exponent = abs >> 23;          // 102..112
  const std::uint32_t mantissa = (abs & 0x7FFFFFu) | 0x800000u;
  const std::uint32_t shift = 126 - exponent;        // 14..24
  std::uint32_t h = mantissa >> shift;
  const std::uint32_t rest = mantissa & ((1u << shift) - 1);
  const std::uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (h & 1u))) ++h;
  return std::uint16_t(sign | h);
}

float BFloat16ToFloatRef(std::uint16_t b) { return std::bit_cast<float>(std::uint32_t(b) << 16); }

std::uint16_t FloatToBFloat16Ref(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return std::uint16_t((x >> 16) | 0x40u);  // quiet NaN
  const std::uint32_t rounding = 0x7FFFu + ((x >> 16) & 1u);
  return std::uint16_t((x + rounding) >> 16);
}

}  // namespace qaq::internal
