// qaq/engine.h: running a model.
//
// A `Session` holds what one sequence needs besides the weights: its KV cache (any backend made
// by MakeKvCache, or one passed in), the RoPE table and every activation buffer, allocated once
// when the session is created. The prompt runs as a batch (matrix-matrix products, attention
// causal inside the prompt); afterwards each Decode step runs one token.
//
//   QAQ_ASSIGN_OR_RETURN(qaq::Model model, qaq::LoadModel("stories260K.bin"));
//   QAQ_ASSIGN_OR_RETURN(qaq::Session session, qaq::Session::Create(model, {.n_threads = 2}));
//   QAQ_ASSIGN_OR_RETURN(std::span<const float> logits, session.Prefill(prompt_tokens));
//   qaq::Sampler sampler(model.config().vocab_size, {.temperature = 0.8f, .seed = 7});
//   int token = sampler.Sample(logits);
//   QAQ_ASSIGN_OR_RETURN(logits, session.Decode(token));   // and so on
//
// Threads: rows of every matrix product and the attention heads are split between threads so
// that each output is computed by exactly one thread in a fixed order: logits are bit-identical
// for any thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qaq/kv_cache.h"
#include "qaq/model.h"
#include "qaq/status.h"

namespace qaq {

namespace internal {
class Forward;  // src/model/forward.h
}

// The KV-cache shape a session of `model` needs: context_length positions (0: the model's
// context length). kInvalidArgument for a context outside 1 .. the model's.
StatusOr<KvCacheShape> KvCacheShapeFor(const Model& model, int context_length);

struct SessionOptions {
  int n_threads = 1;
  int context_length = 0;      // positions the cache holds; 0: the model's context length
  std::string kv_cache = "fp32";  // a MakeKvCache spec ("fp32", "fp16", ...)
};

class Session {
 public:
  // The model must outlive the session (weights are read from its mapped file). Errors: an
  // invalid option (kInvalidArgument), a context longer than the model's (kInvalidArgument), a
  // tensor type or shape the forward pass cannot run (kUnimplemented / kDataLoss).
  static StatusOr<Session> Create(const Model& model, const SessionOptions& options = {});
  // With a cache made by the caller; its shape must match the model (kInvalidArgument).
  static StatusOr<Session> Create(const Model& model, std::unique_ptr<KvCache> cache, int n_threads);

  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  ~Session();

  // Runs `tokens` at positions n_past() ... as one batch and returns the next-token logits of
  // the last one ([vocab_size], valid until the next call). kOutOfRange if they do not fit in the
  // context, kInvalidArgument for an empty list or a token id outside the vocabulary.
  StatusOr<std::span<const float>> Prefill(std::span<const int> tokens);
  // The same, returning the logits after every token: [tokens.size()][vocab_size] row-major
  // (for perplexity and divergence measurements).
  StatusOr<std::span<const float>> PrefillAllLogits(std::span<const int> tokens);
  // One token at position n_past(); returns its next-token logits.
  StatusOr<std::span<const float>> Decode(int token);

  // Positions stored in the cache.
  int n_past() const;
  int context_length() const;
  int n_threads() const;
  // Forgets positions >= n (0 starts a new sequence).
  void Truncate(int n);

  const ModelConfig& config() const;
  KvCache& kv_cache();
  const KvCache& kv_cache() const;

 private:
  explicit Session(std::unique_ptr<internal::Forward> forward);
  std::unique_ptr<internal::Forward> forward_;
};

// Greedy decoding at temperature 0; otherwise softmax(logits / temperature) restricted to the
// smallest set of most likely tokens whose probability reaches top_p (top_p >= 1: no
// restriction), sampled with a seeded generator: the same seed gives the same tokens.
struct SamplerOptions {
  float temperature = 0.0f;
  float top_p = 0.9f;
  std::uint64_t seed = 42;
};

class Sampler {
 public:
  // Options must be valid (see ValidateSamplerOptions); buffers for vocab_size tokens are
  // allocated here, so Sample never allocates.
  Sampler(int vocab_size, const SamplerOptions& options);

  int Sample(std::span<const float> logits);
  const SamplerOptions& options() const { return options_; }

 private:
  float NextUniform();  // [0, 1)

  SamplerOptions options_;
  std::uint64_t state_;
  std::vector<float> probs_;
  std::vector<int> candidates_;
};

// kInvalidArgument for a negative or non-finite temperature or a top_p outside (0, 1].
Status ValidateSamplerOptions(const SamplerOptions& options);

// Index of the largest value (the first one on ties).
int Argmax(std::span<const float> values);

struct GenerationStats {
  int n_prompt_tokens = 0;
  int n_generated = 0;       // tokens sampled (each passed to on_token)
  int n_decoded = 0;         // Decode steps run (the last sampled token needs none)
  double prompt_seconds = 0;
  double decode_seconds = 0;
  bool hit_context_limit = false;

  double prompt_tokens_per_second() const { return prompt_seconds > 0 ? n_prompt_tokens / prompt_seconds : 0; }
  double decode_tokens_per_second() const { return decode_seconds > 0 ? n_decoded / decode_seconds : 0; }
};

struct GenerateOptions {
  int max_new_tokens = 256;
  std::vector<int> stop_tokens;  // sampling one of these ends generation (it is not reported)
};

// Prefills `prompt` into an empty session, then samples up to max_new_tokens, calling on_token
// for each; on_token returning false stops early. Generation also stops quietly when the
// context is full (hit_context_limit). Errors come from Prefill/Decode.
StatusOr<GenerationStats> Generate(Session& session, std::span<const int> prompt,
                                   const GenerateOptions& options, Sampler& sampler,
                                   const std::function<bool(int token)>& on_token);

}  // namespace qaq
