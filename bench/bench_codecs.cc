// Codec hot loops: attention scores (q . dequant(K[t])) and weighted sums (sum_t w_t V[t]) on
// packed codes, per bit width, against fp32 and fp16 dot products and the scalar references.
// One (layer, KV head) of T tokens stored back to back, as a cache would hold it.
//
//   bench_codecs --benchmark_filter='Dot' --benchmark_min_time=0.2
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "qaq/quant.h"
#include "quant/fp16.h"
#include "quant/packed_dot_ref.h"

namespace qaq {
namespace {

constexpr int kTokens = 1024;

struct Rows {
  int bits, n;
  std::size_t row_bytes;
  std::vector<std::uint8_t> codes;
  std::vector<AffineMeta> metas;
  std::vector<float> q, w, f32;
  std::vector<std::uint16_t> f16;
};

Rows MakeRows(int bits, int n) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> normal;
  Rows r{bits, n, BytesFor(static_cast<std::size_t>(n), bits), {}, {}, {}, {}, {}, {}};
  r.codes.resize(r.row_bytes * kTokens);
  for (auto& c : r.codes) c = static_cast<std::uint8_t>(byte(rng));
  r.metas.resize(kTokens);
  for (auto& m : r.metas) m = {normal(rng), 0.01f};
  r.q.resize(static_cast<std::size_t>(n));
  for (auto& v : r.q) v = normal(rng);
  r.w.resize(kTokens);
  for (auto& v : r.w) v = 1.0f / kTokens;
  r.f32.resize(static_cast<std::size_t>(n) * kTokens);
  r.f16.resize(r.f32.size());
  for (std::size_t i = 0; i < r.f32.size(); ++i) {
    r.f32[i] = normal(rng);
    r.f16[i] = internal::FloatToFp16(r.f32[i]);
  }
  return r;
}

void SetCounters(benchmark::State& state, std::size_t bytes_per_row) {
  state.SetItemsProcessed(state.iterations() * kTokens);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * kTokens * static_cast<std::int64_t>(bytes_per_row));
}

// Scores of one query against T packed keys.
void BM_DotPackedRows(benchmark::State& state) {
  const Rows r = MakeRows(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  std::vector<float> out(kTokens);
  float q_sum = 0;
  for (float v : r.q) q_sum += v;
  for (auto _ : state) {
    DotPackedRows(r.q.data(), q_sum, r.codes.data(), r.row_bytes, r.metas.data(), kTokens, r.bits, r.n, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  SetCounters(state, r.row_bytes);
}

// The scalar reference, one token at a time.
void BM_DotPackedRef(benchmark::State& state) {
  const Rows r = MakeRows(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  std::vector<float> out(kTokens);
  float q_sum = 0;
  for (float v : r.q) q_sum += v;
  for (auto _ : state) {
    for (int t = 0; t < kTokens; ++t) {
      out[static_cast<std::size_t>(t)] = internal::DotPackedRef(r.q.data(), q_sum, r.codes.data() + static_cast<std::size_t>(t) * r.row_bytes,
                                                                r.bits, r.metas[static_cast<std::size_t>(t)], r.n);
    }
    benchmark::DoNotOptimize(out.data());
  }
  SetCounters(state, r.row_bytes);
}

// Weighted sum of T packed values into one output row.
void BM_AxpyPackedRows(benchmark::State& state) {
  const Rows r = MakeRows(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  std::vector<float> out(static_cast<std::size_t>(r.n));
  for (auto _ : state) {
    std::fill(out.begin(), out.end(), 0.0f);
    AxpyPackedRows(r.w.data(), r.codes.data(), r.row_bytes, r.metas.data(), kTokens, r.bits, r.n, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  SetCounters(state, r.row_bytes);
}

void BM_AxpyPackedRef(benchmark::State& state) {
  const Rows r = MakeRows(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  std::vector<float> out(static_cast<std::size_t>(r.n));
  for (auto _ : state) {
    std::fill(out.begin(), out.end(), 0.0f);
    for (int t = 0; t < kTokens; ++t) {
      internal::AxpyPackedRef(r.w[static_cast<std::size_t>(t)], r.codes.data() + static_cast<std::size_t>(t) * r.row_bytes, r.bits,
                              r.metas[static_cast<std::size_t>(t)], r.n, out.data());
    }
    benchmark::DoNotOptimize(out.data());
  }
  SetCounters(state, r.row_bytes);
}

// Tokens of mixed widths (2, 3, 4 and 8 bits in turn), one descriptor per token.
void BM_DotPackedMixed(benchmark::State& state) {
  const int n = static_cast<int>(state.range(1));
  const int widths[] = {2, 3, 4, 8};
  std::vector<Rows> storage;
  for (int b : widths) storage.push_back(MakeRows(b, n));
  std::vector<PackedRowRef> rows(kTokens);
  std::size_t bytes = 0;
  for (int t = 0; t < kTokens; ++t) {
    const Rows& s = storage[static_cast<std::size_t>(t % 4)];
    rows[static_cast<std::size_t>(t)] = {s.codes.data() + static_cast<std::size_t>(t) * s.row_bytes, s.metas[static_cast<std::size_t>(t)], s.bits};
    bytes += s.row_bytes;
  }
  std::vector<float> out(kTokens);
  const std::vector<float>& q = storage[0].q;
  float q_sum = 0;
  for (float v : q) q_sum += v;
  for (auto _ : state) {
    DotPackedMixed(q.data(), q_sum, rows.data(), kTokens, n, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  SetCounters(state, bytes / kTokens);
}

// Baselines: the same scores on an fp32 and an fp16 cache.
void BM_DotF32Rows(benchmark::State& state) {
  const Rows r = MakeRows(8, static_cast<int>(state.range(1)));
  std::vector<float> out(kTokens);
  for (auto _ : state) {
    for (int t = 0; t < kTokens; ++t) {
      out[static_cast<std::size_t>(t)] = DotF32(r.q.data(), r.f32.data() + static_cast<std::size_t>(t) * static_cast<std::size_t>(r.n), r.n);
    }
    benchmark::DoNotOptimize(out.data());
  }
  SetCounters(state, 4 * static_cast<std::size_t>(r.n));
}

void BM_DotF16Rows(benchmark::State& state) {
  const Rows r = MakeRows(8, static_cast<int>(state.range(1)));
  std::vector<float> out(kTokens);
  for (auto _ : state) {
    for (int t = 0; t < kTokens; ++t) {
      out[static_cast<std::size_t>(t)] = DotF16(r.q.data(), r.f16.data() + static_cast<std::size_t>(t) * static_cast<std::size_t>(r.n), r.n);
    }
    benchmark::DoNotOptimize(out.data());
  }
  SetCounters(state, 2 * static_cast<std::size_t>(r.n));
}

void WidthsAndHeads(benchmark::internal::Benchmark* b) {
  for (int head_dim : {8, 64, 128}) {
    for (int bits : {0, 1, 2, 3, 4, 5, 6, 7, 8, kPassThroughBits}) b->Args({bits, head_dim});
  }
}

void HeadsOnly(benchmark::internal::Benchmark* b) {
  for (int head_dim : {8, 64, 128}) b->Args({0, head_dim});
}

void FewWidths(benchmark::internal::Benchmark* b) {
  for (int head_dim : {8, 64, 128}) {
    for (int bits : {2, 4, 8}) b->Args({bits, head_dim});
  }
}

BENCHMARK(BM_DotPackedRows)->Apply(WidthsAndHeads)->ArgNames({"bits", "head_dim"});
BENCHMARK(BM_AxpyPackedRows)->Apply(WidthsAndHeads)->ArgNames({"bits", "head_dim"});
BENCHMARK(BM_DotPackedMixed)->Apply(HeadsOnly)->ArgNames({"", "head_dim"});
BENCHMARK(BM_DotPackedRef)->Apply(FewWidths)->ArgNames({"bits", "head_dim"});
BENCHMARK(BM_AxpyPackedRef)->Apply(FewWidths)->ArgNames({"bits", "head_dim"});
BENCHMARK(BM_DotF32Rows)->Apply(HeadsOnly)->ArgNames({"", "head_dim"});
BENCHMARK(BM_DotF16Rows)->Apply(HeadsOnly)->ArgNames({"", "head_dim"});

}  // namespace
}  // namespace qaq

BENCHMARK_MAIN();
