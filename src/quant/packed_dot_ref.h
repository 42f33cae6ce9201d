// Scalar reference versions of the packed-code kernels in qaq/quant.h: plain loops that read one
// code at a time, the test oracle for the fast (SIMD) versions in packed_dot.cc.
#pragma once

#include <cstdint>

#include "qaq/quant.h"

namespace qaq::internal {

// m.offset * q_sum + m.scale * sum_i q[i] * c[i]   (pass-through: sum_i q[i] * fp16[i]).
float DotPackedRef(const float* q, float q_sum, const std::uint8_t* codes, int bits, AffineMeta m,
                   int n);
// out[i] += w * (m.offset + m.scale * c[i])         (pass-through: w * fp16[i]).
void AxpyPackedRef(float w, const std::uint8_t* codes, int bits, AffineMeta m, int n, float* out);

float DotF32Ref(const float* a, const float* b, int n);
float DotF16Ref(const float* a, const std::uint16_t* b_fp16, int n);

}  // namespace qaq::internal
