// The numbers behind every quality figure: log-softmax, KL divergence, top-1 agreement, means
// with standard errors, percentiles and binomial intervals. Plain scalar code in double
// precision: these run once per scored token, next to a whole forward pass, so clarity wins.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "qaq/eval.h"

namespace qaq::internal {

// out[i] = logits[i] - max - log(sum_j exp(logits[j] - max)), accumulated in double.
void LogSoftmax(std::span<const float> logits, std::span<float> out);

// -log p(token) under `logits` (llama.cpp's log_softmax: max subtracted, sum in double).
double NegLogLikelihood(std::span<const float> logits, int token);

// KL(P || Q) = sum_i p_i (log p_i - log q_i) in nats, with log_p the log-softmax of the base and
// q given by raw logits. Terms with p_i = 0 contribute 0. Identical inputs give exactly 0.
double KlDivergence(std::span<const float> log_p, std::span<const float> logits_q);

// Index of the largest value, the first one on ties (as qaq::Argmax).
int ArgmaxIndex(std::span<const float> values);

// Mean and its standard error sqrt(var / (n - 1)) with var the population variance (llama.cpp's
// estimator); error 0 for n < 2. Sums run in index order, in double.
Estimate MeanAndError(std::span<const double> values);

// Percentile by linear interpolation between order statistics at fraction * (n - 1), as
// llama-perplexity's KL report; `sorted` ascending and not empty.
double Percentile(std::span<const double> sorted, double fraction);

// A share p of n trials and its standard error sqrt(p (1 - p) / (n - 1)) (llama.cpp's "same top"
// and multiple-choice error); error 0 for n < 2.
Estimate BinomialShare(std::int64_t successes, std::int64_t n);

// Half-width of the normal-approximation 95% interval of a share: 1.96 sqrt(p (1 - p) / n), the
// QAQ authors' "accuracy_confidence".
double Binomial95HalfWidth(double p, std::int64_t n);

// Perplexity exp(mean) of per-token NLLs with llama.cpp's error ppl * se(mean).
Estimate PerplexityOf(std::span<const double> nll);

// FNV-1a over the token ids: binds a reference to the tokens it was computed on.
std::uint64_t Fingerprint(std::span<const int> tokens);

}  // namespace qaq::internal
