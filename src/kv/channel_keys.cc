#include "kv/channel_keys.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "kernels/attention.h"
#include "kv/token_rows.h"
#include "quant/channel_dot.h"
#include "quant/fp16.h"
#include "quant/lane_plan.h"
#include "quant/rotated_dot.h"

namespace qaq::internal {
namespace {

struct ChannelScratch {
  std::vector<float> scaled_q, rotated_q, swapped_q, offsets, scales;
  std::vector<float> a_plan, b_plan, scale_plan, offset_plan;
  std::vector<AffineMeta> channels;
};

ChannelScratch& Scratch() {
  thread_local ChannelScratch scratch;
  return scratch;
}

std::size_t TailElements(int tokens, int head_dim) {
  return std::size_t((tokens + kKeyBlock - 1) / kKeyBlock) * kKeyBlock * std::size_t(head_dim);
}

}  // namespace

ChannelKeys::ChannelKeys(const KvCacheShape& shape, int block, bool prerope, const RopeRotator* rotator)
    : shape_(shape),
      block_(block),
      prerope_(prerope),
      rotator_(rotator),
      rope_dim_(shape.rope_dim),
      slots_(std::size_t(shape.n_layers) * std::size_t(shape.n_kv_heads)) {
  QAQ_CHECK(block >= 1 && shape.head_dim % 8 == 0 && (!prerope || rotator != nullptr));
  if (!prerope) return;
  // R_r^T for r in [0, block) as out = C (.) w + S (.) swap(w), swap exchanging the two values of
  // each rotated pair: C = (c, c), S = (s, -s) per pair (1 and 0 beyond rope_dim). The angles are
  // the rotator's: R_r^T applied to (1, 0) gives (c, -s).
  const int head_dim = shape.head_dim;
  // (At least kRotatedGroup rows: the fused kernel's per-row tables.)
  const int table_rows = std::max(block, kRotatedGroup);
  relative_cos_.assign(std::size_t(table_rows) * std::size_t(head_dim), 1.0f);
  relative_sin_.assign(relative_cos_.size(), 0.0f);
  std::vector<float> unit(static_cast<std::size_t>(head_dim));
  for (int r = 0; r < table_rows; ++r) {
    for (int d = 0; d < head_dim; ++d) unit[std::size_t(d)] = d % 2 == 0 ? 1.0f : 0.0f;
    rotator->Unrotate(unit.data(), std::min(r, shape.max_tokens - 1), unit.data());
    for (int d = 0; d + 1 < rope_dim_; d += 2) {
      const std::size_t i = std::size_t(r) * std::size_t(head_dim) + std::size_t(d);
      relative_cos_[i] = relative_cos_[i + 1] = unit[std::size_t(d)];
      relative_sin_[i] = -unit[std::size_t(d) + 1];
      relative_sin_[i + 1] = unit[std::size_t(d) + 1];
    }
  }
  for (int bits = 1; bits <= kMaxCodeBits; ++bits) {
    const LanePlan* plan = GetLanePlan(bits, head_dim);
    if (plan == nullptr) continue;
    // rotated_dot.h: R_v for v < 16 per row, R_16u for the query of each group of 16 rows.
    plan_cos_[bits].resize(PairTableSize(*plan, kRotatedGroup));
    plan_sin_[bits].resize(PairTableSize(*plan, kRotatedGroup));
    PermuteRowPairsForPlan(*plan, relative_cos_.data(), kRotatedGroup, plan_cos_[bits].data());
    PermuteRowPairsForPlan(*plan, relative_sin_.data(), kRotatedGroup, plan_sin_[bits].data());
    const int groups = (block + kRotatedGroup - 1) / kRotatedGroup;
    const std::size_t stride = std::size_t(plan->n_steps) * kPlanLanes;
    group_cos_[bits].resize(std::size_t(groups) * stride);
    group_sin_[bits].resize(std::size_t(groups) * stride);
    for (int u = 0; u < groups; ++u) {
      const std::size_t from = std::size_t(u) * kRotatedGroup * std::size_t(head_dim);
      PermuteForPlan(*plan, relative_cos_.data() + from, group_cos_[bits].data() + std::size_t(u) * stride);
      PermuteForPlan(*plan, relative_sin_.data() + from, group_sin_[bits].data() + std::size_t(u) * stride);
    }
  }
}

void ChannelKeys::SetTail(HeadSlot& slot, int i, const float* rotated) {
  if (slot.tail.size() < TailElements(i + 1, shape_.head_dim)) slot.tail.resize(TailElements(i + 1, shape_.head_dim));
  for (int d = 0; d < shape_.head_dim; ++d) slot.tail[BlockedKeyIndex(i, d, shape_.head_dim)] = FloatToFp16(rotated[d]);
}

void ChannelKeys::Append(int layer, int kv_head, int pos, const float* rotated) {
  HeadSlot& slot = slots_[Slot(layer, kv_head)];
  QAQ_CHECK(pos == int(slot.bits.size()) * block_ + slot.tail_tokens, "channel keys: position {} out of order", pos);
  SetTail(slot, slot.tail_tokens, rotated);
  ++slot.tail_tokens;
}

void ChannelKeys::Scores(int layer, int kv_head, std::span<const float> q, std::span<float> scores) const {
  const HeadSlot& slot = slots_[Slot(layer, kv_head)];
  const int head_dim = shape_.head_dim, n = int(scores.size());
  ChannelScratch& s = Scratch();
  for (auto* v : {&s.scaled_q, &s.rotated_q, &s.swapped_q, &s.offsets, &s.scales}) v->resize(std::size_t(head_dim));
  s.channels.resize(std::size_t(head_dim));
  const std::uint8_t* codes = slot.codes.data();
  for (std::size_t b = 0; b < slot.bits.size(); ++b) {
    const int start = int(b) * block_;
    if (start >= n) return;
    const int rows = std::min(block_, n - start);
    const int bits = slot.bits[b];
    const GroupMeta* metas = slot.metas.data() + b * std::size_t(head_dim);
    const std::size_t row_bytes = BytesFor(std::size_t(head_dim), bits);
    const std::uint8_t* block_codes = codes;
    codes += BlockBytes(bits);
    if (!prerope_) {
      DotChannelRows(q.data(), metas, block_codes, row_bytes, rows, bits, head_dim, scores.data() + start);
      continue;
    }
    AffineFromMetas(metas, std::size_t(head_dim), bits, s.channels.data());
    // q . R_t k = (R_t^T q) . k for the key k stored before RoPE, with R_t^T = R_r^T R_t0^T
    // (t = t0 + r): the query is rotated back to the block's start once, then by r with the
    // block-relative table.
    rotator_->Unrotate(q.data(), start, s.rotated_q.data());
    for (int d = 0; d < head_dim; ++d) {
      s.swapped_q[std::size_t(d)] = d < rope_dim_ ? s.rotated_q[std::size_t(d ^ 1)] : 0.0f;
      s.offsets[std::size_t(d)] = s.channels[std::size_t(d)].offset;
      s.scales[std::size_t(d)] = s.channels[std::size_t(d)].scale;
    }
    if (!plan_cos_[bits].empty()) {
      // One pass over the block's codes (rotated_dot.h): the rotated and swapped query, the
      // channel scales and offsets, all in plan order.
      const LanePlan& plan = *GetLanePlan(bits, head_dim);
      const std::size_t steps = std::size_t(plan.n_steps) * kPlanLanes;
      for (auto* v : {&s.a_plan, &s.b_plan, &s.scale_plan, &s.offset_plan}) v->resize(steps);
      PermuteForPlan(plan, s.rotated_q.data(), s.a_plan.data());
      PermuteForPlan(plan, s.swapped_q.data(), s.b_plan.data());
      PermuteForPlan(plan, s.scales.data(), s.scale_plan.data());
      PermuteForPlan(plan, s.offsets.data(), s.offset_plan.data());
      const RotatedRowsQuery rq{s.a_plan.data(),         s.b_plan.data(),         plan_cos_[bits].data(),
                                plan_sin_[bits].data(),   group_cos_[bits].data(), group_sin_[bits].data(),
                                s.scale_plan.data(),      s.offset_plan.data()};
      if (DotRotatedRows(rq, block_codes, row_bytes, rows, bits, head_dim, scores.data() + start)) continue;
    }
    const float* w0 = s.rotated_q.data();
    const float* sw0 = s.swapped_q.data();
    for (int r = 0; r < rows; ++r) {
      const float* c = relative_cos_.data() + std::size_t(r) * std::size_t(head_dim);
      const float* sn = relative_sin_.data() + std::size_t(r) * std::size_t(head_dim);
      float* w = s.scaled_q.data();
      for (int d = 0; d < head_dim; ++d) w[d] = c[d] * w0[d] + sn[d] * sw0[d];
      const float constant = DotF32(w, s.offsets.data(), head_dim);
      for (int d = 0; d < head_dim; ++d) w[d] *= s.scales[std::size_t(d)];
      scores[std::size_t(start + r)] =
          DotPacked(w, 1.0f, block_codes + std::size_t(r) * row_bytes, bits, AffineMeta{constant, 1.0f}, head_dim);
    }
  }
  const int tail_start = int(slot.bits.size()) * block_;
  const int tail_rows = std::min(slot.tail_tokens, n - tail_start);
  if (tail_rows <= 0) return;
  ScoresF16(slot.tail.data(), tail_rows, head_dim, q.data(), scores.data() + tail_start);
}

void ChannelKeys::ReadTail(int layer, int kv_head, int i, float* out) const {
  const HeadSlot& slot = slots_[Slot(layer, kv_head)];
  QAQ_DCHECK(i >= 0 && i < slot.tail_tokens);
  for (int d = 0; d < shape_.head_dim; ++d) out[d] = Fp16ToFloat(slot.tail[BlockedKeyIndex(i, d, shape_.head_dim)]);
  if (prerope_) rotator_->Unrotate(out, int(slot.bits.size()) * block_ + i, out);
}

std::size_t ChannelKeys::BlockOffset(const HeadSlot& slot, int b) const {
  std::size_t offset = 0;
  for (int i = 0; i < b; ++i) offset += BlockBytes(slot.bits[std::size_t(i)]);
  return offset;
}

void ChannelKeys::ReadBlock(int layer, int kv_head, int b, float* out) const {
  const HeadSlot& slot = slots_[Slot(layer, kv_head)];
  const int head_dim = shape_.head_dim, bits = slot.bits[std::size_t(b)];
  const GroupMeta* metas = block_metas(layer, kv_head, b);
  const std::uint8_t* block_codes = slot.codes.data() + BlockOffset(slot, b);
  std::vector<AffineMeta> channels(static_cast<std::size_t>(head_dim));
  for (int d = 0; d < head_dim; ++d) channels[std::size_t(d)] = AffineFromMeta(metas[d], bits);
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(head_dim), 0);
  const std::size_t row_bytes = BytesFor(std::size_t(head_dim), bits);
  for (int r = 0; r < block_; ++r) {
    if (bits > 0) UnpackCodes(block_codes + std::size_t(r) * row_bytes, bits, codes);
    for (int d = 0; d < head_dim; ++d) {
      const AffineMeta m = channels[std::size_t(d)];
      out[std::size_t(r) * std::size_t(head_dim) + std::size_t(d)] = m.offset + m.scale * float(codes[std::size_t(d)]);
    }
  }
}

float ChannelKeys::BlockRange(std::span<const float> rows) {
  const int head_dim = shape_.head_dim;
  const int n = int(rows.size()) / head_dim;
  channel_.resize(std::size_t(n));
  float range = 0.0f;
  for (int d = 0; d < head_dim; ++d) {
    for (int r = 0; r < n; ++r) channel_[std::size_t(r)] = rows[std::size_t(r) * std::size_t(head_dim) + std::size_t(d)];
    range = std::max(range, quantizer_.Analyze(channel_).range());
  }
  return range;
}

void ChannelKeys::Encode(int bits, std::span<const float> rows, GroupMeta* metas) {
  const int head_dim = shape_.head_dim;
  QAQ_CHECK(bits >= 0 && bits <= kMaxCodeBits && rows.size() == std::size_t(block_) * std::size_t(head_dim));
  const std::size_t row_bytes = BytesFor(std::size_t(head_dim), bits);
  block_codes_.assign(BlockBytes(bits), 0);
  channel_.resize(std::size_t(block_));
  codes_.resize(std::size_t(head_dim) * std::size_t(block_));
  packed_.resize(BytesFor(std::size_t(block_), bits) + 8);
  // Each channel is one group of `block` values (§3 codec); its codes are then transposed into
  // token rows.
  for (int d = 0; d < head_dim; ++d) {
    for (int r = 0; r < block_; ++r) channel_[std::size_t(r)] = rows[std::size_t(r) * std::size_t(head_dim) + std::size_t(d)];
    metas[d] = quantizer_.Analyze(channel_).meta;
    if (bits == 0) continue;
    quantizer_.PackCodesTo(channel_, bits, packed_.data());
    UnpackCodes(packed_.data(), bits, std::span<std::uint8_t>(codes_.data() + std::size_t(d) * std::size_t(block_), std::size_t(block_)));
  }
  if (bits == 0) return;
  row_codes_.resize(std::size_t(head_dim));
  for (int r = 0; r < block_; ++r) {
    for (int d = 0; d < head_dim; ++d) row_codes_[std::size_t(d)] = codes_[std::size_t(d) * std::size_t(block_) + std::size_t(r)];
    PackCodes(row_codes_, bits, block_codes_.data() + std::size_t(r) * row_bytes);
  }
}

void ChannelKeys::FormBlock(int layer, int kv_head, int bits, std::span<const float> rows) {
  HeadSlot& slot = slots_[Slot(layer, kv_head)];
  QAQ_CHECK(slot.tail_tokens >= block_, "a block needs {} tail tokens, {} held", block_, slot.tail_tokens);
  slot.metas.resize(slot.metas.size() + std::size_t(shape_.head_dim));
  Encode(bits, rows, slot.metas.data() + slot.metas.size() - std::size_t(shape_.head_dim));
  slot.codes.insert(slot.codes.end(), block_codes_.begin(), block_codes_.end());
  slot.bits.push_back(std::uint8_t(bits));
  slot.ranges.push_back(MetaRange(slot.metas.data() + slot.metas.size() - std::size_t(shape_.head_dim)));
  // Shift the rest of the tail down by one block (its rotated fp16 keys are kept as they are).
  const int head_dim = shape_.head_dim;
  for (int i = block_; i < slot.tail_tokens; ++i) {
    for (int d = 0; d < head_dim; ++d) {
      slot.tail[BlockedKeyIndex(i - block_, d, head_dim)] = slot.tail[BlockedKeyIndex(i, d, head_dim)];
    }
  }
  slot.tail_tokens -= block_;
  slot.tail.resize(TailElements(slot.tail_tokens, head_dim));
}

void ChannelKeys::Requantize(int layer, int kv_head, int b, int bits, std::span<const float> rows) {
  HeadSlot& slot = slots_[Slot(layer, kv_head)];
  Encode(bits, rows, slot.metas.data() + std::size_t(b) * std::size_t(shape_.head_dim));
  // The blocks after b move by the difference in size.
  const auto offset = std::ptrdiff_t(BlockOffset(slot, b));
  const auto old_end = offset + std::ptrdiff_t(BlockBytes(slot.bits[std::size_t(b)]));
  slot.codes.erase(slot.codes.begin() + offset, slot.codes.begin() + old_end);
  slot.codes.insert(slot.codes.begin() + offset, block_codes_.begin(), block_codes_.end());
  slot.bits[std::size_t(b)] = std::uint8_t(bits);
  slot.ranges[std::size_t(b)] = MetaRange(slot.metas.data() + std::size_t(b) * std::size_t(shape_.head_dim));
}

float ChannelKeys::MetaRange(const GroupMeta* metas) const {
  float range = 0.0f;
  for (int d = 0; d < shape_.head_dim; ++d) range = std::max(range, Fp16ToFloat(metas[d].max_fp16) - Fp16ToFloat(metas[d].min_fp16));
  return range;
}

void ChannelKeys::Truncate(int n) {
  n = std::max(n, 0);
  const int head_dim = shape_.head_dim;
  std::vector<float> rows, row(static_cast<std::size_t>(head_dim));
  for (int l = 0; l < shape_.n_layers; ++l) {
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      HeadSlot& slot = slots_[Slot(l, h)];
      const int in_blocks = int(slot.bits.size()) * block_;
      if (n >= in_blocks) {
        slot.tail_tokens = std::min(slot.tail_tokens, n - in_blocks);
        slot.tail.resize(TailElements(slot.tail_tokens, head_dim));
        continue;
      }
      // The block holding position n goes back to the tail, decoded, up to n.
      const int keep = n / block_;
      rows.resize(std::size_t(block_) * std::size_t(head_dim));
      ReadBlock(l, h, keep, rows.data());
      slot.codes.resize(BlockOffset(slot, keep));
      slot.metas.resize(std::size_t(keep) * std::size_t(head_dim));
      slot.bits.resize(std::size_t(keep));
      slot.ranges.resize(std::size_t(keep));
      slot.tail_tokens = n - keep * block_;
      slot.tail.assign(TailElements(slot.tail_tokens, head_dim), 0);
      for (int i = 0; i < slot.tail_tokens; ++i) {
        const float* src = rows.data() + std::size_t(i) * std::size_t(head_dim);
        if (prerope_) {
          rotator_->Rotate(src, keep * block_ + i, row.data());
          src = row.data();
        }
        SetTail(slot, i, src);
      }
    }
  }
}

std::size_t ChannelKeys::code_bytes() const {
  std::size_t bytes = 0;
  for (const HeadSlot& slot : slots_) {
    bytes += slot.codes.size();
    bytes += std::size_t(slot.tail_tokens) * std::size_t(shape_.head_dim) * 2;  // fp16 tail
  }
  return bytes;
}

std::size_t ChannelKeys::metadata_bytes() const {
  std::size_t bytes = 0;
  for (const HeadSlot& slot : slots_) bytes += slot.metas.size() * sizeof(GroupMeta);
  return bytes;
}

std::size_t ChannelKeys::table_bytes() const {
  std::size_t bytes = 0;
  for (const HeadSlot& slot : slots_) bytes += slot.bits.size();
  return bytes;
}

std::vector<std::pair<int, std::size_t>> ChannelKeys::TokensPerWidth() const {
  std::vector<std::size_t> counts(kArenaSlots, 0);
  for (const HeadSlot& slot : slots_) {
    for (const std::uint8_t bits : slot.bits) counts[std::size_t(ArenaIndex(bits))] += std::size_t(block_);
    counts[std::size_t(ArenaIndex(kPassThroughBits))] += std::size_t(slot.tail_tokens);
  }
  std::vector<std::pair<int, std::size_t>> out;
  for (int i = 0; i < kArenaSlots; ++i) {
    if (counts[std::size_t(i)] > 0) out.emplace_back(ArenaBits(i), counts[std::size_t(i)]);
  }
  return out;
}

}  // namespace qaq::internal
