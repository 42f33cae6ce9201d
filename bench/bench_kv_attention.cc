// Decode attention on each KV cache (one query per KV head: Scores, then WeightedSum with a
// softmax row), and the QAQ cache's per-step update (append a token, observe its attention rows,
// EndStep: new widths for every group, re-quantizations).
//
//   cmake -S . -B build -DQAQ_BUILD_BENCHMARKS=ON && cmake --build build -j2
//   ./build/bin/qaq_bench_kv_attention --benchmark_filter='Attention/.*/T:32768/D:128/H:32'
//
// Attention cases: T = 1K, 8K, 32K tokens, head_dim 64 and 128, 32 KV heads (at 32K x 128 the
// fp16 cache is 512 MiB: far beyond the last-level cache, the memory-bound regime of a 7B model)
// and 1 KV head (cache-resident). Caches: fp32, fp16, uniform:4, uniform:2 and three QAQ caches
// whose widths average 3-4 bits (per-token keys; per-channel keys after RoPE, qaq's default;
// per-channel keys before RoPE).
// Counters: bytes of the cache per token and head ("B/tok"), mean code bits of keys and values.
// AttentionVsFp16 cases time each cache and an fp16 cache of the same tokens alternately in the
// same iterations, on 1 and 2 threads (see BM_AttentionVsFp16).
//
// Update cases: the QAQ cache's per-step work at T = 4K over 8 layers of 32 KV heads x 128, next
// to two yardsticks on the same cache: its decode attention, and a whole 7B-shaped decode step
// (attention plus one LLaMA-7B layer's q8_0 weight products per layer).
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "kernels/matvec.h"
#include "kernels/tensor_rows.h"
#include "kv/quantized_cache.h"
#include "model/parallel.h"
#include "qaq/kv_cache.h"
#include "qaq/kv_config.h"
#include "qaq/quant.h"

namespace qaq {
namespace {

double kKeyTargetTimesT = 0.3, kValueTargetTimesSqrtT = 0.1;

// QAQ caches; BM_Attention adds targets for which the random keys and values below average about
// 3 bits (the formulas depend on T: the key target scales as 1/T, the value target as 1/sqrt(T)).
const char* const kQaqTokenKeys = "qaq,keys=token,prerope=0,granularity=head,tier=none";
const char* const kQaqChannelKeys = "qaq,granularity=head,tier=none,prerope=0";
const char* const kQaqChannelKeysPrerope = "qaq,granularity=head,tier=none,prerope";

// The key formula's |q~|^2, the same at every head size, given to the QAQ caches as a calibration
// file. Without one they take the fallback, 300 / head_dim, which doubles |q~|^2 at head_dim 64
// and gives its keys a fifth bit (a 3.9-bit mix there against 3.4 at 128): the two head sizes
// would not be measured on the same mix.
constexpr double kBenchQNormSq = 300.0 / 128.0;

// The file for `shape` (written once per shape into the temporary folder), or "" if it cannot be.
std::string CalibrationFile(const KvCacheShape& shape) {
  static std::map<std::pair<int, int>, std::string> written;
  std::string& path = written[{shape.n_layers, shape.n_kv_heads}];
  if (!path.empty()) return path;
  const std::string candidate = (std::filesystem::temp_directory_path() /
                                 fmt::format("qaq-bench-qnorm-{}x{}.json", shape.n_layers, shape.n_kv_heads))
                                    .string();
  if (QueryNormCalibration::Constant(shape.n_layers, shape.n_kv_heads, kBenchQNormSq).Save(candidate).ok()) {
    path = candidate;
  }
  return path;
}

std::string WithTargets(const std::string& spec, int n_tokens, const KvCacheShape& shape) {
  if (spec.rfind("qaq", 0) != 0) return spec;
  const std::string calibration = CalibrationFile(shape);
  return spec + (calibration.empty() ? "" : ",calib=" + calibration) +
         ",key_error=" + std::to_string(kKeyTargetTimesT / n_tokens) +
         ",value_error=" + std::to_string(kValueTargetTimesSqrtT / std::sqrt(double(n_tokens)));
}

const std::vector<std::string>& Specs() {
  static const std::vector<std::string> specs = {"fp32", "fp16", "uniform:4", "uniform:2", kQaqTokenKeys,
                                                 kQaqChannelKeys, kQaqChannelKeysPrerope};
  return specs;
}

std::string Label(const std::string& spec) {
  if (spec == kQaqTokenKeys) return "qaq-token-keys";
  if (spec == kQaqChannelKeys) return "qaq-channel-keys";
  if (spec == kQaqChannelKeysPrerope) return "qaq-channel-keys-prerope";
  return spec;
}

KvCacheShape Shape(int n_layers, int n_kv_heads, int head_dim, int max_tokens) {
  KvCacheShape s;
  s.n_layers = n_layers;
  s.n_kv_heads = n_kv_heads;
  s.head_dim = head_dim;
  s.max_tokens = max_tokens;
  s.n_heads = n_kv_heads;
  s.rope_theta = 10000.0f;
  s.rope_dim = head_dim;
  return s;
}

// A softmax-like row over n tokens: a few tokens take most of the weight (as in real attention),
// the rest decay as a power law of their rank.
void AttentionRow(std::mt19937& rng, int n, std::vector<float>& row) {
  row.resize(static_cast<std::size_t>(n));
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  float sum = 0.0f;
  for (int t = 0; t < n; ++t) {
    const float r = u(rng);
    row[static_cast<std::size_t>(t)] = r * r * r * r / float(1 + (t * 7919) % n);
    sum += row[static_cast<std::size_t>(t)];
  }
  row[0] += sum;  // an attention sink
  sum *= 2.0f;
  for (float& p : row) p /= sum;
}

// A fast generator of roughly normal numbers (sum of four uniforms): filling a 32K-token cache
// with std::normal_distribution would take longer than the benchmark.
struct FastNormal {
  std::uint64_t state;
  float operator()() {
    float sum = 0.0f;
    for (int i = 0; i < 4; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      sum += float(state >> 40) * (1.0f / 16777216.0f);
    }
    return (sum - 2.0f) * 1.732f;  // mean 0, standard deviation 1
  }
};

// Appends n_tokens random tokens (keys with per-channel offsets) to every layer, with the attention
// rows of the last positions, then ends the step: the cache as after a prompt of n_tokens.
void Fill(KvCache& cache, int n_tokens, std::uint32_t seed) {
  const KvCacheShape& s = cache.shape();
  const int kv_dim = s.n_kv_heads * s.head_dim;
  std::mt19937 rng(seed);
  FastNormal normal{seed};
  std::vector<float> k(static_cast<std::size_t>(kv_dim)), v(static_cast<std::size_t>(kv_dim)), row;
  for (int t = 0; t < n_tokens; ++t) {
    for (int l = 0; l < s.n_layers; ++l) {
      for (int i = 0; i < kv_dim; ++i) {
        k[static_cast<std::size_t>(i)] = normal() + 0.5f * float(i % 7) - 1.5f;
        v[static_cast<std::size_t>(i)] = normal();
      }
      cache.Append(l, t, k, v);
    }
  }
  for (int pos = std::max(0, n_tokens - 5); pos < n_tokens; ++pos) {
    for (int l = 0; l < s.n_layers; ++l) {
      for (int h = 0; h < s.n_heads; ++h) {
        AttentionRow(rng, pos + 1, row);
        cache.ObserveAttention(l, h, pos, row);
      }
    }
  }
  cache.EndStep();
}

void MeanBits(const KvCache& cache, benchmark::State& state) {
  const auto* q = dynamic_cast<const internal::QuantizedKvCache*>(&cache);
  if (q == nullptr) return;
  double bits[2] = {0, 0}, values[2] = {0, 0};
  const KvCacheShape& s = cache.shape();
  for (const internal::GroupRecord& g : q->Groups()) {
    const int kind = g.kind == KvKind::kKey ? 0 : 1;
    double n = s.head_dim;
    if (kind == 0 && q->channel_keys() != nullptr && g.bits != kPassThroughBits) n *= q->channel_keys()->block();
    bits[kind] += n * g.bits;
    values[kind] += n;
  }
  state.counters["kbits"] = bits[0] / values[0];
  state.counters["vbits"] = bits[1] / values[1];
}

// The filled cache of the last case in each of two slots, kept while Google Benchmark calls the
// same case again (it does so to size the iteration count): filling a 32K-token cache takes
// seconds. Slot 1 holds the fp16 cache of the paired cases.
KvCache* FilledCache(const std::string& spec, const KvCacheShape& shape, int n_tokens, int slot = 0) {
  static std::string keys[2];
  static std::unique_ptr<KvCache> caches[2];
  std::string& key = keys[slot];
  std::unique_ptr<KvCache>& cache = caches[slot];
  const std::string want = fmt::format("{}|{}|{}|{}|{}", spec, shape.n_layers, shape.n_kv_heads, shape.head_dim, n_tokens);
  if (key == want && cache) return cache.get();
  cache.reset();
  key.clear();
  auto made = MakeKvCache(WithTargets(spec, n_tokens, shape), shape);
  if (!made.ok()) return nullptr;
  cache = std::move(made).value();
  Fill(*cache, n_tokens, 1);
  key = want;
  return cache.get();
}

// One decode attention over every KV head: Scores, then WeightedSum (or only one of them, with
// QAQ_BENCH_PART=scores or values, to see where the time goes). With several threads each takes
// a contiguous share of the heads, as the engine does.
void AttendAllHeads(KvCache& cache, int n_heads, const std::vector<float>& q, const std::vector<float>& probs,
                    int n_threads = 1) {
  static const std::string part = std::getenv("QAQ_BENCH_PART") != nullptr ? std::getenv("QAQ_BENCH_PART") : "";
  internal::RunOnThreads(n_threads, [&](int thread, int running) {
    thread_local std::vector<float> scores, out;
    scores.resize(probs.size());
    out.resize(q.size());
    const auto [first, last] = internal::ShareOf(n_heads, thread, running);
    for (int h = int(first); h < int(last); ++h) {
      if (part != "values") cache.Scores(0, h, q, scores);
      std::fill(out.begin(), out.end(), 0.0f);
      if (part != "scores") cache.WeightedSum(0, h, probs, out);
      benchmark::DoNotOptimize(out.data());
    }
  });
  benchmark::ClobberMemory();
}

// The query of a decode step and its softmax-like attention row over n_tokens.
void DecodeQuery(int head_dim, int n_tokens, std::vector<float>& q, std::vector<float>& probs) {
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  q.resize(static_cast<std::size_t>(head_dim));
  for (float& x : q) x = normal(rng);
  AttentionRow(rng, n_tokens, probs);
}

// Args: tokens, head_dim, KV heads.
void BM_Attention(benchmark::State& state, std::string spec) {
  const int n_tokens = int(state.range(0)), head_dim = int(state.range(1)), n_heads = int(state.range(2));
  KvCache* cache = FilledCache(spec, Shape(1, n_heads, head_dim, n_tokens), n_tokens);
  if (cache == nullptr) {
    state.SkipWithError("cannot make the cache");
    return;
  }
  std::vector<float> q, probs;
  DecodeQuery(head_dim, n_tokens, q, probs);
  for (auto _ : state) AttendAllHeads(*cache, n_heads, q, probs);
  const KvMemory m = cache->Memory();
  state.counters["B/tok"] = double(m.cache_bytes()) / double(n_tokens) / n_heads;
  state.counters["ratio"] = m.compression_ratio();
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(m.cache_bytes()));
  MeanBits(*cache, state);
}

// The cache against an fp16 cache of the same tokens, timed alternately in the same iterations:
// on a shared machine whose memory bandwidth drifts, the ratio of two separate runs varies by
// tens of percent, the ratio measured side by side much less. Counters: "ms" and "fp16_ms" (mean
// per attention over every head), "speedup" = fp16_ms / ms. Args as BM_Attention, then threads
// (the heads split between them: with every core streaming its share, fp16 attention meets the
// memory bandwidth limit that packed codes relieve). "probe_ms": one head of the same cache
// attended kProbeRepeats times in a row on one thread (4.4 MiB at 32K x 128, served from the CPU's
// caches after the first pass), per attention: the compute the machine gives the integer kernels
// in this run. On a shared machine other work can take the core's vector pipes for minutes; that
// slows the compute-bound packed caches and hardly the memory-bound fp16 pass, and this counter
// shows when it happened.
void BM_AttentionVsFp16(benchmark::State& state, std::string spec) {
  const int n_tokens = int(state.range(0)), head_dim = int(state.range(1)), n_heads = int(state.range(2));
  const int n_threads = int(state.range(3));
  const KvCacheShape shape = Shape(1, n_heads, head_dim, n_tokens);
  KvCache* fp16 = FilledCache("fp16", shape, n_tokens, 1);
  KvCache* cache = FilledCache(spec, shape, n_tokens, 0);
  if (cache == nullptr || fp16 == nullptr) {
    state.SkipWithError("cannot make the caches");
    return;
  }
  std::vector<float> q, probs;
  DecodeQuery(head_dim, n_tokens, q, probs);
  // A few untimed passes first: the first touches of a freshly filled multi-GiB cache are slow on
  // virtual machines (page tables), which would otherwise land in the first case's numbers.
  for (int i = 0; i < 3; ++i) {
    AttendAllHeads(*fp16, n_heads, q, probs, n_threads);
    AttendAllHeads(*cache, n_heads, q, probs, n_threads);
  }
  constexpr int kProbeRepeats = 4;
  double cache_s = 0, fp16_s = 0, probe_s = 0;
  auto seconds = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    AttendAllHeads(*fp16, n_heads, q, probs, n_threads);
    const auto t1 = std::chrono::steady_clock::now();
    AttendAllHeads(*cache, n_heads, q, probs, n_threads);
    const auto t2 = std::chrono::steady_clock::now();
    AttendAllHeads(*cache, 1, q, probs, 1);  // brings head 0 into the caches
    const auto t3 = std::chrono::steady_clock::now();
    for (int i = 0; i < kProbeRepeats; ++i) AttendAllHeads(*cache, 1, q, probs, 1);
    const auto t4 = std::chrono::steady_clock::now();
    fp16_s += seconds(t0, t1), cache_s += seconds(t1, t2), probe_s += seconds(t3, t4);
  }
  const double n = double(state.iterations());
  state.counters["ms"] = 1e3 * cache_s / n;
  state.counters["probe_ms"] = 1e3 * probe_s / n / kProbeRepeats;
  state.counters["fp16_ms"] = 1e3 * fp16_s / n;
  state.counters["speedup"] = fp16_s / cache_s;
  state.counters["ratio"] = cache->Memory().compression_ratio();
  MeanBits(*cache, state);
}

// The QAQ cache's per-step work at T tokens: append one token to every layer, report its attention
// rows (one per query head), EndStep. Attention is stable from step to step as in real decoding
// (a fixed pattern per head with 10% noise), so most widths stay and a few tokens move. Args:
// tokens, layers (32 KV heads of 128).
void BM_Update(benchmark::State& state, std::string spec) {
  const int n_tokens = int(state.range(0)), n_layers = int(state.range(1));
  const int n_heads = 32, head_dim = 128, extra = 64;
  const KvCacheShape shape = Shape(n_layers, n_heads, head_dim, n_tokens + extra);
  auto made = MakeKvCache(WithTargets(spec, n_tokens, shape), shape);
  if (!made.ok()) {
    state.SkipWithError(made.status().message().c_str());
    return;
  }
  std::unique_ptr<KvCache> cache = std::move(made).value();
  Fill(*cache, n_tokens, 3);
  std::mt19937 rng(4);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> noise(0.9f, 1.1f);
  std::vector<float> k(static_cast<std::size_t>(n_heads * head_dim)), v(k.size()), row;
  // Rows prepared ahead (8 patterns x 4 noisy variants): the timed loop measures the cache.
  std::vector<std::vector<float>> rows;
  for (int i = 0; i < 8; ++i) {
    AttentionRow(rng, n_tokens + extra, row);
    for (int j = 0; j < 4; ++j) {
      std::vector<float> variant = row;
      for (float& p : variant) p *= noise(rng);
      rows.push_back(variant);
    }
  }
  std::vector<std::vector<float>> new_k(static_cast<std::size_t>(n_layers)), new_v(new_k.size());
  for (int l = 0; l < n_layers; ++l) {
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = normal(rng), v[i] = normal(rng);
    new_k[static_cast<std::size_t>(l)] = k;
    new_v[static_cast<std::size_t>(l)] = v;
  }
  int t = n_tokens;
  double append_s = 0, observe_s = 0, end_s = 0;
  auto seconds = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  auto step = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    for (int l = 0; l < n_layers; ++l) cache->Append(l, t, new_k[static_cast<std::size_t>(l)], new_v[static_cast<std::size_t>(l)]);
    const auto t1 = std::chrono::steady_clock::now();
    for (int l = 0; l < n_layers; ++l) {
      for (int h = 0; h < n_heads; ++h) {
        const std::vector<float>& r = rows[static_cast<std::size_t>((h % 8) * 4 + t % 4)];
        cache->ObserveAttention(l, h, t, std::span<const float>(r.data(), static_cast<std::size_t>(t + 1)));
      }
    }
    const auto t2 = std::chrono::steady_clock::now();
    cache->EndStep();
    const auto t3 = std::chrono::steady_clock::now();
    append_s += seconds(t0, t1), observe_s += seconds(t1, t2), end_s += seconds(t2, t3);
    ++t;
  };
  for (int i = 0; i < 6; ++i) step();  // the window now holds these patterns
  append_s = observe_s = end_s = 0;
  const auto* q = dynamic_cast<const internal::QuantizedKvCache*>(cache.get());
  const std::size_t moves_before = q->stats().up + q->stats().down, quantized_before = q->stats().quantized;
  std::size_t steps = 0;
  for (auto _ : state) {
    if (t == n_tokens + extra) {
      state.PauseTiming();
      cache->Truncate(n_tokens);
      t = n_tokens;
      for (int i = 0; i < 6; ++i) step();
      state.ResumeTiming();
    }
    step();
    ++steps;
  }
  state.counters["moves/step"] = double(q->stats().up + q->stats().down - moves_before) / double(steps);
  state.counters["new/step"] = double(q->stats().quantized - quantized_before) / double(steps);
  // Wall-clock split of a step (the machine is shared: compare the parts, not the totals).
  const double total = append_s + observe_s + end_s;
  state.counters["append%"] = 100 * append_s / total;
  state.counters["observe%"] = 100 * observe_s / total;
  state.counters["endstep%"] = 100 * end_s / total;
  MeanBits(*cache, state);
}

// The same cache's decode attention (all layers and heads) at T tokens: the update's yardstick.
void BM_UpdateYardstick(benchmark::State& state, std::string spec) {
  const int n_tokens = int(state.range(0)), n_layers = int(state.range(1));
  const int n_heads = 32, head_dim = 128;
  KvCache* cache = FilledCache(spec, Shape(n_layers, n_heads, head_dim, n_tokens), n_tokens);
  std::mt19937 rng(5);
  std::vector<float> q(head_dim, 0.05f), scores(static_cast<std::size_t>(n_tokens)), out(head_dim), probs;
  AttentionRow(rng, n_tokens, probs);
  for (auto _ : state) {
    for (int l = 0; l < n_layers; ++l) {
      for (int h = 0; h < n_heads; ++h) {
        cache->Scores(l, h, q, scores);
        cache->WeightedSum(l, h, probs, out);
      }
    }
    benchmark::DoNotOptimize(out.data());
  }
}

// A whole decode step of a 7B-shaped model at T tokens, per layer: the weight products of one
// LLaMA-7B layer in q8_0 (wq, wk, wv, wo: 4096 x 4096; w1, w3: 11008 x 4096; w2: 4096 x 11008;
// 215 MiB, the same matrices for every layer: far beyond the cache, so read from memory as a
// real model's are) and decode attention on the same cache as BM_Update. The update's share of
// a decode step is Update / (DecodeStepYardstick + Update).
struct Weights7B {
  std::vector<std::byte> square, up, down;
  TensorView wq, w13, w2;
  Weights7B() {
    auto make = [](std::vector<std::byte>& bytes, std::int64_t rows, std::int64_t cols) {
      const std::size_t row_bytes = internal::RowBytes(TensorType::kQ8_0, cols);
      bytes.resize(row_bytes * std::size_t(rows));
      std::vector<float> row(static_cast<std::size_t>(cols));
      FastNormal normal{7};
      for (std::int64_t r = 0; r < rows; ++r) {
        for (float& v : row) v = 0.02f * normal();
        internal::EncodeRow(TensorType::kQ8_0, row.data(), cols, bytes.data() + std::size_t(r) * row_bytes);
      }
      return TensorView{"w", TensorType::kQ8_0, bytes.data(), rows, cols, bytes.size()};
    };
    wq = make(square, 4096, 4096);
    w13 = make(up, 11008, 4096);
    w2 = make(down, 4096, 11008);
  }
};

void BM_DecodeStepYardstick(benchmark::State& state, std::string spec) {
  const int n_tokens = int(state.range(0)), n_layers = int(state.range(1));
  const int n_heads = 32, head_dim = 128;
  static const Weights7B weights;
  KvCache* cache = FilledCache(spec, Shape(n_layers, n_heads, head_dim, n_tokens), n_tokens);
  std::mt19937 rng(5);
  std::vector<float> q(head_dim, 0.05f), scores(static_cast<std::size_t>(n_tokens)), out(head_dim), probs;
  std::vector<float> x(11008, 0.1f), y(11008);
  AttentionRow(rng, n_tokens, probs);
  for (auto _ : state) {
    for (int l = 0; l < n_layers; ++l) {
      for (int i = 0; i < 4; ++i) internal::MatVec(weights.wq, x.data(), y.data(), 0, 4096);
      for (int h = 0; h < n_heads; ++h) {
        cache->Scores(l, h, q, scores);
        cache->WeightedSum(l, h, probs, out);
      }
      for (int i = 0; i < 2; ++i) internal::MatVec(weights.w13, x.data(), y.data(), 0, 11008);
      internal::MatVec(weights.w2, x.data(), y.data(), 0, 4096);
    }
    benchmark::DoNotOptimize(y.data());
  }
}

const bool kRegistered = [] {
  if (const char* k = std::getenv("QAQ_BENCH_KEY_TARGET")) kKeyTargetTimesT = std::atof(k);
  if (const char* v = std::getenv("QAQ_BENCH_VALUE_TARGET")) kValueTargetTimesSqrtT = std::atof(v);
  for (const std::string& spec : Specs()) {
    auto* b = benchmark::RegisterBenchmark(("Attention/" + Label(spec)).c_str(), BM_Attention, spec);
    for (const int head_dim : {64, 128}) {
      for (const int tokens : {1024, 8192, 32768}) {
        for (const int heads : {32, 1}) b->Args({tokens, head_dim, heads});
      }
    }
    b->ArgNames({"T", "D", "H"})->Unit(benchmark::kMicrosecond);
  }
  for (const std::string& spec : Specs()) {
    if (spec == "fp16") continue;
    auto* b = benchmark::RegisterBenchmark(("AttentionVsFp16/" + Label(spec)).c_str(), BM_AttentionVsFp16, spec);
    for (const int head_dim : {64, 128}) {
      for (const int threads : {1, 2}) b->Args({32768, head_dim, 32, threads});
    }
    b->ArgNames({"T", "D", "H", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  for (const std::string& spec : {std::string(kQaqTokenKeys), std::string(kQaqChannelKeys),
                                 std::string("qaq,granularity=head")}) {
    const std::string label = spec == "qaq,granularity=head" ? "qaq-default-tier-ram" : Label(spec);
    benchmark::RegisterBenchmark(("Update/" + label).c_str(), BM_Update, spec)
        ->Args({4096, 8})->ArgNames({"T", "L"})->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("UpdateYardstick/" + label).c_str(), BM_UpdateYardstick, spec)
        ->Args({4096, 8})->ArgNames({"T", "L"})->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("DecodeStepYardstick/" + label).c_str(), BM_DecodeStepYardstick, spec)
        ->Args({4096, 8})->ArgNames({"T", "L"})->Unit(benchmark::kMillisecond);
  }
  return true;
}();

}  // namespace
}  // namespace qaq
