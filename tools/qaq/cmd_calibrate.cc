// `qaq calibrate`: measures |q~|^2 per layer and KV head on a text and writes the query-norm
// calibration file the key formula uses (QAQ-method.md §2; README.md).
//
// The text is tokenized once (BOS first) and cut into chunks of -c tokens, each starting with BOS
// as in perplexity measurements; every chunk runs as one prefill in an empty cache. Every
// position of every chunk gives one sample per (layer, KV head): the largest |q~|^2 among the
// query heads that share the KV head.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "engine_flags.h"
#include "qaq/query_norm_samples.h"
#include "qaq/tokenizer.h"
#include "recording_session.h"

namespace qaq::tool {
namespace {

struct CalibrateFlags {
  EngineFlags engine;
  std::string tokenizer_path;
  std::string text_path;
  std::string out_path;
  double quantile = 0.9;
  int n_chunks = 0;  // 0: every chunk of the text
};

StatusOr<std::string> ReadText(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return NotFoundError("text file '{}' not found", path);
  if (std::filesystem::is_directory(path, ec)) return NotFoundError("text file '{}' is a folder", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) return InternalError("cannot read text file '{}'", path);
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  if (std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c) != 0; })) {
    return DataLossError("text file '{}' is empty: there is nothing to calibrate on", path);
  }
  return s;
}

// Fails early, before minutes of calibration, when the output file cannot be created.
Status CheckOutputFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return InternalError("output '{}' is a folder, not a file", path);
  std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (folder.empty()) folder = ".";
  if (!std::filesystem::exists(folder, ec)) {
    return InternalError("cannot write '{}': folder '{}' does not exist", path, folder.string());
  }
  if (!std::filesystem::is_directory(folder, ec)) {
    return InternalError("cannot write '{}': '{}' is not a folder", path, folder.string());
  }
  if (::access(folder.c_str(), W_OK) != 0) {
    return InternalError("cannot write '{}': folder '{}' is not writable", path, folder.string());
  }
  return OkStatus();
}

// Chunks of `length` tokens with BOS first (llama.cpp's perplexity protocol); a text shorter
// than one chunk is one shorter chunk.
std::vector<std::vector<int>> Chunks(const std::vector<int>& tokens, int length, int max_chunks, int bos) {
  std::vector<std::vector<int>> chunks;
  const std::size_t n = std::size_t(length);
  for (std::size_t start = 0; start + n <= tokens.size(); start += n) {
    if (max_chunks > 0 && int(chunks.size()) == max_chunks) break;
    chunks.emplace_back(tokens.begin() + std::ptrdiff_t(start), tokens.begin() + std::ptrdiff_t(start + n));
  }
  if (chunks.empty()) chunks.push_back(tokens);
  for (auto& chunk : chunks) chunk.front() = bos;
  return chunks;
}

Status RunCalibrate(const CalibrateFlags& flags) {
  if (!(flags.quantile > 0.0 && flags.quantile < 1.0)) {
    return InvalidArgumentError("--quantile {} must be between 0 and 1 (exclusive)", flags.quantile);
  }
  if (flags.n_chunks < 0) return InvalidArgumentError("--chunks {} must be >= 0 (0: all)", flags.n_chunks);
  QAQ_ASSIGN_OR_RETURN(std::string text, ReadText(flags.text_path));
  QAQ_RETURN_IF_ERROR(CheckOutputFile(flags.out_path));
  QAQ_ASSIGN_OR_RETURN(Model model, LoadModel(flags.engine.model_path));
  QAQ_ASSIGN_OR_RETURN(Tokenizer tokenizer, LoadTokenizer(model, flags.tokenizer_path));
  QAQ_ASSIGN_OR_RETURN(RecordingSession run,
                       MakeRecordingSession(model, flags.engine, RecordOptions::QueryNormsOnly()));
  const ModelConfig& c = model.config();
  const int length = run.session.context_length();
  const std::vector<int> tokens = tokenizer.Encode(text, /*add_bos=*/true);
  const std::vector<std::vector<int>> chunks = Chunks(tokens, length, flags.n_chunks, tokenizer.bos_id());

  QueryNormCollector collector(c.n_layers, c.n_kv_heads);
  const auto start = std::chrono::steady_clock::now();
  std::size_t n_positions = 0;
  for (const auto& chunk : chunks) {
    run.session.Truncate(0);
    QAQ_RETURN_IF_ERROR(run.session.Prefill(chunk).status());
    QAQ_RETURN_IF_ERROR(collector.Add(*run.recorder));
    n_positions += chunk.size();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  QAQ_ASSIGN_OR_RETURN(QueryNormCalibration calibration, collector.Calibration(flags.quantile));

  // The calibration file (QueryNormCalibration reads it) plus where the numbers came from and
  // their distribution, which readers of the file ignore.
  nlohmann::json j = nlohmann::json::parse(calibration.ToJson());
  j["source"] = {{"model", flags.engine.model_path},
                 {"text", flags.text_path},
                 {"text_tokens", tokens.size()},
                 {"chunks", chunks.size()},
                 {"chunk_tokens", chunks.front().size()},
                 {"positions", n_positions},
                 {"kv_cache", flags.engine.kv_cache},
                 {"sample", "max over the query heads of each KV head of |q * softmax_scale|^2, per position"}};
  nlohmann::json summary = nlohmann::json::array();
  for (int l = 0; l < c.n_layers; ++l) {
    for (int h = 0; h < c.n_kv_heads; ++h) {
      const QueryNormStats s = collector.Stats(l, h);
      summary.push_back({{"layer", l}, {"kv_head", h}, {"count", s.count}, {"mean", s.mean}, {"p50", s.p50},
                         {"p90", s.p90}, {"p99", s.p99}, {"max", s.max}});
    }
  }
  j["summary"] = summary;
  {
    std::ofstream out(flags.out_path, std::ios::binary);
    if (!out) return InternalError("cannot write calibration '{}'", flags.out_path);
    out << j.dump(2) << "\n";
    out.close();
    if (!out) return InternalError("writing calibration '{}' failed", flags.out_path);
  }

  fmt::print("{} chunks of {} tokens ({} positions) in {:.2f} s; |q~|^2 per layer and KV head "
             "(q~ = q / sqrt({})):\n",
             chunks.size(), chunks.front().size(), n_positions, seconds, c.head_dim);
  fmt::print("{:>5} {:>7} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "layer", "kv_head", "count", "mean",
             "p50", "p90", "p99", "max", fmt::format("q{:g}", flags.quantile));
  for (int l = 0; l < c.n_layers; ++l) {
    for (int h = 0; h < c.n_kv_heads; ++h) {
      const QueryNormStats s = collector.Stats(l, h);
      fmt::print("{:>5} {:>7} {:>8} {:>10.4g} {:>10.4g} {:>10.4g} {:>10.4g} {:>10.4g} {:>10.4g}\n", l, h, s.count,
                 s.mean, s.p50, s.p90, s.p99, s.max, calibration.QNormSq(l, h));
    }
  }
  fmt::print("-> {}\n", flags.out_path);
  return OkStatus();
}

const RegisterCommand kRegister({
    .name = "calibrate",
    .description = "Measure the query norms |q~|^2 per layer and KV head on a text and write the key "
                   "calibration file (JSON)",
    .setup =
        [](CLI::App& sub) -> std::function<Status()> {
          auto flags = std::make_shared<CalibrateFlags>();
          flags->engine.Add(sub);
          sub.add_option("-z,--tokenizer", flags->tokenizer_path,
                         "llama2.c tokenizer file (default: the GGUF's vocabulary, or tok<N>.bin / "
                         "tokenizer.bin beside the model)");
          sub.add_option("-f,--file", flags->text_path, "Calibration text (UTF-8)")->required();
          sub.add_option("--quantile", flags->quantile, "Quantile of |q~|^2 written as the calibration, in (0, 1)")
              ->capture_default_str();
          sub.add_option("--chunks", flags->n_chunks, "Chunks of -c tokens to run (0: the whole text)")
              ->capture_default_str();
          sub.add_option("-o,--output", flags->out_path, "Calibration file to write (JSON)")->required();
          return [flags] { return RunCalibrate(*flags); };
        },
    .order = 45,
});

}  // namespace
}  // namespace qaq::tool
