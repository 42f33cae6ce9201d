// The generation loop shared by `qaq generate`, `qaq bench` and the tests.
#include <algorithm>
#include <chrono>

#include "qaq/engine.h"

namespace qaq {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

StatusOr<GenerationStats> Generate(Session& session, std::span<const int> prompt,
                                   const GenerateOptions& options, Sampler& sampler,
                                   const std::function<bool(int token)>& on_token) {
  if (prompt.empty()) return InvalidArgumentError("the prompt has no tokens");
  if (options.max_new_tokens < 0) {
    return InvalidArgumentError("number of tokens to generate {} must be >= 0",
                                options.max_new_tokens);
  }
  if (int(prompt.size()) > session.context_length()) {
    return OutOfRangeError("the prompt has {} tokens but the context holds {}; use a shorter "
                           "prompt or a larger context (-c)",
                           prompt.size(), session.context_length());
  }
  session.Truncate(0);
  GenerationStats stats;
  stats.n_prompt_tokens = int(prompt.size());

  auto start = std::chrono::steady_clock::now();
  QAQ_ASSIGN_OR_RETURN(std::span<const float> logits, session.Prefill(prompt));
  stats.prompt_seconds = SecondsSince(start);

  while (stats.n_generated < options.max_new_tokens) {
    const int token = sampler.Sample(logits);
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) !=
        options.stop_tokens.end()) {
      break;
    }
    ++stats.n_generated;
    if (!on_token(token) || stats.n_generated == options.max_new_tokens) break;
    if (session.n_past() >= session.context_length()) {
      stats.hit_context_limit = true;
      break;
    }
    start = std::chrono::steady_clock::now();
    QAQ_ASSIGN_OR_RETURN(logits, session.Decode(token));
    stats.decode_seconds += SecondsSince(start);
    ++stats.n_decoded;
  }
  return stats;
}

}  // namespace qaq
