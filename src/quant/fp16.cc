#include "quant/fp16.h"

#include <bit>
#include <cmath>

namespace qaq::internal {
namespace {

std::uint16_t NearestEven(float x) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const std::uint16_t sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t abs_bits = bits & 0x7fffffffu;
  if (abs_bits >= 0x7f800000u) {  // Inf or NaN (NaN stays a quiet NaN)
    return static_cast<std::uint16_t>(sign | (abs_bits > 0x7f800000u ? 0x7e00u : 0x7c00u));
  }
  if (abs_bits >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520
  if (abs_bits < 0x38800000u) {
    // Below the smallest normal fp16 (2^-14): a subnormal in units of 2^-24. Scaling by 2^24 is
    // exact, and nearbyint rounds half to even in the default floating-point environment.
    const float scaled = std::bit_cast<float>(abs_bits) * 16777216.0f;
    return static_cast<std::uint16_t>(sign | static_cast<std::uint32_t>(std::nearbyint(scaled)));
  }
  // Normal: rebias the exponent (127 -> 15) and round the mantissa from 23 to 10 bits. A carry
  // out of the mantissa correctly increments the exponent.
  const std::uint32_t rebiased = abs_bits - (112u << 23);
  std::uint32_t h = rebiased >> 13;
  const std::uint32_t rest = rebiased & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<std::uint16_t>(sign | h);
}

// The next fp16 toward +infinity (h is not NaN and not +Inf).
std::uint16_t StepUp(std::uint16_t h) {
  if ((h & 0x7fffu) == 0) return 0x0001;                            // +-0 -> smallest positive
  return static_cast<std::uint16_t>((h & 0x8000u) ? h - 1 : h + 1);  // magnitude down or up
}

// The next fp16 toward -infinity (h is not NaN and not -Inf).
std::uint16_t StepDown(std::uint16_t h) {
  if ((h & 0x7fffu) == 0) return 0x8001;
  return static_cast<std::uint16_t>((h & 0x8000u) ? h + 1 : h - 1);
}

}  // namespace

std::uint16_t FloatToFp16(float x, Fp16Rounding rounding) {
  std::uint16_t h = NearestEven(x);
  if (rounding == Fp16Rounding::kNearestEven || std::isnan(x)) return h;
  const float back = Fp16ToFloat(h);
  if (rounding == Fp16Rounding::kDown && back > x) h = StepDown(h);
  if (rounding == Fp16Rounding::kUp && back < x) h = StepUp(h);
  return h;
}

float Fp16ToFloat(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

}  // namespace qaq::internal
