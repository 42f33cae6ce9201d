#include "kernels/matvec.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/for_each_target.h"

#include "kernels/half.h"
#include "kernels/tensor_rows.h"

namespace qaq::internal {
namespace {

// A weight matrix of any type built from random floats, owning its bytes.
struct TestMatrix {
  std::vector<std::byte> bytes;
  TensorView view;
};

TestMatrix MakeMatrix(TensorType type, std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  TestMatrix m;
  const std::size_t row_bytes = RowBytes(type, cols);
  m.bytes.resize(row_bytes * rows);
  std::vector<float> row(cols);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = dist(rng);
    EncodeRow(type, row.data(), cols, m.bytes.data() + r * row_bytes);
  }
  m.view = TensorView{"w", type, m.bytes.data(), rows, cols, m.bytes.size()};
  return m;
}

std::vector<float> RandomVector(std::int64_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  return x;
}

// Tolerance for a reordered fp32 sum: a few ulp of the sum of absolute products.
double AbsSum(const TensorView& w, std::int64_t r, const std::vector<float>& x) {
  std::vector<float> row(w.cols);
  DequantizeRow(w, r, row.data());
  double s = 0;
  for (std::int64_t c = 0; c < w.cols; ++c) s += std::fabs(double(row[c]) * x[c]);
  return s;
}

struct Case {
  TensorType type;
  std::int64_t cols;
};
void PrintTo(const Case& c, std::ostream* os) { *os << "type " << int(c.type) << ", cols " << c.cols; }

class MatVecTest : public ::testing::TestWithParam<Case> {};

TEST_P(MatVecTest, FastMatchesReference) {
  ForEachSimdTarget([&] {
    const auto [type, cols] = GetParam();
    const std::int64_t rows = 37;
    TestMatrix m = MakeMatrix(type, rows, cols, 11);
    const auto x = RandomVector(cols, 3);
    std::vector<float> ref(rows), fast(rows);
    MatVecRef(m.view, x.data(), ref.data(), 0, rows);
    MatVec(m.view, x.data(), fast.data(), 0, rows);
    for (std::int64_t r = 0; r < rows; ++r) {
      EXPECT_NEAR(fast[r], ref[r], 4e-7 * AbsSum(m.view, r, x) + 1e-7) << "row " << r;
    }
  });
}

TEST_P(MatVecTest, ReferenceMatchesDoubleDotOfDequantizedRows) {
  const auto [type, cols] = GetParam();
  TestMatrix m = MakeMatrix(type, 5, cols, 12);
  const auto x = RandomVector(cols, 4);
  std::vector<float> ref(5), row(cols);
  MatVecRef(m.view, x.data(), ref.data(), 0, 5);
  for (int r = 0; r < 5; ++r) {
    DequantizeRow(m.view, r, row.data());
    double exact = 0;
    for (std::int64_t c = 0; c < cols; ++c) exact += double(row[c]) * x[c];
    EXPECT_NEAR(ref[r], exact, 1e-6 * AbsSum(m.view, r, x) * double(cols) / 8 + 1e-6);
  }
}

TEST_P(MatVecTest, RowSplitsAndBatchesAreBitIdentical) {
  ForEachSimdTarget([&] {
    const auto [type, cols] = GetParam();
    const std::int64_t rows = 29, batch = 3;
    TestMatrix m = MakeMatrix(type, rows, cols, 13);
    const auto x = RandomVector(cols * batch, 5);
    std::vector<float> whole(rows * batch), parts(rows * batch, -1.0f), batched(rows * batch);
    for (int b = 0; b < batch; ++b) MatVec(m.view, x.data() + b * cols, whole.data() + b * rows, 0, rows);
    for (int b = 0; b < batch; ++b) {
      MatVec(m.view, x.data() + b * cols, parts.data() + b * rows, 0, 10);
      MatVec(m.view, x.data() + b * cols, parts.data() + b * rows, 10, 11);
      MatVec(m.view, x.data() + b * cols, parts.data() + b * rows, 11, rows);
    }
    MatMul(m.view, x.data(), batch, batched.data(), 0, rows);
    EXPECT_EQ(0, std::memcmp(whole.data(), parts.data(), whole.size() * 4));
    EXPECT_EQ(0, std::memcmp(whole.data(), batched.data(), whole.size() * 4));
  });
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  static const char* const kNames[] = {"f32", "f16", "bf16", "q8_0"};
  return std::string(kNames[int(info.param.type)]) + "_" + std::to_string(info.param.cols);
}

INSTANTIATE_TEST_SUITE_P(
    Types, MatVecTest,
    ::testing::Values(Case{TensorType::kF32, 64}, Case{TensorType::kF32, 172}, Case{TensorType::kF32, 7},
                      Case{TensorType::kF32, 1000}, Case{TensorType::kF16, 64}, Case{TensorType::kF16, 172},
                      Case{TensorType::kF16, 5}, Case{TensorType::kBF16, 64}, Case{TensorType::kBF16, 173},
                      Case{TensorType::kQ8_0, 32}, Case{TensorType::kQ8_0, 64}, Case{TensorType::kQ8_0, 288}),
    CaseName);

TEST(TensorRowsTest, EncodeThenDequantize) {
  const std::vector<float> x = {1.0f, -2.5f, 0.1f, 3e-5f, 65504.0f, -1e-9f};
  for (TensorType type : {TensorType::kF32, TensorType::kF16, TensorType::kBF16}) {
    std::vector<std::byte> row(RowBytes(type, 6));
    EncodeRow(type, x.data(), 6, row.data());
    TensorView w{"w", type, row.data(), 1, 6, row.size()};
    std::vector<float> back(6);
    DequantizeRow(w, 0, back.data());
    for (int i = 0; i < 6; ++i) {
      const float expected = type == TensorType::kF32   ? x[i]
                             : type == TensorType::kF16 ? HalfToFloatRef(FloatToHalfRef(x[i]))
                                                        : BFloat16ToFloatRef(FloatToBFloat16Ref(x[i]));
      EXPECT_EQ(back[i], expected) << int(type) << " " << i;
    }
  }
  EXPECT_EQ(RowBytes(TensorType::kF16, 6), 12u);
}

TEST(Q8_0Test, QuantizeRoundTripErrorIsAtMostHalfAStep) {
  const auto x = RandomVector(96, 9);
  std::vector<std::byte> q(RowBytes(TensorType::kQ8_0, 96));
  QuantizeRowQ8_0(x.data(), 96, q.data());
  TensorView w{"q", TensorType::kQ8_0, q.data(), 1, 96, q.size()};
  std::vector<float> back(96);
  DequantizeRow(w, 0, back.data());
  for (int b = 0; b < 3; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[b * 32 + j]));
    const float step = amax / 127.0f;
    // half a step, plus the fp16 rounding of the scale (2^-11 relative) times 127 steps
    for (int j = 0; j < 32; ++j) EXPECT_NEAR(back[b * 32 + j], x[b * 32 + j], 0.5f * step + amax * 1e-3f);
  }
  EXPECT_EQ(RowBytes(TensorType::kQ8_0, 96), 3u * 34u);
}

}  // namespace
}  // namespace qaq::internal
