// `qaq bench`: prompt-processing and decoding speed, llama-bench style.
//
// Each repetition starts an empty sequence, prefills `-p` tokens as one batch (prompt tokens/s),
// then decodes `-n` tokens one at a time, each the argmax of the previous logits (decode
// tokens/s). One untimed warm-up repetition runs first.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include <fmt/format.h>

#include "command.h"
#include "engine_flags.h"

namespace qaq::tool {
namespace {

struct BenchFlags {
  EngineFlags engine;
  int n_prompt = 128;
  int n_decode = 128;
  int repetitions = 5;
};

struct Spread {
  double median, min, max, stddev;
};

Spread Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  const double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  double mean = 0;
  for (double x : v) mean += x / double(n);
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  return {median, v.front(), v.back(), n > 1 ? std::sqrt(var / double(n - 1)) : 0.0};
}

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// One repetition: returns {prompt tokens/s, decode tokens/s}.
StatusOr<std::pair<double, double>> RunOnce(Session& session, const std::vector<int>& prompt,
                                            int n_decode) {
  session.Truncate(0);
  const auto t0 = std::chrono::steady_clock::now();
  QAQ_ASSIGN_OR_RETURN(std::span<const float> logits, session.Prefill(prompt));
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < n_decode; ++i) {
    QAQ_ASSIGN_OR_RETURN(logits, session.Decode(Argmax(logits)));
  }
  const auto t2 = std::chrono::steady_clock::now();
  return std::pair{double(prompt.size()) / Seconds(t0, t1),
                   n_decode > 0 ? double(n_decode) / Seconds(t1, t2) : 0.0};
}

Status RunBench(const BenchFlags& flags) {
  if (flags.n_prompt < 1 || flags.n_decode < 0 || flags.repetitions < 1) {
    return InvalidArgumentError("need -p >= 1, -n >= 0 and -r >= 1 (got -p {}, -n {}, -r {})",
                                flags.n_prompt, flags.n_decode, flags.repetitions);
  }
  QAQ_ASSIGN_OR_RETURN(Model model, LoadModel(flags.engine.model_path));
  QAQ_ASSIGN_OR_RETURN(Session session, Session::Create(model, flags.engine.session_options()));
  if (flags.n_prompt + flags.n_decode > session.context_length()) {
    return OutOfRangeError("-p {} plus -n {} tokens exceed the context of {} positions",
                           flags.n_prompt, flags.n_decode, session.context_length());
  }
  // A fixed, varied prompt: BOS, then ids spread over the vocabulary.
  const ModelConfig& c = model.config();
  std::vector<int> prompt(std::size_t(flags.n_prompt));
  for (int i = 0; i < flags.n_prompt; ++i) prompt[i] = i == 0 ? 1 % c.vocab_size : (i * 7919 + 13) % c.vocab_size;

  fmt::print("model {} ({}, {} layers, dim {}, {:.2f} MiB weights), kv {}, threads {}, prompt {}, "
             "decode {}\n\n",
             model.path(), model.format(), c.n_layers, c.dim,
             double(model.weight_bytes()) / (1024.0 * 1024.0), session.kv_cache().name(),
             session.n_threads(), flags.n_prompt, flags.n_decode);
  QAQ_RETURN_IF_ERROR(RunOnce(session, prompt, flags.n_decode).status());  // warm-up

  std::vector<double> prompt_tps, decode_tps;
  fmt::print("| {:>6} | {:>12} | {:>12} |\n|-------:|-------------:|-------------:|\n", "rep",
             "prompt t/s", "decode t/s");
  for (int r = 0; r < flags.repetitions; ++r) {
    QAQ_ASSIGN_OR_RETURN(auto tps, RunOnce(session, prompt, flags.n_decode));
    prompt_tps.push_back(tps.first);
    decode_tps.push_back(tps.second);
    fmt::print("| {:>6} | {:>12.1f} | {:>12.1f} |\n", r + 1, tps.first, tps.second);
    std::fflush(stdout);
  }
  const Spread p = Summarize(prompt_tps), d = Summarize(decode_tps);
  fmt::print("| {:>6} | {:>12.1f} | {:>12.1f} |\n", "median", p.median, d.median);
  fmt::print("| {:>6} | {:>12.1f} | {:>12.1f} |\n", "min", p.min, d.min);
  fmt::print("| {:>6} | {:>12.1f} | {:>12.1f} |\n", "max", p.max, d.max);
  fmt::print("| {:>6} | {:>12.1f} | {:>12.1f} |\n", "stddev", p.stddev, d.stddev);
  return OkStatus();
}

const RegisterCommand kRegister({
    .name = "bench",
    .description = "Measure prompt and decode speed (tokens/s), llama-bench style",
    .setup =
        [](CLI::App& sub) -> std::function<Status()> {
          auto flags = std::make_shared<BenchFlags>();
          flags->engine.Add(sub);
          sub.add_option("-p,--n-prompt", flags->n_prompt, "Prompt tokens per repetition")
              ->capture_default_str();
          sub.add_option("-n,--n-gen", flags->n_decode, "Decoded tokens per repetition")
              ->capture_default_str();
          sub.add_option("-r,--repetitions", flags->repetitions, "Timed repetitions")
              ->capture_default_str();
          return [flags] { return RunBench(*flags); };
        },
    .order = 60,
});

}  // namespace
}  // namespace qaq::tool
