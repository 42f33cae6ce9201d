// Pieces shared by the text evaluations (perplexity, references, sweeps): cutting a token stream
// into llama.cpp's chunks, running one chunk under a protocol, and a deterministic parallel loop.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "qaq/engine.h"
#include "qaq/eval.h"

namespace qaq::internal {

// Tokens of chunk c: tokens[c * context, (c + 1) * context) with the first replaced by `bos`.
std::vector<int> ChunkTokens(std::span<const int> tokens, const TextChunks& chunks, int c, int bos);

// Runs `chunk` (chunks.context tokens) on `session` after emptying it and writes the logits of
// positions chunks.first .. context-2 to logits_out ([n_scored_per_chunk][vocab]).
//   kPrompt: Prefill(chunk[0, first)) as one batch, then Decode(chunk[p]) for p = first ..
//            context-2; the prompt's last logits are not scored, as in llama.cpp.
//   kStream: Decode(chunk[p]) for p = 0 .. context-2, one token (and one EndStep) at a time.
// at_half, when given, runs once the cache holds the first half (chunks.first tokens): after the
// prompt's batch, or after the first half's tokens were decoded.
Status RunChunk(Session& session, std::span<const int> chunk, const TextChunks& chunks,
                EvalProtocol protocol, std::vector<float>& logits_out,
                const std::function<void()>& at_half = nullptr);

// A session for evaluating chunks: `options` with one thread and a context of `context`
// positions (a cache never holds more than one chunk).
StatusOr<Session> MakeChunkSession(const Model& model, SessionOptions options, int context);

// Calls work(item) for items 0..n_items-1 on up to n_threads threads (items are claimed in
// order). Each item must write only its own outputs. After the first failure no new items
// start; the returned error is the one of the lowest failing item, so it does not depend on the
// thread count. on_done(done, n_items) runs serialised after every successful item.
Status ParallelFor(int n_items, int n_threads, const std::function<Status(int item)>& work,
                   const std::function<void(int, int)>& on_done = nullptr);

}  // namespace qaq::internal
