// The table behind MakeKvCache: one row per `--kv` backend. Adding a backend is one row in
// kv_registry.cc plus its factory; the CLI's help and error messages read the names from here.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "qaq/kv_cache.h"
#include "qaq/status.h"

namespace qaq::internal {

struct KvBackend {
  std::string_view name;         // the `--kv` name, e.g. "fp16"
  std::string_view description;  // one line for --help
  // `options` is what follows "name:" in the spec ("" when there is none); `shape` is validated.
  StatusOr<std::unique_ptr<KvCache>> (*make)(std::string_view options, const KvCacheShape& shape);
};

std::span<const KvBackend> KvBackends();

// "fp32, fp16, ...": the valid names, for messages.
std::string KvBackendNames();

// kInvalidArgument unless every dimension is positive, n_heads is a multiple of n_kv_heads and
// rope_dim is even and at most head_dim.
Status ValidateKvCacheShape(const KvCacheShape& shape);

}  // namespace qaq::internal
