// qaq/kv_config.h: what a `--kv` spec says, parsed and validated.
//
// A spec names a backend and may add comma-separated options:
//
//   fp32 | fp16
//   uniform:B | uniform:KB/VB      every group at B bits (keys KB, values VB): 0..8, or 16 (fp16)
//   kivi:B                         keys per channel in blocks, values per token, recent tokens fp16
//   qaq                            QAQ-method.md: per-token widths from attention, re-quantized
//                                  every step
//   options: keys=token|channel:G, prerope, outliers=A, residual=R (kivi), and for qaq:
//     key_error=S, value_error=X, window=N, bits=MIN:MAX, granularity=auto|head|layer|token, key_bits=B,
//     formula=paper|authors, tier=ram|disk|none, tier_dir=DIR, calib=prompt|prompt-heads|constant|FILE, ratio=R, kv_bits=B
//
//   auto config = qaq::ParseKvCacheSpec("qaq,window=5,bits=0:4,keys=channel:64,prerope");
//   auto cache = qaq::MakeKvCache(*config, shape);
//
// The `qaq` tool's --kv, --kv-keys, --kv-keys-prerope, --kv-ratio, --kv-bits and --qaq-* flags
// only append these options to the spec (tools/qaq/engine_flags.h), so a spec string is all a
// Session needs (SessionOptions::kv_cache).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "qaq/kv_cache.h"
#include "qaq/quant.h"
#include "qaq/status.h"

namespace qaq {

enum class KvBackendKind { kFp32, kFp16, kUniform, kKivi, kQaq };

// How keys are grouped for quantization (values are always grouped per token).
enum class KeyLayout {
  kToken,    // one group per token (and KV head, layer or model: the granularity), as the paper
  kChannel,  // one [min, max] per layer, KV head, channel and block of key_block tokens (KIVI)
};

// Where the unquantized keys and values are kept so that a token's bits can rise again (§6).
enum class FullPrecisionTier { kNone, kRam, kDisk };

// Where the key formula's |q~|^2 comes from (KvCacheConfig::query_norms).
enum class QueryNormSource { kPrompt, kPromptHeads, kConstant, kFile };

const char* KvBackendName(KvBackendKind b);       // "fp32", "fp16", "uniform", "kivi", "qaq"
const char* KeyLayoutName(KeyLayout l);           // "token", "channel"
const char* FullPrecisionTierName(FullPrecisionTier t);  // "none", "ram", "disk"

struct KvCacheConfig {
  KvBackendKind backend = KvBackendKind::kFp32;

  // uniform: the widths of keys and values; kivi: both equal. 0..8, or 16 (fp16).
  int key_bits = 8;
  int value_bits = 8;

  KeyLayout key_layout = KeyLayout::kToken;
  int key_block = 64;          // G of channel:G, 1..4096
  bool keys_prerope = false;   // quantize keys before RoPE; rotate them when attending
  double outlier_alpha = 0.0;  // §4, both sides together, in [0, 1); not used by channel keys
  int kivi_residual = 0;       // kivi: the most recent tokens kept in fp16 (0: key_block)

  // qaq (QAQ-method.md §1-§6).
  double key_error = 0.0;      // sigma_max^S; 0: the default
  double value_error = 0.0;    // sigma_max^X; 0: the default
  int window = 5;              // n, >= 1
  int bits_min = 0;            // B_min..B_max: 0 <= MIN <= MAX <= 8, or 16:16 (every token fp16)
  int bits_max = 8;
  Granularity granularity = Granularity::kHead;
  // granularity=auto (the default): the finest level whose groups hold at least
  // kAutoGranularityValues values (head on models with head_dim >= 64), so that the two fp16
  // metadata values of a group stay a small part of it.
  bool auto_granularity = true;
  int key_bits_fixed = -1;     // qaq key_bits=B: every key group at B bits (0..8), values by QAQ
  BitsFormula formula = BitsFormula::kPaper;
  FullPrecisionTier tier = FullPrecisionTier::kRam;
  std::string tier_dir;          // disk tier: folder of the memory-mapped file ("": TMPDIR or /tmp)
  // Where the key formula's |q~|^2 per (layer, KV head) comes from (§2): calib=prompt (the
  // default: one value for the model, measured on the sequence's first positions),
  // calib=prompt-heads (the same, per layer and KV head), calib=constant (the authors' constant,
  // QueryNormCalibration::FallbackQNormSq) or calib=FILE (a `qaq calibrate` file).
  QueryNormSource query_norms = QueryNormSource::kPrompt;
  std::string calibration_path;  // kFile: the QueryNormCalibration JSON

  // Budget mode (qaq): error targets chosen on the prompt so that the cache reaches this
  // compression ratio (every byte counted, against fp16). 0: off.
  double target_ratio = 0.0;
};

inline constexpr int kAutoGranularityValues = 64;

// calib=prompt: the positions of a sequence whose queries are measured (the quantile is taken
// at the end of the prompt, then again whenever the sequence has doubled, until this many
// positions are in), and the quantile (the paper's upper 10%).
inline constexpr int kPromptCalibrationPositions = 256;
inline constexpr double kPromptCalibrationQuantile = 0.9;

// The granularity `auto` picks for a cache shape.
Granularity AutoGranularity(const KvCacheShape& shape);

// The defaults the qaq backend uses when key_error / value_error are 0. The key error goes with
// calib=prompt (README, "Where the key formula's |q~|^2 comes from"): with the authors' constant
// |q~|^2 (calib=constant) 0.02 reaches the same ratio on stories260K.
inline constexpr double kDefaultQaqKeyError = 0.1;
inline constexpr double kDefaultQaqValueError = 0.2;

// Parses a spec (see the top of this file). Errors are kInvalidArgument and name the option.
StatusOr<KvCacheConfig> ParseKvCacheSpec(std::string_view spec);
// The spec form of a config; ParseKvCacheSpec reads it back to an equal config.
std::string FormatKvCacheSpec(const KvCacheConfig& config);
// Checks every field against its backend (kInvalidArgument, naming the flag).
Status ValidateKvCacheConfig(const KvCacheConfig& config);

// Makes the cache a config describes. Besides invalid configs (kInvalidArgument): a calibration
// file that cannot be read (kNotFound / kDataLoss), a disk tier that cannot be created
// (kInternal).
StatusOr<std::unique_ptr<KvCache>> MakeKvCache(const KvCacheConfig& config,
                                               const KvCacheShape& shape);

}  // namespace qaq
