// The key formula's |q~|^2 measured on the sequence itself (calib=prompt, the default when no
// calibration file is given, and calib=prompt-heads; QAQ-method.md §2): the cache sees every
// query in Scores, so it keeps |q~|^2 of the first kPromptCalibrationPositions positions (per
// layer and KV head, the maximum over the query heads that share it, as QueryNormCalibration
// expects) and turns them into a QueryNormCalibration at the end of a step.
#pragma once

#include <span>
#include <vector>

#include "qaq/quant.h"
#include "qaq/status.h"

namespace qaq::internal {

class PromptQueryNorms {
 public:
  PromptQueryNorms(int n_layers, int n_kv_heads, int max_positions, double quantile);

  int max_positions() const { return max_positions_; }
  // Positions measured so far (the cache's tokens, up to max_positions).
  int positions() const { return positions_; }
  // Whether the calibration is final (max_positions positions measured). Records stop then.
  bool complete() const { return positions_ >= max_positions_; }

  // Makes room for positions < n of every layer (Append; one thread).
  void Reserve(int n);
  // Records the query at `pos` (the last token a score row reaches). Safe to call concurrently
  // for different query heads, as Scores is.
  void Record(int layer, int kv_head, int pos, std::span<const float> q) const;
  // The calibration over positions < n (n clamped to max_positions): per (layer, KV head), or
  // one value for all of them from every sample pooled. kInvalidArgument when a quantile is 0
  // (every query zero), which the key formula cannot use.
  StatusOr<QueryNormCalibration> Calibrate(int n, bool per_head);
  // Forgets positions >= n (n = 0: a new sequence).
  void Truncate(int n);

 private:
  int n_layers_, n_kv_heads_, max_positions_;
  double quantile_;
  int positions_ = 0;
  int reserved_ = 0;
  // [layer][pos * n_kv_heads + kv_head], written through std::atomic_ref by concurrent Records.
  mutable std::vector<std::vector<float>> norms_;
};

}  // namespace qaq::internal
