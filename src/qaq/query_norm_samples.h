// |q~|^2 samples from recorded forward passes, for the key formula's calibration (QAQ-method.md §2).
//
// A RecordingCache keeps the |q~|^2 of every query head at every position of a sequence; a
// QueryNormCollector takes them after each sequence (before the cache is cleared for the next),
// one sample per position and (layer, KV head), and turns them into a QueryNormCalibration and a
// summary of their distribution.
//
//   qaq::QueryNormCollector collector(n_layers, n_kv_heads);
//   for (chunk ...) { session.Truncate(0); session.Prefill(chunk); collector.Add(*recorder); }
//   QAQ_ASSIGN_OR_RETURN(qaq::QueryNormCalibration calibration, collector.Calibration(0.9));
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "kv/recording_cache.h"
#include "qaq/quant.h"
#include "qaq/status.h"

namespace qaq {

// The q-quantile of sorted samples by linear interpolation between order statistics (numpy's
// default method, the one QueryNormCalibration uses). sorted must not be empty, q in [0, 1].
double LinearQuantile(std::span<const double> sorted, double q);

// Distribution of one (layer, KV head)'s samples.
struct QueryNormStats {
  std::size_t count = 0;
  double mean = 0.0, p50 = 0.0, p90 = 0.0, p99 = 0.0, max = 0.0;
};
// All zero for no samples.
QueryNormStats SummarizeQueryNorms(std::vector<double> samples);

class QueryNormCollector {
 public:
  QueryNormCollector(int n_layers, int n_kv_heads);

  // Adds the recorded positions of every (layer, KV head). kMax (the default) gives one sample
  // per position, the maximum over the query heads that share the KV head: what
  // QueryNormCalibration expects ("everything that depends on the query takes the maximum over
  // the query heads of the group", QAQ-method.md "Notation"). The recorder's shape must match
  // and it must record query norms (kInvalidArgument otherwise).
  Status Add(const RecordingCache& recorder, QueryHeadReduction reduction = QueryHeadReduction::kMax);

  int n_layers() const { return n_layers_; }
  int n_kv_heads() const { return n_kv_heads_; }
  const std::vector<double>& samples(int layer, int kv_head) const;
  QueryNormStats Stats(int layer, int kv_head) const { return SummarizeQueryNorms(samples(layer, kv_head)); }

  // The calibration at `quantile` (in (0, 1]); kInvalidArgument for another quantile or a
  // (layer, KV head) without samples, or one whose quantile is 0 (the file requires > 0).
  StatusOr<QueryNormCalibration> Calibration(double quantile) const;

 private:
  int n_layers_;
  int n_kv_heads_;
  std::vector<std::vector<double>> samples_;  // [layer * n_kv_heads + kv_head]
};

}  // namespace qaq
