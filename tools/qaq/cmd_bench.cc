// `qaq bench`: prompt-processing and decoding speed, llama-bench style.
//
// Each repetition starts an empty sequence, prefills `-p` tokens as one batch (prompt tokens/s),
// then decodes `-n` tokens one at a time, each the argmax of the previous logits (decode
// tokens/s). One untimed warm-up repetition runs first. Rates are given per wall-clock second
// (what a user waits) and per CPU-second of the process (what other load cannot change).
#include <time.h>

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

// Wall-clock and process CPU time at one instant. CPU time (all threads of the process) gives a
// rate that other processes on a shared machine cannot lower: tokens per CPU-second.
struct Instant {
  std::chrono::steady_clock::time_point wall;
  double cpu;
};

Instant Now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return {std::chrono::steady_clock::now(), double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9};
}

// Tokens per second between a and b: {wall-clock, CPU}.
std::pair<double, double> Rates(int tokens, const Instant& a, const Instant& b) {
  const double wall = std::chrono::duration<double>(b.wall - a.wall).count();
  return {tokens / wall, tokens / (b.cpu - a.cpu)};
}

struct Repetition {
  std::pair<double, double> prompt, decode;  // {wall, cpu} tokens/s
};

StatusOr<Repetition> RunOnce(Session& session, const std::vector<int>& prompt, int n_decode) {
  session.Truncate(0);
  const Instant t0 = Now();
  QAQ_ASSIGN_OR_RETURN(std::span<const float> logits, session.Prefill(prompt));
  const Instant t1 = Now();
  for (int i = 0; i < n_decode; ++i) {
    QAQ_ASSIGN_OR_RETURN(logits, session.Decode(Argmax(logits)));
  }
  const Instant t2 = Now();
  Repetition r;
  r.prompt = Rates(int(prompt.size()), t0, t1);
  r.decode = n_decode > 0 ? Rates(n_decode, t1, t2) : std::pair{0.0, 0.0};
  return r;
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

  std::vector<double> columns[4];  // prompt wall, decode wall, prompt cpu, decode cpu
  fmt::print("| {:>6} | {:>12} | {:>12} | {:>14} | {:>14} |\n", "rep", "prompt t/s", "decode t/s",
             "prompt t/cpu-s", "decode t/cpu-s");
  fmt::print("|-------:|-------------:|-------------:|---------------:|---------------:|\n");
  for (int r = 0; r < flags.repetitions; ++r) {
    QAQ_ASSIGN_OR_RETURN(Repetition rep, RunOnce(session, prompt, flags.n_decode));
    const double values[4] = {rep.prompt.first, rep.decode.first, rep.prompt.second, rep.decode.second};
    for (int c = 0; c < 4; ++c) columns[c].push_back(values[c]);
    fmt::print("| {:>6} | {:>12.1f} | {:>12.1f} | {:>14.1f} | {:>14.1f} |\n", r + 1, values[0],
               values[1], values[2], values[3]);
    std::fflush(stdout);
  }
  Spread s[4];
  for (int c = 0; c < 4; ++c) s[c] = Summarize(columns[c]);
  auto row = [&](const char* name, double Spread::*field) {
    fmt::print("| {:>6} | {:>12.1f} | {:>12.1f} | {:>14.1f} | {:>14.1f} |\n", name, s[0].*field,
               s[1].*field, s[2].*field, s[3].*field);
  };
  row("median", &Spread::median);
  row("min", &Spread::min);
  row("max", &Spread::max);
  row("stddev", &Spread::stddev);
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
