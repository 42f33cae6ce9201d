// `qaq sweep`: runs a grid of cache configurations over one text and writes results.csv,
// results.json, summary.md and SVG plots of quality against compression (qaq/eval.h RunSweep).
// Each grid row's "args" are parsed with the same flags as every other command (EngineFlags),
// so any cache option works in a grid. Interrupted sweeps resume: finished rows are kept.
#include <cstdio>
#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "command.h"
#include "engine_flags.h"
#include "qaq/eval.h"
#include "qaq/tokenizer.h"

namespace qaq::tool {
namespace {

struct SweepFlags {
  EngineFlags engine;
  std::string tokenizer_path;
  std::string text_path;
  std::string grid_path;
  std::string out_dir;
  int n_chunks = 0;
  std::vector<std::string> protocols;
  bool no_resume = false;
};

// The cache options a grid row's flags give, parsed exactly as a command line would be.
StatusOr<SessionOptions> ParseRunArgs(const std::string& model_path, const std::string& args) {
  CLI::App app{"grid row"};
  EngineFlags flags;
  flags.Add(app);
  try {
    app.parse("-m \"" + model_path + "\" " + args, /*program_name_included=*/false);
  } catch (const CLI::ParseError& e) {
    return InvalidArgumentError("grid args '{}': {}", args, e.what());
  }
  return flags.session_options();
}

Status RunSweepCommand(const SweepFlags& flags) {
  QAQ_ASSIGN_OR_RETURN(const std::string grid_text, ReadTextFile(flags.grid_path));
  auto parsed = ParseSweepGrid(grid_text);
  if (!parsed.ok()) return parsed.status().WithContext(flags.grid_path);
  SweepGrid grid = std::move(*parsed);
  if (flags.engine.context_length > 0) grid.context = flags.engine.context_length;
  if (flags.n_chunks != 0) grid.n_chunks = flags.n_chunks;
  if (!flags.protocols.empty()) {
    grid.protocols.clear();
    for (const std::string& p : flags.protocols) {
      QAQ_ASSIGN_OR_RETURN(const EvalProtocol protocol, ParseEvalProtocol(p));
      grid.protocols.push_back(protocol);
    }
  }
  for (SweepRun& run : grid.runs) {
    QAQ_ASSIGN_OR_RETURN(run.cache, ParseRunArgs(flags.engine.model_path, run.args));
  }
  QAQ_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(flags.text_path));
  QAQ_ASSIGN_OR_RETURN(Model model, LoadModel(flags.engine.model_path));
  QAQ_ASSIGN_OR_RETURN(Tokenizer tokenizer, LoadTokenizer(model, flags.tokenizer_path));
  const std::vector<int> tokens = tokenizer.Encode(text, /*add_bos=*/true);

  SweepOptions options;
  options.out_dir = flags.out_dir;
  // The file's name and size identify the model in row ids, so results stay valid when the
  // model file moves.
  std::error_code ec;
  const auto size = std::filesystem::file_size(model.path(), ec);
  options.model_id = fmt::format("{} ({} bytes)", std::filesystem::path(model.path()).filename().string(),
                                 ec ? 0 : size);
  options.n_threads = flags.engine.n_threads;
  options.resume = !flags.no_resume;
  fmt::print(stderr, "sweep: {} runs x {} protocols, {} chunks of {} tokens, {} threads -> {}\n",
             grid.runs.size(), grid.protocols.size(), grid.n_chunks, grid.context,
             options.n_threads, options.out_dir);
  QAQ_ASSIGN_OR_RETURN(const SweepResult r, RunSweep(model, tokens, grid, options));

  fmt::print("| series | protocol | best ratio at mean KL <= {} | configuration | mean KL | top-1 |\n",
             grid.kl_threshold);
  fmt::print("|---|---|---:|---|---:|---:|\n");
  for (const SeriesBest& b : BestRatioPerSeries(r.rows, grid.kl_threshold)) {
    if (b.row == nullptr) {
      fmt::print("| {} | {} | none | | | |\n", b.series, EvalProtocolName(b.protocol));
    } else {
      fmt::print("| {} | {} | {:.2f}x | {} | {:.5f} | {:.1f}% |\n", b.series,
                 EvalProtocolName(b.protocol), b.row->compression_ratio, b.row->label,
                 b.row->mean_kl, 100.0 * b.row->top1);
    }
  }
  fmt::print("rows: {} ({} reused), time {:.1f} s, results in {}\n", r.rows.size(), r.n_reused,
             r.seconds, flags.out_dir);
  return OkStatus();
}

const RegisterCommand kRegister({
    .name = "sweep",
    .description = "Run a grid of KV-cache configurations: CSV, JSON and SVG of quality vs compression",
    .setup =
        [](CLI::App& sub) -> std::function<Status()> {
          auto flags = std::make_shared<SweepFlags>();
          flags->engine.Add(sub);
          sub.add_option("-f,--file", flags->text_path, "Text file to score")->required();
          sub.add_option("--grid", flags->grid_path, "Grid file (JSON, see README: qaq sweep)")
              ->required();
          sub.add_option("-o,--out", flags->out_dir, "Output folder (created)")->required();
          sub.add_option("-z,--tokenizer", flags->tokenizer_path,
                         "llama2.c tokenizer file (default: the GGUF's vocabulary, or tok<N>.bin "
                         "beside the model)");
          sub.add_option("--chunks", flags->n_chunks, "Chunks per row (default: the grid's)");
          sub.add_option("--kl-protocol", flags->protocols,
                         "Protocols to run, prompt and/or stream (default: the grid's)");
          sub.add_flag("--no-resume", flags->no_resume,
                       "Recompute every row even when results.json has it");
          return [flags] { return RunSweepCommand(*flags); };
        },
    .order = 32,
});

}  // namespace
}  // namespace qaq::tool
