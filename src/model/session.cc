// qaq::Session: the public face of internal::Forward.
#include "qaq/engine.h"
#include "model/forward.h"

namespace qaq {

StatusOr<KvCacheShape> KvCacheShapeFor(const Model& model, int context_length) {
  const ModelConfig& c = model.config();
  const int context = context_length == 0 ? c.context_length : context_length;
  if (context < 1 || context > c.context_length) {
    return InvalidArgumentError("context length {} must be between 1 and the model's {}", context_length,
                                c.context_length);
  }
  KvCacheShape shape;
  shape.n_layers = c.n_layers;
  shape.n_kv_heads = c.n_kv_heads;
  shape.head_dim = c.head_dim;
  shape.max_tokens = context;
  shape.n_heads = c.n_heads;
  shape.rope_theta = c.rope_theta;
  shape.rope_dim = c.rope_dim;
  return shape;
}

StatusOr<Session> Session::Create(const Model& model, const SessionOptions& options) {
  if (options.n_threads < 1) {
    return InvalidArgumentError("thread count {} must be at least 1", options.n_threads);
  }
  QAQ_ASSIGN_OR_RETURN(const KvCacheShape shape, KvCacheShapeFor(model, options.context_length));
  QAQ_ASSIGN_OR_RETURN(std::unique_ptr<KvCache> cache, MakeKvCache(options.kv_cache, shape));
  return Create(model, std::move(cache), options.n_threads);
}

StatusOr<Session> Session::Create(const Model& model, std::unique_ptr<KvCache> cache,
                                  int n_threads) {
  QAQ_ASSIGN_OR_RETURN(
      std::unique_ptr<internal::Forward> forward,
      internal::Forward::Create(model.config(), model.weights(), std::move(cache), n_threads));
  return Session(std::move(forward));
}

Session::Session(std::unique_ptr<internal::Forward> forward) : forward_(std::move(forward)) {}
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

StatusOr<std::span<const float>> Session::Prefill(std::span<const int> tokens) {
  return forward_->Run(tokens, /*all_logits=*/false);
}

StatusOr<std::span<const float>> Session::PrefillAllLogits(std::span<const int> tokens) {
  return forward_->Run(tokens, /*all_logits=*/true);
}

StatusOr<std::span<const float>> Session::Decode(int token) {
  return forward_->Run(std::span<const int>(&token, 1), /*all_logits=*/false);
}

int Session::n_past() const { return forward_->n_past(); }
int Session::context_length() const { return forward_->context_length(); }
int Session::n_threads() const { return forward_->n_threads(); }
void Session::Truncate(int n) { forward_->cache().Truncate(n); }
const ModelConfig& Session::config() const { return forward_->config(); }
KvCache& Session::kv_cache() { return forward_->cache(); }
const KvCache& Session::kv_cache() const { return forward_->cache(); }

}  // namespace qaq
