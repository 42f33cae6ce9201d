#include "quant/fp16.h"

#include <cmath>

#include "kernels/half.h"

namespace qaq::internal {
namespace {

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
  std::uint16_t h = FloatToHalfRef(x);
  if (rounding == Fp16Rounding::kNearestEven || std::isnan(x)) return h;
  const float back = Fp16ToFloat(h);
  if (rounding == Fp16Rounding::kDown && back > x) h = StepDown(h);
  if (rounding == Fp16Rounding::kUp && back < x) h = StepUp(h);
  return h;
}

float Fp16ToFloat(std::uint16_t h) { return HalfToFloatRef(h); }

}  // namespace qaq::internal
