// EndStep of the quantized caches: the only place where stored precision changes (QAQ-method.md
// §6; qaq/kv_cache.h's contract).
#include <algorithm>

#include "core/check.h"
#include "kv/quantized_cache.h"

namespace qaq::internal {

void QuantizedKvCache::EndStep() {
  const int n = n_tokens();
  if (n == 0) return;
  for (int count : layer_tokens_) QAQ_CHECK(count == n, "EndStep with layers holding {} and {} tokens", count, n);
  CalibrateOnPrompt();
  // Budget mode solves on the prompt, and again whenever the cache has doubled since: a
  // sequence fed one token at a time has no prompt, and a long generation drifts from it.
  if (config_.target_ratio > 0.0 && (!budget_.solved || n >= 2 * budget_.solved_tokens)) SolveBudget();
  planner_.BeginStep(n, window_ ? &*window_ : nullptr);
  UpdateTokenRows(*values_);
  if (keys_) {
    UpdateTokenRows(*keys_);
  } else {
    UpdateChannelKeys();
  }
  ++stats_.steps;
}

void QuantizedKvCache::GroupSource(TokenRows& rows, int unit, std::uint32_t token, const WidthArena& arena,
                                   std::size_t slot, std::vector<float>& out) {
  out.resize(std::size_t(rows.group_size()));
  if (!tier_) {
    rows.ReadGroup(unit, arena, slot, out);
    return;
  }
  // §6: re-quantization starts from the full-precision copy.
  const int head_dim = shape_.head_dim;
  for (int p = 0; p < rows.planes_per_unit(); ++p) {
    int layer = 0, kv_head = 0;
    rows.PairOf(unit, p, &layer, &kv_head);
    float* dst = out.data() + std::size_t(p) * std::size_t(head_dim);
    if (rows.kind() == KvKind::kValue) {
      std::copy_n(tier_->Value(layer, int(token), kv_head), head_dim, dst);
    } else if (rows.prerope()) {
      std::copy_n(tier_->Key(layer, int(token), kv_head), head_dim, dst);
    } else {
      rotator_.Rotate(tier_->Key(layer, int(token), kv_head), int(token), dst);
    }
  }
}

void QuantizedKvCache::UpdateTokenRows(TokenRows& rows) {
  struct Move {
    std::size_t slot;
    std::uint32_t token;
    int to_bits;
  };
  const int n = n_tokens();
  const KvKind kind = rows.kind();
  const AttentionWindow* window = window_ ? &*window_ : nullptr;
  std::array<std::vector<Move>, kMaxCodeBits + 1> moves;
  std::vector<std::uint32_t> candidates;
  for (int unit = 0; unit < rows.n_units(); ++unit) {
    planner_.BeginUnit(kind, unit);
    // 1. Decide for the quantized groups, from their stored ranges.
    for (int bits = 0; bits <= kMaxCodeBits; ++bits) {
      moves[std::size_t(bits)].clear();
      const WidthArena* arena = rows.arena(unit, bits);
      if (arena == nullptr || arena->size() == 0) continue;
      const float* ranges = arena->ranges();
      planner_.UnitCandidates(arena->tokens(), ranges, bits, tier_ != nullptr, candidates);
      for (const std::uint32_t s : candidates) {
        const std::uint32_t token = arena->token(s);
        int to = planner_.UnitTokenBits(int(token), double(ranges[s]), bits, tier_ != nullptr);
        if (!tier_) to = std::min(to, bits);  // §6: without a full-precision copy bits only fall
        if (to != bits) moves[std::size_t(bits)].push_back({s, token, to});
      }
    }
    // 2. fp16 groups (new tokens, or groups kept at 16 bits): analyse, decide, quantize. Going
    // down the arena, a removal only moves an already visited slot.
    if (WidthArena* fp16 = rows.arena(unit, kPassThroughBits)) {
      for (std::size_t s = fp16->size(); s-- > 0;) {
        const std::uint32_t token = fp16->token(s);
        GroupSource(rows, unit, token, *fp16, s, group_);
        const double range = quantizer_.Analyze(group_).range();
        const int to = planner_.TokenBits(kind, unit, int(token), n, range, window);
        if (to == kPassThroughBits) continue;
        fp16->SwapRemove(s);
        rows.StoreGroup(unit, token, to, group_, quantizer_);
        ++stats_.quantized;
      }
    }
    // 3. Apply step 1's moves, each arena from its last slot down (slots added by steps 2 and 3
    // are at the end and never scheduled, so the recorded slot numbers stay valid).
    for (int bits = 0; bits <= kMaxCodeBits; ++bits) {
      const std::vector<Move>& list = moves[std::size_t(bits)];
      for (auto m = list.rbegin(); m != list.rend(); ++m) {
        WidthArena* arena = rows.arena(unit, bits);
        GroupSource(rows, unit, m->token, *arena, m->slot, group_);
        arena->SwapRemove(m->slot);
        if (m->to_bits != kPassThroughBits) quantizer_.Analyze(group_);
        rows.StoreGroup(unit, m->token, m->to_bits, group_, quantizer_);
        ++(m->to_bits > bits ? stats_.up : stats_.down);
      }
    }
  }
}

void QuantizedKvCache::BlockSource(int layer, int kv_head, int first_token, bool from_tail, int block_index,
                                   std::vector<float>& out) {
  const int block = channel_keys_->block(), head_dim = shape_.head_dim;
  out.resize(std::size_t(block) * std::size_t(head_dim));
  for (int r = 0; r < block && tier_; ++r) {
    const float* key = tier_->Key(layer, first_token + r, kv_head);
    float* dst = out.data() + std::size_t(r) * std::size_t(head_dim);
    if (channel_keys_->prerope()) {
      std::copy_n(key, head_dim, dst);
    } else {
      rotator_.Rotate(key, first_token + r, dst);
    }
  }
  if (tier_) return;
  if (from_tail) {
    for (int r = 0; r < block; ++r) {
      channel_keys_->ReadTail(layer, kv_head, r, out.data() + std::size_t(r) * std::size_t(head_dim));
    }
  } else {
    channel_keys_->ReadBlock(layer, kv_head, block_index, out.data());
  }
}

void QuantizedKvCache::UpdateChannelKeys() {
  ChannelKeys& keys = *channel_keys_;
  const int n = n_tokens(), block = keys.block();
  const bool adaptive = config_.backend == KvBackendKind::kQaq;
  for (int l = 0; l < shape_.n_layers; ++l) {
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      // Complete blocks: §2 bits fall as T grows (qaq only; the baselines' widths are fixed).
      for (int b = 0; adaptive && b < keys.n_blocks(l, h); ++b) {
        const float range = keys.block_range(l, h, b);
        const int from = keys.block_bits(l, h, b);
        int to = planner_.BlockBits(l, h, b * block, n, range);
        if (!tier_) to = std::min(to, from);
        if (to == from || to == kPassThroughBits) continue;
        BlockSource(l, h, b * block, /*from_tail=*/false, b, group_);
        keys.Requantize(l, h, b, to, group_);
        ++(to > from ? stats_.up : stats_.down);
      }
      // The tail's complete blocks are quantized.
      while (keys.tail_size(l, h) >= block) {
        const int first = keys.n_blocks(l, h) * block;
        BlockSource(l, h, first, /*from_tail=*/true, 0, group_);
        const int to = planner_.BlockBits(l, h, first, n, keys.BlockRange(group_));
        if (to == kPassThroughBits) break;
        keys.FormBlock(l, h, to, group_);
        ++stats_.quantized;
      }
    }
  }
}

}  // namespace qaq::internal
