#include "kv/quantized_cache.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/check.h"
#include "quant/fp16.h"

namespace qaq::internal {
namespace {

// The fp16 metadata must bracket every value (qaq/quant.h), so values fp16 cannot hold are
// saturated here, before anything stores them.
void Saturate(std::span<const float> in, std::vector<float>& out) {
  out.resize(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const float x = in[i];
    out[i] = std::isnan(x) ? 0.0f : std::clamp(x, -kFp16Max, kFp16Max);
  }
}

KvShape PolicyShape(const KvCacheShape& s) {
  return KvShape{.n_layers = s.n_layers, .n_kv_heads = s.n_kv_heads, .n_heads = s.n_heads, .head_dim = s.head_dim};
}

}  // namespace

StatusOr<std::unique_ptr<QuantizedKvCache>> QuantizedKvCache::Create(const KvCacheConfig& requested,
                                                                     const KvCacheShape& shape) {
  QAQ_RETURN_IF_ERROR(ValidateKvCacheConfig(requested));
  KvCacheConfig config = requested;
  if (config.backend != KvBackendKind::kQaq) {
    config.granularity = Granularity::kHead;  // the baselines group per token and KV head
  } else if (config.auto_granularity) {
    config.granularity = AutoGranularity(shape);
  }
  if (shape.head_dim % 8 != 0) {
    return UnimplementedError("quantized KV caches need a head dimension that is a multiple of 8, the model has {}",
                              shape.head_dim);
  }
  std::unique_ptr<QueryNormCalibration> calibration;
  if (config.query_norms == QueryNormSource::kFile) {
    QAQ_ASSIGN_OR_RETURN(QueryNormCalibration loaded, QueryNormCalibration::Load(config.calibration_path));
    calibration = std::make_unique<QueryNormCalibration>(std::move(loaded));
  }
  QAQ_ASSIGN_OR_RETURN(BitPlanner planner, BitPlanner::Create(config, shape, calibration.get()));
  // The planner points to the calibration, which the cache then owns (its address does not change).
  auto cache = std::make_unique<QuantizedKvCache>(ConstructorKey(), config, shape, std::move(calibration), std::move(planner));
  if (config.backend == KvBackendKind::kQaq && config.tier != FullPrecisionTier::kNone) {
    QAQ_ASSIGN_OR_RETURN(cache->tier_, FullPrecisionStore::Create(config.tier, config.tier_dir, shape));
  }
  return cache;
}

QuantizedKvCache::QuantizedKvCache(ConstructorKey, const KvCacheConfig& config, const KvCacheShape& shape,
                                   std::unique_ptr<QueryNormCalibration> calibration, BitPlanner planner)
    : config_(config),
      shape_(shape),
      rope_(shape.rope_theta, shape.rope_dim, shape.max_tokens),
      rotator_(shape.rope_theta, shape.rope_dim, shape.head_dim, shape.max_tokens),
      calibration_(std::move(calibration)),
      planner_(std::move(planner)),
      layer_tokens_(std::size_t(shape.n_layers), 0),
      quantizer_(config.outlier_alpha) {
  const Granularity granularity = config.granularity;
  if (config.key_layout == KeyLayout::kToken) {
    keys_.emplace(shape, KvKind::kKey, granularity, config.outlier_alpha, config.keys_prerope, &rotator_);
  } else {
    channel_keys_.emplace(shape, config.key_block, config.keys_prerope, &rotator_);
  }
  values_.emplace(shape, KvKind::kValue, granularity, config.outlier_alpha, false, nullptr);
  if (planner_.needs_window()) window_.emplace(PolicyShape(shape), config.window);
  if (UsesKeyFormula() &&
      (config.query_norms == QueryNormSource::kPrompt || config.query_norms == QueryNormSource::kPromptHeads)) {
    prompt_norms_.emplace(shape.n_layers, shape.n_kv_heads, kPromptCalibrationPositions, kPromptCalibrationQuantile);
  }
}

void QuantizedKvCache::CalibrateOnPrompt() {
  if (!prompt_norms_ || prompt_norms_->complete()) return;
  // Measured at the end of the prompt, then again whenever the sequence has doubled (a short
  // prompt's estimate improves as text is generated) until max_positions are in.
  const int measured_positions = prompt_norms_->positions();
  if (measured_positions > 0 && n_tokens() < std::min(2 * measured_positions, prompt_norms_->max_positions())) return;
  StatusOr<QueryNormCalibration> measured = prompt_norms_->Calibrate(n_tokens(), config_.query_norms == QueryNormSource::kPromptHeads);
  // The planner must never point to a freed calibration: it gets the new one first.
  std::unique_ptr<QueryNormCalibration> next;
  if (measured.ok()) {
    next = std::make_unique<QueryNormCalibration>(std::move(measured).value());
    calibration_problem_.clear();
  } else {
    calibration_problem_ = measured.status().message();
  }
  QAQ_CHECK(planner_.SetCalibration(next.get()).ok());
  calibration_ = std::move(next);
}

std::string QuantizedKvCache::name() const {
  switch (config_.backend) {
    case KvBackendKind::kUniform:
      return config_.key_bits == config_.value_bits ? fmt::format("uniform:{}", config_.key_bits)
                                                    : fmt::format("uniform:{}/{}", config_.key_bits, config_.value_bits);
    case KvBackendKind::kKivi: return fmt::format("kivi:{}", config_.key_bits);
    default: break;
  }
  return "qaq";
}

void QuantizedKvCache::Append(int layer, int pos, std::span<const float> k, std::span<const float> v) {
  const int head_dim = shape_.head_dim;
  QAQ_CHECK(layer >= 0 && layer < shape_.n_layers);
  QAQ_CHECK(pos == layer_tokens_[std::size_t(layer)] && pos < shape_.max_tokens,
            "layer {}: position {} appended after {} of {} positions", layer, pos, layer_tokens_[std::size_t(layer)],
            shape_.max_tokens);
  QAQ_CHECK(k.size() == std::size_t(shape_.n_kv_heads * head_dim) && v.size() == k.size());
  Saturate(k, k_);
  Saturate(v, v_);
  if (tier_) tier_->Write(layer, pos, k_.data(), v_.data());
  if (prompt_norms_ && !prompt_norms_->complete()) prompt_norms_->Reserve(pos + 1);
  rotated_ = k_;
  rope_.Apply(rotated_.data(), shape_.n_kv_heads, head_dim, pos);
  for (int h = 0; h < shape_.n_kv_heads; ++h) {
    const float* key = rotated_.data() + std::size_t(h) * std::size_t(head_dim);
    if (keys_) {
      keys_->Append(layer, h, pos, key);
    } else {
      channel_keys_->Append(layer, h, pos, key);
    }
    values_->Append(layer, h, pos, v_.data() + std::size_t(h) * std::size_t(head_dim));
  }
  ++layer_tokens_[std::size_t(layer)];
}

void QuantizedKvCache::Scores(int layer, int kv_head, std::span<const float> q, std::span<float> scores) const {
  QAQ_DCHECK(int(scores.size()) <= layer_tokens_[std::size_t(layer)] && int(q.size()) == shape_.head_dim);
  if (prompt_norms_ && !prompt_norms_->complete() && !scores.empty()) {
    prompt_norms_->Record(layer, kv_head, int(scores.size()) - 1, q);
  }
  if (keys_) {
    keys_->Scores(layer, kv_head, q, scores);
  } else {
    channel_keys_->Scores(layer, kv_head, q, scores);
  }
}

void QuantizedKvCache::WeightedSum(int layer, int kv_head, std::span<const float> probs, std::span<float> out) const {
  QAQ_DCHECK(int(probs.size()) <= layer_tokens_[std::size_t(layer)] && int(out.size()) == shape_.head_dim);
  values_->WeightedSum(layer, kv_head, probs, out);
}

void QuantizedKvCache::ObserveAttention(int layer, int q_head, int query_pos, std::span<const float> probs) {
  if (!window_) return;
  // A refused row (NaN weights from a broken model) is counted and left out of the window.
  if (!window_->Observe(layer, q_head, query_pos, probs).ok()) ++stats_.bad_rows;
}

void QuantizedKvCache::Truncate(int n) {
  QAQ_CHECK(n >= 0);
  if (n >= n_tokens()) return;
  if (keys_) keys_->Truncate(n);
  if (channel_keys_) channel_keys_->Truncate(n);
  values_->Truncate(n);
  if (tier_) tier_->Truncate(n);
  if (window_) window_->Truncate(n);
  for (int& count : layer_tokens_) count = std::min(count, n);
  if (prompt_norms_) prompt_norms_->Truncate(n);
  if (n == 0) {
    // A new sequence: fresh statistics, and the budget is solved again on its prompt.
    stats_ = RequantStats{};
    budget_ = BudgetChoice{};
  }
}

KvMemory QuantizedKvCache::KeyMemory() const {
  KvMemory m;
  if (keys_) {
    m.code_bytes = keys_->code_bytes();
    m.metadata_bytes = keys_->metadata_bytes();
    m.outlier_bytes = keys_->outlier_bytes();
    m.table_bytes = keys_->table_bytes();
  } else {
    m.code_bytes = channel_keys_->code_bytes();
    m.metadata_bytes = channel_keys_->metadata_bytes();
    m.table_bytes = channel_keys_->table_bytes();
  }
  m.full_precision_bytes = tier_ ? tier_->bytes() / 2 : 0;
  m.fp16_reference_bytes = std::size_t(n_tokens()) * std::size_t(shape_.n_layers) * std::size_t(shape_.n_kv_heads) *
                           std::size_t(shape_.head_dim) * 2;
  return m;
}

KvMemory QuantizedKvCache::ValueMemory() const {
  KvMemory m;
  m.code_bytes = values_->code_bytes();
  m.metadata_bytes = values_->metadata_bytes();
  m.outlier_bytes = values_->outlier_bytes();
  m.table_bytes = values_->table_bytes();
  m.full_precision_bytes = tier_ ? tier_->bytes() - tier_->bytes() / 2 : 0;
  m.fp16_reference_bytes = std::size_t(n_tokens()) * std::size_t(shape_.n_layers) * std::size_t(shape_.n_kv_heads) *
                           std::size_t(shape_.head_dim) * 2;
  return m;
}

KvMemory QuantizedKvCache::Memory() const {
  const KvMemory k = KeyMemory(), v = ValueMemory();
  KvMemory m;
  m.code_bytes = k.code_bytes + v.code_bytes;
  m.metadata_bytes = k.metadata_bytes + v.metadata_bytes;
  m.outlier_bytes = k.outlier_bytes + v.outlier_bytes;
  m.table_bytes = k.table_bytes + v.table_bytes;
  m.full_precision_bytes = k.full_precision_bytes + v.full_precision_bytes;
  m.fp16_reference_bytes = k.fp16_reference_bytes + v.fp16_reference_bytes;
  return m;
}

std::vector<GroupRecord> QuantizedKvCache::Groups() const {
  std::vector<GroupRecord> groups;
  for (const TokenRows* rows : {token_keys(), &*values_}) {
    if (rows == nullptr) continue;
    for (int u = 0; u < rows->n_units(); ++u) {
      for (int a = 0; a < kArenaSlots; ++a) {
        const WidthArena* arena = rows->arena(u, ArenaBits(a));
        if (arena == nullptr) continue;
        for (std::size_t s = 0; s < arena->size(); ++s) {
          groups.push_back({rows->kind(), u, int(arena->token(s)), arena->bits()});
        }
      }
    }
  }
  if (channel_keys_) {
    const int block = channel_keys_->block();
    for (int l = 0; l < shape_.n_layers; ++l) {
      for (int h = 0; h < shape_.n_kv_heads; ++h) {
        const int unit = l * shape_.n_kv_heads + h;
        const int n_blocks = channel_keys_->n_blocks(l, h);
        for (int b = 0; b < n_blocks; ++b) {
          groups.push_back({KvKind::kKey, unit, b * block, channel_keys_->block_bits(l, h, b)});
        }
        for (int i = 0; i < channel_keys_->tail_size(l, h); ++i) {
          groups.push_back({KvKind::kKey, unit, n_blocks * block + i, kPassThroughBits});
        }
      }
    }
  }
  return groups;
}

}  // namespace qaq::internal
