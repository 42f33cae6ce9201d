// The end-of-generation account of a quantized cache (`qaq generate --kv ...`).
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "kv/quantized_cache.h"

namespace qaq::internal {
namespace {

std::string KiB(std::size_t bytes) { return fmt::format("{:.1f} KiB", double(bytes) / 1024.0); }

// Values per group of each kind, for averages weighted by values.
struct WidthCounts {
  std::array<double, kArenaSlots> values{};  // values stored at each width
  double total() const {
    double t = 0;
    for (double v : values) t += v;
    return t;
  }
  double MeanBits() const {
    double bits = 0;
    for (int i = 0; i < kArenaSlots; ++i) bits += values[std::size_t(i)] * ArenaBits(i);
    return total() > 0 ? bits / total() : 0.0;
  }
  std::string Histogram() const {
    std::string s;
    for (int i = 0; i < kArenaSlots; ++i) {
      if (values[std::size_t(i)] == 0) continue;
      s += fmt::format("{}{}b {:.1f}%", s.empty() ? "" : ", ", ArenaBits(i), 100.0 * values[std::size_t(i)] / total());
    }
    return s.empty() ? "none" : s;
  }
};

}  // namespace

std::string QuantizedKvCache::QueryNormReport() const {
  const std::string constant = fmt::format("the authors' constant 300/head_dim = {:.4g}",
                                           QueryNormCalibration::FallbackQNormSq(shape_.head_dim));
  const bool from_prompt =
      config_.query_norms == QueryNormSource::kPrompt || config_.query_norms == QueryNormSource::kPromptHeads;
  if (calibration_ == nullptr) {
    if (from_prompt) {
      return calibration_problem_.empty() ? "key |q|^2: from the prompt, not measured yet"
                                          : fmt::format("key |q|^2: {} (from the prompt impossible: {})", constant,
                                                        calibration_problem_);
    }
    return "key |q|^2: " + constant;
  }
  double lo = HUGE_VAL, hi = 0.0;
  for (int l = 0; l < shape_.n_layers; ++l) {
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      lo = std::min(lo, calibration_->QNormSq(l, h));
      hi = std::max(hi, calibration_->QNormSq(l, h));
    }
  }
  if (config_.query_norms == QueryNormSource::kPrompt) {
    return fmt::format("key |q|^2: from the prompt ({} positions, every layer and KV head pooled), {:g} quantile {:.4g}",
                       calibration_positions(), calibration_->quantile(), lo);
  }
  const std::string source = from_prompt ? fmt::format("from the prompt ({} positions)", calibration_positions())
                                         : "from " + config_.calibration_path;
  return fmt::format("key |q|^2: {}, {:g} quantile per layer and KV head, {:.4g} to {:.4g}", source,
                     calibration_->quantile(), lo, hi);
}

std::string QuantizedKvCache::Summary() const {
  const KvMemory m = Memory(), km = KeyMemory(), vm = ValueMemory();
  WidthCounts k, v;
  const std::vector<GroupRecord> groups = Groups();
  const double per_value_group = double(values_->group_size());
  const double per_key_group = keys_ ? double(keys_->group_size()) : double(shape_.head_dim);
  for (const GroupRecord& g : groups) {
    // Channel-key records are whole blocks, except tail tokens (one token each).
    double n = g.kind == KvKind::kValue ? per_value_group : per_key_group;
    if (g.kind == KvKind::kKey && channel_keys_ && g.bits != kPassThroughBits) n *= channel_keys_->block();
    (g.kind == KvKind::kKey ? k : v).values[std::size_t(ArenaIndex(g.bits))] += n;
  }
  const double values_per_kind = double(n_tokens()) * shape_.n_layers * shape_.n_kv_heads * shape_.head_dim;
  auto stored_bits = [&](const KvMemory& x) { return values_per_kind > 0 ? 8.0 * double(x.cache_bytes()) / values_per_kind : 0.0; };
  std::string s = fmt::format("kv cache {}: {} tokens, {} (fp16 would hold {}): ratio {:.2f}x\n", name(), n_tokens(),
                              KiB(m.cache_bytes()), KiB(m.fp16_reference_bytes), m.compression_ratio());
  s += fmt::format("  keys   ({} layout{}): {:.2f} bits per value in codes, {:.2f} with everything; widths {}\n",
                   KeyLayoutName(config_.key_layout), config_.keys_prerope ? ", before RoPE" : "", k.MeanBits(),
                   stored_bits(km), k.Histogram());
  s += fmt::format("  values: {:.2f} bits per value in codes, {:.2f} with everything; widths {}\n", v.MeanBits(),
                   stored_bits(vm), v.Histogram());
  s += fmt::format("  bytes: codes {}, metadata {}, outliers {}, token tables {}; full-precision tier ({}): {}\n",
                   KiB(m.code_bytes), KiB(m.metadata_bytes), KiB(m.outlier_bytes), KiB(m.table_bytes),
                   tier_ ? FullPrecisionTierName(tier_->tier()) : "none", KiB(m.full_precision_bytes));
  s += fmt::format("  re-quantizations: {} up, {} down; {} groups quantized from fp16 over {} steps",
                   stats_.up, stats_.down, stats_.quantized, stats_.steps);
  if (config_.backend == KvBackendKind::kQaq) {
    s += fmt::format("\n  qaq: key error {:.4g}, value error {:.4g}, window {}, bits {}:{}, granularity {}, formula {}",
                     planner_.key_error(), planner_.value_error(), config_.window, config_.bits_min, config_.bits_max,
                     GranularityName(config_.granularity), BitsFormulaName(config_.formula));
  }
  if (UsesKeyFormula()) {
    s += "\n  " + QueryNormReport();
  }
  if (config_.target_ratio > 0.0) {
    s += budget_.reachable
             ? fmt::format("\n  budget: ratio {:.2f}x requested; chose key error {:.4g}, value error {:.4g}, key "
                           "widths {:.2f} bits below the formula's (plan at {} tokens: {:.2f}x; {} solves)",
                           config_.target_ratio, budget_.key_error, budget_.value_error, budget_.key_shift,
                           budget_.solved_tokens, budget_.planned_ratio, budget_.solves)
             : fmt::format("\n  budget: ratio {:.2f}x requested is out of reach: at the smallest widths the "
                           "{} tokens reach {:.2f}x",
                           config_.target_ratio, budget_.solved_tokens, budget_.planned_ratio);
  }
  if (stats_.bad_rows > 0) s += fmt::format("\n  {} attention rows with invalid weights were ignored", stats_.bad_rows);
  return s;
}

}  // namespace qaq::internal
