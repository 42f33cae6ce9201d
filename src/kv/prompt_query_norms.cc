#include "kv/prompt_query_norms.h"

#include <algorithm>
#include <atomic>
#include <string>

#include <fmt/format.h>

#include "core/check.h"

namespace qaq::internal {

PromptQueryNorms::PromptQueryNorms(int n_layers, int n_kv_heads, int max_positions, double quantile)
    : n_layers_(n_layers), n_kv_heads_(n_kv_heads), max_positions_(max_positions), quantile_(quantile),
      norms_(std::size_t(n_layers)) {
  QAQ_CHECK(n_layers > 0 && n_kv_heads > 0 && max_positions > 0);
}

void PromptQueryNorms::Reserve(int n) {
  n = std::min(n, max_positions_);
  if (n <= reserved_) return;
  for (auto& layer : norms_) layer.resize(std::size_t(n) * std::size_t(n_kv_heads_), 0.0f);
  reserved_ = n;
}

void PromptQueryNorms::Record(int layer, int kv_head, int pos, std::span<const float> q) const {
  if (pos >= reserved_) return;
  double sum = 0.0;
  for (const float x : q) sum += double(x) * double(x);
  // The maximum over the query heads of the group; several heads may record at once.
  std::atomic_ref<float> slot(norms_[std::size_t(layer)][std::size_t(pos) * std::size_t(n_kv_heads_) + std::size_t(kv_head)]);
  const auto value = float(sum);
  float seen = slot.load(std::memory_order_relaxed);
  while (value > seen && !slot.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

StatusOr<QueryNormCalibration> PromptQueryNorms::Calibrate(int n, bool per_head) {
  n = std::min({n, reserved_, max_positions_});
  QAQ_CHECK(n > 0, "calibration without positions");
  positions_ = n;
  // Per head: each (layer, KV head) its own samples. Pooled: one calibration over every sample,
  // its value then given to all pairs.
  QueryNormCalibration measured = per_head ? QueryNormCalibration(n_layers_, n_kv_heads_, quantile_)
                                           : QueryNormCalibration(1, 1, quantile_);
  for (int l = 0; l < n_layers_; ++l) {
    for (int h = 0; h < n_kv_heads_; ++h) {
      for (int t = 0; t < n; ++t) {
        const float x = norms_[std::size_t(l)][std::size_t(t) * std::size_t(n_kv_heads_) + std::size_t(h)];
        QAQ_RETURN_IF_ERROR(measured.AddSample(per_head ? l : 0, per_head ? h : 0, double(x)));
      }
    }
  }
  QAQ_RETURN_IF_ERROR(measured.Finalize());
  for (int l = 0; l < measured.n_layers(); ++l) {
    for (int h = 0; h < measured.n_kv_heads(); ++h) {
      if (!(measured.QNormSq(l, h) > 0.0)) {
        return InvalidArgumentError("the {} quantile of |q|^2 over {} positions is 0{}", quantile_, n,
                                    per_head ? fmt::format(" (layer {}, KV head {})", l, h) : std::string());
      }
    }
  }
  if (per_head) return measured;
  QueryNormCalibration pooled = QueryNormCalibration::Constant(n_layers_, n_kv_heads_, measured.QNormSq(0, 0));
  return pooled;
}

void PromptQueryNorms::Truncate(int n) {
  n = std::max(n, 0);
  if (n >= reserved_) return;
  for (auto& layer : norms_) layer.resize(std::size_t(n) * std::size_t(n_kv_heads_));
  reserved_ = n;
  positions_ = std::min(positions_, n);
}

}  // namespace qaq::internal
