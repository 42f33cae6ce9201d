// qaq/eval.h: what KV-cache compression costs in quality.
//
// Every figure a user sees about quality comes from a function here: perplexity in llama.cpp's
// protocol, KL divergence and top-1 agreement against the fp32 cache, zero-shot multiple choice in
// the QAQ authors' protocol, and sweeps over cache configurations. The `qaq perplexity`, `qaq mc`
// and `qaq sweep` commands are thin layers over these functions.
//
//   QAQ_ASSIGN_OR_RETURN(qaq::Model model, qaq::LoadModel("stories260K.bin"));
//   QAQ_ASSIGN_OR_RETURN(qaq::Tokenizer tok, qaq::LoadTokenizer(model));
//   const std::vector<int> tokens = tok.Encode(text, /*add_bos=*/true);
//   qaq::TextEvalOptions options{.context = 256, .n_chunks = 100, .kl_base = true};
//   QAQ_ASSIGN_OR_RETURN(qaq::PerplexityResult r,
//                        qaq::EvaluatePerplexity(model, tokens, {.kv_cache = "fp16"}, options));
//   // r.ppl.value, r.kl->mean.value, r.kl->top1.value, r.memory.compression_ratio()
//
// Determinism: chunks (and multiple-choice items) are spread over threads, one session each, and
// every per-token figure is reduced in a fixed order afterwards, so results are identical for any
// thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qaq/engine.h"
#include "qaq/kv_cache.h"
#include "qaq/model.h"
#include "qaq/status.h"
#include "qaq/tokenizer.h"

namespace qaq {

// ---------------------------------------------------------------------------------------------
// Perplexity and divergence from the fp32 cache.

// How the tokens of a chunk meet the cache under test. Both score the same tokens (the second
// half of the chunk); they differ in what the cache has seen when each token is predicted.
enum class EvalProtocol {
  // The paper's: the first half of the chunk is the prompt, run as one batch (attention inside
  // the prompt is exact), after which the cache quantizes it once (EndStep); the second half is
  // decoded token by token on that cache while its policy keeps working.
  kPrompt,
  // llama.cpp's: every token is decoded alone, so every K/V goes through the cache (and its
  // EndStep) before any later token attends to it, inside the first half too. A token attends
  // to its own K/V before the cache has quantized it (llama.cpp quantizes it first).
  kStream,
};

const char* EvalProtocolName(EvalProtocol protocol);  // "prompt", "stream"
StatusOr<EvalProtocol> ParseEvalProtocol(std::string_view name);

// A mean (or a figure derived from one) and its standard error.
struct Estimate {
  double value = 0.0;
  double error = 0.0;
};

struct TextEvalOptions {
  int context = 256;   // n_ctx: tokens per chunk (>= 4)
  int n_chunks = -1;   // chunks to evaluate; -1: every whole chunk of the text
  EvalProtocol protocol = EvalProtocol::kPrompt;
  // Also run an fp32 cache on every chunk and compare (KL divergence, top-1 agreement).
  bool kl_base = false;
  // Chunks evaluated at once, one single-threaded session per chunk in flight.
  int n_threads = 1;
  // Called after each finished chunk with (chunks done, chunks in all); serialised, but possibly
  // from a worker thread.
  std::function<void(int, int)> progress = nullptr;
};

// llama.cpp's chunking (tools/perplexity): chunk i is tokens [i*n_ctx, (i+1)*n_ctx) with its first
// token replaced by BOS; the logits at positions n_ctx/2 .. n_ctx-2 are scored against the next
// token, i.e. n_ctx - 1 - n_ctx/2 tokens per chunk. Errors: too few tokens for one chunk, a
// context below 4, n_chunks 0 or below -1.
struct TextChunks {
  int context = 0;
  int n_chunks = 0;
  int first = 0;  // first scored logits position: context / 2
  int n_scored_per_chunk() const { return context - 1 - first; }
  std::int64_t n_scored() const { return std::int64_t(n_chunks) * n_scored_per_chunk(); }
};
StatusOr<TextChunks> PlanChunks(std::size_t n_tokens, int context, int n_chunks);

struct KlStats {
  Estimate mean;            // mean over scored tokens of KL(fp32 || cache), nats
  double median = 0.0;      // percentiles by linear interpolation, as llama-perplexity
  double p90 = 0.0;
  double p99 = 0.0;
  double p999 = 0.0;
  double max = 0.0;
  Estimate top1;            // share of tokens whose most likely next token is the fp32 one's
  Estimate base_ppl;        // perplexity of the fp32 cache on the same tokens
  Estimate ln_ppl_ratio;    // mean of ln(p_fp32 / p_cache) of the true token
};

struct PerplexityResult {
  EvalProtocol protocol = EvalProtocol::kPrompt;
  TextChunks chunks;
  std::string cache_name;
  Estimate ppl;                        // exp(mean NLL), error as llama.cpp: ppl * sd / sqrt(n-1)
  std::vector<double> running_ppl;     // perplexity over chunks 0..i, as llama.cpp prints
  std::optional<KlStats> kl;           // with kl_base or a reference
  // The cache under test at the end of every chunk, summed over chunks (each chunk starts from
  // an empty cache), so memory.compression_ratio() weighs chunks by their size.
  KvMemory memory;
  KvMemory key_memory, value_memory;  // the same, keys and values apart
  // The cache when it held the first half of each chunk (the prompt), summed over chunks: the
  // size the paper reports (it counts the quantized prompt cache only).
  KvMemory prompt_memory;
  double seconds = 0.0;
};

// The fp32 cache's log-probabilities on the scored tokens of a text, computed once and compared
// with many caches (qaq sweep). Bound to the tokens, chunking and protocol it was made with.
class ReferenceLogProbs {
 public:
  const TextChunks& chunks() const { return chunks_; }
  EvalProtocol protocol() const { return protocol_; }
  int vocab_size() const { return vocab_size_; }
  std::uint64_t tokens_fingerprint() const { return fingerprint_; }
  // [n_scored_per_chunk][vocab] natural-log probabilities of chunk c.
  std::span<const float> chunk(int c) const;
  // [n_scored_per_chunk] negative log-likelihoods of the true next tokens of chunk c, in double
  // precision from the logits (the perplexity figure; the float log-probabilities above serve KL).
  std::span<const double> chunk_nll(int c) const;

 private:
  friend StatusOr<ReferenceLogProbs> ComputeReference(const Model&, std::span<const int>,
                                                      const TextEvalOptions&);
  TextChunks chunks_;
  EvalProtocol protocol_ = EvalProtocol::kPrompt;
  int vocab_size_ = 0;
  std::uint64_t fingerprint_ = 0;
  std::vector<float> log_probs_;  // [n_chunks][n_scored_per_chunk][vocab]
  std::vector<double> nll_;       // [n_chunks][n_scored_per_chunk]
};

// Runs the fp32 cache over the chunks of `tokens` (options.kl_base is ignored).
StatusOr<ReferenceLogProbs> ComputeReference(const Model& model, std::span<const int> tokens,
                                             const TextEvalOptions& options);

// Perplexity of the cache made from `cache` (its n_threads and context_length are replaced by
// one thread and options.context) on `tokens`, which must start with BOS as Tokenizer::Encode
// gives them. With `reference` (made from the same tokens and options) or options.kl_base, also
// the divergence from fp32. Errors: bad options, a cache spec MakeKvCache rejects, a reference
// made from other tokens or chunking.
StatusOr<PerplexityResult> EvaluatePerplexity(const Model& model, std::span<const int> tokens,
                                              const SessionOptions& cache,
                                              const TextEvalOptions& options,
                                              const ReferenceLogProbs* reference = nullptr);

// The llama-perplexity style report of a result (several lines, ending in a newline).
std::string FormatPerplexityReport(const PerplexityResult& result);

// One line stating what the cache saves and what it costs, for demos and logs:
// "kv fp16: ratio 1.00x against fp16 | mean KL 1.2e-06 | top-1 99.96% | PPL 3.8867 (fp32
// 3.8867) | protocol prompt, 4 chunks of 256 tokens". Without KL figures only ratio and perplexity.
std::string FormatQualitySummary(const PerplexityResult& result);

// ---------------------------------------------------------------------------------------------
// Files.

// The whole file; kNotFound when it does not exist, kInternal when it cannot be read.
StatusOr<std::string> ReadTextFile(const std::string& path);

// ---------------------------------------------------------------------------------------------
// Zero-shot multiple choice (the QAQ authors' evaluation, src/qa_dataset.py and evaluator.py of
// their repository): the context is prefilled and its cache quantized, each choice is scored by
// the mean log-probability of its tokens on that cache, the best score is the answer.

enum class McTask { kHellaSwag, kPiqa, kMathQa };
const char* McTaskName(McTask task);  // "hellaswag", "piqa", "mathqa"
StatusOr<McTask> ParseMcTask(std::string_view name);

struct McItem {
  std::string context;               // after the task's preprocessing
  std::vector<std::string> choices;  // each is scored as context + " " + choice
  int label = 0;                     // index of the right choice
};

// Readers of the official files, with the authors' preprocessing. `limit` > 0 keeps the first
// `limit` items in file order (the authors sample 1,000 with Python's random.seed(42); qaq uses
// file order so any subset is reproducible without Python). Every malformed record is an error
// naming the file and line (or index).
//
// HellaSwag (jsonl, fields activity_label, ctx_a, ctx_b, endings, label): context
//   Clean(activity_label + ": " + ctx_a + " " + Capitalize(ctx_b)), choices Clean(ending).
// PIQA (jsonl with goal, sol1, sol2, and a labels file of 0/1 lines): "Question: <goal>\nAnswer:"
//   with choices sol1, sol2.
// MathQA (one JSON array with Problem, options, correct): "Question: <Problem>\nAnswer:", choices
//   from "a ) .. , b ) .. , ... e ) .." split as the authors' regular expression does.
StatusOr<std::vector<McItem>> ParseHellaSwag(std::string_view jsonl, int limit = 0);
StatusOr<std::vector<McItem>> ParsePiqa(std::string_view jsonl, std::string_view labels,
                                        int limit = 0);
StatusOr<std::vector<McItem>> ParseMathQa(std::string_view json, int limit = 0);
// File forms. PIQA's labels path defaults to the data path with ".jsonl" replaced by
// "-labels.lst" (the official names: valid.jsonl, valid-labels.lst).
StatusOr<std::vector<McItem>> ReadMcItems(McTask task, const std::string& path, int limit = 0,
                                          const std::string& labels_path = "");

// The authors' HellaSwag clean-up: strip, " [title]" -> ". ", drop every "[...]", then every
// double space becomes one (one pass, as Python's str.replace).
std::string CleanHellaSwagText(std::string_view text);
// Python's str.capitalize on ASCII: first character upper case, the rest lower case.
std::string PythonCapitalize(std::string_view text);
// MathQA's options string to its choices (the authors' regex "[abcd] \) .*?, |e \) .*?$", the
// first four characters dropped and trailing " ," stripped).
std::vector<std::string> SplitMathQaOptions(std::string_view options);

struct McOptions {
  bool add_bos = true;  // BOS before the context (the authors' code adds none; stories260K needs it)
  int n_threads = 1;    // items scored at once, one single-threaded session each
  std::function<void(int, int)> progress = nullptr;  // (items done, items), serialised
};

struct McItemResult {
  int predicted = -1;           // -1 when the item was skipped
  bool skipped = false;         // context + choice longer than the session's context
  std::vector<double> scores;   // mean log-probability per choice token
  int n_context_tokens = 0;
};

struct McResult {
  int n_items = 0;      // items scored (skipped ones excluded)
  int n_skipped = 0;
  int n_correct = 0;
  double accuracy = 0.0;
  double ci95 = 0.0;    // half-width of the 95% normal interval, 1.96 sqrt(p (1 - p) / n)
  double chance = 0.0;  // expected accuracy of guessing: mean of 1 / choices
  std::string cache_name;
  // The quantized context caches (after the context's prefill), summed over items.
  KvMemory memory;
  std::vector<McItemResult> items;
  double seconds = 0.0;
};

// Scores `items` with the cache made from `cache` (one thread per session; the context length is
// cache.context_length or the model's). For every choice the session starts empty, the context
// is prefilled as one batch (its last logits score the choice's first token, before any
// quantization, as the authors do), the cache quantizes it at the end of that step, and the
// choice's remaining tokens run as a second batch on that cache. The context is prefilled again
// for every choice, rather than truncated back to after the first choice, because an adaptive
// cache may change the context's widths at the end of the choice's step: every choice must see
// the same quantized context.
StatusOr<McResult> EvaluateMultipleChoice(const Model& model, const Tokenizer& tokenizer,
                                          std::span<const McItem> items,
                                          const SessionOptions& cache, const McOptions& options);

// ---------------------------------------------------------------------------------------------
// Sweeps: one text, many cache configurations, both protocols; the quality-against-compression
// curve of every method (qaq sweep).

// One cache configuration of a grid.
struct SweepRun {
  std::string series;  // the method, one plot series ("uniform", "qaq", ...)
  std::string label;   // this point ("uniform 4 bits")
  std::string args;    // the cache flags exactly as in the grid ("--kv uniform:4")
  SessionOptions cache;  // what the flags mean (filled by the caller, e.g. qaq sweep's parser)
  // The run's position on the plots' x axis when the grid gives one (e.g. bits); NaN: the
  // compression ratio.
  double x = std::numeric_limits<double>::quiet_NaN();
};

// A grid file (JSON):
//   {"title": "...", "context": 256, "chunks": 32, "protocols": ["prompt", "stream"],
//    "kl_threshold": 0.01,
//    "runs": [{"series": "fp16", "label": "fp16", "args": "--kv fp16"},
//             {"series": "uniform", "label": "uniform {b}", "args": "--kv uniform:{b}",
//              "values": {"b": [2, 3, 4]}}]}
// A run may give "x" (a number, or a string such as "{b}" that becomes one after expansion):
// when every run of the grid has one, the plots use it as their x axis, labelled "x_label",
// instead of the compression ratio.
// A run with "values" expands to one run per combination of the listed values (keys in
// alphabetical order, the first varying slowest), each "{key}" in series, label and args replaced
// by the value. "label" defaults to the args; a top-level "comment" is ignored, other unknown
// fields are errors.
struct SweepGrid {
  std::string title;
  int context = 256;
  int n_chunks = 32;
  std::vector<EvalProtocol> protocols = {EvalProtocol::kPrompt};
  double kl_threshold = 0.01;
  std::string x_label;         // the plots' x axis when the runs give "x"
  std::vector<SweepRun> runs;  // `cache` not yet filled
};
StatusOr<SweepGrid> ParseSweepGrid(std::string_view json_text);

// One finished (run, protocol) pair: a row of results.csv.
struct SweepRow {
  std::string id;  // stable key of everything that determines the row (resume matches on it)
  std::string series, label, args;
  EvalProtocol protocol = EvalProtocol::kPrompt;
  double x = std::numeric_limits<double>::quiet_NaN();  // the run's "x", if any
  std::string cache_name;
  double compression_ratio = 0.0;  // fp16 bytes / cache bytes, every byte counted, at chunk end
  double prompt_ratio = 0.0;       // the same when the cache held the first half (the prompt)
  double bits_per_value = 0.0;     // 16 / ratio: stored bits per cached K or V element
  double key_bits = 0.0;           // the same for keys alone (codes, metadata, outliers, tables)
  double value_bits = 0.0;         // and for values alone
  double outlier_share = 0.0;      // share of the cache's bytes spent on outliers
  KvMemory memory;                 // summed over chunks
  double mean_kl = 0.0, mean_kl_error = 0.0, median_kl = 0.0, p99_kl = 0.0, max_kl = 0.0;
  double top1 = 0.0, top1_error = 0.0;
  double ppl = 0.0, ppl_error = 0.0, base_ppl = 0.0;
  int n_chunks = 0, context = 0;
  double seconds = 0.0;
};

struct SweepOptions {
  std::string out_dir;     // results.csv, results.json, summary.md and plots go here (created)
  std::string model_id;    // enters every row id (e.g. the model path)
  int n_threads = 1;       // chunks at once
  bool resume = true;      // reuse rows of an earlier results.json with the same id
  std::FILE* progress = stderr;  // progress bar with ETA; nullptr: silent
};

struct SweepResult {
  std::vector<SweepRow> rows;  // in grid order, protocol by protocol
  int n_reused = 0;            // rows taken from an earlier run
  double seconds = 0.0;
};

// Runs every (run, protocol) of the grid on `tokens` (fp32 references computed once per
// protocol), writing results after each row so an interrupted sweep resumes where it stopped.
StatusOr<SweepResult> RunSweep(const Model& model, std::span<const int> tokens,
                               const SweepGrid& grid, const SweepOptions& options);

// The best (largest) compression ratio of each series whose mean KL is at most `threshold`, per
// protocol; rows above the threshold in every configuration give no entry.
struct SeriesBest {
  std::string series;
  EvalProtocol protocol = EvalProtocol::kPrompt;
  const SweepRow* row = nullptr;  // the winning row; null when no row meets the threshold
};
std::vector<SeriesBest> BestRatioPerSeries(std::span<const SweepRow> rows, double threshold);

}  // namespace qaq
