// A session whose KV cache records what passes through attention (kv/recording_cache.h), for the
// subcommands that look inside the model: calibrate and dump. The engine flags choose the model's
// threads, context and the inner cache (--kv, fp32 by default).
#pragma once

#include <memory>
#include <utility>

#include "engine_flags.h"
#include "kv/recording_cache.h"
#include "qaq/engine.h"
#include "qaq/model.h"

namespace qaq::tool {

struct RecordingSession {
  Session session;
  RecordingCache* recorder;  // owned by the session
};

inline StatusOr<RecordingSession> MakeRecordingSession(const Model& model, const EngineFlags& flags,
                                                       RecordOptions options) {
  const ModelConfig& c = model.config();
  const int context = flags.context_length == 0 ? c.context_length : flags.context_length;
  if (context < 1 || context > c.context_length) {
    return InvalidArgumentError("context length {} must be between 1 and the model's {}", flags.context_length,
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
  QAQ_ASSIGN_OR_RETURN(std::unique_ptr<RecordingCache> cache, RecordingCache::Create(flags.kv_cache, shape, options));
  RecordingCache* recorder = cache.get();
  QAQ_ASSIGN_OR_RETURN(Session session, Session::Create(model, std::move(cache), flags.n_threads));
  return RecordingSession{std::move(session), recorder};
}

}  // namespace qaq::tool
