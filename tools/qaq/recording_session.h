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
  QAQ_ASSIGN_OR_RETURN(const KvCacheShape shape, KvCacheShapeFor(model, flags.context_length));
  QAQ_ASSIGN_OR_RETURN(std::unique_ptr<RecordingCache> cache, RecordingCache::Create(flags.kv_cache, shape, options));
  RecordingCache* recorder = cache.get();
  QAQ_ASSIGN_OR_RETURN(Session session, Session::Create(model, std::move(cache), flags.n_threads));
  return RecordingSession{std::move(session), recorder};
}

}  // namespace qaq::tool
