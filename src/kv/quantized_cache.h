// The quantized KV caches (uniform:B, uniform:KB/VB, kivi:B, qaq): packed storage per unit, attention
// on the codes, bit widths decided by a BitPlanner and applied in EndStep (QAQ-method.md §6):
//
//   Append     the new position is written in fp16 (and, with a tier, in full precision);
//   attention  Scores / WeightedSum on the codes of every width (token_rows.h, channel_keys.h);
//   observe    qaq: every softmax row goes to the attention window (§5);
//   EndStep    for every group: bits = planner(now); fp16 groups are quantized, groups whose
//              bits fall are re-quantized down, groups whose bits rise are re-quantized from the
//              full-precision tier (never without one). After the prompt this quantizes the whole
//              prompt once, with the window holding the prompt's last n attention rows.
//
// Values beyond the fp16 range are saturated to +-65504 (NaN to 0) when appended: the fp16
// metadata must bracket every value.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/rope.h"
#include "kv/bit_planner.h"
#include "kv/channel_keys.h"
#include "kv/full_precision_store.h"
#include "kv/prompt_query_norms.h"
#include "kv/rope_rotator.h"
#include "kv/token_rows.h"
#include "qaq/kv_cache.h"
#include "qaq/kv_config.h"

namespace qaq::internal {

// What the cache did since the sequence started (Truncate(0) resets it).
struct RequantStats {
  std::size_t quantized = 0;   // groups (or key blocks) quantized from fp16 for the first time
  std::size_t up = 0;          // re-quantized to more bits, from the full-precision tier
  std::size_t down = 0;        // re-quantized to fewer bits
  std::size_t steps = 0;       // EndStep calls with tokens
  std::size_t bad_rows = 0;    // attention rows the window refused (NaN or negative weights)
};

// The budget mode's choice (qaq with ratio=R).
struct BudgetChoice {
  bool solved = false;
  int solved_tokens = 0;      // the cache's tokens when the targets were last chosen
  int solves = 0;
  bool reachable = true;      // false: even the smallest bits do not reach the ratio
  double key_error = 0.0, value_error = 0.0;
  double key_shift = 0.0;          // bits taken from the key formula's widths (BitPlanner::SetKeyShift)
  double planned_ratio = 0.0;      // the ratio the prompt's plan reaches
};

// One group of the cache as a test or a report sees it.
struct GroupRecord {
  KvKind kind;
  int unit;        // token layout: BitPolicy group number; channel keys: layer * n_kv_heads + head
  int token;       // token layout: the token; channel keys: the block's first token
  int bits;
};

class QuantizedKvCache final : public KvCache {
 public:
  static StatusOr<std::unique_ptr<QuantizedKvCache>> Create(const KvCacheConfig& config, const KvCacheShape& shape);

  std::string name() const override;
  const KvCacheShape& shape() const override { return shape_; }
  void Append(int layer, int pos, std::span<const float> k, std::span<const float> v) override;
  void Scores(int layer, int kv_head, std::span<const float> q, std::span<float> scores) const override;
  void WeightedSum(int layer, int kv_head, std::span<const float> probs, std::span<float> out) const override;
  void ObserveAttention(int layer, int q_head, int query_pos, std::span<const float> probs) override;
  void EndStep() override;
  int n_tokens() const override { return layer_tokens_.back(); }
  void Truncate(int n) override;
  KvMemory Memory() const override;
  std::string Summary() const override;
  // One line: where the key formula's |q~|^2 came from and its range.
  std::string QueryNormReport() const;

  const KvCacheConfig& config() const { return config_; }
  const RequantStats& stats() const { return stats_; }
  const BudgetChoice& budget() const { return budget_; }
  const BitPlanner& planner() const { return planner_; }
  const TokenRows& values() const { return *values_; }
  const TokenRows* token_keys() const { return keys_ ? &*keys_ : nullptr; }
  const ChannelKeys* channel_keys() const { return channel_keys_ ? &*channel_keys_ : nullptr; }
  const AttentionWindow* window() const { return window_ ? &*window_ : nullptr; }
  // The key formula's |q~|^2 (null: the authors' constant), and with calib=prompt how many of
  // the sequence's positions measured it (0 before the first step).
  const QueryNormCalibration* calibration() const { return calibration_.get(); }
  int calibration_positions() const { return prompt_norms_ ? prompt_norms_->positions() : 0; }
  // Every group with its width (tests compute the size from this independently of Memory()).
  std::vector<GroupRecord> Groups() const;
  // Memory of keys and values apart (full_precision_bytes and fp16_reference_bytes split evenly).
  KvMemory KeyMemory() const;
  KvMemory ValueMemory() const;

  // Only Create can make one (a key type no one else can name), through std::make_unique.
  class ConstructorKey {
    friend class QuantizedKvCache;
    explicit ConstructorKey() = default;
  };
 public:
  QuantizedKvCache(ConstructorKey, const KvCacheConfig& config, const KvCacheShape& shape,
                   std::unique_ptr<QueryNormCalibration> calibration, BitPlanner planner);

 private:

  // EndStep's parts (quantized_cache_update.cc).
  void UpdateTokenRows(TokenRows& rows);
  void UpdateChannelKeys();
  // The group's values in the quantization space, from the tier when there is one, else decoded.
  void GroupSource(TokenRows& rows, int unit, std::uint32_t token, const WidthArena& arena, std::size_t slot,
                   std::vector<float>& out);
  void BlockSource(int layer, int kv_head, int first_token, bool from_tail, int block_index, std::vector<float>& out);
  // Budget mode (kv_budget.cc): chooses the targets on the prompt.
  void SolveBudget();
  // calib=prompt: the calibration from the positions measured so far (EndStep).
  void CalibrateOnPrompt();
  // Whether key widths come from the key formula (qaq, no fixed key width, not all fp16), which
  // needs |q~|^2.
  bool UsesKeyFormula() const {
    return config_.backend == KvBackendKind::kQaq && config_.key_bits_fixed < 0 && config_.bits_min != kPassThroughBits;
  }

  KvCacheConfig config_;
  KvCacheShape shape_;
  RopeTable rope_;
  RopeRotator rotator_;
  std::unique_ptr<QueryNormCalibration> calibration_;
  std::optional<PromptQueryNorms> prompt_norms_;  // calib=prompt
  std::string calibration_problem_;                // why calib=prompt fell back to the constant
  BitPlanner planner_;
  std::optional<TokenRows> keys_;
  std::optional<ChannelKeys> channel_keys_;
  std::optional<TokenRows> values_;
  std::unique_ptr<FullPrecisionStore> tier_;
  std::optional<AttentionWindow> window_;
  std::vector<int> layer_tokens_;
  RequantStats stats_;
  BudgetChoice budget_;
  GroupQuantizer quantizer_;
  std::vector<float> k_, v_, rotated_, group_;
};

}  // namespace qaq::internal
