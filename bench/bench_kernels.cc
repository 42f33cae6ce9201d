// Kernel speed, scalar reference vs SIMD: matrix-vector products of stories260K's shapes and of a
// 7B-class layer, and the attention products at several context lengths.
//
//   cmake -S . -B build -DQAQ_BUILD_BENCHMARKS=ON && cmake --build build -j2
//   ./build/bin/qaq_bench_kernels --benchmark_filter=MatVec
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "kernels/attention.h"
#include "kernels/matvec.h"
#include "kernels/tensor_rows.h"
#include "kernels/vector_ops.h"

namespace qaq::internal {
namespace {

struct Matrix {
  std::vector<std::byte> bytes;
  TensorView view;
};

Matrix MakeMatrix(TensorType type, std::int64_t rows, std::int64_t cols) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1, 1);
  Matrix m;
  const std::size_t row_bytes = RowBytes(type, cols);
  m.bytes.resize(row_bytes * std::size_t(rows));
  std::vector<float> row(static_cast<std::size_t>(cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = dist(rng);
    EncodeRow(type, row.data(), cols, m.bytes.data() + std::size_t(r) * row_bytes);
  }
  m.view = TensorView{"w", type, m.bytes.data(), rows, cols, m.bytes.size()};
  return m;
}

template <bool kFast>
void BM_MatVec(benchmark::State& state) {
  const auto type = TensorType(state.range(0));
  const Matrix m = MakeMatrix(type, state.range(1), state.range(2));
  std::vector<float> x(static_cast<std::size_t>(state.range(2)), 0.5f);
  std::vector<float> y(static_cast<std::size_t>(state.range(1)));
  for (auto _ : state) {
    if (kFast) {
      MatVec(m.view, x.data(), y.data(), 0, m.view.rows);
    } else {
      MatVecRef(m.view, x.data(), y.data(), 0, m.view.rows);
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(1) * state.range(2));  // multiply-adds
  state.SetLabel(TensorTypeName(type));
}

// {type, rows, cols}: stories260K's wq (64x64), w_gate (172x64), w_down (64x172), classifier
// (512x64), and a 7B layer's wq (4096x4096).
void MatVecShapes(benchmark::internal::Benchmark* b) {
  for (int type : {int(TensorType::kF32), int(TensorType::kF16), int(TensorType::kQ8_0)}) {
    for (auto shape : std::vector<std::pair<int, int>>{{64, 64}, {172, 64}, {64, 172}, {512, 64}, {4096, 4096}}) {
      if (type == int(TensorType::kQ8_0) && shape.second % 32 != 0) continue;
      b->Args({type, shape.first, shape.second});
    }
  }
}

BENCHMARK(BM_MatVec<false>)->Name("MatVecRef")->Apply(MatVecShapes);
BENCHMARK(BM_MatVec<true>)->Name("MatVec")->Apply(MatVecShapes);

// One query head against n cached tokens (head_dim 8 as stories260K, 128 as LLaMA-7B):
// scores, softmax and weighted sum.
template <bool kFast>
void BM_Attention(benchmark::State& state) {
  const int head_dim = int(state.range(0));
  const std::int64_t n = state.range(1);
  const std::int64_t capacity = (n + kKeyBlock - 1) / kKeyBlock * kKeyBlock;
  const auto dim = static_cast<std::size_t>(head_dim);
  const auto tokens = static_cast<std::size_t>(n);
  std::vector<float> keys(std::size_t(capacity) * dim, 0.1f), values(tokens * dim, 0.2f);
  std::vector<float> q(dim, 0.3f), probs(tokens), out(dim);
  for (auto _ : state) {
    if (kFast) {
      Scores(keys.data(), n, head_dim, q.data(), probs.data());
      Softmax(probs.data(), tokens);
      WeightedSum(values.data(), n, head_dim, probs.data(), out.data());
    } else {
      ScoresRef(keys.data(), n, head_dim, q.data(), probs.data());
      SoftmaxRef(probs.data(), tokens);
      WeightedSumRef(values.data(), n, head_dim, probs.data(), out.data());
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);  // tokens attended
}

BENCHMARK(BM_Attention<false>)->Name("AttentionRef")->ArgsProduct({{8, 128}, {64, 256, 4096}});
BENCHMARK(BM_Attention<true>)->Name("Attention")->ArgsProduct({{8, 128}, {64, 256, 4096}});

}  // namespace
}  // namespace qaq::internal
