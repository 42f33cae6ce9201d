// KvQuantConfig: names, validation, and the two text forms (JSON object, key=value list) used by
// `qaq quantize --kv-config` and later by `--kv` specs.
#include <charconv>
#include <cmath>
#include <map>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "qaq/quant.h"

namespace qaq {
namespace {

StatusOr<double> ParseDouble(std::string_view key, std::string_view text) {
  double value = 0.0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    return InvalidArgumentError("{}: '{}' is not a number", key, text);
  }
  return value;
}

StatusOr<int> ParseInt(std::string_view key, std::string_view text) {
  int value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    return InvalidArgumentError("{}: '{}' is not an integer", key, text);
  }
  return value;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

// Applies one key to the config. Every value arrives as text (JSON numbers are printed first).
Status ApplyKey(KvQuantConfig& c, std::string_view key, std::string_view value) {
  if (key == "kind") {
    if (value == "key") { c.kind = KvKind::kKey; return OkStatus(); }
    if (value == "value") { c.kind = KvKind::kValue; return OkStatus(); }
    return InvalidArgumentError("kind: '{}' is not key or value", value);
  }
  if (key == "bits") {
    const std::size_t colon = value.find(':');
    if (colon == std::string_view::npos) {
      QAQ_ASSIGN_OR_RETURN(c.uniform_bits, ParseInt(key, value));
      return OkStatus();
    }
    QAQ_ASSIGN_OR_RETURN(c.bits_min, ParseInt(key, value.substr(0, colon)));
    QAQ_ASSIGN_OR_RETURN(c.bits_max, ParseInt(key, value.substr(colon + 1)));
    c.uniform_bits = -1;
    return OkStatus();
  }
  if (key == "target") { QAQ_ASSIGN_OR_RETURN(c.target, ParseDouble(key, value)); return OkStatus(); }
  if (key == "window") { QAQ_ASSIGN_OR_RETURN(c.window, ParseInt(key, value)); return OkStatus(); }
  if (key == "alpha") { QAQ_ASSIGN_OR_RETURN(c.outlier_alpha, ParseDouble(key, value)); return OkStatus(); }
  if (key == "q_norm") { QAQ_ASSIGN_OR_RETURN(c.q_norm_sq, ParseDouble(key, value)); return OkStatus(); }
  if (key == "granularity") {
    if (value == "token") { c.granularity = Granularity::kToken; return OkStatus(); }
    if (value == "layer") { c.granularity = Granularity::kLayer; return OkStatus(); }
    if (value == "head") { c.granularity = Granularity::kHead; return OkStatus(); }
    return InvalidArgumentError("granularity: '{}' is not token, layer or head", value);
  }
  if (key == "formula") {
    if (value == "paper") { c.formula = BitsFormula::kPaper; return OkStatus(); }
    if (value == "authors") { c.formula = BitsFormula::kAuthors; return OkStatus(); }
    if (value == "strict") { c.formula = BitsFormula::kStrict; return OkStatus(); }
    return InvalidArgumentError("formula: '{}' is not paper, authors or strict", value);
  }
  if (key == "codec") {
    if (value == "midpoint") { c.codec = CodecKind::kMidpoint; return OkStatus(); }
    if (value == "authors") { c.codec = CodecKind::kAuthors; return OkStatus(); }
    return InvalidArgumentError("codec: '{}' is not midpoint or authors", value);
  }
  return InvalidArgumentError(
      "unknown key '{}' (known: kind, bits, target, window, alpha, granularity, formula, codec, q_norm)", key);
}

}  // namespace

const char* KvKindName(KvKind kind) { return kind == KvKind::kKey ? "key" : "value"; }

const char* GranularityName(Granularity g) {
  switch (g) {
    case Granularity::kToken: return "token";
    case Granularity::kLayer: return "layer";
    case Granularity::kHead: return "head";
  }
  return "?";
}

const char* BitsFormulaName(BitsFormula f) {
  switch (f) {
    case BitsFormula::kPaper: break;
    case BitsFormula::kAuthors: return "authors";
    case BitsFormula::kStrict: return "strict";
  }
  return "paper";
}
const char* CodecKindName(CodecKind c) { return c == CodecKind::kMidpoint ? "midpoint" : "authors"; }

Status ValidateKvQuantConfig(const KvQuantConfig& c) {
  if (c.bits_min < 0 || c.bits_min > kMaxCodeBits || c.bits_max < c.bits_min || c.bits_max > kMaxCodeBits) {
    return InvalidArgumentError("bits {}:{}: need 0 <= MIN <= MAX <= {}", c.bits_min, c.bits_max, kMaxCodeBits);
  }
  if (c.uniform_bits != -1 && !IsValidBits(c.uniform_bits)) {
    return InvalidArgumentError("bits {}: a uniform width must be 0..8 or 16", c.uniform_bits);
  }
  if (!std::isfinite(c.target) || c.target <= 0.0) {
    return InvalidArgumentError("target {}: must be a finite number > 0", c.target);
  }
  if (c.window < 1 || c.window > (1 << 20)) return InvalidArgumentError("window {}: must be 1..2^20", c.window);
  if (!(c.outlier_alpha >= 0.0 && c.outlier_alpha < 1.0)) {
    return InvalidArgumentError("alpha {}: must be in [0, 1)", c.outlier_alpha);
  }
  if (!std::isfinite(c.q_norm_sq) || c.q_norm_sq < 0.0) {
    return InvalidArgumentError("q_norm {}: must be a finite number >= 0 (0: not set)", c.q_norm_sq);
  }
  return OkStatus();
}

StatusOr<KvQuantConfig> ParseKvQuantConfig(std::string_view text) {
  KvQuantConfig config;
  text = Trim(text);
  if (!text.empty() && text.front() == '{') {
    nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object()) return InvalidArgumentError("kv config: not a valid JSON object");
    for (const auto& [key, value] : json.items()) {
      std::string as_text;
      if (value.is_string()) {
        as_text = value.get<std::string>();
      } else if (value.is_number_integer()) {
        as_text = std::to_string(value.get<long long>());
      } else if (value.is_number()) {
        as_text = fmt::format("{}", value.get<double>());
      } else {
        return InvalidArgumentError("kv config: '{}' must be a string or a number", key);
      }
      QAQ_RETURN_IF_ERROR(ApplyKey(config, key, as_text).WithContext("kv config"));
    }
  } else {
    std::string_view rest = text;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      const std::string_view item = Trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (item.empty()) continue;
      const std::size_t eq = item.find('=');
      if (eq == std::string_view::npos) return InvalidArgumentError("kv config: '{}' is not key=value", item);
      QAQ_RETURN_IF_ERROR(ApplyKey(config, Trim(item.substr(0, eq)), Trim(item.substr(eq + 1))).WithContext("kv config"));
    }
  }
  QAQ_RETURN_IF_ERROR(ValidateKvQuantConfig(config).WithContext("kv config"));
  return config;
}

std::string FormatKvQuantConfig(const KvQuantConfig& c) {
  const std::string bits = c.uniform_bits >= 0 ? fmt::format("{}", c.uniform_bits)
                                               : fmt::format("{}:{}", c.bits_min, c.bits_max);
  return fmt::format("kind={},bits={},target={},window={},alpha={},granularity={},formula={},codec={},q_norm={}",
                     KvKindName(c.kind), bits, c.target, c.window, c.outlier_alpha,
                     GranularityName(c.granularity), BitsFormulaName(c.formula), CodecKindName(c.codec),
                     c.q_norm_sq);
}

}  // namespace qaq
