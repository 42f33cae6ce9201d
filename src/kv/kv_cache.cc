#include "qaq/kv_cache.h"

#include <fmt/format.h>

namespace qaq {

std::string KvCache::Summary() const {
  const KvMemory m = Memory();
  return fmt::format("kv cache {}: {} tokens, {:.1f} KiB (fp16 would hold {:.1f} KiB: ratio {:.2f}x)",
                     name(), n_tokens(), double(m.cache_bytes()) / 1024.0,
                     double(m.fp16_reference_bytes) / 1024.0, m.compression_ratio());
}

}  // namespace qaq
