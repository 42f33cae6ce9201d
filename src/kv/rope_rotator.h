// Rotating one head's key by RoPE in either direction, for caches that quantize keys before RoPE
// (FINDINGS.md: about half the key error at equal bits). Such a cache scores token t as
//   q . R_t k_t = (R_t^T q) . k_t,
// i.e. it rotates the (already rotated) query back by t and takes the dot product with the
// stored, unrotated key, so the packed kernels still run on codes.
//
// The angles are taken from kernels/rope.h's table, so the forward rotation is bit for bit the
// one the fp32/fp16 caches apply.
#pragma once

#include <vector>

#include "kernels/rope.h"

namespace qaq::internal {

class RopeRotator {
 public:
  RopeRotator() = default;
  RopeRotator(float theta, int rope_dim, int head_dim, int max_positions);

  int head_dim() const { return head_dim_; }
  // out = R_pos x (one head; out may alias x).
  void Rotate(const float* x, int pos, float* out) const;
  // out = R_pos^T x = R_{-pos} x.
  void Unrotate(const float* x, int pos, float* out) const;

 private:
  int head_dim_ = 0;
  int rope_dim_ = 0;
  std::vector<float> cos_sin_;  // [position][rope_dim / 2][cos, sin]
};

}  // namespace qaq::internal
