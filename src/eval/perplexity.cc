// Perplexity, KL divergence and top-1 agreement against the fp32 cache (qaq/eval.h).
//
// Each chunk runs on fresh sessions (one for the cache under test, one fp32 base when asked),
// so chunks are independent and may run on any thread; per-token figures land in arrays indexed
// by (chunk, token) and are reduced in that order at the end.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>

#include <fmt/format.h>

#include "eval/cache_memory.h"
#include "eval/statistics.h"
#include "eval/text_eval.h"

namespace qaq {
namespace {

using internal::ChunkTokens;
using internal::MakeChunkSession;
using internal::ParallelFor;
using internal::RunChunk;

StatusOr<TextChunks> Plan(std::span<const int> tokens, const TextEvalOptions& options) {
  if (options.n_threads < 1) {
    return InvalidArgumentError("thread count {} must be at least 1", options.n_threads);
  }
  return PlanChunks(tokens.size(), options.context, options.n_chunks);
}

SessionOptions Fp32Options() {
  SessionOptions o;
  o.kv_cache = "fp32";
  return o;
}

}  // namespace

const char* EvalProtocolName(EvalProtocol protocol) {
  return protocol == EvalProtocol::kPrompt ? "prompt" : "stream";
}

StatusOr<EvalProtocol> ParseEvalProtocol(std::string_view name) {
  if (name == "prompt") return EvalProtocol::kPrompt;
  if (name == "stream") return EvalProtocol::kStream;
  return InvalidArgumentError("unknown protocol '{}' (valid: prompt, stream)", name);
}

std::span<const float> ReferenceLogProbs::chunk(int c) const {
  const std::size_t n = std::size_t(chunks_.n_scored_per_chunk()) * std::size_t(vocab_size_);
  return std::span<const float>(log_probs_).subspan(std::size_t(c) * n, n);
}

std::span<const double> ReferenceLogProbs::chunk_nll(int c) const {
  const std::size_t n = std::size_t(chunks_.n_scored_per_chunk());
  return std::span<const double>(nll_).subspan(std::size_t(c) * n, n);
}

StatusOr<ReferenceLogProbs> ComputeReference(const Model& model, std::span<const int> tokens,
                                             const TextEvalOptions& options) {
  QAQ_ASSIGN_OR_RETURN(const TextChunks chunks, Plan(tokens, options));
  ReferenceLogProbs ref;
  ref.chunks_ = chunks;
  ref.protocol_ = options.protocol;
  ref.vocab_size_ = model.config().vocab_size;
  ref.fingerprint_ = internal::Fingerprint(tokens);
  const std::size_t vocab = std::size_t(ref.vocab_size_);
  const std::size_t per_chunk = std::size_t(chunks.n_scored_per_chunk()) * vocab;
  ref.log_probs_.resize(std::size_t(chunks.n_chunks) * per_chunk);
  ref.nll_.resize(std::size_t(chunks.n_scored()));
  const int bos = model.vocabulary().bos_id;
  QAQ_RETURN_IF_ERROR(ParallelFor(
      chunks.n_chunks, options.n_threads,
      [&](int c) -> Status {
        QAQ_ASSIGN_OR_RETURN(Session session, MakeChunkSession(model, Fp32Options(), chunks.context));
        std::vector<float> logits;
        const std::vector<int> chunk = ChunkTokens(tokens, chunks, c, bos);
        QAQ_RETURN_IF_ERROR(RunChunk(session, chunk, chunks, options.protocol, logits));
        float* out = &ref.log_probs_[std::size_t(c) * per_chunk];
        for (int j = 0; j < chunks.n_scored_per_chunk(); ++j) {
          const std::size_t row = std::size_t(j) * vocab;
          const std::span<const float> logits_row(&logits[row], vocab);
          internal::LogSoftmax(logits_row, std::span<float>(out + row, vocab));
          ref.nll_[std::size_t(c) * std::size_t(chunks.n_scored_per_chunk()) + std::size_t(j)] =
              internal::NegLogLikelihood(logits_row, chunk[std::size_t(chunks.first + j + 1)]);
        }
        return OkStatus();
      },
      options.progress));
  return ref;
}

StatusOr<PerplexityResult> EvaluatePerplexity(const Model& model, std::span<const int> tokens,
                                              const SessionOptions& cache,
                                              const TextEvalOptions& options,
                                              const ReferenceLogProbs* reference) {
  const auto start_time = std::chrono::steady_clock::now();
  QAQ_ASSIGN_OR_RETURN(const TextChunks chunks, Plan(tokens, options));
  const int vocab_size = model.config().vocab_size;
  if (reference != nullptr) {
    const TextChunks& rc = reference->chunks();
    if (rc.context != chunks.context || rc.n_chunks != chunks.n_chunks ||
        reference->protocol() != options.protocol || reference->vocab_size() != vocab_size ||
        reference->tokens_fingerprint() != internal::Fingerprint(tokens)) {
      return InvalidArgumentError(
          "the fp32 reference was computed on other tokens or chunks ({} chunks of {}, protocol "
          "{}) than this evaluation ({} chunks of {}, protocol {})",
          rc.n_chunks, rc.context, EvalProtocolName(reference->protocol()), chunks.n_chunks,
          chunks.context, EvalProtocolName(options.protocol));
    }
  }
  const bool with_kl = reference != nullptr || options.kl_base;
  const std::size_t vocab = std::size_t(vocab_size);
  const int per_chunk = chunks.n_scored_per_chunk();
  const std::size_t n_scored = std::size_t(chunks.n_scored());
  const int bos = model.vocabulary().bos_id;

  // Per scored token, indexed chunk * per_chunk + j.
  std::vector<double> nll(n_scored), nll_base, kl;
  std::vector<std::uint8_t> same_top;
  if (with_kl) {
    nll_base.resize(n_scored);
    kl.resize(n_scored);
    same_top.resize(n_scored);
  }
  std::vector<KvMemory> chunk_memory(std::size_t(chunks.n_chunks));
  std::vector<internal::KeyValueMemory> chunk_split(std::size_t(chunks.n_chunks));
  std::vector<KvMemory> chunk_prompt_memory(std::size_t(chunks.n_chunks));
  std::string cache_name;
  std::mutex name_mutex;

  QAQ_RETURN_IF_ERROR(ParallelFor(
      chunks.n_chunks, options.n_threads,
      [&](int c) -> Status {
        const std::vector<int> chunk = ChunkTokens(tokens, chunks, c, bos);
        const std::size_t base_index = std::size_t(c) * std::size_t(per_chunk);
        // The fp32 base's log-probabilities, from the reference or computed here.
        std::vector<float> base_log_probs;
        std::vector<double> base_nll_storage;
        std::span<const float> base;
        std::span<const double> base_nll;
        if (reference != nullptr) {
          base = reference->chunk(c);
          base_nll = reference->chunk_nll(c);
        } else if (options.kl_base) {
          QAQ_ASSIGN_OR_RETURN(Session base_session,
                               MakeChunkSession(model, Fp32Options(), chunks.context));
          std::vector<float> logits;
          QAQ_RETURN_IF_ERROR(RunChunk(base_session, chunk, chunks, options.protocol, logits));
          base_log_probs.resize(logits.size());
          base_nll_storage.resize(std::size_t(per_chunk));
          for (int j = 0; j < per_chunk; ++j) {
            const std::size_t row = std::size_t(j) * vocab;
            const std::span<const float> logits_row(&logits[row], vocab);
            internal::LogSoftmax(logits_row, std::span<float>(&base_log_probs[row], vocab));
            base_nll_storage[std::size_t(j)] =
                internal::NegLogLikelihood(logits_row, chunk[std::size_t(chunks.first + j + 1)]);
          }
          base = base_log_probs;
          base_nll = base_nll_storage;
        }

        QAQ_ASSIGN_OR_RETURN(Session session, MakeChunkSession(model, cache, chunks.context));
        std::vector<float> logits;
        QAQ_RETURN_IF_ERROR(RunChunk(session, chunk, chunks, options.protocol, logits, [&] {
          chunk_prompt_memory[std::size_t(c)] = session.kv_cache().Memory();
        }));
        for (int j = 0; j < per_chunk; ++j) {
          const std::span<const float> row(&logits[std::size_t(j) * vocab], vocab);
          const int target = chunk[std::size_t(chunks.first + j + 1)];
          const std::size_t i = base_index + std::size_t(j);
          nll[i] = internal::NegLogLikelihood(row, target);
          if (!with_kl) continue;
          const std::span<const float> base_row = base.subspan(std::size_t(j) * vocab, vocab);
          nll_base[i] = base_nll[std::size_t(j)];
          kl[i] = internal::KlDivergence(base_row, row);
          same_top[i] = internal::ArgmaxIndex(base_row) == internal::ArgmaxIndex(row);
        }
        chunk_memory[std::size_t(c)] = session.kv_cache().Memory();
        chunk_split[std::size_t(c)] = internal::SplitMemory(session.kv_cache());
        std::lock_guard<std::mutex> lock(name_mutex);
        if (cache_name.empty()) cache_name = session.kv_cache().name();
        return OkStatus();
      },
      options.progress));

  PerplexityResult r;
  r.protocol = options.protocol;
  r.chunks = chunks;
  r.cache_name = cache_name;
  r.ppl = internal::PerplexityOf(nll);
  double running = 0.0;
  for (int c = 0; c < chunks.n_chunks; ++c) {
    for (int j = 0; j < per_chunk; ++j) running += nll[std::size_t(c) * std::size_t(per_chunk) + std::size_t(j)];
    r.running_ppl.push_back(std::exp(running / (double(c + 1) * per_chunk)));
  }
  for (const KvMemory& m : chunk_memory) internal::AddMemory(r.memory, m);
  for (const KvMemory& m : chunk_prompt_memory) internal::AddMemory(r.prompt_memory, m);
  for (const internal::KeyValueMemory& m : chunk_split) {
    internal::AddMemory(r.key_memory, m.keys);
    internal::AddMemory(r.value_memory, m.values);
  }
  if (with_kl) {
    KlStats k;
    k.mean = internal::MeanAndError(kl);
    std::vector<double> sorted = kl;
    std::sort(sorted.begin(), sorted.end());
    k.median = internal::Percentile(sorted, 0.5);
    k.p90 = internal::Percentile(sorted, 0.9);
    k.p99 = internal::Percentile(sorted, 0.99);
    k.p999 = internal::Percentile(sorted, 0.999);
    k.max = sorted.back();
    std::int64_t same = 0;
    for (std::uint8_t s : same_top) same += s;
    k.top1 = internal::BinomialShare(same, std::int64_t(n_scored));
    k.base_ppl = internal::PerplexityOf(nll_base);
    std::vector<double> diff(n_scored);
    for (std::size_t i = 0; i < n_scored; ++i) diff[i] = nll[i] - nll_base[i];
    k.ln_ppl_ratio = internal::MeanAndError(diff);
    r.kl = k;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return r;
}

std::string FormatPerplexityReport(const PerplexityResult& r) {
  std::string s;
  const char* how = r.protocol == EvalProtocol::kPrompt
                        ? "first half of each chunk prefilled as the prompt and quantized once, "
                          "second half decoded token by token"
                        : "every token decoded one at a time, each K/V through the cache as it is "
                          "written";
  s += fmt::format("protocol: {} ({})\n", EvalProtocolName(r.protocol), how);
  s += fmt::format("chunks: {} of {} tokens, {} scored tokens (positions {}..{} of each chunk)\n",
                   r.chunks.n_chunks, r.chunks.context, r.chunks.n_scored(), r.chunks.first + 1,
                   r.chunks.context - 1);
  const KvMemory& m = r.memory;
  s += fmt::format(
      "kv cache {}: compression ratio {:.3f}x against fp16 (every byte counted: codes {} B, "
      "metadata {} B, outliers {} B, tables {} B; fp16 {} B; summed over chunks)\n",
      r.cache_name, m.compression_ratio(), m.code_bytes, m.metadata_bytes, m.outlier_bytes,
      m.table_bytes, m.fp16_reference_bytes);
  s += fmt::format("  when it held the first half of each chunk (the prompt): ratio {:.3f}x\n",
                   r.prompt_memory.compression_ratio());
  s += fmt::format("stored bits per value, everything counted: keys {:.3f}, values {:.3f}\n",
                   internal::StoredBitsPerValue(r.key_memory),
                   internal::StoredBitsPerValue(r.value_memory));
  std::string running;
  for (std::size_t i = 0; i < r.running_ppl.size(); ++i) {
    running += fmt::format("[{}]{:.4f},", i + 1, r.running_ppl[i]);
  }
  s += running + "\n";
  s += fmt::format("Final estimate: PPL = {:.4f} +/- {:.5f}\n", r.ppl.value, r.ppl.error);
  if (r.kl) {
    const KlStats& k = *r.kl;
    s += fmt::format("\n====== KL divergence from the fp32 cache (protocol {}) ======\n",
                     EvalProtocolName(r.protocol));
    s += fmt::format("Mean PPL(cache)            : {:10.6f} +/- {:10.6f}\n", r.ppl.value, r.ppl.error);
    s += fmt::format("Mean PPL(fp32)             : {:10.6f} +/- {:10.6f}\n", k.base_ppl.value,
                     k.base_ppl.error);
    s += fmt::format("Mean ln(PPL(cache)/PPL(fp32)): {:10.6f} +/- {:10.6f}\n", k.ln_ppl_ratio.value,
                     k.ln_ppl_ratio.error);
    s += fmt::format("Mean    KLD: {:10.6f} +/- {:10.6f}\n", k.mean.value, k.mean.error);
    s += fmt::format("Maximum KLD: {:10.6f}\n", k.max);
    s += fmt::format("99.9%   KLD: {:10.6f}\n", k.p999);
    s += fmt::format("99.0%   KLD: {:10.6f}\n", k.p99);
    s += fmt::format("90.0%   KLD: {:10.6f}\n", k.p90);
    s += fmt::format("Median  KLD: {:10.6f}\n", k.median);
    s += fmt::format("Same top p: {:6.3f} +/- {:5.3f} %\n", 100.0 * k.top1.value, 100.0 * k.top1.error);
  }
  return s;
}

std::string FormatQualitySummary(const PerplexityResult& r) {
  std::string s = fmt::format("kv {}: ratio {:.2f}x against fp16", r.cache_name,
                              r.memory.compression_ratio());
  if (r.kl) {
    s += fmt::format(" | mean KL {:.3g} | top-1 {:.2f}% | PPL {:.4f} (fp32 {:.4f})",
                     r.kl->mean.value, 100.0 * r.kl->top1.value, r.ppl.value,
                     r.kl->base_ppl.value);
  } else {
    s += fmt::format(" | PPL {:.4f} +/- {:.4f}", r.ppl.value, r.ppl.error);
  }
  s += fmt::format(" | protocol {}, {} chunks of {} tokens", EvalProtocolName(r.protocol),
                   r.chunks.n_chunks, r.chunks.context);
  return s;
}

}  // namespace qaq
