// Calibrated |q~|^2 per (layer, KV head) (§2): samples -> quantile, and its JSON file.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "qaq/quant.h"

namespace qaq {
namespace {

constexpr const char* kFormat = "qaq-query-norm-calibration";
constexpr int kVersion = 1;

// Linear interpolation between order statistics (numpy's default "linear" method).
double Quantile(std::vector<double> samples, double q) {
  std::sort(samples.begin(), samples.end());
  const double pos = q * static_cast<double>(samples.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, samples.size() - 1);
  return samples[lo] + (samples[hi] - samples[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace

QueryNormCalibration::QueryNormCalibration(int n_layers, int n_kv_heads, double quantile)
    : n_layers_(n_layers), n_kv_heads_(n_kv_heads), quantile_(quantile) {
  QAQ_CHECK(n_layers > 0 && n_kv_heads > 0, "calibration shape {} x {}", n_layers, n_kv_heads);
  QAQ_CHECK(quantile > 0.0 && quantile <= 1.0, "quantile {}", quantile);
  samples_.resize(static_cast<std::size_t>(n_layers) * static_cast<std::size_t>(n_kv_heads));
  counts_.assign(samples_.size(), 0);
}

QueryNormCalibration QueryNormCalibration::Constant(int n_layers, int n_kv_heads, double q_norm_sq) {
  QueryNormCalibration c(n_layers, n_kv_heads);
  c.q_norm_sq_.assign(c.samples_.size(), q_norm_sq);
  return c;
}

Status QueryNormCalibration::AddSample(int layer, int kv_head, double q_norm_sq) {
  if (layer < 0 || layer >= n_layers_ || kv_head < 0 || kv_head >= n_kv_heads_) {
    return InvalidArgumentError("calibration sample for layer {} KV head {}: out of range {} x {}", layer, kv_head,
                                n_layers_, n_kv_heads_);
  }
  if (!std::isfinite(q_norm_sq) || q_norm_sq < 0.0) {
    return InvalidArgumentError("calibration sample {} (layer {}, KV head {}) is not finite and >= 0", q_norm_sq,
                                layer, kv_head);
  }
  const std::size_t i = static_cast<std::size_t>(layer) * static_cast<std::size_t>(n_kv_heads_) +
                        static_cast<std::size_t>(kv_head);
  samples_[i].push_back(q_norm_sq);
  ++counts_[i];
  return OkStatus();
}

Status QueryNormCalibration::Finalize() {
  std::vector<double> result(samples_.size());
  for (std::size_t i = 0; i < samples_.size(); ++i) {
    if (samples_[i].empty()) {
      return InvalidArgumentError("no calibration samples for layer {} KV head {}", i / static_cast<std::size_t>(n_kv_heads_),
                                  i % static_cast<std::size_t>(n_kv_heads_));
    }
    result[i] = Quantile(samples_[i], quantile_);
  }
  q_norm_sq_ = std::move(result);
  return OkStatus();
}

double QueryNormCalibration::QNormSq(int layer, int kv_head) const {
  QAQ_CHECK(!q_norm_sq_.empty(), "calibration used before Finalize");
  QAQ_CHECK(layer >= 0 && layer < n_layers_ && kv_head >= 0 && kv_head < n_kv_heads_, "layer {} KV head {}", layer,
            kv_head);
  return q_norm_sq_[static_cast<std::size_t>(layer) * static_cast<std::size_t>(n_kv_heads_) +
                    static_cast<std::size_t>(kv_head)];
}

std::size_t QueryNormCalibration::n_samples(int layer, int kv_head) const {
  QAQ_CHECK(layer >= 0 && layer < n_layers_ && kv_head >= 0 && kv_head < n_kv_heads_, "layer {} KV head {}", layer,
            kv_head);
  return counts_[static_cast<std::size_t>(layer) * static_cast<std::size_t>(n_kv_heads_) +
                 static_cast<std::size_t>(kv_head)];
}

std::string QueryNormCalibration::ToJson() const {
  QAQ_CHECK(!q_norm_sq_.empty(), "calibration saved before Finalize");
  nlohmann::json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["quantile"] = quantile_;
  j["includes_softmax_scale"] = true;
  j["n_layers"] = n_layers_;
  j["n_kv_heads"] = n_kv_heads_;
  nlohmann::json values = nlohmann::json::array(), counts = nlohmann::json::array();
  for (int l = 0; l < n_layers_; ++l) {
    nlohmann::json vrow = nlohmann::json::array(), crow = nlohmann::json::array();
    for (int h = 0; h < n_kv_heads_; ++h) {
      vrow.push_back(QNormSq(l, h));
      crow.push_back(n_samples(l, h));
    }
    values.push_back(vrow);
    counts.push_back(crow);
  }
  j["q_norm_sq"] = values;
  j["n_samples"] = counts;
  return j.dump(2) + "\n";
}

StatusOr<QueryNormCalibration> QueryNormCalibration::FromJson(std::string_view text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return DataLossError("query-norm calibration: not a JSON object");
  if (!j.contains("format") || j["format"] != kFormat) {
    return DataLossError("query-norm calibration: \"format\" must be \"{}\"", kFormat);
  }
  if (!j.contains("version") || j["version"] != kVersion) {
    return UnimplementedError("query-norm calibration: only version {} is supported", kVersion);
  }
  if (!j.contains("includes_softmax_scale") || j["includes_softmax_scale"] != true) {
    return DataLossError("query-norm calibration: \"includes_softmax_scale\" must be true");
  }
  const auto positive_int = [&](const char* key) -> int {
    if (!j.contains(key) || !j[key].is_number_integer()) return -1;
    const auto v = j[key].get<long long>();
    return v >= 1 && v <= (1 << 16) ? static_cast<int>(v) : -1;
  };
  const int n_layers = positive_int("n_layers"), n_kv_heads = positive_int("n_kv_heads");
  if (n_layers < 1 || n_kv_heads < 1) {
    return DataLossError("query-norm calibration: \"n_layers\" and \"n_kv_heads\" must be integers >= 1");
  }
  if (!j.contains("quantile") || !j["quantile"].is_number() || !(j["quantile"].get<double>() > 0.0) ||
      j["quantile"].get<double>() > 1.0) {
    return DataLossError("query-norm calibration: \"quantile\" must be a number in (0, 1]");
  }
  QueryNormCalibration c(n_layers, n_kv_heads, j["quantile"].get<double>());
  const auto& values = j.contains("q_norm_sq") ? j["q_norm_sq"] : nlohmann::json();
  if (!values.is_array() || values.size() != static_cast<std::size_t>(n_layers)) {
    return DataLossError("query-norm calibration: \"q_norm_sq\" must be {} rows of {} numbers", n_layers, n_kv_heads);
  }
  const nlohmann::json* counts = j.contains("n_samples") ? &j["n_samples"] : nullptr;
  c.q_norm_sq_.resize(c.samples_.size());
  for (int l = 0; l < n_layers; ++l) {
    const auto& row = values[static_cast<std::size_t>(l)];
    if (!row.is_array() || row.size() != static_cast<std::size_t>(n_kv_heads)) {
      return DataLossError("query-norm calibration: \"q_norm_sq\" row {} must have {} numbers", l, n_kv_heads);
    }
    for (int h = 0; h < n_kv_heads; ++h) {
      const auto& v = row[static_cast<std::size_t>(h)];
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() <= 0.0) {
        return DataLossError("query-norm calibration: q_norm_sq[{}][{}] must be a finite number > 0", l, h);
      }
      const std::size_t i = static_cast<std::size_t>(l) * static_cast<std::size_t>(n_kv_heads) + static_cast<std::size_t>(h);
      c.q_norm_sq_[i] = v.get<double>();
      if (counts != nullptr && counts->is_array() && counts->size() == values.size() &&
          (*counts)[static_cast<std::size_t>(l)].is_array() &&
          (*counts)[static_cast<std::size_t>(l)].size() == row.size()) {
        const auto& count = (*counts)[static_cast<std::size_t>(l)][static_cast<std::size_t>(h)];
        if (count.is_number_unsigned()) c.counts_[i] = count.get<std::size_t>();
      }
    }
  }
  return c;
}

Status QueryNormCalibration::Save(const std::string& path) const {
  std::ofstream out(path, std::ios::binary);
  if (!out) return InternalError("cannot write query-norm calibration '{}'", path);
  out << ToJson();
  out.close();
  if (!out) return InternalError("writing query-norm calibration '{}' failed", path);
  return OkStatus();
}

StatusOr<QueryNormCalibration> QueryNormCalibration::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("query-norm calibration '{}' not found", path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto c = FromJson(buffer.str());
  if (!c.ok()) return c.status().WithContext(path);
  return c;
}

}  // namespace qaq
