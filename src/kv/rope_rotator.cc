#include "kv/rope_rotator.h"

#include <algorithm>

#include "core/check.h"

namespace qaq::internal {

RopeRotator::RopeRotator(float theta, int rope_dim, int head_dim, int max_positions)
    : head_dim_(head_dim), rope_dim_(rope_dim) {
  QAQ_CHECK(rope_dim >= 0 && rope_dim % 2 == 0 && rope_dim <= head_dim && max_positions >= 0);
  const RopeTable table(theta, rope_dim, max_positions);
  // Rotating (1, 0) gives (1 c - 0 s, 1 s + 0 c) = (c, s) exactly: the table's own angles.
  std::vector<float> unit(std::size_t(rope_dim == 0 ? 0 : head_dim_));
  cos_sin_.resize(std::size_t(max_positions) * std::size_t(rope_dim));
  for (int pos = 0; pos < max_positions && rope_dim > 0; ++pos) {
    for (int i = 0; i < head_dim_; ++i) unit[std::size_t(i)] = i % 2 == 0 ? 1.0f : 0.0f;
    table.Apply(unit.data(), 1, head_dim_, pos);
    std::copy(unit.begin(), unit.begin() + rope_dim, cos_sin_.begin() + std::ptrdiff_t(pos) * rope_dim);
  }
}

void RopeRotator::Rotate(const float* x, int pos, float* out) const {
  const float* cs = cos_sin_.data() + std::size_t(pos) * std::size_t(rope_dim_);
  for (int i = 0; i < rope_dim_; i += 2) {
    const float c = cs[i], s = cs[i + 1], v0 = x[i], v1 = x[i + 1];
    out[i] = v0 * c - v1 * s;
    out[i + 1] = v0 * s + v1 * c;
  }
  if (out != x) std::copy(x + rope_dim_, x + head_dim_, out + rope_dim_);
}

void RopeRotator::Unrotate(const float* x, int pos, float* out) const {
  const float* cs = cos_sin_.data() + std::size_t(pos) * std::size_t(rope_dim_);
  for (int i = 0; i < rope_dim_; i += 2) {
    const float c = cs[i], s = cs[i + 1], v0 = x[i], v1 = x[i + 1];
    out[i] = v0 * c + v1 * s;
    out[i + 1] = v1 * c - v0 * s;
  }
  if (out != x) std::copy(x + rope_dim_, x + head_dim_, out + rope_dim_);
}

}  // namespace qaq::internal
