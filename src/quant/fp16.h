// IEEE 754 half precision (fp16) conversions with an explicit rounding direction.
//
// Group metadata is stored in 16 bits (QAQ-method.md §8). The codec rounds a group's minimum
// down and its maximum up, so that every value of the group still lies inside the stored range;
// the pass-through mode rounds to nearest. Nearest-even is kernels/half.h's scalar conversion
// (plain bit manipulation: the same result on every machine); this adds the directed roundings.
#pragma once

#include <cstdint>

namespace qaq::internal {

enum class Fp16Rounding {
  kNearestEven,  // IEEE default
  kDown,         // toward -infinity: the largest fp16 <= x
  kUp,           // toward +infinity: the smallest fp16 >= x
};

// Largest finite fp16 value.
inline constexpr float kFp16Max = 65504.0f;

std::uint16_t FloatToFp16(float x, Fp16Rounding rounding = Fp16Rounding::kNearestEven);
float Fp16ToFloat(std::uint16_t h);

// True for finite x with |x| <= kFp16Max: values the 16-bit metadata can bracket.
inline bool Fp16Representable(float x) { return x >= -kFp16Max && x <= kFp16Max; }

}  // namespace qaq::internal
