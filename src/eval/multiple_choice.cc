// Zero-shot multiple choice on a quantized context cache (qaq/eval.h).
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>

#include "eval/cache_memory.h"
#include "eval/statistics.h"
#include "eval/text_eval.h"

namespace qaq {
namespace {

// The tokens of one choice: the context part (shared by all choices unless the tokenizer merges
// across the boundary) and the continuation scored for the choice.
struct ChoiceTokens {
  std::vector<int> context;
  std::vector<int> continuation;
};

ChoiceTokens SplitChoice(const Tokenizer& tokenizer, const std::vector<int>& context_tokens,
                         const McItem& item, std::size_t k, bool add_bos) {
  // Tokenized together, as the authors do (question + " " + choice); the question's own tokens
  // are normally a prefix, and where they are not the common prefix is the context.
  const std::vector<int> joint = tokenizer.Encode(item.context + " " + item.choices[k], add_bos);
  std::size_t p = 0;
  while (p < joint.size() && p < context_tokens.size() && joint[p] == context_tokens[p]) ++p;
  ChoiceTokens t;
  t.context.assign(joint.begin(), joint.begin() + std::ptrdiff_t(p));
  t.continuation.assign(joint.begin() + std::ptrdiff_t(p), joint.end());
  return t;
}

// Mean log-probability of the continuation: its first token from the context's last logits,
// the others from one batch run on the (quantized) context cache. A choice without tokens of its
// own scores -infinity and is never predicted.
StatusOr<double> ScoreChoice(Session& session, const ChoiceTokens& t, KvMemory* context_memory) {
  const double kNoScore = -std::numeric_limits<double>::infinity();
  if (t.context.empty() || t.continuation.empty()) return kNoScore;
  session.Truncate(0);
  QAQ_ASSIGN_OR_RETURN(std::span<const float> last, session.Prefill(t.context));
  double sum = -internal::NegLogLikelihood(last, t.continuation[0]);
  if (context_memory != nullptr) *context_memory = session.kv_cache().Memory();
  const std::size_t m = t.continuation.size();
  if (m > 1) {
    const std::span<const int> head(t.continuation.data(), m - 1);
    QAQ_ASSIGN_OR_RETURN(std::span<const float> rows, session.PrefillAllLogits(head));
    const std::size_t vocab = std::size_t(session.config().vocab_size);
    for (std::size_t i = 0; i + 1 < m; ++i) {
      sum -= internal::NegLogLikelihood(rows.subspan(i * vocab, vocab), t.continuation[i + 1]);
    }
  }
  return sum / double(m);
}

}  // namespace

StatusOr<McResult> EvaluateMultipleChoice(const Model& model, const Tokenizer& tokenizer,
                                          std::span<const McItem> items,
                                          const SessionOptions& cache, const McOptions& options) {
  const auto start_time = std::chrono::steady_clock::now();
  if (options.n_threads < 1) {
    return InvalidArgumentError("thread count {} must be at least 1", options.n_threads);
  }
  if (items.empty()) return InvalidArgumentError("no multiple-choice items to score");
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].choices.size() < 2 || items[i].label < 0 ||
        items[i].label >= int(items[i].choices.size())) {
      return InvalidArgumentError("item {}: needs at least two choices and a label among them", i);
    }
  }
  const int context = cache.context_length > 0 ? cache.context_length : model.config().context_length;
  std::vector<McItemResult> results(items.size());
  std::vector<KvMemory> memories(items.size());
  std::string cache_name;
  std::mutex mutex;
  QAQ_RETURN_IF_ERROR(internal::ParallelFor(
      int(items.size()), options.n_threads,
      [&](int i) -> Status {
        const McItem& item = items[std::size_t(i)];
        McItemResult& r = results[std::size_t(i)];
        const std::vector<int> context_tokens = tokenizer.Encode(item.context, options.add_bos);
        r.n_context_tokens = int(context_tokens.size());
        std::vector<ChoiceTokens> choices;
        for (std::size_t k = 0; k < item.choices.size(); ++k) {
          choices.push_back(SplitChoice(tokenizer, context_tokens, item, k, options.add_bos));
          if (int(choices.back().context.size() + choices.back().continuation.size()) > context) {
            r.skipped = true;
            return OkStatus();
          }
        }
        QAQ_ASSIGN_OR_RETURN(Session session, internal::MakeChunkSession(model, cache, context));
        for (std::size_t k = 0; k < choices.size(); ++k) {
          QAQ_ASSIGN_OR_RETURN(const double score,
                               ScoreChoice(session, choices[k], k == 0 ? &memories[std::size_t(i)] : nullptr));
          r.scores.push_back(score);
          if (r.predicted < 0 || score > r.scores[std::size_t(r.predicted)]) r.predicted = int(k);
        }
        std::lock_guard<std::mutex> lock(mutex);
        if (cache_name.empty()) cache_name = session.kv_cache().name();
        return OkStatus();
      },
      options.progress));

  McResult m;
  m.cache_name = cache_name;
  double chance = 0.0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const McItemResult& r = results[i];
    if (r.skipped) {
      ++m.n_skipped;
      continue;
    }
    ++m.n_items;
    m.n_correct += r.predicted == items[i].label;
    chance += 1.0 / double(items[i].choices.size());
    internal::AddMemory(m.memory, memories[i]);
  }
  if (m.n_items > 0) {
    m.accuracy = double(m.n_correct) / double(m.n_items);
    m.ci95 = internal::Binomial95HalfWidth(m.accuracy, m.n_items);
    m.chance = chance / double(m.n_items);
  }
  m.items = std::move(results);
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return m;
}

}  // namespace qaq
