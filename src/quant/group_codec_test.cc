#include <algorithm>
#include <cstdio>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "qaq/quant.h"
#include "quant/fp16.h"

namespace qaq {
namespace {

std::vector<float> Decode(const PackedGroup& g) {
  std::vector<float> out(static_cast<std::size_t>(g.size));
  DecodeGroup(g, out);
  return out;
}

TEST(GroupCodecTest, OutliersPerSideRule) {
  // round(alpha/2 * n), halves up, at most (n - 1) / 2.
  EXPECT_EQ(OutliersPerSide(8, 0.01), 0);     // 0.04
  EXPECT_EQ(OutliersPerSide(64, 0.01), 0);    // 0.32
  EXPECT_EQ(OutliersPerSide(100, 0.01), 1);   // 0.5: halves up
  EXPECT_EQ(OutliersPerSide(128, 0.01), 1);   // 0.64
  EXPECT_EQ(OutliersPerSide(300, 0.01), 2);   // 1.5
  EXPECT_EQ(OutliersPerSide(4096, 0.01), 20);  // 20.48
  EXPECT_EQ(OutliersPerSide(8, 0.25), 1);
  EXPECT_EQ(OutliersPerSide(8, 0.5), 2);
  EXPECT_EQ(OutliersPerSide(10, 0.1), 1);     // 0.5
  EXPECT_EQ(OutliersPerSide(5, 0.99), 2);     // 2.475, and the cap (5 - 1) / 2 = 2
  EXPECT_EQ(OutliersPerSide(2, 1.0), 0);      // cap: one value must stay
  EXPECT_EQ(OutliersPerSide(0, 0.5), 0);
  EXPECT_EQ(OutliersPerSide(1000, 0.0), 0);
}

// A group worked out by hand: 0..7 at 3 bits. min 0 and max 7 are exact in fp16, s = 7/8,
// reconstruction points 0.4375 + 0.875 c.
TEST(GroupCodecTest, HandExampleThreeBits) {
  const std::vector<float> x = {0, 1, 2, 3, 4, 5, 6, 7};
  auto g = EncodeGroup(x, 3, 0.0);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(internal::Fp16ToFloat(g->meta.min_fp16), 0.0f);
  EXPECT_EQ(internal::Fp16ToFloat(g->meta.max_fp16), 7.0f);
  const AffineMeta m = AffineFromMeta(g->meta, 3);
  EXPECT_EQ(m.scale, 0.875f);
  EXPECT_EQ(m.offset, 0.4375f);
  std::vector<std::uint8_t> codes(8);
  UnpackCodes(g->codes.data(), 3, codes);
  EXPECT_EQ(codes, (std::vector<std::uint8_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(Decode(*g), (std::vector<float>{0.4375f, 1.3125f, 2.1875f, 3.0625f, 3.9375f, 4.8125f,
                                             5.6875f, 6.5625f}));
  EXPECT_EQ(g->bytes(), 3u + 4u);  // 24 bits of codes + two fp16
}

TEST(GroupCodecTest, ZeroBitsStoresOnlyTheMidpoint) {
  const std::vector<float> x = {1, 2, 3, 10};
  auto g = EncodeGroup(x, 0, 0.0);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(g->codes.empty());
  EXPECT_EQ(Decode(*g), (std::vector<float>(4, 5.5f)));
  EXPECT_EQ(g->bytes(), 4u);
}

TEST(GroupCodecTest, MetadataRoundsOutwardAndIsUsedConsistently) {
  // 0.1 and 0.3 are not fp16 values: min goes down, max goes up, every value stays inside.
  const std::vector<float> x = {0.1f, 0.2f, 0.3f, 0.15f};
  GroupQuantizer quantizer(0.0);
  const GroupAnalysis& a = quantizer.Analyze(x);
  EXPECT_EQ(a.min, 0.0999755859375f);
  EXPECT_EQ(a.max, 0.300048828125f);
  EXPECT_EQ(a.range(), a.max - a.min);
  for (float v : x) {
    EXPECT_LE(a.min, v);
    EXPECT_GE(a.max, v);
  }
  const PackedGroup g = quantizer.Pack(x, 2);
  const AffineMeta m = AffineFromMeta(g.meta, 2);
  EXPECT_EQ(m.scale, std::ldexp(a.max - a.min, -2));
  const auto back = Decode(g);
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_LE(std::abs(back[i] - x[i]), 0.5f * m.scale);
}

TEST(GroupCodecTest, OutliersAreKeptExactlyWithPositions) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> x(128);
  for (auto& v : x) v = normal(rng);
  x[17] = 1000.0f;  // the largest
  x[90] = -50.0f;   // the smallest
  auto g = EncodeGroup(x, 4, 0.01);  // one per side at n = 128
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->outliers.size(), 2u);
  EXPECT_EQ(g->outliers[0].index, 17u);
  EXPECT_EQ(g->outliers[0].value, 1000.0f);
  EXPECT_EQ(g->outliers[1].index, 90u);
  EXPECT_EQ(g->outliers[1].value, -50.0f);
  const auto back = Decode(*g);
  EXPECT_EQ(back[17], 1000.0f);
  EXPECT_EQ(back[90], -50.0f);
  // The range excludes them: all other values are normal, far below 50.
  GroupQuantizer quantizer(0.01);
  EXPECT_LT(quantizer.Analyze(x).range(), 10.0f);
  EXPECT_EQ(g->bytes(), 64u + 4u + 2u * 6u);
}

TEST(GroupCodecTest, TiesAreBrokenByPosition) {
  const std::vector<float> x(10, 2.5f);
  auto g = EncodeGroup(x, 2, 0.2);  // one per side
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->outliers.size(), 2u);
  EXPECT_EQ(g->outliers[0].index, 0u);  // the "smallest": lowest position
  EXPECT_EQ(g->outliers[1].index, 9u);  // the "largest": highest position
  for (float v : Decode(*g)) EXPECT_EQ(v, 2.5f);  // 2.5 is an fp16 value: range 0, exact
}

// The outliers are the first and last k values in (value, position) order, whichever way Analyze
// finds them (one pass for k = 1, selection otherwise): checked against a full sort on groups
// full of ties.
TEST(GroupCodecTest, OutliersEqualAFullSortForEveryCount) {
  std::mt19937 rng(5);
  for (const int n : {3, 8, 100, 128, 160, 299, 300, 700}) {
    for (const double alpha : {0.01, 0.05, 0.3}) {
      for (int rep = 0; rep < 20; ++rep) {
        std::vector<float> x(static_cast<std::size_t>(n));
        std::uniform_int_distribution<int> level(0, rep % 2 == 0 ? 4 : 1000);
        for (float& v : x) v = 0.25f * float(level(rng));
        std::vector<std::uint32_t> order(x.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = std::uint32_t(i);
        std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
          return x[a] < x[b] || (x[a] == x[b] && a < b);
        });
        const std::size_t k = std::min<std::size_t>(OutliersPerSide(x.size(), alpha), (x.size() - 1) / 2);
        std::vector<std::uint32_t> want(order.begin(), order.begin() + std::ptrdiff_t(k));
        want.insert(want.end(), order.end() - std::ptrdiff_t(k), order.end());
        std::sort(want.begin(), want.end());
        GroupQuantizer q(alpha);
        std::vector<std::uint32_t> got;
        for (const Outlier& o : q.Analyze(x).outliers) got.push_back(o.index);
        ASSERT_EQ(got, want) << "n " << n << " alpha " << alpha << " rep " << rep;
      }
    }
  }
}

TEST(GroupCodecTest, NonFiniteAndHugeValuesAreOutliers) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {1.0f, nan, 2.0f, inf, -inf, 1e6f, 3.0f, -70000.0f};
  auto g = EncodeGroup(x, 2, 0.0);
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->outliers.size(), 5u);
  const auto back = Decode(*g);
  EXPECT_TRUE(std::isnan(back[1]));
  EXPECT_EQ(back[3], inf);
  EXPECT_EQ(back[4], -inf);
  EXPECT_EQ(back[5], 1e6f);
  EXPECT_EQ(back[7], -70000.0f);
  GroupQuantizer quantizer(0.0);
  const GroupAnalysis& a = quantizer.Analyze(x);
  EXPECT_EQ(a.min, 1.0f);
  EXPECT_EQ(a.max, 3.0f);
  // Nothing finite at all: metadata 0, everything exact.
  const std::vector<float> all_bad = {nan, inf};
  auto g2 = EncodeGroup(all_bad, 3, 0.5);
  ASSERT_TRUE(g2.ok());
  const auto back2 = Decode(*g2);
  EXPECT_TRUE(std::isnan(back2[0]));
  EXPECT_EQ(back2[1], inf);
}

TEST(GroupCodecTest, PassThroughIsFp16) {
  const std::vector<float> x = {0.1f, -3.0f, 1e5f, 65504.0f};
  auto g = EncodeGroup(x, kPassThroughBits, 0.0);
  ASSERT_TRUE(g.ok());
  const auto back = Decode(*g);
  EXPECT_EQ(back[0], internal::Fp16ToFloat(internal::FloatToFp16(0.1f)));
  EXPECT_EQ(back[1], -3.0f);
  EXPECT_EQ(back[2], 1e5f);  // beyond fp16: kept as an outlier
  EXPECT_EQ(back[3], 65504.0f);
  EXPECT_EQ(g->bytes(), 8u + 6u);
}

TEST(GroupCodecTest, SizeAccountingHandCounts) {
  EXPECT_EQ(GroupBytes(8, 3, 0), 3u + 4u);
  EXPECT_EQ(GroupBytes(8, 0, 0), 4u);
  EXPECT_EQ(GroupBytes(128, 4, 2), 64u + 4u + 12u);
  EXPECT_EQ(GroupBytes(64, 5, 1), 40u + 4u + 6u);
  EXPECT_EQ(GroupBytes(65536, 1, 1), 8192u + 4u + 6u);
  EXPECT_EQ(GroupBytes(70000, 1, 1), 8750u + 4u + 8u);  // positions need 32 bits
  EXPECT_EQ(GroupBytes(8, kPassThroughBits, 1), 16u + 6u);
  EXPECT_EQ(OutlierBytes(8), 6u);
}

TEST(GroupCodecTest, InvalidArgumentsAreStatuses) {
  const std::vector<float> x = {1, 2};
  EXPECT_EQ(EncodeGroup(x, 9, 0.0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeGroup(x, -1, 0.0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeGroup(x, 15, 0.0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeGroup(x, 4, 1.0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeGroup(x, 4, -0.1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeGroup(x, 4, std::nan("")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(EncodeGroup({}, 4, 0.0).ok());  // an empty group is valid and stores metadata only
}

// §6: lowering the width by dropping low code bits equals quantizing the values at the lower
// width directly (same metadata: the segments nest).
TEST(GroupCodecTest, RequantizingDownEqualsDirectQuantization) {
  std::mt19937 rng(8);
  std::normal_distribution<float> normal;
  std::vector<float> x(128);
  std::size_t compared = 0, different = 0;
  for (int rep = 0; rep < 50; ++rep) {
    for (auto& v : x) v = normal(rng);
    GroupQuantizer q(0.01);
    q.Analyze(x);
    for (int from = 1; from <= kMaxCodeBits; ++from) {
      const PackedGroup high = q.Pack(x, from);
      for (int to = 0; to < from; ++to) {
        const PackedGroup direct = q.Pack(x, to);
        PackedGroup lowered = high;
        lowered.bits = to;
        lowered.codes.assign(BytesFor(x.size(), to), 0);
        RequantizeCodesDown(high.codes.data(), x.size(), from, to, lowered.codes.data());
        std::vector<std::uint8_t> a(x.size()), b(x.size());
        UnpackCodes(direct.codes.data(), to, a);
        UnpackCodes(lowered.codes.data(), to, b);
        for (std::size_t i = 0; i < x.size(); ++i) {
          ++compared;
          different += a[i] != b[i];
        }
        // Either way the error bound of the lower width holds.
        std::vector<float> back(x.size());
        DecodeGroup(lowered, back);
        const float s = AffineFromMeta(lowered.meta, to).scale;
        for (std::size_t i = 0; i < x.size(); ++i) ASSERT_LE(std::abs(back[i] - x[i]), 0.5f * s * (1 + 1e-5f) + 1e-6f);
      }
    }
  }
  // Only values within float rounding of a segment edge may land on the other side.
  EXPECT_LE(different, compared / 100000) << different << " of " << compared;
  std::printf("requantized codes differing from direct quantization: %zu of %zu\n", different, compared);
}

// Groups that break naive quantizers, at the head widths of real models.
std::vector<std::vector<float>> AdversarialGroups(std::mt19937& rng) {
  std::vector<std::vector<float>> groups;
  std::normal_distribution<float> normal;
  std::exponential_distribution<float> expo(1.0f);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int n : {8, 64, 128}) {
    std::vector<float> g(static_cast<std::size_t>(n));
    for (auto& v : g) v = normal(rng);
    groups.push_back(g);  // Gaussian
    for (auto& v : g) v = uniform(rng) * 1000.0f;
    groups.push_back(g);  // wide uniform
    for (auto& v : g) v = expo(rng) * expo(rng) * 3.0f;
    groups.push_back(g);  // skewed
    std::fill(g.begin(), g.end(), 0.3f);
    groups.push_back(g);  // constant (not an fp16 value)
    g[static_cast<std::size_t>(n) / 2] = 7.0f;
    groups.push_back(g);  // all equal but one
    for (auto& v : g) v = normal(rng) * 0.01f;
    g[3] = 3000.0f;
    groups.push_back(g);  // one huge value
    for (auto& v : g) v = 100.0f + normal(rng) * 0.001f;
    groups.push_back(g);  // large offset, tiny spread: fp16 metadata dominates
  }
  return groups;
}

// Max error <= half a segment for every width; outliers exact; codes round-trip.
TEST(GroupCodecTest, PropertyMaxErrorIsHalfASegment) {
  std::mt19937 rng(5);
  for (const auto& x : AdversarialGroups(rng)) {
    for (double alpha : {0.0, 0.01, 0.25}) {
      for (int bits = 0; bits <= kMaxCodeBits; ++bits) {
        auto g = EncodeGroup(x, bits, alpha);
        ASSERT_TRUE(g.ok());
        const AffineMeta m = AffineFromMeta(g->meta, bits);
        const auto back = Decode(*g);
        std::vector<bool> is_outlier(x.size(), false);
        for (const Outlier& o : g->outliers) {
          is_outlier[o.index] = true;
          EXPECT_EQ(back[o.index], x[o.index]);
        }
        EXPECT_EQ(g->outliers.size(), 2u * static_cast<std::size_t>(OutliersPerSide(x.size(), alpha)));
        for (std::size_t i = 0; i < x.size(); ++i) {
          if (is_outlier[i]) continue;
          // Half a segment, plus float rounding of the reconstruction (a few ulps of |x|).
          const float bound = 0.5f * m.scale * (1.0f + 1e-5f) + 4e-7f * std::abs(x[i]);
          ASSERT_LE(std::abs(back[i] - x[i]), bound) << "bits " << bits << " n " << x.size() << " i " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace qaq
