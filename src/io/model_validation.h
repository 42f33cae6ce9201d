// Checks shared by the model readers: a configuration must be self-consistent and within sane
// limits before any size is computed from it, and every tensor must have the shape the forward
// pass expects. Tensor names follow GGUF's ("blk.3.attn_q.weight") for both file formats.
#pragma once

#include <cstdint>
#include <string>

#include "qaq/model.h"
#include "qaq/status.h"

namespace qaq::internal {

// Upper bounds far above any real LLaMA model; they keep every size product inside 64 bits.
inline constexpr std::int64_t kMaxWidth = 1 << 20;  // dim, hidden_dim
inline constexpr std::int64_t kMaxLayers = 4096;
inline constexpr std::int64_t kMaxHeads = 4096;
inline constexpr std::int64_t kMaxVocab = 1 << 24;
inline constexpr std::int64_t kMaxContext = 1 << 24;

// Dimensions positive and below the limits, dim % n_heads == 0, n_heads % n_kv_heads == 0,
// rope_dim even and <= head_dim, finite positive rope_theta and rms_eps. kDataLoss otherwise.
Status ValidateConfig(const ModelConfig& config);

// Every tensor present, with the shape `config` implies. kDataLoss naming the tensor otherwise.
Status ValidateWeights(const ModelConfig& config, const ModelWeights& weights);

// "blk.<layer>.<part>.weight".
std::string LayerTensorName(int layer, const char* part);

// a * b into *out; false on overflow.
bool CheckedMul(std::uint64_t a, std::uint64_t b, std::uint64_t* out);

}  // namespace qaq::internal
