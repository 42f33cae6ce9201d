// The integer kernels (split_int8_rows.h): the split's error bound, when the kernels run and when
// they leave the work to the float path, and attention-shaped inputs (weights spanning 35 orders
// of magnitude, a query with one huge element) against the scalar references. The general
// shapes, every width and head size, are in packed_dot_test.cc, which runs them on the AVX3_DL
// target too.
#define HWY_WANT_AVX3_DL 1  // before any Highway header, as in split_int8_rows.cc

#include "quant/split_int8_rows.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "qaq/quant.h"
#include "quant/bitpack.h"
#include "quant/fp16.h"
#include "quant/packed_dot_ref.h"

namespace qaq::internal {
namespace {

bool IntegerKernelsAvailable() { return (hwy::SupportedTargets() & HWY_AVX3_DL) != 0; }

struct Rows {
  int bits = 0, n = 0, n_rows = 0;
  std::size_t row_bytes = 0;
  std::vector<std::uint8_t> packed;
  std::vector<AffineMeta> metas;
};

// Rows of random codes (the first row all at the top code, the second all 0) and affine metas.
Rows MakeRows(std::mt19937& rng, int bits, int n, int n_rows) {
  Rows r{bits, n, n_rows, BytesFor(std::size_t(n), bits), {}, {}};
  r.packed.resize(r.row_bytes * std::size_t(n_rows));
  std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
  std::normal_distribution<float> normal;
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(n));
  for (int row = 0; row < n_rows; ++row) {
    for (auto& c : codes) c = std::uint8_t(row == 0 ? (1 << bits) - 1 : row == 1 ? 0 : code(rng));
    PackCodes(codes, bits, r.packed.data() + std::size_t(row) * r.row_bytes);
    r.metas.push_back({normal(rng), std::abs(normal(rng)) * 0.1f});
  }
  return r;
}

const std::uint8_t* RowOf(const Rows& r, int row) { return r.packed.data() + std::size_t(row) * r.row_bytes; }

// Splits x (a multiple of 16 values) and checks every value against the stated bound and every
// level against [-127, 127].
void ExpectSplitWithinTheBound(const std::vector<float>& x, const std::string& label) {
  std::vector<std::int8_t> l0(x.size()), l1(x.size()), l2(x.size());
  float scales[3];
  ASSERT_TRUE(SplitInt8Ref(x.data(), int(x.size()), l0.data(), l1.data(), l2.data(), scales)) << label;
  double max_abs = 0;
  for (float v : x) max_abs = std::max(max_abs, double(std::abs(v)));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double back = double(scales[0]) * l0[i] + double(scales[1]) * l1[i] + double(scales[2]) * l2[i];
    ASSERT_NEAR(back, double(x[i]), kSplitInt8Error * max_abs * (1 + 1e-6)) << label << " i " << i;
    ASSERT_GE(std::min({l0[i], l1[i], l2[i]}), -127) << label << " i " << i;
  }
}

TEST(SplitInt8Test, LevelsReconstructWithinTheStatedBound) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (const float magnitude : {1e-30f, 1e-3f, 1.0f, 3e30f}) {
    for (const int n : {16, 64, 128, 256}) {
      std::vector<float> x(static_cast<std::size_t>(n));
      for (float& v : x) v = normal(rng) * magnitude;
      ExpectSplitWithinTheBound(x, fmt::format("magnitude {} n {}", magnitude, n));
    }
  }
  // Values at and next to the half-way points of every level-1 step (where a rounding could push
  // a level past 127 without the bound in MakeSplitScales), for maxima across a binade.
  for (const float max_abs : {0.5f, 0.75f, 0.999999f, 1.0f, 1.0e-20f * 1.33f}) {
    std::vector<float> x = {max_abs, -max_abs};
    for (int k = -127; k < 127; ++k) {
      const float half = max_abs * (float(k) + 0.5f) / 127.0f;
      x.insert(x.end(), {half, std::nextafter(half, -1.0f), std::nextafter(half, 1.0f)});
    }
    while (x.size() % 16 != 0) x.push_back(0.0f);
    ExpectSplitWithinTheBound(x, fmt::format("half-way points, max {}", max_abs));
  }
  std::vector<float> zeros(32, 0.0f);
  std::vector<std::int8_t> l(32, 5);
  float scales[3] = {1, 1, 1};
  ASSERT_TRUE(SplitInt8Ref(zeros.data(), 32, l.data(), l.data(), l.data(), scales));
  EXPECT_EQ(scales[0], 0.0f);
  EXPECT_EQ(l[7], 0);
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    zeros[3] = bad;
    EXPECT_FALSE(SplitInt8Ref(zeros.data(), 32, l.data(), l.data(), l.data(), scales)) << bad;
  }
}

TEST(SplitInt8Test, RunsWhereTheCpuHasVnniAndLeavesTheRestToTheFloatPath) {
  std::mt19937 rng(2);
  const Rows r = MakeRows(rng, 3, 128, 64);
  std::vector<float> w(64, 0.5f), q(128, 0.25f), out(128, 1.0f), dots(64, 0.0f);
  EXPECT_EQ(AxpyRowsSplitInt8(w.data(), r.packed.data(), r.row_bytes, r.metas.data(), 64, 3, 128, out.data()),
            IntegerKernelsAvailable());
  EXPECT_EQ(DotRowsSplitInt8(q.data(), r.packed.data(), r.row_bytes, 64, 3, 128, dots.data()), IntegerKernelsAvailable());
  // Shapes it does not take: the caller's float path runs instead, nothing is written here.
  const std::vector<float> before = out;
  EXPECT_FALSE(AxpyRowsSplitInt8(w.data(), r.packed.data(), r.row_bytes, r.metas.data(), 64, 3, 96, out.data()));
  EXPECT_FALSE(AxpyRowsSplitInt8(w.data(), r.packed.data(), r.row_bytes, r.metas.data(), kSplitInt8MinRows - 1, 3, 128,
                                 out.data()));
  EXPECT_FALSE(AxpyRowsSplitInt8(w.data(), r.packed.data(), r.row_bytes, r.metas.data(), 64, 0, 128, out.data()));
  // A NaN or Inf weight or query element: the float path carries it through.
  w[40] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(AxpyRowsSplitInt8(w.data(), r.packed.data(), r.row_bytes, r.metas.data(), 64, 3, 128, out.data()));
  q[5] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(DotRowsSplitInt8(q.data(), r.packed.data(), r.row_bytes, 64, 3, 128, dots.data()));
  EXPECT_EQ(out, before);
  AxpyPackedRows(w.data(), r.packed.data(), r.row_bytes, r.metas.data(), 64, 3, 128, out.data());
  EXPECT_TRUE(std::isnan(out[0]));
}

// Attention weights from 1 down to e^-80 (and exact zeros), and a query with one element 10^4
// times the rest: the split is relative to the largest element (per 64-row block for weights),
// so the small ones must still land within the float tolerance of the reference.
TEST(SplitInt8Test, AttentionShapedInputsMatchTheReference) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> log_weight(-80.0f, 0.0f);
  std::normal_distribution<float> normal;
  for (int bits = 1; bits <= 8; ++bits) {
    for (const int n : {64, 128, 256}) {
      for (const int n_rows : {8, 63, 64, 65, 200}) {
        const Rows r = MakeRows(rng, bits, n, n_rows);
        std::vector<float> w(static_cast<std::size_t>(n_rows));
        for (float& v : w) v = std::exp(log_weight(rng));
        w[std::size_t(n_rows / 2)] = 1.0f;
        w[std::size_t(n_rows - 1)] = 0.0f;
        std::vector<float> out(static_cast<std::size_t>(n), 0.0f);
        AxpyPackedRows(w.data(), r.packed.data(), r.row_bytes, r.metas.data(), n_rows, bits, n, out.data());
        std::vector<float> ref(out.size(), 0.0f), magnitude(out.size(), 0.0f);
        for (int row = 0; row < n_rows; ++row) {
          std::vector<float> deq(out.size(), 0.0f);
          AxpyPackedRef(w[std::size_t(row)], RowOf(r, row), bits, r.metas[std::size_t(row)], n, deq.data());
          for (std::size_t i = 0; i < deq.size(); ++i) ref[i] += deq[i], magnitude[i] += std::abs(deq[i]);
        }
        for (std::size_t i = 0; i < out.size(); ++i) {
          ASSERT_NEAR(out[i], ref[i], 1e-5f * magnitude[i]) << "bits " << bits << " n " << n << " rows " << n_rows;
        }

        // A query with an outlier channel 30 times the rest (as LLM queries have): within the
        // float tolerance. One 10^4 times the rest: within the split's stated bound, which is
        // relative to the largest element.
        for (const float spread : {30.0f, 1e4f}) {
          std::vector<float> q(static_cast<std::size_t>(n));
          for (float& v : q) v = normal(rng);
          q[3] = spread;
          float q_sum = 0.0f;
          for (float v : q) q_sum += v;
          std::vector<float> dots(static_cast<std::size_t>(n_rows));
          DotPackedRows(q.data(), q_sum, r.packed.data(), r.row_bytes, r.metas.data(), n_rows, bits, n, dots.data());
          for (int row = 0; row < n_rows; ++row) {
            const AffineMeta m = r.metas[std::size_t(row)];
            std::vector<float> deq(q.size(), 0.0f);
            AxpyPackedRef(1.0f, RowOf(r, row), bits, m, n, deq.data());
            double abs_terms = 0.0, code_sum = 0.0;
            for (std::size_t i = 0; i < q.size(); ++i) {
              abs_terms += std::abs(q[i] * deq[i]);
              code_sum += double(ReadCode(RowOf(r, row), bits, i));
            }
            const double split_bound = spread > 100.0f ? kSplitInt8Error * spread * m.scale * code_sum : 0.0;
            ASSERT_NEAR(dots[std::size_t(row)], DotPackedRef(q.data(), q_sum, RowOf(r, row), bits, m, n),
                        1e-5 * abs_terms + split_bound)
                << "bits " << bits << " n " << n << " row " << row << " spread " << spread;
          }
        }
      }
    }
  }
}

// The one-pass weighted sum of an arena (WeightedSumSplitInt8) against dequantize-then-add: rows
// whose weights come from a probability row through their token numbers (16- and 32-bit, some
// tokens past the row: weight 0), metadata as stored fp16 pairs, 0, 2 or 4 exact outliers per
// row at positions whose code is 0.
TEST(SplitInt8Test, WeightedSumOfAnArenaMatchesDequantizeThenAdd) {
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> log_weight(-60.0f, 0.0f);
  std::normal_distribution<float> normal;
  for (int bits = 0; bits <= 8; ++bits) {
    for (const int n : {64, 128, 256}) {
      for (const int n_rows : {8, 64, 65, 200}) {
        for (const int k : {0, 2, 4}) {
          for (const bool wide_tokens : {false, true}) {
            std::vector<std::uint8_t> codes(static_cast<std::size_t>(n));
            const std::size_t row_bytes = BytesFor(std::size_t(n), bits);
            std::vector<std::uint8_t> packed(row_bytes * std::size_t(n_rows));
            std::vector<GroupMeta> metas;
            std::vector<std::uint16_t> outlier_index;
            std::vector<float> outlier_values;
            std::vector<std::vector<float>> dequantized;
            std::uniform_int_distribution<int> code(0, (1 << bits) - 1), position(0, n - 1);
            for (int row = 0; row < n_rows; ++row) {
              for (auto& c : codes) c = std::uint8_t(code(rng));
              std::vector<std::uint16_t> positions;
              while (int(positions.size()) < k) {
                const auto p = std::uint16_t(position(rng));
                if (std::find(positions.begin(), positions.end(), p) == positions.end()) positions.push_back(p);
              }
              std::sort(positions.begin(), positions.end());
              for (const std::uint16_t p : positions) codes[p] = 0;
              PackCodes(codes, bits, packed.data() + std::size_t(row) * row_bytes);
              const float lo = normal(rng);
              const GroupMeta meta{FloatToFp16(lo), FloatToFp16(lo + std::abs(normal(rng)) + 0.01f)};
              metas.push_back(meta);
              std::vector<float> deq(static_cast<std::size_t>(n), 0.0f);
              AxpyPackedRef(1.0f, packed.data() + std::size_t(row) * row_bytes, bits, AffineFromMeta(meta, bits), n,
                            deq.data());
              for (const std::uint16_t p : positions) {
                outlier_index.push_back(p);
                outlier_values.push_back(deq[p] = 20.0f * normal(rng));
              }
              dequantized.push_back(deq);
            }
            // Tokens: n_rows of first .. first + n_rows + 9 in random order, where the row of
            // probabilities ends at first + n_rows + 4 (32-bit numbers start past 65535).
            const std::uint32_t first = wide_tokens ? 65536u : 0u;
            std::vector<std::uint32_t> tokens(static_cast<std::size_t>(n_rows + 10));
            for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = first + std::uint32_t(i);
            std::shuffle(tokens.begin(), tokens.end(), rng);
            tokens.resize(static_cast<std::size_t>(n_rows));
            const std::uint32_t n_probs = first + std::uint32_t(n_rows + 4);
            std::vector<float> probs(n_probs, 0.0f);
            for (float& p : probs) p = std::exp(log_weight(rng));
            std::vector<std::uint16_t> tokens16(tokens.begin(), tokens.end());

            WeightedRows in;
            in.probs = probs.data();
            in.n_probs = n_probs;
            if (wide_tokens) {
              in.tokens32 = tokens.data();
            } else {
              in.tokens16 = tokens16.data();
            }
            in.metas = metas.data();
            in.codes = packed.data();
            in.row_bytes = row_bytes;
            in.n_rows = n_rows;
            in.bits = bits;
            in.n = n;
            in.outliers = k;
            in.outlier_index = outlier_index.data();
            in.outlier_values = outlier_values.data();
            std::vector<float> out(static_cast<std::size_t>(n), 0.5f);
            ASSERT_EQ(WeightedSumSplitInt8(in, out.data()), IntegerKernelsAvailable());
            if (!IntegerKernelsAvailable()) continue;
            for (int i = 0; i < n; ++i) {
              double ref = 0.5, magnitude = 0.5;
              for (int row = 0; row < n_rows; ++row) {
                const std::uint32_t t = tokens[std::size_t(row)];
                const double term = t < n_probs ? double(probs[t]) * dequantized[std::size_t(row)][std::size_t(i)] : 0.0;
                ref += term, magnitude += std::abs(term);
              }
              ASSERT_NEAR(out[std::size_t(i)], ref, 1e-5 * magnitude)
                  << "bits " << bits << " n " << n << " rows " << n_rows << " outliers " << k << " element " << i;
            }
            // A NaN weight: nothing written, the caller's float path carries it.
            if (n_rows == 65 && k == 2) {
              const std::vector<float> before = out;
              const auto live = std::find_if(tokens.begin(), tokens.end(), [&](std::uint32_t t) { return t < n_probs; });
              probs[*live] = std::numeric_limits<float>::quiet_NaN();
              EXPECT_FALSE(WeightedSumSplitInt8(in, out.data()));
              EXPECT_EQ(out, before);
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace qaq::internal
