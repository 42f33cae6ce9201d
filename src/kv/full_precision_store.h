// The full-precision tier of QAQ-method.md §6: every token's keys and values as they came from
// the model (fp32, keys before RoPE), so that a token whose bits rise is re-quantized from the
// original values rather than from its codes. Two places to keep them:
//   ram   a growing array in memory;
//   disk  an append-only, memory-mapped file in a folder of the user's choice (created
//         unlinked, so it disappears with the process); pages are written once per token and
//         read back only when a token is re-quantized.
// Layout per position: [layer][key | value][kv_head][head_dim] floats.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "qaq/kv_cache.h"
#include "qaq/kv_config.h"
#include "qaq/status.h"

namespace qaq::internal {

class FullPrecisionStore {
 public:
  // kInternal when the disk tier's file cannot be created, sized or mapped (the message names
  // the folder and the reason).
  static StatusOr<std::unique_ptr<FullPrecisionStore>> Create(FullPrecisionTier tier, const std::string& dir,
                                                              const KvCacheShape& shape);
  FullPrecisionStore(const FullPrecisionStore&) = delete;
  FullPrecisionStore& operator=(const FullPrecisionStore&) = delete;
  ~FullPrecisionStore();

  FullPrecisionTier tier() const { return tier_; }
  // Stores position pos of one layer (positions in order; a truncated position may be written again).
  void Write(int layer, int pos, const float* k, const float* v);
  const float* Key(int layer, int pos, int kv_head) const { return At(layer, pos, 0, kv_head); }
  const float* Value(int layer, int pos, int kv_head) const { return At(layer, pos, 1, kv_head); }
  // Forgets positions >= n.
  void Truncate(int n);
  // Bytes of the positions held.
  std::size_t bytes() const { return std::size_t(n_positions_) * position_floats_ * sizeof(float); }
  const std::string& path() const { return path_; }

  // Only Create can make one (a key type no one else can name), through std::make_unique.
  class ConstructorKey {
    friend class FullPrecisionStore;
    explicit ConstructorKey() = default;
  };
 public:
  FullPrecisionStore(ConstructorKey, FullPrecisionTier tier, const KvCacheShape& shape);

 private:
  const float* At(int layer, int pos, int kv, int kv_head) const;

  FullPrecisionTier tier_;
  KvCacheShape shape_;
  std::size_t position_floats_;  // floats per position, all layers
  int n_positions_ = 0;          // positions with at least one layer written
  std::vector<float> ram_;
  float* mapped_ = nullptr;      // disk: the mapping of max_tokens positions
  std::size_t mapped_bytes_ = 0;
  std::string path_;
};

}  // namespace qaq::internal
