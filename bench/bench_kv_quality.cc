// A small quality measurement of the KV caches on stories260K, to choose defaults: mean KL
// divergence of the next-token distribution against the fp32 cache, top-1 agreement, and the
// compression ratio, on TinyStories validation text.
//
// Protocol (the paper's, FINDINGS.md): windows of 256 tokens (BOS + text); the first 128 are the
// prompt, prefilled and quantized once; the next 128 are decoded one at a time (teacher forcing),
// the cache re-quantizing every step as in generation. KL and top-1 are taken at the 128
// positions predicted from the quantized cache; the ratio is the cache's at the end of a window,
// averaged. The full evaluation tools are `qaq perplexity` / `qaq kl` (src/eval).
//
//   QAQ_SHARED_DIR=... build/bin/qaq_bench_kv_quality [--benchmark_filter=qaq]
//   QAQ_KV_SPECS="qaq;qaq,keys=channel:64" build/bin/qaq_bench_kv_quality   (other specs)
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/paths.h"
#include "qaq/engine.h"
#include "qaq/tokenizer.h"

namespace qaq {
namespace {

constexpr int kWindow = 256, kPrompt = 128, kWindows = 12;

struct Data {
  Model model;
  std::vector<std::vector<int>> windows;
  std::vector<std::vector<float>> reference;  // fp32 logits, [window][position * vocab]
};

const Data* LoadData() {
  static const Data* data = [] () -> const Data* {
    auto model = LoadModel(SharedPath("models/stories260K.bin"));
    if (!model.ok()) return nullptr;
    auto tokenizer = LoadTokenizer(*model, SharedPath("models/tok512.bin"));
    std::ifstream in(SharedPath("data/tinystories_validation_head.txt"));
    if (!tokenizer.ok() || !in) return nullptr;
    auto* d = new Data{std::move(model).value(), {}, {}};
    // Line by line: the encoder's merges are quadratic in the length of what it is given.
    std::vector<int> tokens;
    std::string line;
    while (std::getline(in, line) && tokens.size() < static_cast<std::size_t>(kWindows * kWindow)) {
      if (line.empty()) continue;
      for (int t : tokenizer->Encode(line + "\n", /*add_bos=*/false)) tokens.push_back(t);
    }
    for (int w = 0; w < kWindows; ++w) {
      std::vector<int> window = {1};  // BOS
      window.insert(window.end(), tokens.begin() + w * (kWindow - 1), tokens.begin() + (w + 1) * (kWindow - 1));
      d->windows.push_back(window);
      auto session = Session::Create(d->model, {.n_threads = 1, .kv_cache = "fp32"});
      auto logits = session->PrefillAllLogits(window);
      d->reference.emplace_back(logits->begin(), logits->end());
    }
    return d;
  }();
  return data;
}

// KL(p || q) of two logit rows, in double precision.
double Kl(const float* p_logits, const float* q_logits, int n) {
  auto log_softmax = [n](const float* x, std::vector<double>& out) {
    double max = x[0];
    for (int i = 1; i < n; ++i) max = std::max(max, double(x[i]));
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += std::exp(double(x[i]) - max);
    out.resize(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = double(x[i]) - max - std::log(sum);
  };
  std::vector<double> lp, lq;
  log_softmax(p_logits, lp);
  log_softmax(q_logits, lq);
  double kl = 0;
  for (int i = 0; i < n; ++i) kl += std::exp(lp[static_cast<std::size_t>(i)]) * (lp[static_cast<std::size_t>(i)] - lq[static_cast<std::size_t>(i)]);
  return kl;
}

int Argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) best = x[i] > x[best] ? i : best;
  return best;
}

void BM_Quality(benchmark::State& state, std::string spec) {
  const Data* data = LoadData();
  if (data == nullptr) {
    state.SkipWithError("stories260K or the TinyStories text not found (QAQ_SHARED_DIR)");
    return;
  }
  const int vocab = data->model.config().vocab_size;
  double kl = 0, agree = 0, ratio = 0, count = 0;
  for (auto _ : state) {
    auto session = Session::Create(data->model, {.n_threads = 1, .kv_cache = spec});
    if (!session.ok()) {
      state.SkipWithError(session.status().message().c_str());
      return;
    }
    for (std::size_t w = 0; w < data->windows.size(); ++w) {
      const std::vector<int>& window = data->windows[w];
      const float* ref = data->reference[w].data();
      session->Truncate(0);
      auto logits = session->Prefill(std::span<const int>(window.data(), kPrompt));
      for (int pos = kPrompt - 1; pos < kWindow - 1; ++pos) {
        if (pos >= kPrompt) logits = session->Decode(window[static_cast<std::size_t>(pos)]);
        const float* r = ref + static_cast<std::size_t>(pos) * static_cast<std::size_t>(vocab);
        kl += Kl(r, logits->data(), vocab);
        agree += Argmax(r, vocab) == Argmax(logits->data(), vocab);
        count += 1;
      }
      ratio += session->kv_cache().Memory().compression_ratio();
    }
  }
  state.counters["kl"] = kl / count;
  state.counters["top1"] = agree / count;
  state.counters["ratio"] = ratio / double(data->windows.size() * state.iterations());
}

std::vector<std::string> Specs() {
  if (const char* env = std::getenv("QAQ_KV_SPECS")) {
    std::vector<std::string> specs;
    std::stringstream in(env);
    std::string spec;
    while (std::getline(in, spec, ';')) {
      if (!spec.empty()) specs.push_back(spec);
    }
    return specs;
  }
  return {"fp16",
          "uniform:8",
          "uniform:4",
          "uniform:4,keys=channel:64,prerope",
          "kivi:4",
          "kivi:2",
          "qaq",
          "qaq,granularity=layer",
          "qaq,granularity=token",
          "qaq,granularity=token,keys=channel:64,prerope"};
}

const bool kRegistered = [] {
  for (const std::string& spec : Specs()) {
    benchmark::RegisterBenchmark(("kv_quality/" + spec).c_str(), BM_Quality, spec)
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
  }
  return true;
}();

}  // namespace
}  // namespace qaq
