// The authors'-code compatibility codec (QAQ-method.md "Where the authors' code differs"),
// reproducing src/quantizer.py of ClubieDong/KVCacheQuantization (asymmetric "uniform" method)
// operation by operation in fp32, so that its outputs can be compared with theirs exactly.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "qaq/quant.h"

// Each step must round like the reference's separate fp32 tensor operations: no fused
// multiply-add contraction in this file, whatever the target flags.
#pragma GCC optimize("fp-contract=off")

namespace qaq {
namespace {

// PyTorch's CPU kernels with AVX2 (8 floats per vector). The test vectors were produced with
// them: 16 lanes (AVX-512) changes the order, and the mean then differs by an ulp in ~2% of
// groups (measured on the test vectors).
constexpr std::size_t kTorchLanes = 8;

// The fp32 summation order of PyTorch's CPU sum over a contiguous row (aten SumKernel.cpp,
// cascade_sum): rows of at least one vector are summed as vectors of kLanes floats in 4
// interleaved accumulators, combined lane-wise, then the tail and the lanes are added one by
// one; shorter rows use the same 4-accumulator scheme on scalars.
float ReferenceSum(std::span<const float> x) {
  constexpr std::size_t kIlp = 4;
  const std::size_t n = x.size();
  if (n >= kTorchLanes) {
    const std::size_t n_vectors = n / kTorchLanes;
    float partial[kIlp][kTorchLanes] = {};
    const std::size_t n_ilp = n_vectors / kIlp;
    for (std::size_t i = 0; i < n_ilp; ++i)
      for (std::size_t k = 0; k < kIlp; ++k)
        for (std::size_t lane = 0; lane < kTorchLanes; ++lane) partial[k][lane] += x[(i * kIlp + k) * kTorchLanes + lane];
    for (std::size_t i = n_ilp * kIlp; i < n_vectors; ++i)
      for (std::size_t lane = 0; lane < kTorchLanes; ++lane) partial[0][lane] += x[i * kTorchLanes + lane];
    for (std::size_t k = 1; k < kIlp; ++k)
      for (std::size_t lane = 0; lane < kTorchLanes; ++lane) partial[0][lane] += partial[k][lane];
    float sum = 0.0f;
    for (std::size_t i = n_vectors * kTorchLanes; i < n; ++i) sum += x[i];
    for (std::size_t lane = 0; lane < kTorchLanes; ++lane) sum += partial[0][lane];
    return sum;
  }
  float partial[kIlp] = {};
  const std::size_t n_ilp = n / kIlp;
  for (std::size_t i = 0; i < n_ilp; ++i)
    for (std::size_t k = 0; k < kIlp; ++k) partial[k] += x[i * kIlp + k];
  for (std::size_t i = n_ilp * kIlp; i < n; ++i) partial[0] += x[i];
  for (std::size_t k = 1; k < kIlp; ++k) partial[0] += partial[k];
  return partial[0];
}

}  // namespace

void AuthorsOutlierMask(std::span<const float> values, double alpha, std::span<std::uint8_t> mask) {
  QAQ_CHECK(mask.size() == values.size(), "mask of {} for {} values", mask.size(), values.size());
  std::fill(mask.begin(), mask.end(), std::uint8_t{0});
  const std::size_t n = values.size();
  if (alpha == 0.0 || n == 0) return;
  // Thresholds: the ceil(alpha/2 G)-th and floor((1 - alpha/2) G)-th smallest (1-based, as
  // torch.kthvalue), evaluated in double like the Python expressions.
  const double g = static_cast<double>(n);
  const auto clamp_k = [n](double k) { return std::clamp<std::size_t>(static_cast<std::size_t>(k), 1, n); };
  const std::size_t k_low = clamp_k(std::ceil(alpha / 2.0 * g));
  const std::size_t k_high = clamp_k(std::floor((1.0 - alpha / 2.0) * g));
  std::vector<float> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  const float lower = sorted[k_low - 1];
  const float upper = sorted[k_high - 1];
  for (std::size_t i = 0; i < n; ++i) mask[i] = (values[i] <= lower || values[i] > upper) ? 1 : 0;
}

float AuthorsRange(std::span<const float> values, std::span<const std::uint8_t> mask) {
  QAQ_CHECK(mask.size() == values.size(), "mask of {} for {} values", mask.size(), values.size());
  bool any = false;
  float lo = 0.0f, hi = 0.0f;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (mask[i]) continue;
    lo = any ? std::min(lo, values[i]) : values[i];
    hi = any ? std::max(hi, values[i]) : values[i];
    any = true;
  }
  return hi - lo;
}

void AuthorsQuantizeGroup(std::span<const float> values, std::span<const std::uint8_t> mask, int bits,
                          std::span<float> out) {
  QAQ_CHECK(mask.size() == values.size() && out.size() == values.size(), "sizes {} {} {}", values.size(),
            mask.size(), out.size());
  QAQ_CHECK(bits >= 0 && bits <= 16, "bit width {}", bits);
  // Masked mean, min and max over the non-outliers, in fp32. The sum adds the values (0 at the
  // outliers) in the order of the reference's reduction kernel, so that the mean is bit-exact.
  std::size_t count = 0;
  float lo = 0.0f, hi = 0.0f;
  std::vector<float> kept(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    kept[i] = mask[i] ? 0.0f : values[i];
    if (mask[i]) continue;
    lo = count == 0 ? values[i] : std::min(lo, values[i]);
    hi = count == 0 ? values[i] : std::max(hi, values[i]);
    ++count;
  }
  if (count == 0) {
    std::copy(values.begin(), values.end(), out.begin());
    return;
  }
  const float sum = ReferenceSum(kept);
  const float mean = sum / static_cast<float>(count);
  // scale = (max - min) / 2^B: the grid step, centred on the mean.
  const float scale = (hi - lo) / std::ldexp(1.0f, bits);
  const float code_min = bits == 0 ? -0.5f : -std::ldexp(1.0f, bits - 1);
  const float code_max = bits == 0 ? -0.5f : std::ldexp(1.0f, bits - 1) - 1.0f;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (mask[i]) {
      out[i] = values[i];
      continue;
    }
    float code = code_min;  // range 0: 0/0 in the reference, which ends at the clamp's minimum
    if (scale > 0.0f) {
      const float normalized = (values[i] - mean) / scale;
      code = std::clamp(std::nearbyint(normalized), code_min, code_max);  // round half to even
    }
    out[i] = code * scale + mean;
  }
}

}  // namespace qaq
