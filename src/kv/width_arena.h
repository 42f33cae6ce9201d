// The tokens of one storage unit that are stored at one bit width, back to back in fixed-size
// slots, so that attention runs one specialised loop (DotPackedRows / AxpyPackedRows) over all of
// them. A unit is the set of (layer, KV head) pairs that share one group per token (QAQ-method.md
// §7): one pair at head granularity, the KV heads of a layer at layer granularity, every pair at
// token granularity. Each pair is one "plane" of the unit.
//
// A slot holds one group: its codes in every plane (plane p holds values [p*D, (p+1)*D) of the
// group), its metadata and outliers (widths 0..8) and the token it belongs to. Removing a slot
// moves the last one into its place, so the arena never has holes and its memory is exactly
// proportional to the tokens it holds.
//
// Width 16 (fp16) slots of keys use the blocked, transposed layout of kernels/attention.h so that
// the fp16 kernels score them; every other arena stores rows of packed codes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kv/index_vector.h"
#include "qaq/quant.h"

namespace qaq::internal {

struct ArenaGeometry {
  int n_planes = 1;
  int head_dim = 0;               // values per plane
  int outliers_per_group = 0;     // exact count for widths 0..8 (§4: 2 round(alpha/2 n))
  int max_tokens = 0;             // token numbers are < max_tokens
  bool blocked_fp16 = false;      // width 16: the blocked key layout
  int group_size() const { return n_planes * head_dim; }
};

class WidthArena {
 public:
  WidthArena(int bits, const ArenaGeometry& geometry);

  int bits() const { return bits_; }
  std::size_t size() const { return tokens_.size(); }
  const IndexVector& tokens() const { return tokens_; }
  std::uint32_t token(std::size_t slot) const { return tokens_[slot]; }
  // Bytes of one plane's row of codes.
  std::size_t row_bytes() const { return row_bytes_; }

  // Appends a slot for `token` and returns its index; its contents are then written with the
  // setters below.
  std::size_t Add(std::uint32_t token);
  // Moves the last slot into `slot`.
  void SwapRemove(std::size_t slot);
  void Clear();

  // Packed rows (widths 0..8, or 16 without the blocked layout): plane p, slot s.
  const std::uint8_t* plane(int p) const { return planes_[std::size_t(p)].data(); }
  std::uint8_t* Row(int p, std::size_t slot) { return planes_[std::size_t(p)].data() + slot * row_bytes_; }
  const std::uint8_t* Row(int p, std::size_t slot) const {
    return planes_[std::size_t(p)].data() + slot * row_bytes_;
  }
  // Width 16: element d of plane p, slot s (blocked or row layout).
  std::uint16_t Fp16(int p, std::size_t slot, int d) const;
  void SetFp16(int p, std::size_t slot, int d, std::uint16_t h);
  const std::uint16_t* fp16_plane(int p) const {
    return reinterpret_cast<const std::uint16_t*>(planes_[std::size_t(p)].data());
  }

  const GroupMeta* metas() const { return metas_.data(); }
  GroupMeta meta(std::size_t slot) const { return metas_[slot]; }
  void SetMeta(std::size_t slot, GroupMeta meta);
  // max - min of each slot's stored metadata (the bit formulas' range), kept beside the metas
  // so that the per-step update reads floats instead of converting every group's fp16 pair.
  const float* ranges() const { return ranges_.data(); }
  // Outlier j of a slot (widths 0..8): position inside the group and exact value; each slot's
  // outliers are in increasing position, so those of plane p (positions [p D, (p + 1) D)) are
  // one run.
  std::uint32_t outlier_index(std::size_t slot, int j) const {
    return outlier_index_[slot * std::size_t(geometry_.outliers_per_group) + std::size_t(j)];
  }
  float outlier_value(std::size_t slot, int j) const {
    return outlier_value_[slot * std::size_t(geometry_.outliers_per_group) + std::size_t(j)];
  }
  // The whole outlier table, [slot][outliers_per_group] (for loops over many slots).
  const IndexVector& outlier_indices() const { return outlier_index_; }
  const float* outlier_values() const { return outlier_value_.data(); }
  void SetOutliers(std::size_t slot, const std::vector<Outlier>& outliers);
  int outliers_per_group() const { return bits_ == kPassThroughBits ? 0 : geometry_.outliers_per_group; }

  // Exact bytes of the slots in use (§8): packed codes, metadata (2 x fp16 per group), outliers
  // (fp32 value + 16- or 32-bit position) and the table of token numbers.
  std::size_t code_bytes() const { return size() * std::size_t(geometry_.n_planes) * row_bytes_; }
  std::size_t metadata_bytes() const { return metas_.size() * sizeof(GroupMeta); }
  std::size_t outlier_bytes() const {
    return outlier_value_.size() * (sizeof(float) + std::size_t(outlier_index_.width()));
  }
  std::size_t table_bytes() const { return tokens_.bytes(); }

 private:
  std::size_t PlaneBytesFor(std::size_t slots) const;

  int bits_;
  ArenaGeometry geometry_;
  std::size_t row_bytes_;
  IndexVector tokens_;                              // [slot] token number
  std::vector<std::vector<std::uint8_t>> planes_;   // [plane][slot * row_bytes] (blocked: whole blocks)
  std::vector<GroupMeta> metas_;                    // [slot], widths 0..8
  std::vector<float> ranges_;                       // [slot], widths 0..8
  IndexVector outlier_index_;                       // [slot][outliers_per_group]
  std::vector<float> outlier_value_;                // [slot][outliers_per_group]
};

}  // namespace qaq::internal
