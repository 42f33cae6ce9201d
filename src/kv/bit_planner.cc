#include "kv/bit_planner.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/check.h"

namespace qaq::internal {
namespace {

KvShape PolicyShape(const KvCacheShape& s) {
  return KvShape{.n_layers = s.n_layers, .n_kv_heads = s.n_kv_heads, .n_heads = s.n_heads, .head_dim = s.head_dim};
}

}  // namespace

StatusOr<BitPlanner> BitPlanner::Create(const KvCacheConfig& config, const KvCacheShape& shape,
                                        const QueryNormCalibration* calibration) {
  BitPlanner p;
  p.config_ = config;
  p.shape_ = shape;
  p.calibration_ = calibration;
  p.key_error_ = config.key_error > 0.0 ? config.key_error : kDefaultQaqKeyError;
  p.value_error_ = config.value_error > 0.0 ? config.value_error : kDefaultQaqValueError;
  QAQ_RETURN_IF_ERROR(p.MakePolicies());
  return p;
}

Status BitPlanner::SetTargets(double key_error, double value_error) {
  key_error_ = key_error;
  value_error_ = value_error;
  return MakePolicies();
}

Status BitPlanner::SetCalibration(const QueryNormCalibration* calibration) {
  calibration_ = calibration;
  return MakePolicies();
}

Status BitPlanner::MakePolicies() {
  if (config_.backend != KvBackendKind::kQaq) return OkStatus();
  KvQuantConfig base;
  base.window = config_.window;
  base.outlier_alpha = config_.outlier_alpha;
  base.granularity = config_.granularity;
  base.formula = config_.formula;
  if (config_.bits_min == kPassThroughBits) {
    base.uniform_bits = kPassThroughBits;  // --qaq-bits 16:16: every token fp16
  } else {
    base.bits_min = config_.bits_min;
    base.bits_max = config_.bits_max;
  }
  const KvShape shape = PolicyShape(shape_);
  KvQuantConfig keys = base;
  keys.kind = KvKind::kKey;
  keys.target = key_error_;
  KvQuantConfig values = base;
  values.kind = KvKind::kValue;
  values.target = value_error_;
  QAQ_ASSIGN_OR_RETURN(BitPolicy key_policy, BitPolicy::Create(keys, shape, calibration_));
  QAQ_ASSIGN_OR_RETURN(BitPolicy value_policy, BitPolicy::Create(values, shape, calibration_));
  keys.granularity = Granularity::kHead;
  QAQ_ASSIGN_OR_RETURN(BitPolicy block_policy, BitPolicy::Create(keys, shape, calibration_));
  key_policy_ = std::move(key_policy);
  value_policy_ = std::move(value_policy);
  block_policy_ = std::move(block_policy);
  return OkStatus();
}

int BitPlanner::Shifted(int bits, int unit, int token) const {
  if (key_shift_ <= 0.0 || bits == kPassThroughBits) return bits;
  // A fixed dither in [0, 1) per group (a multiplicative hash of its numbers).
  const std::uint32_t h = (std::uint32_t(unit) * 2654435761u) ^ (std::uint32_t(token) * 2246822519u);
  const double dither = double((h * 2654435761u) >> 8) / double(1u << 24);
  const int shift = int(std::floor(key_shift_ + dither));
  return std::max(bits - shift, std::min(bits, config_.bits_min));
}

void BitPlanner::BeginStep(int n_tokens, const AttentionWindow* window) {
  step_tokens_ = n_tokens;
  step_window_ = window;
  // ceil(log2(y)) == b for 2^(b-1) < y <= 2^b (clamped to [B_min, B_max]), with a margin far
  // above the rounding of either way of computing y.
  constexpr double kMargin = 1e-9;
  for (int b = 0; b <= kMaxCodeBits; ++b) {
    lower_[b] = b <= config_.bits_min ? -HUGE_VAL : std::ldexp(1.0, b - 1) * (1.0 + kMargin);
    upper_[b] = b >= config_.bits_max ? HUGE_VAL : std::ldexp(1.0, b) * (1.0 - kMargin);
  }
}

void BitPlanner::BeginUnit(KvKind kind, int unit) {
  unit_kind_ = kind;
  unit_ = unit;
  unit_fast_ = false;
  if (config_.backend != KvBackendKind::kQaq || config_.bits_min == kPassThroughBits) return;
  const bool authors = config_.formula == BitsFormula::kAuthors;
  authors_ = authors;
  // §3: B = ceil(log2(y)), y = range / (divisor sigma) + offset.
  const BitsFormulaTerms terms = FormulaTerms(config_.formula);
  const double divisor = terms.divisor;
  unit_offset_ = terms.offset;
  const double n = double(step_tokens_);
  if (kind == KvKind::kKey) {
    if (config_.key_bits_fixed >= 0 || key_shift_ > 0.0) return;  // TokenBits is cheap or shifted
    const double sigma = KeySigma(key_error_, step_tokens_, key_policy_->GroupQNormSq(unit));  // §2
    unit_scale_ = std::isfinite(sigma) ? 1.0 / (divisor * sigma) : 0.0;
    unit_fast_ = true;
    return;
  }
  if (step_window_ == nullptr) return;
  // §1: sigma_t = X / (sqrt(T) S_t), so y = range S_t sqrt(T) / (divisor X) (+ offset); S_t and youth
  // (§5) over the unit's (layer, KV head) pairs.
  unit_scale_ = std::sqrt(n) / (divisor * value_error_);
  const std::size_t tokens = std::size_t(step_tokens_);
  unit_max_.resize(tokens);
  unit_young_.resize(tokens);
  const int heads = shape_.n_kv_heads;
  const int first = config_.granularity == Granularity::kToken ? 0 : (config_.granularity == Granularity::kLayer ? unit * heads : unit);
  const int count = config_.granularity == Granularity::kToken ? shape_.n_layers * heads
                                                               : (config_.granularity == Granularity::kLayer ? heads : 1);
  // The first pair's maxima go straight into the unit's (the only ones at head granularity).
  step_window_->MaxRow(first / heads, first % heads, unit_max_, unit_young_);
  head_max_.resize(tokens);
  head_young_.resize(tokens);
  for (int pair = first + 1; pair < first + count; ++pair) {
    step_window_->MaxRow(pair / heads, pair % heads, head_max_, head_young_);
    for (std::size_t t = 0; t < tokens; ++t) {
      unit_max_[t] = std::max(unit_max_[t], head_max_[t]);
      unit_young_[t] |= head_young_[t];
    }
  }
  unit_weight_.resize(tokens);
  for (std::size_t t = 0; t < tokens; ++t) {
    unit_weight_[t] = unit_young_[t] ? std::nan("") : double(unit_max_[t]) * unit_scale_;
  }
  unit_fast_ = true;
}

void BitPlanner::UnitCandidates(const IndexVector& tokens, const float* ranges, int current, bool can_rise,
                                std::vector<std::uint32_t>& slots) const {
  slots.clear();
  const std::size_t n = tokens.size();
  if (!unit_fast_ || current < config_.bits_min || current > config_.bits_max) {
    for (std::size_t s = 0; s < n; ++s) slots.push_back(std::uint32_t(s));
    return;
  }
  // As UnitTokenBits: kept when lower < y <= upper (upper unbounded when bits cannot rise).
  // Young tokens have a NaN weight, which fails both comparisons: UnitTokenBits decides.
  const double lo = lower_[current], hi = can_rise ? upper_[current] : HUGE_VAL, offset = unit_offset_;
  const bool values = unit_kind_ == KvKind::kValue;
  const std::uint32_t young_keys = authors_ ? std::uint32_t(std::max(0, step_tokens_ - config_.window)) : ~0u;
  const double key_scale = unit_scale_;
  const double* weight = unit_weight_.data();
  tokens.Visit([&](const auto* token) {
    for (std::size_t s = 0; s < n; ++s) {
      const double y = double(ranges[s]) * (values ? weight[token[s]] : key_scale) + offset;
      const bool young_key = !values && token[s] >= young_keys;
      if (!(y > lo && y <= hi) || young_key) slots.push_back(std::uint32_t(s));
    }
  });
}

int BitPlanner::ExactUnitTokenBits(int token, double range) const {
  return TokenBits(unit_kind_, unit_, token, step_tokens_, range, step_window_);
}

bool BitPlanner::needs_window() const {
  return config_.backend == KvBackendKind::kQaq && config_.bits_min != kPassThroughBits;
}

int BitPlanner::TokenBits(KvKind kind, int unit, int token, int n_tokens, double range,
                          const AttentionWindow* window) const {
  switch (config_.backend) {
    case KvBackendKind::kUniform:
      return kind == KvKind::kKey ? config_.key_bits : config_.value_bits;
    case KvBackendKind::kKivi: {
      const int residual = config_.kivi_residual > 0 ? config_.kivi_residual : config_.key_block;
      return token >= n_tokens - residual ? kPassThroughBits : config_.value_bits;
    }
    case KvBackendKind::kQaq: {
      if (kind == KvKind::kKey && config_.key_bits_fixed >= 0) return Shifted(config_.key_bits_fixed, unit, token);
      const BitPolicy& policy = kind == KvKind::kKey ? *key_policy_ : *value_policy_;
      const StatusOr<int> bits = policy.GroupBits(token, n_tokens, unit, range, window);
      QAQ_CHECK(bits.ok(), "bit policy: {}", bits.status().message());
      return kind == KvKind::kKey ? Shifted(*bits, unit, token) : *bits;
    }
    default: break;
  }
  QAQ_CHECK(false, "no bit planner for KV cache {}", KvBackendName(config_.backend));
  return 0;
}

int BitPlanner::BlockBits(int layer, int kv_head, int first_token, int n_tokens, double range) const {
  if (config_.backend != KvBackendKind::kQaq) return config_.key_bits;
  const int unit = layer * shape_.n_kv_heads + kv_head;
  if (config_.key_bits_fixed >= 0) return Shifted(config_.key_bits_fixed, unit, first_token);
  const StatusOr<int> bits = block_policy_->GroupBits(first_token, n_tokens, unit, range, nullptr);
  QAQ_CHECK(bits.ok(), "bit policy: {}", bits.status().message());
  return Shifted(*bits, unit, first_token);
}

}  // namespace qaq::internal
