#include "kv/kv_registry.h"

#include <cmath>

#include <fmt/format.h>

#include "kv/dense_cache.h"

namespace qaq {
namespace internal {
namespace {

constexpr KvBackend kBackends[] = {
    {"fp32", "full precision: keys rotated on append, 4 bytes per element", MakeFp32Cache},
    {"fp16", "IEEE half precision: keys rotated on append, 2 bytes per element", MakeFp16Cache},
};

}  // namespace

std::span<const KvBackend> KvBackends() { return kBackends; }

std::string KvBackendNames() {
  std::string names;
  for (const KvBackend& b : kBackends) names += (names.empty() ? "" : ", ") + std::string(b.name);
  return names;
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

StatusOr<std::unique_ptr<KvCache>> MakeKvCache(std::string_view spec, const KvCacheShape& shape) {
  const std::size_t colon = spec.find(':');
  const std::string_view name = spec.substr(0, colon);
  const std::string_view options = colon == std::string_view::npos ? "" : spec.substr(colon + 1);
  for (const internal::KvBackend& backend : internal::KvBackends()) {
    if (backend.name != name) continue;
    QAQ_RETURN_IF_ERROR(internal::ValidateKvCacheShape(shape));
    return backend.make(options, shape);
  }
  return InvalidArgumentError("unknown KV cache '{}' (valid: {})", spec, internal::KvBackendNames());
}

}  // namespace qaq
