// Conversions between fp32 and the 16-bit float formats used by weights and KV caches.
//
// fp16 is IEEE binary16; bf16 is the upper half of an fp32. fp32 -> 16-bit rounds to nearest,
// ties to even (what F16C's vcvtps2ph and llama.cpp do); 16-bit -> fp32 is exact.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qaq::internal {

// Scalar references (the test oracle), exact for every input including subnormals, inf and NaN.
float HalfToFloatRef(std::uint16_t h);
std::uint16_t FloatToHalfRef(float f);
float BFloat16ToFloatRef(std::uint16_t b);
std::uint16_t FloatToBFloat16Ref(float f);

// Bulk conversions (SIMD where available); same results as the references.
void HalfToFloat(const std::uint16_t* in, float* out, std::size_t n);
void FloatToHalf(const float* in, std::uint16_t* out, std::size_t n);

}  // namespace qaq::internal
