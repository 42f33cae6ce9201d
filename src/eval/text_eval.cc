#include "eval/text_eval.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/check.h"

namespace qaq {

StatusOr<TextChunks> PlanChunks(std::size_t n_tokens, int context, int n_chunks) {
  if (context < 4) return InvalidArgumentError("context {} must be at least 4 tokens", context);
  if (n_chunks == 0 || n_chunks < -1) {
    return InvalidArgumentError("number of chunks {} must be positive (or -1 for all)", n_chunks);
  }
  const std::size_t available = n_tokens / std::size_t(context);
  if (available == 0) {
    return InvalidArgumentError("the text has {} tokens, fewer than one chunk of {}", n_tokens,
                                context);
  }
  TextChunks c;
  c.context = context;
  c.n_chunks = n_chunks < 0 ? int(std::min<std::size_t>(available, 1u << 30))
                            : int(std::min<std::size_t>(available, std::size_t(n_chunks)));
  c.first = context / 2;
  return c;
}

namespace internal {

std::vector<int> ChunkTokens(std::span<const int> tokens, const TextChunks& chunks, int c, int bos) {
  const std::size_t start = std::size_t(c) * std::size_t(chunks.context);
  QAQ_CHECK(start + std::size_t(chunks.context) <= tokens.size());
  std::vector<int> chunk(tokens.begin() + std::ptrdiff_t(start),
                         tokens.begin() + std::ptrdiff_t(start + std::size_t(chunks.context)));
  chunk[0] = bos;  // llama.cpp: "add BOS token for the first batch of each chunk"
  return chunk;
}

Status RunChunk(Session& session, std::span<const int> chunk, const TextChunks& chunks,
                EvalProtocol protocol, std::vector<float>& logits_out,
                const std::function<void()>& at_half) {
  QAQ_CHECK(int(chunk.size()) == chunks.context);
  const std::size_t vocab = std::size_t(session.config().vocab_size);
  logits_out.resize(std::size_t(chunks.n_scored_per_chunk()) * vocab);
  session.Truncate(0);
  int next = 0;  // next position to run
  if (protocol == EvalProtocol::kPrompt) {
    QAQ_RETURN_IF_ERROR(session.Prefill(chunk.first(std::size_t(chunks.first))).status());
    next = chunks.first;
  }
  for (int p = next; p <= chunks.context - 2; ++p) {
    if (p == chunks.first && at_half) at_half();
    QAQ_ASSIGN_OR_RETURN(std::span<const float> logits, session.Decode(chunk[std::size_t(p)]));
    if (p < chunks.first) continue;
    std::memcpy(&logits_out[std::size_t(p - chunks.first) * vocab], logits.data(),
                vocab * sizeof(float));
  }
  return OkStatus();
}

StatusOr<Session> MakeChunkSession(const Model& model, SessionOptions options, int context) {
  options.n_threads = 1;
  options.context_length = context;
  return Session::Create(model, options);
}

Status ParallelFor(int n_items, int n_threads, const std::function<Status(int item)>& work,
                   const std::function<void(int, int)>& on_done) {
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  int done = 0;
  int first_failure = n_items;
  Status failure;
  auto worker = [&] {
    while (!failed.load()) {
      const int item = next.fetch_add(1);
      if (item >= n_items) return;
      Status s = work(item);
      std::lock_guard<std::mutex> lock(mutex);
      if (!s.ok()) {
        if (item < first_failure) {
          first_failure = item;
          failure = std::move(s);
        }
        failed = true;
        return;
      }
      ++done;
      if (on_done) on_done(done, n_items);
    }
  };
  const int n_workers = std::max(1, std::min(n_threads, n_items));
  std::vector<std::thread> threads;
  for (int t = 1; t < n_workers; ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  return failure;
}

}  // namespace internal
}  // namespace qaq
