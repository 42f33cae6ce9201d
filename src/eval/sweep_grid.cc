// Grid files of `qaq sweep` (qaq/eval.h SweepGrid): JSON with runs and value lists to expand.
#include <cmath>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "qaq/eval.h"

namespace qaq {
namespace {

using nlohmann::json;

// The text of a JSON scalar as it goes into "{key}": strings as they are, numbers as written.
StatusOr<std::string> ValueText(const json& v, std::string_view key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number()) return v.dump();
  return InvalidArgumentError("values of '{}' must be strings or numbers", key);
}

std::string Substitute(std::string text, const std::string& key, const std::string& value) {
  const std::string pattern = "{" + key + "}";
  for (std::size_t at = text.find(pattern); at != std::string::npos;
       at = text.find(pattern, at + value.size())) {
    text.replace(at, pattern.size(), value);
  }
  return text;
}

StatusOr<std::string> RequiredString(const json& j, const char* key, std::string_view where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    return InvalidArgumentError("{}: needs a string field '{}'", where, key);
  }
  return it->get<std::string>();
}

Status ExpandRun(const json& r, std::size_t index, std::vector<SweepRun>& out) {
  const std::string where = fmt::format("grid run {}", index);
  if (!r.is_object()) return InvalidArgumentError("{}: not an object", where);
  QAQ_ASSIGN_OR_RETURN(const std::string series, RequiredString(r, "series", where));
  QAQ_ASSIGN_OR_RETURN(const std::string args, RequiredString(r, "args", where));
  std::string label = args;
  if (r.contains("label")) {
    QAQ_ASSIGN_OR_RETURN(label, RequiredString(r, "label", where));
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> values;
  if (r.contains("values")) {
    const json& v = r["values"];
    if (!v.is_object() || v.empty()) {
      return InvalidArgumentError("{}: 'values' must be an object of non-empty lists", where);
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it->is_array() || it->empty()) {
        return InvalidArgumentError("{}: values of '{}' must be a non-empty list", where, it.key());
      }
      std::vector<std::string> texts;
      for (const json& x : *it) {
        QAQ_ASSIGN_OR_RETURN(std::string t, ValueText(x, it.key()));
        texts.push_back(std::move(t));
      }
      values.emplace_back(it.key(), std::move(texts));
    }
  }
  // Odometer over the value lists; nlohmann's object keeps keys sorted, so the first key in
  // alphabetical order varies slowest.
  std::string x_text;
  if (r.contains("x")) {
    QAQ_ASSIGN_OR_RETURN(x_text, ValueText(r["x"], "x"));
  }
  std::vector<std::size_t> at(values.size(), 0);
  while (true) {
    SweepRun run{series, label, args, {}};
    std::string x = x_text;
    for (std::size_t k = 0; k < values.size(); ++k) {
      run.label = Substitute(run.label, values[k].first, values[k].second[at[k]]);
      run.args = Substitute(run.args, values[k].first, values[k].second[at[k]]);
      run.series = Substitute(run.series, values[k].first, values[k].second[at[k]]);
      x = Substitute(x, values[k].first, values[k].second[at[k]]);
    }
    if (!x.empty()) {
      char* end = nullptr;
      run.x = std::strtod(x.c_str(), &end);
      if (end == x.c_str() || *end != '\0' || !std::isfinite(run.x)) {
        return InvalidArgumentError("{}: x '{}' is not a number", where, x);
      }
    }
    out.push_back(std::move(run));
    std::size_t k = values.size();
    while (k > 0) {
      --k;
      if (++at[k] < values[k].second.size()) break;
      at[k] = 0;
      if (k == 0) return OkStatus();
    }
    if (values.empty()) return OkStatus();
  }
}

}  // namespace

StatusOr<SweepGrid> ParseSweepGrid(std::string_view text) {
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgumentError("grid: not a JSON object");
  SweepGrid g;
  if (j.contains("title")) {
    QAQ_ASSIGN_OR_RETURN(g.title, RequiredString(j, "title", "grid"));
  }
  if (j.contains("context")) {
    if (!j["context"].is_number_integer()) return InvalidArgumentError("grid: 'context' must be an integer");
    g.context = j["context"].get<int>();
  }
  if (j.contains("chunks")) {
    if (!j["chunks"].is_number_integer()) return InvalidArgumentError("grid: 'chunks' must be an integer");
    g.n_chunks = j["chunks"].get<int>();
  }
  if (j.contains("x_label")) {
    QAQ_ASSIGN_OR_RETURN(g.x_label, RequiredString(j, "x_label", "grid"));
  }
  if (j.contains("kl_threshold")) {
    if (!j["kl_threshold"].is_number() || !(j["kl_threshold"].get<double>() > 0)) {
      return InvalidArgumentError("grid: 'kl_threshold' must be a positive number");
    }
    g.kl_threshold = j["kl_threshold"].get<double>();
  }
  if (j.contains("protocols")) {
    if (!j["protocols"].is_array() || j["protocols"].empty()) {
      return InvalidArgumentError("grid: 'protocols' must be a non-empty list");
    }
    g.protocols.clear();
    for (const json& p : j["protocols"]) {
      if (!p.is_string()) return InvalidArgumentError("grid: protocols are strings");
      QAQ_ASSIGN_OR_RETURN(const EvalProtocol protocol, ParseEvalProtocol(p.get<std::string>()));
      g.protocols.push_back(protocol);
    }
  }
  if (!j.contains("runs") || !j["runs"].is_array() || j["runs"].empty()) {
    return InvalidArgumentError("grid: needs a non-empty list 'runs'");
  }
  for (std::size_t i = 0; i < j["runs"].size(); ++i) {
    QAQ_RETURN_IF_ERROR(ExpandRun(j["runs"][i], i, g.runs));
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k != "title" && k != "context" && k != "chunks" && k != "kl_threshold" &&
        k != "protocols" && k != "runs" && k != "comment" && k != "x_label") {
      return InvalidArgumentError("grid: unknown field '{}'", k);
    }
  }
  return g;
}

}  // namespace qaq
