// `qaq mc`: zero-shot multiple choice (HellaSwag, PIQA, MathQA) on a quantized context cache, in
// the QAQ authors' protocol: accuracy with its 95% interval. Report on stdout, progress on stderr.
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "command.h"
#include "engine_flags.h"
#include "eval/progress_bar.h"
#include "qaq/eval.h"
#include "qaq/tokenizer.h"

namespace qaq::tool {
namespace {

struct McFlags {
  EngineFlags engine;
  std::string tokenizer_path;
  std::string task;
  std::string data_path;
  std::string labels_path;
  int limit = 0;
  bool no_bos = false;
  bool per_item = false;
};

Status RunMc(const McFlags& flags) {
  QAQ_ASSIGN_OR_RETURN(const McTask task, ParseMcTask(flags.task));
  if (flags.limit < 0) return InvalidArgumentError("--limit {} must be >= 0", flags.limit);
  QAQ_ASSIGN_OR_RETURN(const std::vector<McItem> items,
                       ReadMcItems(task, flags.data_path, flags.limit, flags.labels_path));
  QAQ_ASSIGN_OR_RETURN(Model model, LoadModel(flags.engine.model_path));
  QAQ_ASSIGN_OR_RETURN(Tokenizer tokenizer, LoadTokenizer(model, flags.tokenizer_path));
  fmt::print("model {}, task {} ({} items from {}), kv {}, threads {}, BOS {}\n", model.path(),
             McTaskName(task), items.size(), flags.data_path, flags.engine.kv_spec(),
             flags.engine.n_threads, flags.no_bos ? "no" : "yes");
  std::fflush(stdout);

  McOptions options;
  options.add_bos = !flags.no_bos;
  options.n_threads = flags.engine.n_threads;
  internal::ProgressBar progress(std::string("mc ") + McTaskName(task), int(items.size()));
  options.progress = [&progress](int done, int) { progress.Update(done); };
  QAQ_ASSIGN_OR_RETURN(const McResult r, EvaluateMultipleChoice(model, tokenizer, items,
                                                                flags.engine.session_options(), options));
  progress.Finish();

  if (flags.per_item) {
    for (std::size_t i = 0; i < r.items.size(); ++i) {
      const McItemResult& it = r.items[i];
      std::string scores;
      for (double s : it.scores) scores += fmt::format(" {:.4f}", s);
      fmt::print("item {}: label {} predicted {}{} scores{}\n", i, items[i].label, it.predicted,
                 it.skipped ? " (skipped: longer than the context)" : "", scores);
    }
  }
  fmt::print("kv cache {}: context caches at compression ratio {:.3f}x against fp16 (every byte "
             "counted, summed over items)\n",
             r.cache_name, r.memory.compression_ratio());
  if (r.n_skipped > 0) {
    fmt::print("skipped: {} items longer than the context of the session\n", r.n_skipped);
  }
  fmt::print("accuracy: {:.2f}% +/- {:.2f}% (95% interval, {} of {} items; chance {:.2f}%)\n",
             100.0 * r.accuracy, 100.0 * r.ci95, r.n_correct, r.n_items, 100.0 * r.chance);
  fmt::print("time: {:.2f} s\n", r.seconds);
  return OkStatus();
}

const RegisterCommand kRegister({
    .name = "mc",
    .description = "Zero-shot multiple choice (HellaSwag, PIQA, MathQA) on a quantized context cache",
    .setup =
        [](CLI::App& sub) -> std::function<Status()> {
          auto flags = std::make_shared<McFlags>();
          flags->engine.Add(sub);
          sub.add_option("--task", flags->task, "hellaswag, piqa or mathqa")->required();
          sub.add_option("--data", flags->data_path,
                         "HellaSwag .jsonl, PIQA .jsonl or MathQA .json file")
              ->required();
          sub.add_option("--labels", flags->labels_path,
                         "PIQA labels file (default: the data path with .jsonl replaced by "
                         "-labels.lst)");
          sub.add_option("--limit", flags->limit, "Score the first N items only (0: all)")
              ->capture_default_str();
          sub.add_option("-z,--tokenizer", flags->tokenizer_path,
                         "llama2.c tokenizer file (default: the GGUF's vocabulary, or tok<N>.bin "
                         "beside the model)");
          sub.add_flag("--no-bos", flags->no_bos,
                       "Do not put BOS before the context (the authors' tokenization)");
          sub.add_flag("--per-item", flags->per_item, "Print every item's choice scores");
          return [flags] { return RunMc(*flags); };
        },
    .order = 31,
});

}  // namespace
}  // namespace qaq::tool
