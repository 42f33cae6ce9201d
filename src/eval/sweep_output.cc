#include "eval/sweep_output.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "eval/svg_plot.h"

namespace qaq::internal {
namespace {

using nlohmann::json;

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// Enough digits to read the double back exactly.
std::string Num(double v) { return fmt::format("{:.17g}", v); }

json RowJson(const SweepRow& r) {
  const KvMemory& m = r.memory;
  return json{{"id", r.id},
              {"series", r.series},
              {"label", r.label},
              {"args", r.args},
              {"protocol", EvalProtocolName(r.protocol)},
              {"x", std::isfinite(r.x) ? json(r.x) : json(nullptr)},
              {"cache", r.cache_name},
              {"compression_ratio", r.compression_ratio},
              {"prompt_ratio", r.prompt_ratio},
              {"bits_per_value", r.bits_per_value},
              {"key_bits", r.key_bits},
              {"value_bits", r.value_bits},
              {"outlier_share", r.outlier_share},
              {"mean_kl", r.mean_kl},
              {"mean_kl_error", r.mean_kl_error},
              {"median_kl", r.median_kl},
              {"p99_kl", r.p99_kl},
              {"max_kl", r.max_kl},
              {"top1", r.top1},
              {"top1_error", r.top1_error},
              {"ppl", r.ppl},
              {"ppl_error", r.ppl_error},
              {"base_ppl", r.base_ppl},
              {"code_bytes", m.code_bytes},
              {"metadata_bytes", m.metadata_bytes},
              {"outlier_bytes", m.outlier_bytes},
              {"table_bytes", m.table_bytes},
              {"full_precision_bytes", m.full_precision_bytes},
              {"fp16_bytes", m.fp16_reference_bytes},
              {"cache_bytes", m.cache_bytes()},
              {"chunks", r.n_chunks},
              {"context", r.context},
              {"seconds", r.seconds}};
}

bool RowFromJson(const json& j, SweepRow& r) {
  try {
    r.id = j.at("id").get<std::string>();
    r.series = j.at("series").get<std::string>();
    r.label = j.at("label").get<std::string>();
    r.args = j.at("args").get<std::string>();
    auto protocol = ParseEvalProtocol(j.at("protocol").get<std::string>());
    if (!protocol.ok()) return false;
    r.protocol = *protocol;
    r.x = j.at("x").is_number() ? j.at("x").get<double>() : std::numeric_limits<double>::quiet_NaN();
    r.cache_name = j.at("cache").get<std::string>();
    r.compression_ratio = j.at("compression_ratio").get<double>();
    r.prompt_ratio = j.at("prompt_ratio").get<double>();
    r.bits_per_value = j.at("bits_per_value").get<double>();
    r.key_bits = j.at("key_bits").get<double>();
    r.value_bits = j.at("value_bits").get<double>();
    r.outlier_share = j.at("outlier_share").get<double>();
    r.mean_kl = j.at("mean_kl").get<double>();
    r.mean_kl_error = j.at("mean_kl_error").get<double>();
    r.median_kl = j.at("median_kl").get<double>();
    r.p99_kl = j.at("p99_kl").get<double>();
    r.max_kl = j.at("max_kl").get<double>();
    r.top1 = j.at("top1").get<double>();
    r.top1_error = j.at("top1_error").get<double>();
    r.ppl = j.at("ppl").get<double>();
    r.ppl_error = j.at("ppl_error").get<double>();
    r.base_ppl = j.at("base_ppl").get<double>();
    r.memory.code_bytes = j.at("code_bytes").get<std::size_t>();
    r.memory.metadata_bytes = j.at("metadata_bytes").get<std::size_t>();
    r.memory.outlier_bytes = j.at("outlier_bytes").get<std::size_t>();
    r.memory.table_bytes = j.at("table_bytes").get<std::size_t>();
    r.memory.full_precision_bytes = j.at("full_precision_bytes").get<std::size_t>();
    r.memory.fp16_reference_bytes = j.at("fp16_bytes").get<std::size_t>();
    r.n_chunks = j.at("chunks").get<int>();
    r.context = j.at("context").get<int>();
    r.seconds = j.at("seconds").get<double>();
  } catch (const json::exception&) {
    return false;  // a foreign or older file: the row is recomputed
  }
  return true;
}

std::vector<EvalProtocol> ProtocolsOf(const std::vector<SweepRow>& rows) {
  std::vector<EvalProtocol> out;
  for (const SweepRow& r : rows) {
    if (std::find(out.begin(), out.end(), r.protocol) == out.end()) out.push_back(r.protocol);
  }
  return out;
}

// Series in order of first appearance.
std::vector<std::string> SeriesOf(const std::vector<SweepRow>& rows) {
  std::vector<std::string> out;
  for (const SweepRow& r : rows) {
    if (std::find(out.begin(), out.end(), r.series) == out.end()) out.push_back(r.series);
  }
  return out;
}

PlotSpec QualityPlot(const SweepHeader& h, const std::vector<SweepRow>& rows, EvalProtocol protocol,
                     bool top1) {
  PlotSpec spec;
  const std::string base = h.title.empty() ? "KV cache quality vs compression" : h.title;
  spec.title = fmt::format("{} ({} protocol)", base, EvalProtocolName(protocol));
  const bool custom_x = !rows.empty() && std::all_of(rows.begin(), rows.end(), [](const SweepRow& r) {
    return std::isfinite(r.x);
  });
  spec.x_label = custom_x ? (h.x_label.empty() ? std::string("x") : h.x_label)
                          : "compression ratio against fp16 (every byte counted)";
  spec.x_frontier = !custom_x;
  if (top1) {
    spec.y_label = "top-1 agreement with the fp32 cache (%)";
    spec.y_higher_is_better = true;
  } else {
    spec.y_label = "mean KL divergence from the fp32 cache (nats)";
    spec.log_y = true;
    spec.threshold_y = h.kl_threshold;
    spec.threshold_label = fmt::format("mean KL = {}", TickLabel(h.kl_threshold, false));
  }
  for (const std::string& name : SeriesOf(rows)) {
    PlotSeries s;
    s.name = name;
    for (const SweepRow& r : rows) {
      if (r.series != name || r.protocol != protocol) continue;
      s.points.push_back({custom_x ? r.x : r.compression_ratio, top1 ? 100.0 * r.top1 : r.mean_kl});
    }
    if (!s.points.empty()) spec.series.push_back(std::move(s));
  }
  return spec;
}

}  // namespace

std::string SweepCsv(const std::vector<SweepRow>& rows) {
  std::string s =
      "series,label,protocol,x,args,cache,compression_ratio,prompt_ratio,bits_per_value,key_bits,value_bits,outlier_share,mean_kl,"
      "mean_kl_error,median_kl,p99_kl,max_kl,top1,top1_error,ppl,ppl_error,base_ppl,code_bytes,"
      "metadata_bytes,outlier_bytes,table_bytes,cache_bytes,fp16_bytes,full_precision_bytes,"
      "chunks,context,seconds,id\n";
  for (const SweepRow& r : rows) {
    const KvMemory& m = r.memory;
    s += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.3f},{}\n",
                     CsvField(r.series), CsvField(r.label), EvalProtocolName(r.protocol),
                     std::isfinite(r.x) ? Num(r.x) : std::string(),
                     CsvField(r.args), CsvField(r.cache_name), Num(r.compression_ratio),
                     Num(r.prompt_ratio),
                     Num(r.bits_per_value), Num(r.key_bits), Num(r.value_bits), Num(r.outlier_share), Num(r.mean_kl),
                     Num(r.mean_kl_error), Num(r.median_kl), Num(r.p99_kl), Num(r.max_kl),
                     Num(r.top1), Num(r.top1_error), Num(r.ppl), Num(r.ppl_error), Num(r.base_ppl),
                     m.code_bytes, m.metadata_bytes, m.outlier_bytes, m.table_bytes,
                     m.cache_bytes(), m.fp16_reference_bytes, m.full_precision_bytes, r.n_chunks,
                     r.context, r.seconds, r.id);
  }
  return s;
}

std::string SweepJson(const SweepHeader& h, const std::vector<SweepRow>& rows) {
  json j{{"format", "qaq-sweep"},     {"version", 1},           {"title", h.title},
         {"model", h.model_id},       {"context", h.context},   {"chunks", h.n_chunks},
         {"kl_threshold", h.kl_threshold}};
  json list = json::array();
  for (const SweepRow& r : rows) list.push_back(RowJson(r));
  j["rows"] = std::move(list);
  return j.dump(1) + "\n";
}

std::map<std::string, SweepRow> ReadSweepJson(const std::string& text) {
  std::map<std::string, SweepRow> rows;
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || j.value("format", "") != "qaq-sweep" ||
      !j.contains("rows") || !j["rows"].is_array()) {
    return rows;
  }
  for (const json& r : j["rows"]) {
    SweepRow row;
    if (RowFromJson(r, row)) rows[row.id] = row;
  }
  return rows;
}

std::string SweepSummaryMarkdown(const SweepHeader& h, const std::vector<SweepRow>& rows) {
  std::string s = fmt::format("# {}\n\n", h.title.empty() ? "Sweep results" : h.title);
  s += fmt::format("Model {}, {} chunks of {} tokens. Compression ratio = fp16 bytes / cache bytes "
                   "with codes, metadata, outliers and tables counted. KL: mean over scored tokens "
                   "of KL(fp32 cache || this cache).\n\n",
                   h.model_id, h.n_chunks, h.context);
  s += fmt::format("## Best ratio at mean KL <= {}\n\n", TickLabel(h.kl_threshold, false));
  s += "| series | protocol | best ratio | configuration | mean KL | top-1 |\n|---|---|---:|---|---:|---:|\n";
  for (const SeriesBest& b : BestRatioPerSeries(rows, h.kl_threshold)) {
    if (b.row == nullptr) {
      s += fmt::format("| {} | {} | none | (no configuration reaches the threshold) | | |\n", b.series,
                       EvalProtocolName(b.protocol));
      continue;
    }
    s += fmt::format("| {} | {} | {:.2f}x | {} | {:.5f} | {:.1f}% |\n", b.series,
                     EvalProtocolName(b.protocol), b.row->compression_ratio, b.row->label,
                     b.row->mean_kl, 100.0 * b.row->top1);
  }
  s += "\n## All rows\n\nratio: the cache at the end of each chunk; prompt ratio: when it held the "
       "first half (the paper counts the prompt's cache only).\n\n"
       "| series | configuration | protocol | ratio | prompt ratio | bits K | bits V | outlier bytes | "
       "mean KL | median KL | p99 KL | top-1 | PPL | seconds |\n"
       "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const SweepRow& r : rows) {
    s += fmt::format("| {} | {} | {} | {:.3f} | {:.3f} | {:.2f} | {:.2f} | {:.1f}% | {:.6f} +/- {:.6f} | {:.6f} | "
                     "{:.5f} | {:.2f}% | {:.4f} | {:.1f} |\n",
                     r.series, r.label, EvalProtocolName(r.protocol), r.compression_ratio, r.prompt_ratio,
                     r.key_bits, r.value_bits, 100.0 * r.outlier_share, r.mean_kl, r.mean_kl_error,
                     r.median_kl, r.p99_kl, 100.0 * r.top1, r.ppl, r.seconds);
  }
  return s;
}

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return InternalError("{}: cannot write: {}", tmp, std::strerror(errno));
    out.write(text.data(), std::streamsize(text.size()));
    if (!out) return InternalError("{}: write failed", tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return InternalError("cannot rename {} to {}: {}", tmp, path, ec.message());
  return OkStatus();
}

Status WriteSweepOutputs(const std::string& dir, const SweepHeader& h,
                         const std::vector<SweepRow>& rows) {
  QAQ_RETURN_IF_ERROR(WriteFileAtomically(dir + "/results.csv", SweepCsv(rows)));
  QAQ_RETURN_IF_ERROR(WriteFileAtomically(dir + "/results.json", SweepJson(h, rows)));
  QAQ_RETURN_IF_ERROR(WriteFileAtomically(dir + "/summary.md", SweepSummaryMarkdown(h, rows)));
  for (EvalProtocol p : ProtocolsOf(rows)) {
    const std::string name = EvalProtocolName(p);
    QAQ_RETURN_IF_ERROR(WriteFileAtomically(dir + "/kl_vs_ratio_" + name + ".svg",
                                            RenderSvg(QualityPlot(h, rows, p, false))));
    QAQ_RETURN_IF_ERROR(WriteFileAtomically(dir + "/top1_vs_ratio_" + name + ".svg",
                                            RenderSvg(QualityPlot(h, rows, p, true))));
  }
  return OkStatus();
}

}  // namespace qaq::internal
