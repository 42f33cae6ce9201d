// Element-wise and normalising kernels of the forward pass, each with a scalar reference (the
// test oracle, written as llama2.c's run.c computes it) and a SIMD version with the same contract.
#pragma once

#include <cstddef>

namespace qaq::internal {

// RMSNorm: out[i] = weight[i] * x[i] / sqrt(mean(x^2) + eps). out may alias x.
void RmsNormRef(const float* x, const float* weight, float* out, std::size_t n, float eps);
void RmsNorm(const float* x, const float* weight, float* out, std::size_t n, float eps);

// In-place softmax over x[0..n), n >= 1: x[i] = exp(x[i] - max) / sum_j exp(x[j] - max).
void SoftmaxRef(float* x, std::size_t n);
void Softmax(float* x, std::size_t n);

// SwiGLU: out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). out may alias gate or up.
void SwiGluRef(const float* gate, const float* up, float* out, std::size_t n);
void SwiGlu(const float* gate, const float* up, float* out, std::size_t n);

// y[i] += x[i] (the residual connection); plain loop, vectorised by the compiler.
void AddInPlace(float* y, const float* x, std::size_t n);

}  // namespace qaq::internal
