// Memory of a cache split into keys and values, for the sweep's "bits K / bits V" columns. The
// quantized backends account keys and values apart (QuantizedKvCache::KeyMemory/ValueMemory);
// dense caches hold both at one width, so their memory splits evenly.
#pragma once

#include <utility>

#include "qaq/kv_cache.h"

namespace qaq::internal {

struct KeyValueMemory {
  KvMemory keys;
  KvMemory values;
};

KeyValueMemory SplitMemory(const KvCache& cache);

// Stored bits per cached element of one kind, everything counted: 16 * cache bytes / fp16 bytes.
double StoredBitsPerValue(const KvMemory& m);

// Element-wise sum (for totals over chunks).
void AddMemory(KvMemory& sum, const KvMemory& m);

}  // namespace qaq::internal
