// Keys or values stored one group per token (QAQ-method.md §7), each group at its own bit width,
// with attention computed on the packed codes.
//
// Storage: per unit (see width_arena.h) one WidthArena per bit width in use. A new position is
// written at width 16 (fp16) by Append; the cache re-quantizes groups between widths in
// EndStep through ReadGroup / StoreGroup. Scores and WeightedSum visit each arena once and run
// its width's specialised loop over all its slots, writing each result to its token's index.
//
// Keys are rotated (RoPE) before they reach Append. With `prerope`, quantized widths hold the
// keys before RoPE (ReadGroup and StoreGroup speak that space) and Scores rotates the query
// back by each token's position; fp16 slots always hold rotated keys for the fast fp16 kernel.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kv/rope_rotator.h"
#include "kv/width_arena.h"
#include "qaq/kv_cache.h"
#include "qaq/quant.h"

namespace qaq::internal {

// Index of a width's arena: 0..8, and 9 for fp16.
inline constexpr int kArenaSlots = 10;
inline int ArenaIndex(int bits) { return bits == kPassThroughBits ? 9 : bits; }
inline int ArenaBits(int index) { return index == 9 ? kPassThroughBits : index; }

class TokenRows {
 public:
  // rotator: needed when prerope (keys); must outlive this object.
  TokenRows(const KvCacheShape& shape, KvKind kind, Granularity granularity, double outlier_alpha, bool prerope,
            const RopeRotator* rotator);

  KvKind kind() const { return kind_; }
  Granularity granularity() const { return granularity_; }
  bool prerope() const { return prerope_; }
  int n_units() const { return n_units_; }
  int planes_per_unit() const { return planes_; }
  int group_size() const { return planes_ * shape_.head_dim; }
  int outliers_per_group() const { return geometry_.outliers_per_group; }
  int UnitOf(int layer, int kv_head) const;
  int PlaneOf(int layer, int kv_head) const;
  // Layer and KV head of plane p of unit u.
  void PairOf(int unit, int plane, int* layer, int* kv_head) const;

  // Writes position `pos` of (layer, kv_head) at width 16; `row` has head_dim values (keys rotated).
  void Append(int layer, int kv_head, int pos, const float* row);

  // Attention on the stored groups (see qaq/kv_cache.h).
  void Scores(int layer, int kv_head, std::span<const float> q, std::span<float> scores) const;
  void WeightedSum(int layer, int kv_head, std::span<const float> probs, std::span<float> out) const;

  // The arena of `bits` in unit u (null when none was made yet).
  WidthArena* arena(int unit, int bits) { return arenas_[Index(unit, ArenaIndex(bits))].get(); }
  const WidthArena* arena(int unit, int bits) const { return arenas_[Index(unit, ArenaIndex(bits))].get(); }

  // The group in `slot` of `arena` (of unit u), decoded: [planes][head_dim] values in the
  // quantization space (keys before RoPE when prerope).
  void ReadGroup(int unit, const WidthArena& arena, std::size_t slot, std::span<float> out) const;
  // Adds `token`'s group at `bits` from values in the quantization space. For widths 0..8
  // `quantizer` must hold the analysis of exactly these values (GroupQuantizer::Analyze).
  void StoreGroup(int unit, std::uint32_t token, int bits, std::span<const float> values, GroupQuantizer& quantizer);

  // Forgets tokens >= n.
  void Truncate(int n);

  // Totals over every arena (exact, §8).
  std::size_t code_bytes() const;
  std::size_t metadata_bytes() const;
  std::size_t outlier_bytes() const;
  std::size_t table_bytes() const;
  // Number of groups stored at each width (index ArenaIndex).
  std::array<std::size_t, kArenaSlots> GroupsPerWidth() const;

 private:
  std::size_t Index(int unit, int arena_index) const { return std::size_t(unit) * kArenaSlots + std::size_t(arena_index); }
  WidthArena& GetArena(int unit, int bits);
  // The sum of bytes(arena) over every arena made.
  template <typename Bytes>
  std::size_t SumOverArenas(Bytes bytes) const;

  KvCacheShape shape_;
  KvKind kind_;
  Granularity granularity_;
  bool prerope_;
  const RopeRotator* rotator_;
  int n_units_;
  int planes_;
  ArenaGeometry geometry_;
  std::vector<std::unique_ptr<WidthArena>> arenas_;  // [unit][kArenaSlots]
  std::vector<int> appended_;                         // per unit: tokens 0..appended-1 have a slot
  std::vector<std::uint8_t> codes_scratch_;
};

}  // namespace qaq::internal
