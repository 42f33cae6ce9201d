// The table behind `--kv`: one row per backend, with the line --help shows. MakeKvCache parses a
// spec (qaq/kv_config.h) and builds the backend its name selects.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "qaq/kv_cache.h"
#include "qaq/status.h"

namespace qaq::internal {

struct KvBackend {
  std::string_view name;         // the `--kv` name, e.g. "fp16"
  std::string_view usage;        // how it is written, e.g. "uniform:B | uniform:KB/VB"
  std::string_view description;  // one line for --help
};

std::span<const KvBackend> KvBackends();

// "fp32, fp16, ...": the valid names, for messages.
std::string KvBackendNames();
// One line per backend: "usage: description", for --help.
std::string KvBackendHelp();

// kInvalidArgument unless every dimension is positive, n_heads is a multiple of n_kv_heads and
// rope_dim is even and at most head_dim.
Status ValidateKvCacheShape(const KvCacheShape& shape);

}  // namespace qaq::internal
