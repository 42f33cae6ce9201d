#include "quant/packed_dot_ref.h"

#include <cstring>

#include "core/check.h"
#include "quant/bitpack.h"
#include "quant/fp16.h"
#include "quant/channel_dot.h"
#include "quant/rotated_dot.h"

namespace qaq::internal {
namespace {

float Fp16At(const std::uint8_t* codes, int i) {
  std::uint16_t h;
  std::memcpy(&h, codes + 2 * i, 2);
  return Fp16ToFloat(h);
}

}  // namespace

float DotPackedRef(const float* q, float q_sum, const std::uint8_t* codes, int bits, AffineMeta m,
                   int n) {
  QAQ_CHECK(IsValidBits(bits), "bit width {}", bits);
  if (bits == kPassThroughBits) {
    float sum = 0.0f;
    for (int i = 0; i < n; ++i) sum += q[i] * Fp16At(codes, i);
    return sum;
  }
  float qc = 0.0f;
  for (int i = 0; bits > 0 && i < n; ++i) {
    qc += q[i] * static_cast<float>(ReadCode(codes, bits, static_cast<std::size_t>(i)));
  }
  return m.offset * q_sum + m.scale * qc;
}

void AxpyPackedRef(float w, const std::uint8_t* codes, int bits, AffineMeta m, int n, float* out) {
  QAQ_CHECK(IsValidBits(bits), "bit width {}", bits);
  for (int i = 0; i < n; ++i) {
    if (bits == kPassThroughBits) {
      out[i] += w * Fp16At(codes, i);
    } else {
      const unsigned c = bits == 0 ? 0 : ReadCode(codes, bits, static_cast<std::size_t>(i));
      out[i] += w * (m.offset + m.scale * static_cast<float>(c));
    }
  }
}

float DotF32Ref(const float* a, const float* b, int n) {
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float DotF16Ref(const float* a, const std::uint16_t* b_fp16, int n) {
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) sum += a[i] * Fp16ToFloat(b_fp16[i]);
  return sum;
}

}  // namespace qaq::internal

namespace qaq::internal {

float DotRotatedRowRef(const float* a, const float* b, const float* cos, const float* sin, const float* scale,
                       const float* offset, const std::uint8_t* codes, int bits, int n) {
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float w = cos[i] * a[i] + sin[i] * b[i];
    const float c = bits == 0 ? 0.0f : static_cast<float>(ReadCode(codes, bits, static_cast<std::size_t>(i)));
    sum += w * (offset[i] + scale[i] * c);
  }
  return sum;
}

float DotChannelRowRef(const float* q, const GroupMeta* channel_metas, const std::uint8_t* codes, int bits, int n) {
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) {
    const AffineMeta m = AffineFromMeta(channel_metas[i], bits);
    const float c = bits == 0 ? 0.0f : static_cast<float>(ReadCode(codes, bits, static_cast<std::size_t>(i)));
    sum += q[i] * (m.offset + m.scale * c);
  }
  return sum;
}

}  // namespace qaq::internal
