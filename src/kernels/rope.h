// Rotary position embedding on adjacent pairs (x[2i], x[2i+1]) of each head, as llama2.c and
// GGML's "normal" (non-NeoX) rope: pair i of the first rope_dim values of a head is rotated by
// angle pos * theta^(-2i / rope_dim); values at or beyond rope_dim are left alone.
#pragma once

#include <vector>

namespace qaq::internal {

// Scalar reference: computes each angle with powf/cosf/sinf exactly as llama2.c's run.c does.
// x holds n_heads heads of head_dim values.
void RopeRef(float* x, int n_heads, int head_dim, int rope_dim, float theta, int pos);

// The same rotation from precomputed cos/sin values for positions 0..max_positions-1; bitwise
// equal to RopeRef (the table is filled with RopeRef's formula).
class RopeTable {
 public:
  RopeTable() = default;
  RopeTable(float theta, int rope_dim, int max_positions);

  void Apply(float* x, int n_heads, int head_dim, int pos) const;

  int rope_dim() const { return rope_dim_; }
  int max_positions() const { return max_positions_; }

 private:
  int rope_dim_ = 0;
  int max_positions_ = 0;
  std::vector<float> cos_sin_;  // [max_positions][rope_dim / 2][2]: cos, sin
};

}  // namespace qaq::internal
