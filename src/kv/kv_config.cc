// Parsing, validation and formatting of `--kv` specs (qaq/kv_config.h).
#include "qaq/kv_config.h"

#include <charconv>
#include <cmath>
#include <string>

#include <fmt/format.h>

namespace qaq {
namespace {

StatusOr<double> ParseDouble(std::string_view what, std::string_view text) {
  double value = 0.0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return InvalidArgumentError("{}: '{}' is not a number", what, text);
  }
  return value;
}

StatusOr<int> ParseInt(std::string_view what, std::string_view text) {
  int value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return InvalidArgumentError("{}: '{}' is not an integer", what, text);
  }
  return value;
}

// "A:B" into two integers.
Status ParsePair(std::string_view what, std::string_view text, char sep, int& a, int& b) {
  const std::size_t at = text.find(sep);
  if (at == std::string_view::npos) {
    return InvalidArgumentError("{}: '{}' is not of the form A{}B", what, text, sep);
  }
  QAQ_ASSIGN_OR_RETURN(a, ParseInt(what, text.substr(0, at)));
  QAQ_ASSIGN_OR_RETURN(b, ParseInt(what, text.substr(at + 1)));
  return OkStatus();
}

bool IsQuantized(KvBackendKind b) {
  return b == KvBackendKind::kUniform || b == KvBackendKind::kKivi || b == KvBackendKind::kQaq;
}

// The arguments after "name:" (uniform:B, uniform:KB/VB, kivi:B).
Status ApplyArgs(KvCacheConfig& c, std::string_view args) {
  if (c.backend == KvBackendKind::kUniform) {
    if (args.empty()) return InvalidArgumentError("uniform needs bits: uniform:B or uniform:KB/VB");
    if (args.find('/') != std::string_view::npos) return ParsePair("uniform:KB/VB", args, '/', c.key_bits, c.value_bits);
    QAQ_ASSIGN_OR_RETURN(c.key_bits, ParseInt("uniform:B", args));
    c.value_bits = c.key_bits;
    return OkStatus();
  }
  if (c.backend == KvBackendKind::kKivi) {
    if (args.empty()) return InvalidArgumentError("kivi needs bits: kivi:B");
    QAQ_ASSIGN_OR_RETURN(c.key_bits, ParseInt("kivi:B", args));
    c.value_bits = c.key_bits;
    return OkStatus();
  }
  if (!args.empty()) {
    return InvalidArgumentError("KV cache '{}' takes no arguments, got '{}'", KvBackendName(c.backend), args);
  }
  return OkStatus();
}

Status RequireBackend(const KvCacheConfig& c, std::string_view key, bool ok, std::string_view which) {
  if (ok) return OkStatus();
  return InvalidArgumentError("KV cache '{}' does not take option '{}' ({})", KvBackendName(c.backend), key, which);
}

Status ApplyOption(KvCacheConfig& c, std::string_view key, std::string_view value) {
  const bool quantized = IsQuantized(c.backend);
  const bool qaq = c.backend == KvBackendKind::kQaq;
  if (key == "keys") {
    QAQ_RETURN_IF_ERROR(RequireBackend(c, key, quantized, "quantized caches only"));
    if (value == "token") {
      c.key_layout = KeyLayout::kToken;
      return OkStatus();
    }
    if (value.substr(0, 8) == "channel:") {
      c.key_layout = KeyLayout::kChannel;
      QAQ_ASSIGN_OR_RETURN(c.key_block, ParseInt("--kv-keys channel:G", value.substr(8)));
      return OkStatus();
    }
    return InvalidArgumentError("--kv-keys: '{}' is not token or channel:G", value);
  }
  if (key == "prerope") {
    QAQ_RETURN_IF_ERROR(RequireBackend(c, key, quantized, "quantized caches only"));
    if (value != "" && value != "1" && value != "0") {
      return InvalidArgumentError("prerope: '{}' is not 0 or 1", value);
    }
    c.keys_prerope = value != "0";
    return OkStatus();
  }
  if (key == "outliers") {
    QAQ_RETURN_IF_ERROR(RequireBackend(c, key, quantized, "quantized caches only"));
    QAQ_ASSIGN_OR_RETURN(c.outlier_alpha, ParseDouble("--qaq-outliers", value));
    return OkStatus();
  }
  if (key == "residual") {
    QAQ_RETURN_IF_ERROR(RequireBackend(c, key, c.backend == KvBackendKind::kKivi, "kivi only"));
    QAQ_ASSIGN_OR_RETURN(c.kivi_residual, ParseInt("kivi residual", value));
    return OkStatus();
  }
  // Everything below is a QAQ parameter.
  QAQ_RETURN_IF_ERROR(RequireBackend(c, key, qaq, "a --qaq option: use --kv qaq"));
  if (key == "key_error") {
    QAQ_ASSIGN_OR_RETURN(c.key_error, ParseDouble("--qaq-key-error", value));
  } else if (key == "value_error") {
    QAQ_ASSIGN_OR_RETURN(c.value_error, ParseDouble("--qaq-value-error", value));
  } else if (key == "window") {
    QAQ_ASSIGN_OR_RETURN(c.window, ParseInt("--qaq-window", value));
  } else if (key == "bits") {
    QAQ_RETURN_IF_ERROR(ParsePair("--qaq-bits", value, ':', c.bits_min, c.bits_max));
  } else if (key == "key_bits") {
    QAQ_ASSIGN_OR_RETURN(c.key_bits_fixed, ParseInt("key_bits", value));
  } else if (key == "granularity") {
    c.auto_granularity = value == "auto";
    if (value == "auto") {
    } else if (value == "head") {
      c.granularity = Granularity::kHead;
    } else if (value == "layer") {
      c.granularity = Granularity::kLayer;
    } else if (value == "token") {
      c.granularity = Granularity::kToken;
    } else {
      return InvalidArgumentError("--qaq-granularity: '{}' is not auto, head, layer or token", value);
    }
  } else if (key == "formula") {
    if (value == "paper") {
      c.formula = BitsFormula::kPaper;
    } else if (value == "authors") {
      c.formula = BitsFormula::kAuthors;
    } else if (value == "strict") {
      c.formula = BitsFormula::kStrict;
    } else {
      return InvalidArgumentError("--qaq-formula: '{}' is not paper, authors or strict", value);
    }
  } else if (key == "tier") {
    if (value == "ram") {
      c.tier = FullPrecisionTier::kRam;
    } else if (value == "disk") {
      c.tier = FullPrecisionTier::kDisk;
    } else if (value == "none") {
      c.tier = FullPrecisionTier::kNone;
    } else {
      return InvalidArgumentError("--qaq-tier: '{}' is not ram, disk or none", value);
    }
  } else if (key == "tier_dir") {
    c.tier_dir = std::string(value);
  } else if (key == "calib") {
    c.calibration_path.clear();
    if (value == "prompt") {
      c.query_norms = QueryNormSource::kPrompt;
    } else if (value == "prompt-heads") {
      c.query_norms = QueryNormSource::kPromptHeads;
    } else if (value == "constant") {
      c.query_norms = QueryNormSource::kConstant;
    } else if (value.empty()) {
      return InvalidArgumentError("--qaq-calib: empty (use prompt, prompt-heads, constant or a calibration file)");
    } else {
      c.query_norms = QueryNormSource::kFile;
      c.calibration_path = std::string(value);
    }
  } else if (key == "ratio") {
    QAQ_ASSIGN_OR_RETURN(c.target_ratio, ParseDouble("--kv-ratio", value));
    if (!(c.target_ratio >= 1.0) || !std::isfinite(c.target_ratio)) {
      return InvalidArgumentError("--kv-ratio {}: must be a finite number >= 1", value);
    }
  } else if (key == "kv_bits") {
    QAQ_ASSIGN_OR_RETURN(const double bits, ParseDouble("--kv-bits", value));
    if (!(bits > 0.0 && bits <= 16.0)) {
      return InvalidArgumentError("--kv-bits {}: must be in (0, 16] (bits per cached value, all included)", value);
    }
    c.target_ratio = 16.0 / bits;
  } else {
    return InvalidArgumentError(
        "unknown KV cache option '{}' (known: keys, prerope, outliers, residual, key_error, value_error, "
        "window, bits, granularity, key_bits, formula, tier, tier_dir, calib, ratio, kv_bits)",
        key);
  }
  return OkStatus();
}

}  // namespace

const char* KvBackendName(KvBackendKind b) {
  switch (b) {
    case KvBackendKind::kFp32: return "fp32";
    case KvBackendKind::kFp16: return "fp16";
    case KvBackendKind::kUniform: return "uniform";
    case KvBackendKind::kKivi: return "kivi";
    case KvBackendKind::kQaq: return "qaq";
  }
  return "?";
}

const char* KeyLayoutName(KeyLayout l) { return l == KeyLayout::kToken ? "token" : "channel"; }

const char* FullPrecisionTierName(FullPrecisionTier t) {
  switch (t) {
    case FullPrecisionTier::kNone: return "none";
    case FullPrecisionTier::kRam: return "ram";
    case FullPrecisionTier::kDisk: return "disk";
  }
  return "?";
}

Granularity AutoGranularity(const KvCacheShape& s) {
  if (s.head_dim >= kAutoGranularityValues) return Granularity::kHead;
  if (s.n_kv_heads * s.head_dim >= kAutoGranularityValues) return Granularity::kLayer;
  return Granularity::kToken;
}

StatusOr<KvCacheConfig> ParseKvCacheSpec(std::string_view spec) {
  const std::size_t name_end = spec.find_first_of(":,");
  const std::string_view name = spec.substr(0, name_end);
  KvCacheConfig c;
  if (name == "fp32") {
    c.backend = KvBackendKind::kFp32;
  } else if (name == "fp16") {
    c.backend = KvBackendKind::kFp16;
  } else if (name == "uniform") {
    c.backend = KvBackendKind::kUniform;
  } else if (name == "kivi") {
    c.backend = KvBackendKind::kKivi;
    c.key_layout = KeyLayout::kChannel;
    c.key_block = 32;  // KIVI's group size
  } else if (name == "qaq") {
    c.backend = KvBackendKind::kQaq;
    c.outlier_alpha = 0.01;  // §4: the paper's alpha
    // Keys per channel in blocks of 64 tokens, after RoPE (README, "Key layout": before RoPE is
    // about 10% lower KL at equal ratio on stories260K but attention costs 1.3-2.3x as much); keys=token
    // gives the paper's per-token keys.
    c.key_layout = KeyLayout::kChannel;
    c.key_block = 64;
  } else {
    return InvalidArgumentError("unknown KV cache '{}' (valid: fp32, fp16, uniform:B, uniform:KB/VB, kivi:B, qaq)", spec);
  }
  std::string_view rest = spec.substr(name.size());
  std::string_view args;
  if (!rest.empty() && rest.front() == ':') {
    rest.remove_prefix(1);
    const std::size_t comma = rest.find(',');
    args = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma);
    if (args.empty()) return InvalidArgumentError("KV cache '{}': nothing after ':'", spec);
  }
  QAQ_RETURN_IF_ERROR(ApplyArgs(c, args));
  while (!rest.empty()) {
    rest.remove_prefix(1);  // the comma
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    if (c.backend == KvBackendKind::kFp32 || c.backend == KvBackendKind::kFp16) {
      return InvalidArgumentError("KV cache '{}' takes no options, got '{}'", name, item);
    }
    if (eq == std::string_view::npos && key != "prerope") {
      return InvalidArgumentError("KV cache option '{}' is not key=value", item);
    }
    QAQ_RETURN_IF_ERROR(ApplyOption(c, key, value));
  }
  QAQ_RETURN_IF_ERROR(ValidateKvCacheConfig(c));
  return c;
}

Status ValidateKvCacheConfig(const KvCacheConfig& c) {
  if (!IsQuantized(c.backend)) return OkStatus();
  if (c.backend == KvBackendKind::kUniform) {
    for (const int bits : {c.key_bits, c.value_bits}) {
      if (!IsValidBits(bits)) return InvalidArgumentError("uniform: {} bits is not 0..8 or 16", bits);
    }
  }
  if (c.backend == KvBackendKind::kKivi && (c.key_bits < 1 || c.key_bits > kMaxCodeBits)) {
    return InvalidArgumentError("kivi: {} bits is not 1..8", c.key_bits);
  }
  if (c.key_layout == KeyLayout::kChannel && (c.key_block < 1 || c.key_block > 4096)) {
    return InvalidArgumentError("--kv-keys channel:{}: the block must be 1..4096 tokens", c.key_block);
  }
  if (!(c.outlier_alpha >= 0.0 && c.outlier_alpha < 1.0)) {
    return InvalidArgumentError("--qaq-outliers {}: must be in [0, 1)", c.outlier_alpha);
  }
  if (c.kivi_residual < 0) return InvalidArgumentError("kivi residual {}: must be >= 0", c.kivi_residual);
  if (c.backend != KvBackendKind::kQaq) return OkStatus();
  for (const double e : {c.key_error, c.value_error}) {
    if (!std::isfinite(e) || e < 0.0) {
      return InvalidArgumentError("--qaq-key-error / --qaq-value-error {}: must be a finite number > 0", e);
    }
  }
  if (c.window < 1 || c.window > 4096) return InvalidArgumentError("--qaq-window {}: must be 1..4096", c.window);
  const bool fp16_only = c.bits_min == kPassThroughBits && c.bits_max == kPassThroughBits;
  if (!fp16_only && (c.bits_min < 0 || c.bits_min > c.bits_max || c.bits_max > kMaxCodeBits)) {
    return InvalidArgumentError("--qaq-bits {}:{}: need 0 <= MIN <= MAX <= 8 (or 16:16)", c.bits_min, c.bits_max);
  }
  if (c.key_bits_fixed < -1 || c.key_bits_fixed > kMaxCodeBits) {
    return InvalidArgumentError("key_bits {}: must be 0..8", c.key_bits_fixed);
  }
  if (c.target_ratio != 0.0 && !(c.target_ratio >= 1.0 && std::isfinite(c.target_ratio))) {
    return InvalidArgumentError("--kv-ratio {}: must be a finite number >= 1", c.target_ratio);
  }
  return OkStatus();
}

std::string FormatKvCacheSpec(const KvCacheConfig& c) {
  std::string s = KvBackendName(c.backend);
  if (!IsQuantized(c.backend)) return s;
  if (c.backend == KvBackendKind::kUniform) {
    s += c.key_bits == c.value_bits ? fmt::format(":{}", c.key_bits) : fmt::format(":{}/{}", c.key_bits, c.value_bits);
  } else if (c.backend == KvBackendKind::kKivi) {
    s += fmt::format(":{}", c.key_bits);
  }
  s += c.key_layout == KeyLayout::kToken ? ",keys=token" : fmt::format(",keys=channel:{}", c.key_block);
  if (c.keys_prerope) s += ",prerope";
  s += fmt::format(",outliers={}", c.outlier_alpha);
  if (c.backend == KvBackendKind::kKivi) s += fmt::format(",residual={}", c.kivi_residual);
  if (c.backend != KvBackendKind::kQaq) return s;
  s += fmt::format(",key_error={},value_error={},window={},bits={}:{},granularity={},formula={},tier={}",
                   c.key_error, c.value_error, c.window, c.bits_min, c.bits_max,
                   c.auto_granularity ? "auto" : GranularityName(c.granularity), BitsFormulaName(c.formula),
                   FullPrecisionTierName(c.tier));
  if (c.key_bits_fixed >= 0) s += fmt::format(",key_bits={}", c.key_bits_fixed);
  if (!c.tier_dir.empty()) s += ",tier_dir=" + c.tier_dir;
  switch (c.query_norms) {
    case QueryNormSource::kPrompt: break;
    case QueryNormSource::kPromptHeads: s += ",calib=prompt-heads"; break;
    case QueryNormSource::kConstant: s += ",calib=constant"; break;
    case QueryNormSource::kFile: s += ",calib=" + c.calibration_path; break;
  }
  if (c.target_ratio != 0.0) s += fmt::format(",ratio={}", c.target_ratio);
  return s;
}

}  // namespace qaq
