// Budget mode (qaq with ratio=R, `--kv-ratio R` / `--kv-bits B`): the error targets are chosen on
// the prompt so that quantizing it reaches the requested compression ratio, every byte counted.
//
// One parameter s moves along a family of plans. For s <= 1 both targets are scaled by s (their
// proportion is the configured one). The key formula (§2) is logarithmic in its target, so
// beyond the configured targets it barely responds and keys would keep their widths while values
// fall to nothing; so for s > 1 the value target is scaled by s and the keys, at their configured
// target, are shifted down by log4(s) bits (BitPlanner::SetKeyShift): per fourfold increase the
// values lose two bits (§1) and the keys, the more sensitive half, one.
// The cache's size after quantization is a non-increasing function of s that can be computed
// exactly from the groups' ranges without quantizing anything (the §8 sizes of each width), so s
// is found by bisection on log s: the smallest s whose plan reaches the ratio, i.e. the most
// accurate cache of this family that fits. The targets then stay fixed until the cache holds
// twice as many tokens (EndStep solves again then).
#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "kv/quantized_cache.h"
#include "quant/fp16.h"

namespace qaq::internal {
namespace {

struct PlannedGroup {
  KvKind kind;
  int unit;   // token layout: policy group; channel blocks: layer * n_kv_heads + head
  int token;  // channel blocks: the first token
  double range;
};

}  // namespace

void QuantizedKvCache::SolveBudget() {
  const int n = n_tokens();
  budget_.solved = true;
  budget_.solved_tokens = n;
  budget_.reachable = true;
  ++budget_.solves;
  std::vector<PlannedGroup> groups;
  // The ranges of every group as it will be quantized (from the same source EndStep uses).
  for (TokenRows* rows : {keys_ ? &*keys_ : nullptr, &*values_}) {
    if (rows == nullptr) continue;
    for (int unit = 0; unit < rows->n_units(); ++unit) {
      for (int a = 0; a < kArenaSlots; ++a) {
        const WidthArena* arena = rows->arena(unit, ArenaBits(a));
        if (arena == nullptr) continue;
        for (std::size_t s = 0; s < arena->size(); ++s) {
          double range = 0.0;
          if (arena->bits() == kPassThroughBits) {
            GroupSource(*rows, unit, arena->token(s), *arena, s, group_);
            range = quantizer_.Analyze(group_).range();
          } else {
            const GroupMeta m = arena->meta(s);
            range = double(Fp16ToFloat(m.max_fp16) - Fp16ToFloat(m.min_fp16));
          }
          groups.push_back({rows->kind(), unit, int(arena->token(s)), range});
        }
      }
    }
  }
  std::size_t fixed_bytes = 0;  // what no target changes: fp16 tails, block tables
  if (channel_keys_) {
    ChannelKeys& keys = *channel_keys_;
    const int block = keys.block(), head_dim = shape_.head_dim;
    for (int l = 0; l < shape_.n_layers; ++l) {
      for (int h = 0; h < shape_.n_kv_heads; ++h) {
        const int unit = l * shape_.n_kv_heads + h;
        for (int b = 0; b < keys.n_blocks(l, h); ++b) {
          BlockSource(l, h, b * block, /*from_tail=*/false, b, group_);
          groups.push_back({KvKind::kKey, -1 - unit, b * block, double(keys.BlockRange(group_))});
        }
        const int first_tail = keys.n_blocks(l, h) * block;
        const int full = keys.tail_size(l, h) / block;
        // The tail's complete blocks, read as EndStep will read them.
        std::vector<float> rows(static_cast<std::size_t>(block) * std::size_t(head_dim));
        for (int b = 0; b < full; ++b) {
          for (int r = 0; r < block; ++r) {
            float* dst = rows.data() + std::size_t(r) * std::size_t(head_dim);
            const int token = first_tail + b * block + r;
            if (tier_) {
              const float* key = tier_->Key(l, token, h);
              if (keys.prerope()) {
                std::copy_n(key, head_dim, dst);
              } else {
                rotator_.Rotate(key, token, dst);
              }
            } else {
              keys.ReadTail(l, h, b * block + r, dst);
            }
          }
          groups.push_back({KvKind::kKey, -1 - unit, first_tail + b * block, double(keys.BlockRange(rows))});
        }
        const int rest = keys.tail_size(l, h) - full * block;
        fixed_bytes += std::size_t(rest) * std::size_t(head_dim) * 2;
        fixed_bytes += std::size_t(keys.n_blocks(l, h) + full);  // a width byte per block
      }
    }
  }
  const IndexVector index_width(std::uint64_t(shape_.max_tokens));
  // The cache's bytes once the groups are quantized with the planner's current targets.
  auto planned_bytes = [&] {
    std::size_t total = fixed_bytes;
    for (const PlannedGroup& g : groups) {
      if (g.unit < 0) {
        const int unit = -1 - g.unit;
        const int bits = planner_.BlockBits(unit / shape_.n_kv_heads, unit % shape_.n_kv_heads, g.token, n, g.range);
        const std::size_t values = std::size_t(channel_keys_->block()) * std::size_t(shape_.head_dim);
        total += bits == kPassThroughBits ? 2 * values
                                          : BytesFor(values, bits) + std::size_t(shape_.head_dim) * sizeof(GroupMeta);
        continue;
      }
      const TokenRows& rows = g.kind == KvKind::kKey ? *keys_ : *values_;
      const int bits = planner_.TokenBits(g.kind, g.unit, g.token, n, g.range, window());
      const std::size_t outliers = bits == kPassThroughBits ? 0 : std::size_t(rows.outliers_per_group());
      total += GroupBytes(std::size_t(rows.group_size()), bits, outliers) + std::size_t(index_width.width());
    }
    return total;
  };
  const double fp16_bytes = double(n) * shape_.n_layers * shape_.n_kv_heads * shape_.head_dim * 2 * 2;
  // From the configured targets (a new sequence solves again from them, not from the last choice).
  const double k0 = config_.key_error > 0.0 ? config_.key_error : kDefaultQaqKeyError;
  const double v0 = config_.value_error > 0.0 ? config_.value_error : kDefaultQaqValueError;
  auto ratio_at = [&](double log_scale) {
    const double s = std::exp(log_scale);
    QAQ_CHECK(planner_.SetTargets(k0 * std::min(s, 1.0), v0 * s).ok());
    planner_.SetKeyShift(log_scale > 0.0 ? log_scale / std::log(4.0) : 0.0);
    return fp16_bytes / double(planned_bytes());
  };
  // ln s in [-20, 20]: from targets e^-20 times the configured ones (every group at B_max) to
  // e^20 times (every group at B_min).
  double lo = -20.0, hi = 20.0;
  const double target = config_.target_ratio;
  if (ratio_at(hi) < target) {
    budget_.reachable = false;
    lo = hi;
  } else if (ratio_at(lo) >= target) {
    hi = lo;
  } else {
    for (int i = 0; i < 60; ++i) {
      const double mid = 0.5 * (lo + hi);
      (ratio_at(mid) >= target ? hi : lo) = mid;
    }
  }
  const double s = std::exp(budget_.reachable ? hi : lo);
  budget_.planned_ratio = ratio_at(std::log(s));
  budget_.key_error = planner_.key_error();
  budget_.value_error = planner_.value_error();
  budget_.key_shift = planner_.key_shift();
}

}  // namespace qaq::internal
