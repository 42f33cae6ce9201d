#include "kv/kv_registry.h"

#include <cmath>

#include <fmt/format.h>

#include "kv/dense_cache.h"
#include "kv/quantized_cache.h"
#include "qaq/kv_config.h"

namespace qaq {
namespace internal {
namespace {

constexpr KvBackend kBackends[] = {
    {"fp32", "fp32", "full precision: keys rotated on append, 4 bytes per element"},
    {"fp16", "fp16", "IEEE half precision: keys rotated on append, 2 bytes per element"},
    {"uniform", "uniform:B | uniform:KB/VB", "every group at B bits (keys KB, values VB; 0..8 or 16), packed"},
    {"kivi", "kivi:B", "KIVI: keys per channel in blocks, values per token, recent tokens in fp16"},
    {"qaq", "qaq", "QAQ: per-token widths from attention and key ranges, re-quantized every step"},
};

}  // namespace

std::span<const KvBackend> KvBackends() { return kBackends; }

std::string KvBackendNames() {
  std::string names;
  for (const KvBackend& b : kBackends) names += (names.empty() ? "" : ", ") + std::string(b.name);
  return names;
}

std::string KvBackendHelp() {
  std::string help;
  for (const KvBackend& b : kBackends) help += fmt::format("\n  {:<26} {}", b.usage, b.description);
  return help;
}

Status ValidateKvCacheShape(const KvCacheShape& s) {
  if (s.n_layers <= 0 || s.n_kv_heads <= 0 || s.head_dim <= 0 || s.max_tokens <= 0 ||
      s.n_heads <= 0) {
    return InvalidArgumentError(
        "KV cache shape needs positive sizes (layers {}, kv heads {}, head dim {}, tokens {}, "
        "heads {})",
        s.n_layers, s.n_kv_heads, s.head_dim, s.max_tokens, s.n_heads);
  }
  if (s.n_heads % s.n_kv_heads != 0) {
    return InvalidArgumentError("KV cache: {} query heads do not share {} KV heads evenly",
                                s.n_heads, s.n_kv_heads);
  }
  if (s.rope_dim < 0 || s.rope_dim > s.head_dim || s.rope_dim % 2 != 0) {
    return InvalidArgumentError("KV cache: rope dimension {} must be even and at most head dim {}",
                                s.rope_dim, s.head_dim);
  }
  if (!std::isfinite(s.rope_theta) || s.rope_theta <= 0.0f) {
    return InvalidArgumentError("KV cache: rope theta {} must be finite and positive", s.rope_theta);
  }
  return OkStatus();
}

}  // namespace internal

StatusOr<std::unique_ptr<KvCache>> MakeKvCache(const KvCacheConfig& config, const KvCacheShape& shape) {
  QAQ_RETURN_IF_ERROR(ValidateKvCacheConfig(config));
  QAQ_RETURN_IF_ERROR(internal::ValidateKvCacheShape(shape));
  switch (config.backend) {
    case KvBackendKind::kFp32:
      return std::unique_ptr<KvCache>(std::make_unique<internal::DenseKvCache<float>>(shape));
    case KvBackendKind::kFp16:
      return std::unique_ptr<KvCache>(std::make_unique<internal::DenseKvCache<std::uint16_t>>(shape));
    default: break;
  }
  QAQ_ASSIGN_OR_RETURN(std::unique_ptr<internal::QuantizedKvCache> cache,
                       internal::QuantizedKvCache::Create(config, shape));
  return std::unique_ptr<KvCache>(std::move(cache));
}

StatusOr<std::unique_ptr<KvCache>> MakeKvCache(std::string_view spec, const KvCacheShape& shape) {
  QAQ_ASSIGN_OR_RETURN(const KvCacheConfig config, ParseKvCacheSpec(spec));
  return MakeKvCache(config, shape);
}

}  // namespace qaq
