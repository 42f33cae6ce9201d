// Token sampling: greedy, or temperature + top-p (nucleus) as llama2.c's run.c samples.
#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "kernels/vector_ops.h"
#include "qaq/engine.h"

namespace qaq {
namespace {

// SplitMix64 turns any seed (0 included) into a well-mixed, non-zero xorshift state.
std::uint64_t InitialState(std::uint64_t seed) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return z != 0 ? z : 1;
}

}  // namespace

Status ValidateSamplerOptions(const SamplerOptions& o) {
  if (!std::isfinite(o.temperature) || o.temperature < 0.0f) {
    return InvalidArgumentError("temperature {} must be finite and >= 0", o.temperature);
  }
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) {
    return InvalidArgumentError("top-p {} must be in (0, 1]", o.top_p);
  }
  return OkStatus();
}

int Argmax(std::span<const float> values) {
  QAQ_CHECK(!values.empty());
  return int(std::max_element(values.begin(), values.end()) - values.begin());
}

Sampler::Sampler(int vocab_size, const SamplerOptions& options)
    : options_(options),
      state_(InitialState(options.seed)),
      probs_(std::size_t(vocab_size)),
      candidates_(std::size_t(vocab_size)) {
  QAQ_CHECK(vocab_size > 0 && ValidateSamplerOptions(options).ok());
}

// xorshift64* as in llama2.c: 24 random bits -> a float in [0, 1).
float Sampler::NextUniform() {
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  const auto bits = std::uint32_t((state_ * 0x2545F4914F6CDD1Dull) >> 32);
  return float(bits >> 8) / 16777216.0f;
}

int Sampler::Sample(std::span<const float> logits) {
  QAQ_CHECK(logits.size() == probs_.size());
  if (options_.temperature == 0.0f) return Argmax(logits);

  const std::size_t n = probs_.size();
  for (std::size_t i = 0; i < n; ++i) probs_[i] = logits[i] / options_.temperature;
  internal::Softmax(probs_.data(), n);
  const float coin = NextUniform();

  if (options_.top_p >= 1.0f) {
    float cdf = 0.0f;
    for (std::size_t i = 0; i < n; ++i) {
      cdf += probs_[i];
      if (coin < cdf) return int(i);
    }
    return int(n - 1);  // rounding: cdf ended just below 1
  }

  // Top-p. Tokens below (1 - top_p) / (n - 1) can never be part of the nucleus (llama2.c's cut),
  // which keeps the sort short. Ties sort by id so the order is the same on every platform.
  const float cutoff = (1.0f - options_.top_p) / float(n > 1 ? n - 1 : 1);
  std::size_t n_candidates = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (probs_[i] >= cutoff) candidates_[n_candidates++] = int(i);
  }
  std::sort(candidates_.begin(), candidates_.begin() + n_candidates, [&](int a, int b) {
    return probs_[a] > probs_[b] || (probs_[a] == probs_[b] && a < b);
  });
  float cumulative = 0.0f;
  std::size_t last = n_candidates - 1;
  for (std::size_t i = 0; i < n_candidates; ++i) {
    cumulative += probs_[candidates_[i]];
    if (cumulative > options_.top_p) {
      last = i;
      break;
    }
  }
  const float r = coin * cumulative;
  float cdf = 0.0f;
  for (std::size_t i = 0; i <= last; ++i) {
    cdf += probs_[candidates_[i]];
    if (r < cdf) return candidates_[i];
  }
  return candidates_[last];
}

}  // namespace qaq
