// Keys quantized per channel in blocks of G consecutive tokens (as KIVI and KVQuant do): one
// [min, max] per (layer, KV head, channel, block) and one bit width per block. FINDINGS.md: at
// equal bits this roughly halves the key error of per-token groups, since keys vary far more
// between channels than between tokens.
//
// Per (layer, KV head): complete blocks of codes, stored as G rows of head_dim codes so that a
// score is one packed dot product per token:
//   q . k_t = sum_d q_d (offset_d + scale_d c_td) = (q . offset) + (q * scale) . c_t,
// one DotChannelRows call per block (quant/channel_dot.h: the query scaled per channel and the
// constant q . offset, formed from the block's metadata); then a tail
// of the tokens not yet in a complete block, in fp16 (rotated, blocked layout for the fp16
// kernel) and counted in the size. With `prerope` the blocks hold keys before RoPE and the query
// is rotated back per token. No outliers: on per-channel keys they did not pay for themselves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kv/rope_rotator.h"
#include "qaq/kv_cache.h"
#include "qaq/quant.h"

namespace qaq::internal {

class ChannelKeys {
 public:
  ChannelKeys(const KvCacheShape& shape, int block, bool prerope, const RopeRotator* rotator);

  int block() const { return block_; }
  bool prerope() const { return prerope_; }

  // Writes position pos (rotated key, head_dim values) to the fp16 tail.
  void Append(int layer, int kv_head, int pos, const float* rotated);
  void Scores(int layer, int kv_head, std::span<const float> q, std::span<float> scores) const;

  int n_blocks(int layer, int kv_head) const { return int(slots_[Slot(layer, kv_head)].bits.size()); }
  int block_bits(int layer, int kv_head, int b) const { return slots_[Slot(layer, kv_head)].bits[std::size_t(b)]; }
  // The head_dim channel ranges of block b.
  const GroupMeta* block_metas(int layer, int kv_head, int b) const {
    return slots_[Slot(layer, kv_head)].metas.data() + std::size_t(b) * std::size_t(shape_.head_dim);
  }
  // Tokens in the tail (first one: n_blocks * block).
  int tail_size(int layer, int kv_head) const { return slots_[Slot(layer, kv_head)].tail_tokens; }

  // The largest channel range of block b's stored (fp16) metadata: the key formula's range. Kept
  // per block, since the per-step update asks for every block's.
  float block_range(int layer, int kv_head, int b) const {
    return slots_[Slot(layer, kv_head)].ranges[std::size_t(b)];
  }

  // Tail token i (0-based in the tail), decoded into the quantization space (before RoPE when
  // prerope).
  void ReadTail(int layer, int kv_head, int i, float* out) const;
  // Block b decoded: [block][head_dim] in the quantization space.
  void ReadBlock(int layer, int kv_head, int b, float* out) const;

  // The ranges (max - min, stored fp16) of every channel of `rows` ([block][head_dim]): the
  // largest is the block's range for the key formula.
  float BlockRange(std::span<const float> rows);
  // Turns the first `block` tail tokens into a new block at `bits` (0..8) from `rows`
  // ([block][head_dim], quantization space).
  void FormBlock(int layer, int kv_head, int bits, std::span<const float> rows);
  // Re-quantizes block b at `bits` from `rows`.
  void Requantize(int layer, int kv_head, int b, int bits, std::span<const float> rows);

  // Forgets tokens >= n (a block cut by n goes back to the fp16 tail, decoded).
  void Truncate(int n);

  std::size_t code_bytes() const;
  std::size_t metadata_bytes() const;
  // One byte (the width) per block: a block's place follows from the widths before it.
  std::size_t table_bytes() const;
  // Tokens stored per width, summed over (layer, KV head) (tail tokens at 16).
  std::vector<std::pair<int, std::size_t>> TokensPerWidth() const;

 private:
  // Blocks back to back: block b holds `block` rows of BytesFor(head_dim, bits[b]) bytes.
  struct HeadSlot {
    std::vector<std::uint8_t> bits;    // [block]
    std::vector<std::uint8_t> codes;   // every block's rows
    std::vector<GroupMeta> metas;      // [block][head_dim]
    std::vector<float> ranges;         // [block] largest channel range of the stored metas
    std::vector<std::uint16_t> tail;   // fp16, blocked layout of kernels/attention.h
    int tail_tokens = 0;
  };
  std::size_t Slot(int layer, int kv_head) const {
    return std::size_t(layer) * std::size_t(shape_.n_kv_heads) + std::size_t(kv_head);
  }
  std::size_t BlockBytes(int bits) const { return std::size_t(block_) * BytesFor(std::size_t(shape_.head_dim), bits); }
  std::size_t BlockOffset(const HeadSlot& slot, int b) const;
  // Quantizes rows ([block][head_dim]) into codes_ (the block's rows) and metas.
  void Encode(int bits, std::span<const float> rows, GroupMeta* metas);
  void SetTail(HeadSlot& slot, int i, const float* rotated);
  float MetaRange(const GroupMeta* metas) const;

  KvCacheShape shape_;
  int block_;
  bool prerope_;
  const RopeRotator* rotator_;
  int rope_dim_;
  std::vector<HeadSlot> slots_;  // [layer][kv_head]
  std::vector<float> relative_cos_, relative_sin_;  // prerope: R_r^T, r < max(block, 16) ([r][head_dim])
  // prerope, per width 0..8 (empty where the width has no plan), in the lane order of
  // GetLanePlan(bits, head_dim): R_v^T for v < 16 (PermuteRowPairsForPlan's layout) and R_16u^T
  // for the groups of 16 rows of a block ([u][n_steps * 8]); see quant/rotated_dot.h.
  std::vector<float> plan_cos_[9], plan_sin_[9], group_cos_[9], group_sin_[9];
  GroupQuantizer quantizer_{0.0};
  std::vector<float> channel_;           // [block]
  std::vector<std::uint8_t> codes_;      // [head_dim][block] unpacked
  std::vector<std::uint8_t> block_codes_;  // the encoded block
  std::vector<std::uint8_t> packed_;     // scratch
  std::vector<std::uint8_t> row_codes_;  // [head_dim]
};

}  // namespace qaq::internal
