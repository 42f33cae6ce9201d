// `qaq perplexity`: perplexity of a text in llama.cpp's protocol with the chosen KV cache, and
// with --kl-base its KL divergence and top-1 agreement against the fp32 cache (like
// llama-perplexity --kl-divergence, but both caches run in the same pass). Report on stdout,
// progress on stderr.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "command.h"
#include "engine_flags.h"
#include "eval/progress_bar.h"
#include "qaq/eval.h"
#include "qaq/tokenizer.h"

namespace qaq::tool {
namespace {

struct PerplexityFlags {
  EngineFlags engine;
  std::string tokenizer_path;
  std::string text_path;
  int n_chunks = -1;
  bool kl_base = false;
  std::string protocol = "prompt";
};

Status RunPerplexity(const PerplexityFlags& flags) {
  QAQ_ASSIGN_OR_RETURN(const EvalProtocol protocol, ParseEvalProtocol(flags.protocol));
  QAQ_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(flags.text_path));
  QAQ_ASSIGN_OR_RETURN(Model model, LoadModel(flags.engine.model_path));
  QAQ_ASSIGN_OR_RETURN(Tokenizer tokenizer, LoadTokenizer(model, flags.tokenizer_path));
  const std::vector<int> tokens = tokenizer.Encode(text, /*add_bos=*/true);

  TextEvalOptions options;
  options.context = flags.engine.context_length > 0 ? flags.engine.context_length
                                                    : model.config().context_length;
  options.n_chunks = flags.n_chunks;
  options.protocol = protocol;
  options.kl_base = flags.kl_base;
  options.n_threads = flags.engine.n_threads;
  QAQ_ASSIGN_OR_RETURN(const TextChunks chunks,
                       PlanChunks(tokens.size(), options.context, options.n_chunks));
  fmt::print("model {}, text {} ({} tokens), kv {}, threads {}\n", model.path(), flags.text_path,
             tokens.size(), flags.engine.kv_spec(), flags.engine.n_threads);
  std::fflush(stdout);
  internal::ProgressBar progress("perplexity", chunks.n_chunks);
  options.progress = [&progress](int done, int) { progress.Update(done); };
  QAQ_ASSIGN_OR_RETURN(PerplexityResult r,
                       EvaluatePerplexity(model, tokens, flags.engine.session_options(), options));
  progress.Finish();
  fmt::print("{}", FormatPerplexityReport(r));
  fmt::print("\nsummary: {}\n", FormatQualitySummary(r));
  fmt::print("time: {:.2f} s\n", r.seconds);
  return OkStatus();
}

const RegisterCommand kRegister({
    .name = "perplexity",
    .description = "Perplexity (llama.cpp's protocol) and KL divergence against the fp32 cache",
    .setup =
        [](CLI::App& sub) -> std::function<Status()> {
          auto flags = std::make_shared<PerplexityFlags>();
          flags->engine.Add(sub);
          sub.add_option("-f,--file", flags->text_path, "Text file to score")->required();
          sub.add_option("-z,--tokenizer", flags->tokenizer_path,
                         "llama2.c tokenizer file (default: the GGUF's vocabulary, or tok<N>.bin "
                         "beside the model)");
          sub.add_option("--chunks", flags->n_chunks,
                         "Chunks of -c tokens to score (-1: every whole chunk of the text)")
              ->capture_default_str();
          sub.add_flag("--kl-base", flags->kl_base,
                       "Also run the fp32 cache on every chunk: KL divergence, top-1 agreement");
          sub.add_option("--kl-protocol", flags->protocol,
                         "prompt: first half prefilled and quantized once, second half decoded "
                         "(the paper's); stream: every token decoded through the cache "
                         "(llama.cpp's)")
              ->capture_default_str();
          return [flags] { return RunPerplexity(*flags); };
        },
    .order = 30,
});

}  // namespace
}  // namespace qaq::tool
