#include "qaq/query_norm_samples.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace qaq {

double LinearQuantile(std::span<const double> sorted, double q) {
  QAQ_CHECK(!sorted.empty() && q >= 0.0 && q <= 1.0, "quantile {} of {} samples", q, sorted.size());
  const double pos = q * double(sorted.size() - 1);
  const auto lo = std::size_t(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - double(lo));
}

QueryNormStats SummarizeQueryNorms(std::vector<double> samples) {
  QueryNormStats s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  s.count = samples.size();
  double sum = 0.0;
  for (double x : samples) sum += x;
  s.mean = sum / double(samples.size());
  s.p50 = LinearQuantile(samples, 0.5);
  s.p90 = LinearQuantile(samples, 0.9);
  s.p99 = LinearQuantile(samples, 0.99);
  s.max = samples.back();
  return s;
}

QueryNormCollector::QueryNormCollector(int n_layers, int n_kv_heads)
    : n_layers_(n_layers), n_kv_heads_(n_kv_heads) {
  QAQ_CHECK(n_layers > 0 && n_kv_heads > 0, "collector shape {} x {}", n_layers, n_kv_heads);
  samples_.resize(std::size_t(n_layers) * std::size_t(n_kv_heads));
}

Status QueryNormCollector::Add(const RecordingCache& recorder, QueryHeadReduction reduction) {
  const KvCacheShape& s = recorder.shape();
  if (s.n_layers != n_layers_ || s.n_kv_heads != n_kv_heads_) {
    return InvalidArgumentError("recorded cache has {} layers x {} KV heads, the collector {} x {}", s.n_layers,
                                s.n_kv_heads, n_layers_, n_kv_heads_);
  }
  if (!recorder.options().query_norms) return InvalidArgumentError("the recording cache does not record query norms");
  for (int l = 0; l < n_layers_; ++l) {
    for (int h = 0; h < n_kv_heads_; ++h) {
      const std::vector<double> recorded = recorder.QueryNormSamples(l, h, reduction);
      std::vector<double>& out = samples_[std::size_t(l) * std::size_t(n_kv_heads_) + std::size_t(h)];
      out.insert(out.end(), recorded.begin(), recorded.end());
    }
  }
  return OkStatus();
}

const std::vector<double>& QueryNormCollector::samples(int layer, int kv_head) const {
  QAQ_CHECK(layer >= 0 && layer < n_layers_ && kv_head >= 0 && kv_head < n_kv_heads_, "layer {} KV head {}", layer,
            kv_head);
  return samples_[std::size_t(layer) * std::size_t(n_kv_heads_) + std::size_t(kv_head)];
}

StatusOr<QueryNormCalibration> QueryNormCollector::Calibration(double quantile) const {
  if (!(quantile > 0.0 && quantile <= 1.0)) {
    return InvalidArgumentError("quantile {} must be in (0, 1]", quantile);
  }
  QueryNormCalibration calibration(n_layers_, n_kv_heads_, quantile);
  for (int l = 0; l < n_layers_; ++l) {
    for (int h = 0; h < n_kv_heads_; ++h) {
      for (double x : samples(l, h)) QAQ_RETURN_IF_ERROR(calibration.AddSample(l, h, x));
    }
  }
  QAQ_RETURN_IF_ERROR(calibration.Finalize());
  for (int l = 0; l < n_layers_; ++l) {
    for (int h = 0; h < n_kv_heads_; ++h) {
      // The key formula divides by |q~|^2 (§2): a zero calibration would be unusable.
      if (!(calibration.QNormSq(l, h) > 0.0)) {
        return InvalidArgumentError("layer {} KV head {}: the {} quantile of |q~|^2 is 0", l, h, quantile);
      }
    }
  }
  return calibration;
}

}  // namespace qaq
