// BitPolicy: the formulas of bit_formulas.cc applied to every group of a cache, at the three
// granularities of §7, with the attention window (§5) and the calibrated query norms (§2).
#include <algorithm>

#include "qaq/quant.h"

namespace qaq {
namespace {

// The (layer, KV head) pairs of group g: [first_layer, last_layer) x [first_head, last_head).
struct GroupSpan {
  int layer_begin, layer_end, head_begin, head_end;
};

GroupSpan SpanOf(Granularity granularity, const KvShape& s, int g) {
  switch (granularity) {
    case Granularity::kToken: return {0, s.n_layers, 0, s.n_kv_heads};
    case Granularity::kLayer: return {g, g + 1, 0, s.n_kv_heads};
    case Granularity::kHead: break;
  }
  return {g / s.n_kv_heads, g / s.n_kv_heads + 1, g % s.n_kv_heads, g % s.n_kv_heads + 1};
}

}  // namespace

StatusOr<BitPolicy> BitPolicy::Create(const KvQuantConfig& config, const KvShape& shape,
                                      const QueryNormCalibration* calibration) {
  QAQ_RETURN_IF_ERROR(ValidateKvQuantConfig(config));
  if (shape.n_layers < 1 || shape.n_kv_heads < 1 || shape.head_dim < 1 || shape.n_heads < shape.n_kv_heads ||
      shape.n_heads % shape.n_kv_heads != 0) {
    return InvalidArgumentError("bad shape: {} layers, {} query heads, {} KV heads, head dim {}", shape.n_layers,
                                shape.n_heads, shape.n_kv_heads, shape.head_dim);
  }
  if (calibration != nullptr &&
      (calibration->n_layers() != shape.n_layers || calibration->n_kv_heads() != shape.n_kv_heads)) {
    return InvalidArgumentError("query-norm calibration is for {} layers x {} KV heads, the cache has {} x {}",
                                calibration->n_layers(), calibration->n_kv_heads(), shape.n_layers,
                                shape.n_kv_heads);
  }
  BitPolicy policy;
  policy.config_ = config;
  policy.shape_ = shape;
  const double constant =
      config.q_norm_sq > 0.0 ? config.q_norm_sq : QueryNormCalibration::FallbackQNormSq(shape.head_dim);
  const int n_groups = policy.groups_per_token();
  for (int g = 0; g < n_groups; ++g) {
    // A group spanning several heads must meet the bound for the most demanding one.
    const GroupSpan span = SpanOf(config.granularity, shape, g);
    double q = 0.0;
    for (int l = span.layer_begin; l < span.layer_end; ++l) {
      for (int h = span.head_begin; h < span.head_end; ++h) {
        q = std::max(q, calibration != nullptr ? calibration->QNormSq(l, h) : constant);
      }
    }
    policy.group_q_norm_sq_.push_back(q);
  }
  return policy;
}

int BitPolicy::groups_per_token() const {
  switch (config_.granularity) {
    case Granularity::kToken: return 1;
    case Granularity::kLayer: return shape_.n_layers;
    case Granularity::kHead: break;
  }
  return shape_.n_layers * shape_.n_kv_heads;
}

StatusOr<int> BitPolicy::GroupBits(int token, int n_tokens, int group, double range,
                                   const AttentionWindow* window) const {
  if (n_tokens < 1 || token < 0 || token >= n_tokens) {
    return InvalidArgumentError("token {} of a cache of {} tokens", token, n_tokens);
  }
  if (group < 0 || group >= groups_per_token()) return InvalidArgumentError("group {} out of range", group);
  if (config_.uniform_bits >= 0) return config_.uniform_bits;
  if (config_.kind == KvKind::kKey) {
    // §2 keys depend on T and the range only. The authors' code still keeps the last window - 1
    // tokens at B_max.
    if (config_.formula == BitsFormula::kAuthors && n_tokens - token < config_.window) return config_.bits_max;
    return KeyBits(config_, range, n_tokens, group_q_norm_sq_[static_cast<std::size_t>(group)]);
  }
  if (window == nullptr) return InvalidArgumentError("value bits need attention rows (an attention window)");
  if (window->shape().n_layers != shape_.n_layers || window->shape().n_kv_heads != shape_.n_kv_heads) {
    return InvalidArgumentError("attention window is for {} layers x {} KV heads, the cache has {} x {}",
                                window->shape().n_layers, window->shape().n_kv_heads, shape_.n_layers,
                                shape_.n_kv_heads);
  }
  // §1 with §5: S_t is the max over the window and over the query heads (and, at coarser
  // granularity, the layers and KV heads) of the group.
  const GroupSpan span = SpanOf(config_.granularity, shape_, group);
  double attention = 0.0;
  for (int l = span.layer_begin; l < span.layer_end; ++l) {
    for (int h = span.head_begin; h < span.head_end; ++h) {
      if (window->Young(l, h, token)) return config_.bits_max;
      attention = std::max(attention, static_cast<double>(window->Max(l, h, token)));
    }
  }
  return ValueBits(config_, range, n_tokens, attention);
}

Status BitPolicy::Plan(int n_tokens, std::span<const float> ranges, const AttentionWindow* window,
                       std::span<int> bits) const {
  const std::size_t expected = static_cast<std::size_t>(n_tokens) * static_cast<std::size_t>(groups_per_token());
  if (n_tokens < 0 || ranges.size() != expected || bits.size() != expected) {
    return InvalidArgumentError("plan for {} tokens x {} groups: got {} ranges and {} outputs", n_tokens,
                                groups_per_token(), ranges.size(), bits.size());
  }
  const int n_groups = groups_per_token();
  for (int t = 0; t < n_tokens; ++t) {
    for (int g = 0; g < n_groups; ++g) {
      const std::size_t i = static_cast<std::size_t>(t) * static_cast<std::size_t>(n_groups) + static_cast<std::size_t>(g);
      QAQ_ASSIGN_OR_RETURN(bits[i], GroupBits(t, n_tokens, g, ranges[i], window));
    }
  }
  return OkStatus();
}

}  // namespace qaq
