// The bit width every group of a quantized cache should have now, for the three quantized
// backends:
//   uniform  keys at key_bits, values at value_bits, always;
//   kivi     keys (per-channel blocks) at B; values at B except the `residual` most recent tokens,
//            which stay fp16;
//   qaq      QAQ-method.md: values from §1 with the attention window of §5 (young tokens at
//            B_max), per-token keys from §2 (T and the group's range), per-channel key blocks from
//            §2 with the block's largest channel range. The formulas are those of qaq/quant.h
//            (BitPolicy); nothing here re-derives them.
// The planner only decides; the cache moves the groups (kv/quantized_cache.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "kv/index_vector.h"
#include "qaq/kv_cache.h"
#include "qaq/kv_config.h"
#include "qaq/quant.h"

namespace qaq::internal {

class BitPlanner {
 public:
  // calibration may be null (the fallback |q~|^2).
  static StatusOr<BitPlanner> Create(const KvCacheConfig& config, const KvCacheShape& shape,
                                     const QueryNormCalibration* calibration);

  const KvCacheConfig& config() const { return config_; }
  // The targets in use (qaq; after SetTargets in budget mode).
  double key_error() const { return key_error_; }
  double value_error() const { return value_error_; }
  Status SetTargets(double key_error, double value_error);
  // Replaces the |q~|^2 calibration (null: the authors' constant); it must outlive the planner
  // or the next call.
  Status SetCalibration(const QueryNormCalibration* calibration);
  const QueryNormCalibration* calibration() const { return calibration_; }
  // Budget mode: every key group gets floor(shift + d) bits fewer than its formula gives (never
  // below B_min), d in [0, 1) a fixed per-group dither, so that a fractional shift lowers the
  // widths of that fraction of the groups and the cache's size changes smoothly with it.
  void SetKeyShift(double shift) { key_shift_ = shift; }
  double key_shift() const { return key_shift_; }

  // Whether values need the attention window (qaq with a value policy).
  bool needs_window() const;

  // Bits for group `unit` (numbered as BitPolicy's groups) of `token` in a cache of n_tokens
  // tokens; range is the group's stored range. window: the attention window (qaq values).
  int TokenBits(KvKind kind, int unit, int token, int n_tokens, double range, const AttentionWindow* window) const;
  // The fast form of TokenBits for the per-step update: BeginStep once per EndStep, BeginUnit
  // once per unit and kind, then UnitTokenBits for each group with its current width. The
  // results are TokenBits' (tested): a group whose width still satisfies the formula's bounds
  // keeps it after two comparisons, without a logarithm; the others go through TokenBits.
  void BeginStep(int n_tokens, const AttentionWindow* window);
  void BeginUnit(KvKind kind, int unit);
  // can_rise false (no full-precision tier): the caller keeps min(result, current), so a group
  // whose formula asks for more than `current` keeps `current` without the exact evaluation.
  int UnitTokenBits(int token, double range, int current, bool can_rise = true) const {
    if (unit_fast_ && current >= config_.bits_min && current <= config_.bits_max) {
      double y;  // B = ceil(log2(y)), §3 (FormulaTerms)
      if (unit_kind_ == KvKind::kKey) {
        if (authors_ && step_tokens_ - token < config_.window) return config_.bits_max;  // authors' young keys
        y = range * unit_scale_;
      } else {
        if (unit_young_[std::size_t(token)]) return config_.bits_max;  // §5
        y = range * double(unit_max_[std::size_t(token)]) * unit_scale_;
      }
      y += unit_offset_;
      if (y > lower_[current] && (y <= upper_[current] || !can_rise)) return current;
    }
    return ExactUnitTokenBits(token, range);
  }

  // The slots of one arena (of the unit begun, all at width `current`, with these tokens and
  // stored ranges) whose width may change: every other slot's UnitTokenBits is `current`. Much
  // faster than asking UnitTokenBits for each slot (one multiply-add and two comparisons per
  // slot in a loop without calls).
  void UnitCandidates(const IndexVector& tokens, const float* ranges, int current, bool can_rise,
                      std::vector<std::uint32_t>& slots) const;

  // Bits for the per-channel key block of (layer, kv_head) starting at first_token, with the given
  // range (its largest channel range).
  int BlockBits(int layer, int kv_head, int first_token, int n_tokens, double range) const;

 private:
  BitPlanner() = default;
  Status MakePolicies();
  int Shifted(int bits, int unit, int token) const;
  int ExactUnitTokenBits(int token, double range) const;

  KvCacheConfig config_;
  KvCacheShape shape_;
  const QueryNormCalibration* calibration_ = nullptr;
  double key_error_ = 0.0, value_error_ = 0.0;
  double key_shift_ = 0.0;
  std::optional<BitPolicy> key_policy_, value_policy_;
  std::optional<BitPolicy> block_policy_;  // keys per channel: head granularity, for |q~|^2 per head

  // Per step and unit (BeginStep, BeginUnit).
  int step_tokens_ = 0;
  const AttentionWindow* step_window_ = nullptr;
  KvKind unit_kind_ = KvKind::kValue;
  int unit_ = 0;
  bool unit_fast_ = false;        // the bounds check applies
  bool authors_ = false;          // the authors' formula (young keys at B_max)
  double unit_offset_ = 0.0;      // the formula's offset inside the logarithm
  double unit_scale_ = 0.0;       // y = range * scale (* S_t for values) (+ 1: authors' formula)
  std::vector<float> unit_max_;   // values: window maximum per token, over the unit's heads
  std::vector<std::uint8_t> unit_young_, head_young_;
  std::vector<float> head_max_;
  std::vector<double> unit_weight_;  // values: y = range * weight[t] (+ offset); NaN when young
  // y bounds of each width (index 0..8) with a relative margin (bounds_ in BeginStep).
  double lower_[kMaxCodeBits + 1] = {}, upper_[kMaxCodeBits + 1] = {};
};

}  // namespace qaq::internal
