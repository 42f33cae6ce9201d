// The bit formulas of QAQ-method.md §1-§3 in double precision, with their guards.
#include <cmath>
#include <limits>

#include "core/check.h"
#include "qaq/quant.h"

namespace qaq {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool FiniteNonNegative(double x) { return std::isfinite(x) && x >= 0.0; }

}  // namespace

BitsFormulaTerms FormulaTerms(BitsFormula formula) {
  switch (formula) {
    case BitsFormula::kPaper: break;
    // The authors' code: max_error = sqrt(12) sigma, B = ceil(log2(range / (2 max_error) + 1)).
    case BitsFormula::kAuthors: return {2.0 * std::sqrt(12.0), 1.0};
    // Half a segment <= sigma: range / 2^B <= 2 sigma.
    case BitsFormula::kStrict: return {2.0, 0.0};
  }
  // §3: error uniform in [-Delta, Delta], 2 Delta 2^B = range, std Delta / sqrt(3) <= sigma.
  return {2.0 * std::sqrt(3.0), 0.0};
}

double ValueSigma(double target_x, int n_tokens, double attention) {
  // §1: sigma_t^V = sigma_max^X / (sqrt(T) S_t). S_t = 0: the token does not matter at all.
  if (attention <= 0.0) return kInf;
  return target_x / (std::sqrt(static_cast<double>(n_tokens)) * attention);
}

double KeySigma(double target_s, int n_tokens, double q_norm_sq) {
  // §2: (sigma_t^K)^2 = ln(T^3 / (T - 1) (sigma_max^S)^2 + 1) / |q~|^2. With T = 1 the softmax
  // is 1 whatever the key: no constraint.
  if (n_tokens <= 1 || q_norm_sq <= 0.0) return kInf;
  const double t = static_cast<double>(n_tokens);
  const double variance = std::log(t * t * t / (t - 1.0) * target_s * target_s + 1.0) / q_norm_sq;
  return std::sqrt(variance);
}

int BitsForSigma(double range, double sigma, int bits_min, int bits_max, BitsFormula formula) {
  QAQ_CHECK(bits_min <= bits_max, "bits {}:{}", bits_min, bits_max);
  double bits = -kInf;
  if (range > 0.0 && sigma < kInf) {
    const BitsFormulaTerms terms = FormulaTerms(formula);
    bits = std::ceil(std::log2(range / (terms.divisor * sigma) + terms.offset));
  }
  if (!(bits > bits_min)) return bits_min;  // also catches -inf
  if (bits >= bits_max) return bits_max;
  return static_cast<int>(bits);
}

StatusOr<int> ValueBits(const KvQuantConfig& config, double range, int n_tokens, double attention) {
  if (!FiniteNonNegative(range)) return InvalidArgumentError("group range {} is not finite and >= 0", range);
  if (!FiniteNonNegative(attention)) {
    return InvalidArgumentError("attention {} is not finite and >= 0", attention);
  }
  if (n_tokens < 1) return InvalidArgumentError("number of tokens {} < 1", n_tokens);
  const double sigma = ValueSigma(config.target, n_tokens, attention);
  return BitsForSigma(range, sigma, config.bits_min, config.bits_max, config.formula);
}

StatusOr<int> KeyBits(const KvQuantConfig& config, double range, int n_tokens, double q_norm_sq) {
  if (!FiniteNonNegative(range)) return InvalidArgumentError("group range {} is not finite and >= 0", range);
  if (!std::isfinite(q_norm_sq) || q_norm_sq <= 0.0) {
    return InvalidArgumentError("squared query norm {} is not finite and > 0", q_norm_sq);
  }
  if (n_tokens < 1) return InvalidArgumentError("number of tokens {} < 1", n_tokens);
  const double sigma = KeySigma(config.target, n_tokens, q_norm_sq);
  return BitsForSigma(range, sigma, config.bits_min, config.bits_max, config.formula);
}

}  // namespace qaq
