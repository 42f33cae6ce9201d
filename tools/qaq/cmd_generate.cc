// `qaq generate`: streams a continuation of the prompt to stdout, speeds to stderr.
//
// Output follows llama2.c's run.c: the prompt's pieces and then the generated ones, with the
// dummy-prefix space of the first piece after BOS dropped, and a final newline. Generation stops
// after -n tokens, at BOS or EOS, or when the context is full.
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "command.h"
#include "engine_flags.h"
#include "qaq/tokenizer.h"

namespace qaq::tool {
namespace {

struct GenerateFlags {
  EngineFlags engine;
  std::string tokenizer_path;
  std::string prompt;
  int n_predict = 256;
  std::int64_t seed = 42;  // -1: a random seed (reported on stderr)
  SamplerOptions sampler{.temperature = 0.8f, .top_p = 0.9f};
};

// Writes a piece, dropping lone control bytes (as run.c's safe_printf does) but keeping
// whitespace.
void PrintPiece(const std::string& piece) {
  if (piece.size() == 1) {
    const unsigned char ch = static_cast<unsigned char>(piece[0]);
    if ((ch < 0x20 && ch != '\n' && ch != '\t' && ch != '\r') || ch == 0x7F) return;
  }
  std::fwrite(piece.data(), 1, piece.size(), stdout);
  std::fflush(stdout);
}

Status RunGenerate(GenerateFlags flags) {
  if (flags.seed < -1) {
    return InvalidArgumentError("--seed {} must be >= 0, or -1 for a random seed", flags.seed);
  }
  flags.sampler.seed = flags.seed == -1 ? std::random_device{}() : std::uint64_t(flags.seed);
  QAQ_RETURN_IF_ERROR(ValidateSamplerOptions(flags.sampler));
  if (flags.n_predict < 0) {
    return InvalidArgumentError("-n {} must be >= 0", flags.n_predict);
  }
  QAQ_ASSIGN_OR_RETURN(Model model, LoadModel(flags.engine.model_path));
  QAQ_ASSIGN_OR_RETURN(Tokenizer tokenizer, LoadTokenizer(model, flags.tokenizer_path));
  QAQ_ASSIGN_OR_RETURN(Session session, Session::Create(model, flags.engine.session_options()));
  const std::vector<int> prompt = tokenizer.Encode(flags.prompt, /*add_bos=*/true);

  Sampler sampler(model.config().vocab_size, flags.sampler);
  GenerateOptions options;
  options.max_new_tokens = flags.n_predict;
  options.stop_tokens = {tokenizer.bos_id(), tokenizer.eos_id()};
  // The prompt is printed as it is known to be valid, i.e. once prefill succeeded (first token).
  int previous = prompt.front();
  bool prompt_printed = false;
  auto print_prompt = [&] {
    for (std::size_t i = 1; i < prompt.size(); ++i) PrintPiece(tokenizer.DecodePiece(prompt[i - 1], prompt[i]));
    previous = prompt.back();
    prompt_printed = true;
  };
  QAQ_ASSIGN_OR_RETURN(GenerationStats stats,
                       Generate(session, prompt, options, sampler, [&](int token) {
                         if (!prompt_printed) print_prompt();
                         PrintPiece(tokenizer.DecodePiece(previous, token));
                         previous = token;
                         return true;
                       }));
  if (!prompt_printed) print_prompt();
  std::fputs("\n", stdout);
  std::fflush(stdout);

  fmt::print(stderr, "prompt: {} tokens in {:.2f} ms, {:.1f} tokens/s\n", stats.n_prompt_tokens,
             stats.prompt_seconds * 1e3, stats.prompt_tokens_per_second());
  fmt::print(stderr, "decode: {} tokens in {:.2f} ms, {:.1f} tokens/s\n", stats.n_decoded,
             stats.decode_seconds * 1e3, stats.decode_tokens_per_second());
  if (stats.hit_context_limit) {
    fmt::print(stderr, "stopped: the context of {} positions is full\n", session.context_length());
  }
  if (flags.sampler.temperature > 0.0f) fmt::print(stderr, "seed: {}\n", flags.sampler.seed);
  fmt::print(stderr, "{}\n", session.kv_cache().Summary());
  return OkStatus();
}

const RegisterCommand kRegister({
    .name = "generate",
    .description = "Generate text from a prompt",
    .setup =
        [](CLI::App& sub) -> std::function<Status()> {
          auto flags = std::make_shared<GenerateFlags>();
          flags->engine.Add(sub);
          sub.add_option("-z,--tokenizer", flags->tokenizer_path,
                         "llama2.c tokenizer file (default: the GGUF's vocabulary, or tok<N>.bin / "
                         "tokenizer.bin beside the model)");
          sub.add_option("-p,--prompt", flags->prompt, "Prompt text (default: empty, BOS only)");
          sub.add_option("-n,--n-predict", flags->n_predict, "Tokens to generate")
              ->capture_default_str();
          sub.add_option("--temp", flags->sampler.temperature, "Temperature (0: greedy)")
              ->capture_default_str();
          sub.add_option("--top-p", flags->sampler.top_p, "Top-p (nucleus) sampling, 1: off")
              ->capture_default_str();
          sub.add_option("--seed", flags->seed, "Random seed of the sampler (-1: random)")
              ->capture_default_str();
          return [flags] { return RunGenerate(*flags); };
        },
    .order = 10,
});

}  // namespace
}  // namespace qaq::tool
