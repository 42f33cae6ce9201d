#include "kernels/rope.h"

#include <cmath>

#include "core/check.h"

namespace qaq::internal {
namespace {

// llama2.c: freq = 1 / theta^(2i / rope_dim), angle = pos * freq, all in float.
void Angle(float theta, int rope_dim, int pair, int pos, float* cos_out, float* sin_out) {
  const float freq = 1.0f / std::pow(theta, float(2 * pair) / float(rope_dim));
  const float angle = float(pos) * freq;
  *cos_out = std::cos(angle);
  *sin_out = std::sin(angle);
}

}  // namespace

void RopeRef(float* x, int n_heads, int head_dim, int rope_dim, float theta, int pos) {
  for (int h = 0; h < n_heads; ++h) {
    float* head = x + h * head_dim;
    for (int i = 0; i < rope_dim / 2; ++i) {
      float c, s;
      Angle(theta, rope_dim, i, pos, &c, &s);
      const float v0 = head[2 * i], v1 = head[2 * i + 1];
      head[2 * i] = v0 * c - v1 * s;
      head[2 * i + 1] = v0 * s + v1 * c;
    }
  }
}

RopeTable::RopeTable(float theta, int rope_dim, int max_positions)
    : rope_dim_(rope_dim), max_positions_(max_positions) {
  QAQ_CHECK(rope_dim >= 0 && rope_dim % 2 == 0 && max_positions >= 0);
  const int pairs = rope_dim / 2;
  cos_sin_.resize(std::size_t(max_positions) * pairs * 2);
  for (int pos = 0; pos < max_positions; ++pos) {
    for (int i = 0; i < pairs; ++i) {
      float* cs = &cos_sin_[(std::size_t(pos) * pairs + i) * 2];
      Angle(theta, rope_dim, i, pos, &cs[0], &cs[1]);
    }
  }
}

void RopeTable::Apply(float* x, int n_heads, int head_dim, int pos) const {
  QAQ_DCHECK(pos >= 0 && pos < max_positions_);
  const int pairs = rope_dim_ / 2;
  const float* cs = &cos_sin_[std::size_t(pos) * pairs * 2];
  for (int h = 0; h < n_heads; ++h) {
    float* head = x + h * head_dim;
    for (int i = 0; i < pairs; ++i) {
      const float c = cs[2 * i], s = cs[2 * i + 1];
      const float v0 = head[2 * i], v1 = head[2 * i + 1];
      head[2 * i] = v0 * c - v1 * s;
      head[2 * i + 1] = v0 * s + v1 * c;
    }
  }
}

}  // namespace qaq::internal
