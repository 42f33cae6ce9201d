#include "eval/statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace qaq::internal {
namespace {

float MaxOf(std::span<const float> v) {
  float m = -std::numeric_limits<float>::infinity();
  for (float x : v) m = std::max(m, x);
  return m;
}

// log(sum_i exp(v_i - max)), in double.
double LogSumExpShifted(std::span<const float> v, float max) {
  double sum = 0.0;
  for (float x : v) sum += std::exp(double(x) - double(max));
  return std::log(sum);
}

}  // namespace

void LogSoftmax(std::span<const float> logits, std::span<float> out) {
  QAQ_CHECK(out.size() == logits.size() && !logits.empty());
  const float max = MaxOf(logits);
  const double lse = LogSumExpShifted(logits, max);
  for (std::size_t i = 0; i < logits.size(); ++i) {
    out[i] = float(double(logits[i]) - double(max) - lse);
  }
}

double NegLogLikelihood(std::span<const float> logits, int token) {
  QAQ_CHECK(token >= 0 && std::size_t(token) < logits.size());
  const float max = MaxOf(logits);
  return double(max) + LogSumExpShifted(logits, max) - double(logits[token]);
}

double KlDivergence(std::span<const float> log_p, std::span<const float> logits_q) {
  QAQ_CHECK(log_p.size() == logits_q.size() && !log_p.empty());
  const float max = MaxOf(logits_q);
  const double lse = LogSumExpShifted(logits_q, max);
  double kl = 0.0;
  for (std::size_t i = 0; i < log_p.size(); ++i) {
    const double lp = log_p[i];
    const double p = std::exp(lp);
    if (p == 0.0) continue;  // 0 log 0 = 0, and keeps -inf out of the sum
    // Rounded to float exactly as LogSoftmax does, so that identical logits give lq == lp
    // bit for bit and a cache compared with itself has KL exactly 0.
    const double lq = float(double(logits_q[i]) - double(max) - lse);
    kl += p * (lp - lq);
  }
  // Rounding can leave tiny negative sums for nearly identical inputs; KL >= 0.
  return std::max(kl, 0.0);
}

int ArgmaxIndex(std::span<const float> values) {
  QAQ_CHECK(!values.empty());
  int best = 0;
  for (std::size_t i = 1; i < values.size(); ++i) {
    if (values[i] > values[best]) best = int(i);
  }
  return best;
}

Estimate MeanAndError(std::span<const double> values) {
  Estimate e;
  const std::size_t n = values.size();
  if (n == 0) return e;
  double sum = 0.0;
  for (double v : values) sum += v;
  e.value = sum / double(n);
  if (n < 2) return e;
  double var = 0.0;
  for (double v : values) var += (v - e.value) * (v - e.value);
  var /= double(n);
  e.error = std::sqrt(var / double(n - 1));
  return e;
}

double Percentile(std::span<const double> sorted, double fraction) {
  QAQ_CHECK(!sorted.empty());
  if (fraction <= 0.0) return sorted.front();
  if (fraction >= 1.0) return sorted.back();
  const double p = fraction * double(sorted.size() - 1);
  const std::size_t i = std::size_t(p);
  const double t = p - double(i);
  const double next = sorted[std::min(i + 1, sorted.size() - 1)];
  return (1.0 - t) * sorted[i] + t * next;
}

Estimate BinomialShare(std::int64_t successes, std::int64_t n) {
  Estimate e;
  if (n <= 0) return e;
  e.value = double(successes) / double(n);
  if (n >= 2) e.error = std::sqrt(e.value * (1.0 - e.value) / double(n - 1));
  return e;
}

double Binomial95HalfWidth(double p, std::int64_t n) {
  if (n <= 0) return 0.0;
  return 1.96 * std::sqrt(p * (1.0 - p) / double(n));
}

Estimate PerplexityOf(std::span<const double> nll) {
  const Estimate mean = MeanAndError(nll);
  const double ppl = std::exp(mean.value);
  return {ppl, ppl * mean.error};
}

std::uint64_t Fingerprint(std::span<const int> tokens) {
  std::uint64_t h = 1469598103934665603ull;
  for (int t : tokens) {
    auto u = std::uint32_t(t);
    for (int b = 0; b < 4; ++b) {
      h ^= (u >> (8 * b)) & 0xFF;
      h *= 1099511628211ull;
    }
  }
  return h;
}

}  // namespace qaq::internal
