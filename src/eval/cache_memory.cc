#include "eval/cache_memory.h"

#include "kv/quantized_cache.h"

namespace qaq::internal {

KeyValueMemory SplitMemory(const KvCache& cache) {
  if (const auto* q = dynamic_cast<const QuantizedKvCache*>(&cache)) {
    return {q->KeyMemory(), q->ValueMemory()};
  }
  const KvMemory m = cache.Memory();
  KvMemory half;
  half.code_bytes = m.code_bytes / 2;
  half.metadata_bytes = m.metadata_bytes / 2;
  half.outlier_bytes = m.outlier_bytes / 2;
  half.table_bytes = m.table_bytes / 2;
  half.full_precision_bytes = m.full_precision_bytes / 2;
  half.fp16_reference_bytes = m.fp16_reference_bytes / 2;
  return {half, half};
}

double StoredBitsPerValue(const KvMemory& m) {
  return m.fp16_reference_bytes == 0 ? 0.0
                                     : 16.0 * double(m.cache_bytes()) / double(m.fp16_reference_bytes);
}

void AddMemory(KvMemory& sum, const KvMemory& m) {
  sum.code_bytes += m.code_bytes;
  sum.metadata_bytes += m.metadata_bytes;
  sum.outlier_bytes += m.outlier_bytes;
  sum.table_bytes += m.table_bytes;
  sum.full_precision_bytes += m.full_precision_bytes;
  sum.fp16_reference_bytes += m.fp16_reference_bytes;
}

}  // namespace qaq::internal
