// The kernels of split_int8_rows.cc exist for Highway's AVX3_DL target only: list it too.
#define HWY_WANT_AVX3_DL 1

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "qaq/quant.h"
#include "quant/bitpack.h"
#include "quant/channel_dot.h"
#include "quant/fp16.h"
#include "quant/lane_plan.h"
#include "quant/packed_dot_ref.h"
#include "quant/rotated_dot.h"

namespace qaq {
namespace {

// Tolerance of the fast kernels against the references: they add in a different order, so the
// difference is bounded by float rounding of sum |q_i x_i| (relative 1e-5 is ~100 ulps).
constexpr float kRelTol = 1e-5f;

// Runs `body` once for every SIMD target compiled into qaq and supported by this CPU, as on a CPU
// whose best target it is: that target and every lesser one enabled, so that a file compiled
// without it (AVX3_DL exists only for split_int8_rows.cc) takes the next one down.
template <typename Body>
void ForEachTarget(Body body) {
  const std::int64_t supported = hwy::SupportedTargets();
  for (std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(supported & ~(target - 1));
    SCOPED_TRACE(hwy::TargetName(target));
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
}

struct RandomRows {
  int bits, n, n_rows;
  std::size_t row_bytes;
  std::vector<std::uint8_t> packed;
  std::vector<AffineMeta> metas;
  std::vector<float> q, w;
};

RandomRows MakeRows(std::mt19937& rng, int bits, int n, int n_rows) {
  RandomRows r{bits, n, n_rows, BytesFor(static_cast<std::size_t>(n), bits), {}, {}, {}, {}};
  // Rows back to back, plus slack so that an over-read would be caught by sanitizers only past it.
  r.packed.resize(r.row_bytes * static_cast<std::size_t>(n_rows));
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> normal;
  if (bits == kPassThroughBits) {
    for (std::size_t i = 0; i < r.packed.size() / 2; ++i) {
      const std::uint16_t h = internal::FloatToFp16(normal(rng));
      std::memcpy(r.packed.data() + 2 * i, &h, 2);
    }
  } else {
    std::vector<std::uint8_t> codes(static_cast<std::size_t>(n));
    std::uniform_int_distribution<int> code(0, bits == 0 ? 0 : (1 << bits) - 1);
    for (int row = 0; row < n_rows; ++row) {
      for (auto& c : codes) c = static_cast<std::uint8_t>(code(rng));
      PackCodes(codes, bits, r.packed.data() + static_cast<std::size_t>(row) * r.row_bytes);
    }
  }
  for (int row = 0; row < n_rows; ++row) r.metas.push_back({normal(rng), std::abs(normal(rng)) * 0.1f});
  r.q.resize(static_cast<std::size_t>(n));
  for (auto& v : r.q) v = normal(rng);
  r.w.resize(static_cast<std::size_t>(n_rows));
  for (auto& v : r.w) v = std::abs(normal(rng));
  return r;
}

float SumOf(const std::vector<float>& v) {
  float s = 0;
  for (float x : v) s += x;
  return s;
}

// sum_i |q_i| |dequant_i|: the scale of the rounding error of any summation order.
float AbsDotScale(const RandomRows& r, int row) {
  const std::uint8_t* codes = r.packed.data() + static_cast<std::size_t>(row) * r.row_bytes;
  std::vector<float> ones(r.q.size()), deq(r.q.size(), 0.0f);
  internal::AxpyPackedRef(1.0f, codes, r.bits, r.metas[static_cast<std::size_t>(row)], r.n, deq.data());
  float s = 0;
  for (std::size_t i = 0; i < deq.size(); ++i) s += std::abs(r.q[i] * deq[i]);
  return s + 1e-30f;
}

const std::vector<int> kWidths = {0, 1, 2, 3, 4, 5, 6, 7, 8, kPassThroughBits};
const std::vector<int> kSizes = {1, 3, 7, 8, 9, 15, 16, 17, 24, 32, 64, 100, 128, 256};

// The reference itself against dequantize-then-dot (the definition).
TEST(PackedDotTest, ReferenceEqualsDequantizeThenDot) {
  std::mt19937 rng(1);
  for (int bits : kWidths) {
    for (int n : kSizes) {
      RandomRows r = MakeRows(rng, bits, n, 1);
      std::vector<float> deq(static_cast<std::size_t>(n), 0.0f);
      internal::AxpyPackedRef(1.0f, r.packed.data(), bits, r.metas[0], n, deq.data());
      float expected = 0;
      for (int i = 0; i < n; ++i) expected += r.q[static_cast<std::size_t>(i)] * deq[static_cast<std::size_t>(i)];
      const float got = internal::DotPackedRef(r.q.data(), SumOf(r.q), r.packed.data(), bits, r.metas[0], n);
      EXPECT_NEAR(got, expected, kRelTol * AbsDotScale(r, 0)) << bits << " " << n;
    }
  }
}

TEST(PackedDotTest, FastDotMatchesReferenceOnEveryTarget) {
  ForEachTarget([] {
    std::mt19937 rng(2);
    for (int bits : kWidths) {
      for (int n : kSizes) {
        RandomRows r = MakeRows(rng, bits, n, 5);
        const float q_sum = SumOf(r.q);
        std::vector<float> rows(5);
        DotPackedRows(r.q.data(), q_sum, r.packed.data(), r.row_bytes, r.metas.data(), 5, bits, n, rows.data());
        for (int row = 0; row < 5; ++row) {
          const std::uint8_t* codes = r.packed.data() + static_cast<std::size_t>(row) * r.row_bytes;
          const AffineMeta m = r.metas[static_cast<std::size_t>(row)];
          const float ref = internal::DotPackedRef(r.q.data(), q_sum, codes, bits, m, n);
          const float tol = kRelTol * AbsDotScale(r, row);
          ASSERT_NEAR(DotPacked(r.q.data(), q_sum, codes, bits, m, n), ref, tol) << bits << " " << n;
          ASSERT_NEAR(rows[static_cast<std::size_t>(row)], ref, tol) << bits << " " << n << " row " << row;
        }
      }
    }
  });
}

TEST(PackedDotTest, FastAxpyMatchesReferenceOnEveryTarget) {
  ForEachTarget([] {
    std::mt19937 rng(3);
    for (int bits : kWidths) {
      for (int n : kSizes) {
        RandomRows r = MakeRows(rng, bits, n, 4);
        std::vector<float> start(static_cast<std::size_t>(n));
        std::normal_distribution<float> normal;
        for (auto& v : start) v = normal(rng);
        std::vector<float> ref = start, fast_rows = start, magnitude(static_cast<std::size_t>(n));
        for (int row = 0; row < 4; ++row) {
          const std::uint8_t* codes = r.packed.data() + static_cast<std::size_t>(row) * r.row_bytes;
          const AffineMeta m = r.metas[static_cast<std::size_t>(row)];
          const float w = r.w[static_cast<std::size_t>(row)];
          std::vector<float> single = ref;
          internal::AxpyPackedRef(w, codes, bits, m, n, ref.data());
          AxpyPacked(w, codes, bits, m, n, single.data());
          std::vector<float> deq(static_cast<std::size_t>(n), 0.0f);
          internal::AxpyPackedRef(w, codes, bits, m, n, deq.data());
          for (int i = 0; i < n; ++i) {
            const auto k = static_cast<std::size_t>(i);
            magnitude[k] += std::abs(deq[k]);
            ASSERT_NEAR(single[k], ref[k], kRelTol * (std::abs(ref[k]) + std::abs(deq[k])) + 1e-30f);
          }
        }
        AxpyPackedRows(r.w.data(), r.packed.data(), r.row_bytes, r.metas.data(), 4, bits, n, fast_rows.data());
        for (int i = 0; i < n; ++i) {
          const auto k = static_cast<std::size_t>(i);
          ASSERT_NEAR(fast_rows[k], ref[k], kRelTol * (std::abs(start[k]) + magnitude[k]) + 1e-30f)
              << bits << " " << n;
        }
      }
    }
  });
}

// Many rows at head-dim sizes (the four-row kernels and their zero-padded last rows, short rows
// stacked in one vector with a remainder).
TEST(PackedDotTest, ManyRowsMatchReferenceOnEveryTarget) {
  ForEachTarget([] {
    std::mt19937 rng(7);
    for (int bits : kWidths) {
      for (int n : {32, 40, 64, 96, 128, 136, 256}) {
        for (int n_rows : {1, 4, 5, 7, 8, 13, 16, 35, 64}) {
          RandomRows r = MakeRows(rng, bits, n, n_rows);
          const float q_sum = SumOf(r.q);
          std::vector<float> dots(static_cast<std::size_t>(n_rows));
          DotPackedRows(r.q.data(), q_sum, r.packed.data(), r.row_bytes, r.metas.data(), n_rows, bits, n, dots.data());
          std::vector<float> out(static_cast<std::size_t>(n), 0.25f), ref = out, magnitude(out.size(), 0.25f);
          AxpyPackedRows(r.w.data(), r.packed.data(), r.row_bytes, r.metas.data(), n_rows, bits, n, out.data());
          for (int row = 0; row < n_rows; ++row) {
            const std::uint8_t* codes = r.packed.data() + static_cast<std::size_t>(row) * r.row_bytes;
            const AffineMeta m = r.metas[static_cast<std::size_t>(row)];
            ASSERT_NEAR(dots[static_cast<std::size_t>(row)], internal::DotPackedRef(r.q.data(), q_sum, codes, bits, m, n),
                        kRelTol * AbsDotScale(r, row))
                << bits << " " << n << " rows " << n_rows << " row " << row;
            std::vector<float> deq(static_cast<std::size_t>(n), 0.0f);
            internal::AxpyPackedRef(r.w[static_cast<std::size_t>(row)], codes, bits, m, n, deq.data());
            for (std::size_t i = 0; i < deq.size(); ++i) {
              ref[i] += deq[i];
              magnitude[i] += std::abs(deq[i]);
            }
          }
          for (std::size_t i = 0; i < out.size(); ++i) {
            ASSERT_NEAR(out[i], ref[i], kRelTol * magnitude[i]) << bits << " " << n << " rows " << n_rows << " " << i;
          }
        }
      }
    }
  });
}

// RoPE-shaped tables for angle r * theta_j on pair j: cos = (c, c), sin = (-s, s) per pair.
void RotationTables(const std::vector<double>& theta, int r, float* cos, float* sin) {
  for (std::size_t j = 0; j < theta.size(); ++j) {
    const double c = std::cos(double(r) * theta[j]), s = std::sin(double(r) * theta[j]);
    cos[2 * j] = cos[2 * j + 1] = float(c);
    sin[2 * j] = float(-s), sin[2 * j + 1] = float(s);
  }
}

// Rows against per-row rotated queries (pre-RoPE keys) against the scalar reference with each
// row's own rotation (the kernel composes a group rotation and a per-row one); codes at the
// extremes 0 and 2^B - 1 too.
TEST(PackedDotTest, RotatedRowsMatchReferenceOnEveryTarget) {
  int planned = 0;
  ForEachTarget([&planned] {
    std::mt19937 rng(8);
    std::normal_distribution<float> normal;
    std::uniform_real_distribution<double> angle(0.0, 1.0);
    for (int bits = 0; bits <= 8; ++bits) {
      for (int n : {64, 128, 256}) {
        for (int n_rows : {1, 3, 4, 9, 15, 64}) {
          RandomRows r = MakeRows(rng, bits, n, n_rows);
          if (bits > 0) {
            r.packed[0] = 0xff;  // the first codes at 2^B - 1
            r.packed[r.packed.size() - 1] = 0;
          }
          const auto nn = static_cast<std::size_t>(n);
          std::vector<double> theta(nn / 2);
          for (auto& t : theta) t = angle(rng);
          std::vector<float> cos(nn * std::size_t(n_rows)), sin(cos.size());
          for (int row = 0; row < n_rows; ++row) {
            RotationTables(theta, row, cos.data() + std::size_t(row) * nn, sin.data() + std::size_t(row) * nn);
          }
          std::vector<float> a(nn), b(nn), scale(nn), offset(nn);
          for (std::size_t i = 0; i < nn; ++i) {
            a[i] = normal(rng), b[i] = normal(rng), scale[i] = std::abs(normal(rng)) * 0.1f, offset[i] = normal(rng);
          }
          scale[1] = 0.0f;  // a constant channel
          std::vector<float> out(static_cast<std::size_t>(n_rows), -1.0f);
          const internal::LanePlan* plan = internal::GetLanePlan(bits, n);
          bool done = false;
          if (plan != nullptr) {
            const std::size_t stride = std::size_t(plan->n_steps) * internal::kPlanLanes;
            const int groups = (n_rows + internal::kRotatedGroup - 1) / internal::kRotatedGroup;
            std::vector<float> v_cos(nn * internal::kRotatedGroup), v_sin(v_cos.size()), g_cos(nn), g_sin(nn);
            for (int v = 0; v < internal::kRotatedGroup; ++v) {
              RotationTables(theta, v, v_cos.data() + std::size_t(v) * nn, v_sin.data() + std::size_t(v) * nn);
            }
            std::vector<float> scale_plan(stride), offset_plan(stride);
            internal::PermuteForPlan(*plan, scale.data(), scale_plan.data());
            internal::PermuteForPlan(*plan, offset.data(), offset_plan.data());
            std::vector<float> a_plan(stride), b_plan(stride), cos_plan(internal::PairTableSize(*plan, internal::kRotatedGroup)),
                sin_plan(cos_plan.size()), group_cos(stride * std::size_t(groups)), group_sin(group_cos.size());
            internal::PermuteForPlan(*plan, a.data(), a_plan.data());
            internal::PermuteForPlan(*plan, b.data(), b_plan.data());
            internal::PermuteRowPairsForPlan(*plan, v_cos.data(), internal::kRotatedGroup, cos_plan.data());
            internal::PermuteRowPairsForPlan(*plan, v_sin.data(), internal::kRotatedGroup, sin_plan.data());
            for (int u = 0; u < groups; ++u) {
              RotationTables(theta, u * internal::kRotatedGroup, g_cos.data(), g_sin.data());
              internal::PermuteForPlan(*plan, g_cos.data(), group_cos.data() + std::size_t(u) * stride);
              internal::PermuteForPlan(*plan, g_sin.data(), group_sin.data() + std::size_t(u) * stride);
            }
            const internal::RotatedRowsQuery rq{a_plan.data(),    b_plan.data(),    cos_plan.data(),   sin_plan.data(),
                                                group_cos.data(), group_sin.data(), scale_plan.data(), offset_plan.data()};
            done = internal::DotRotatedRows(rq, r.packed.data(), r.row_bytes, n_rows, bits, n, out.data());
          }
          if (!done) continue;
          ++planned;
          for (int row = 0; row < n_rows; ++row) {
            const std::uint8_t* codes = r.packed.data() + std::size_t(row) * r.row_bytes;
            const float* c = cos.data() + std::size_t(row) * nn;
            const float* s = sin.data() + std::size_t(row) * nn;
            const float ref =
                internal::DotRotatedRowRef(a.data(), b.data(), c, s, scale.data(), offset.data(), codes, bits, n);
            float scale_sum = 0;
            for (std::size_t i = 0; i < nn; ++i) {
              const float code = bits == 0 ? 0.0f : float(internal::ReadCode(codes, bits, i));
              scale_sum += (std::abs(a[i]) + std::abs(b[i])) * (std::abs(offset[i]) + scale[i] * code);
            }
            ASSERT_NEAR(out[std::size_t(row)], ref, kRelTol * scale_sum) << bits << " " << n << " rows " << n_rows << " row " << row;
          }
        }
      }
    }
  });
  // 8-lane targets (AVX2 and up) have plans for these sizes; the test must not pass vacuously.
#if HWY_ARCH_X86
  if ((hwy::SupportedTargets() & HWY_AVX2) != 0) {
    EXPECT_GT(planned, 0);
  }
#endif
}

// Rows of per-channel codes (channel keys) against the scalar reference on every target: every
// width, head sizes with and without lane plans, row counts around the 8-row groups, channels
// with min == max, codes at the extremes, and metadata fp16 rounds.
TEST(PackedDotTest, ChannelRowsMatchReferenceOnEveryTarget) {
  ForEachTarget([] {
    std::mt19937 rng(9);
    std::normal_distribution<float> normal;
    for (int bits = 0; bits <= 8; ++bits) {
      for (int n : {8, 24, 64, 128, 256, 264}) {
        for (int n_rows : {1, 7, 8, 9, 17, 64}) {
          RandomRows r = MakeRows(rng, bits, n, n_rows);
          if (bits > 0) {
            r.packed[0] = 0xff;
            r.packed[r.packed.size() - 1] = 0;
          }
          std::vector<GroupMeta> metas(static_cast<std::size_t>(n));
          for (auto& m : metas) {
            const float lo = normal(rng), hi = lo + std::abs(normal(rng));
            m = {internal::FloatToFp16(lo), internal::FloatToFp16(hi)};
          }
          metas[1].max_fp16 = metas[1].min_fp16;  // a constant channel
          std::vector<float> out(static_cast<std::size_t>(n_rows) + 1, 42.0f);
          internal::DotChannelRows(r.q.data(), metas.data(), r.packed.data(), r.row_bytes, n_rows, bits, n, out.data());
          EXPECT_EQ(out[std::size_t(n_rows)], 42.0f) << "wrote past n_rows";
          for (int row = 0; row < n_rows; ++row) {
            const std::uint8_t* codes = r.packed.data() + std::size_t(row) * r.row_bytes;
            const float ref = internal::DotChannelRowRef(r.q.data(), metas.data(), codes, bits, n);
            float abs_sum = 0.0f;
            for (int i = 0; i < n; ++i) {
              const AffineMeta m = AffineFromMeta(metas[std::size_t(i)], bits);
              const float c = bits == 0 ? 0.0f : float(internal::ReadCode(codes, bits, std::size_t(i)));
              abs_sum += std::abs(r.q[std::size_t(i)]) * (std::abs(m.offset) + m.scale * c);
            }
            ASSERT_NEAR(out[std::size_t(row)], ref, kRelTol * abs_sum)
                << "bits " << bits << " n " << n << " rows " << n_rows << " row " << row;
          }
        }
      }
    }
  });
}

// The SIMD conversion of a run of metas equals AffineFromMeta exactly on every target (lengths
// around the vector sizes, zero ranges, every width).
TEST(PackedDotTest, AffineFromMetasEqualsAffineFromMetaOnEveryTarget) {
  ForEachTarget([] {
    std::mt19937 rng(10);
    std::normal_distribution<float> normal;
    for (const std::size_t n : {std::size_t(1), std::size_t(7), std::size_t(8), std::size_t(17), std::size_t(37)}) {
      std::vector<GroupMeta> metas(n);
      for (auto& m : metas) {
        const float lo = normal(rng) * 10.0f, hi = lo + std::abs(normal(rng));
        m = {internal::FloatToFp16(lo), internal::FloatToFp16(hi)};
      }
      metas[0].max_fp16 = metas[0].min_fp16;
      for (const int bits : {0, 1, 3, 8, kPassThroughBits}) {
        std::vector<AffineMeta> fast(n);
        AffineFromMetas(metas.data(), n, bits, fast.data());
        for (std::size_t i = 0; i < n; ++i) {
          const AffineMeta ref = AffineFromMeta(metas[i], bits);
          // Bit for bit (a -0 scale would compare equal to +0).
          ASSERT_EQ(std::memcmp(&fast[i], &ref, sizeof(AffineMeta)), 0) << bits << " " << i;
        }
      }
    }
  });
}

// Rows of mixed widths (a QAQ cache's tokens) against the per-row references.
TEST(PackedDotTest, MixedWidthRowsMatchReference) {
  ForEachTarget([] {
    std::mt19937 rng(5);
    std::uniform_int_distribution<std::size_t> pick(0, kWidths.size() - 1);
    for (int n : {8, 17, 64, 128}) {
      std::vector<RandomRows> storage;
      std::vector<PackedRowRef> rows;
      for (int r = 0; r < 40; ++r) storage.push_back(MakeRows(rng, kWidths[pick(rng)], n, 1));
      for (const RandomRows& s : storage) rows.push_back({s.packed.data(), s.metas[0], s.bits});
      const std::vector<float>& q = storage[0].q;
      const float q_sum = SumOf(q);
      std::vector<float> w(rows.size()), dots(rows.size()), out(static_cast<std::size_t>(n), 0.5f);
      std::vector<float> ref_out = out, magnitude(out.size(), 0.5f);
      for (auto& v : w) v = std::abs(std::normal_distribution<float>()(rng));
      DotPackedMixed(q.data(), q_sum, rows.data(), static_cast<int>(rows.size()), n, dots.data());
      AxpyPackedMixed(w.data(), rows.data(), static_cast<int>(rows.size()), n, out.data());
      for (std::size_t r = 0; r < rows.size(); ++r) {
        RandomRows with_q = storage[r];
        with_q.q = q;
        const float ref = internal::DotPackedRef(q.data(), q_sum, rows[r].codes, rows[r].bits, rows[r].meta, n);
        ASSERT_NEAR(dots[r], ref, kRelTol * AbsDotScale(with_q, 0)) << "row " << r << " bits " << rows[r].bits;
        std::vector<float> deq(static_cast<std::size_t>(n), 0.0f);
        internal::AxpyPackedRef(w[r], rows[r].codes, rows[r].bits, rows[r].meta, n, deq.data());
        for (std::size_t i = 0; i < deq.size(); ++i) {
          ref_out[i] += deq[i];
          magnitude[i] += std::abs(deq[i]);
        }
      }
      for (std::size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref_out[i], kRelTol * magnitude[i]) << n << " " << i;
    }
  });
}

TEST(PackedDotTest, Fp32AndFp16DotsMatchReference) {
  ForEachTarget([] {
    std::mt19937 rng(4);
    std::normal_distribution<float> normal;
    for (int n : kSizes) {
      std::vector<float> a(static_cast<std::size_t>(n)), b(a.size());
      std::vector<std::uint16_t> h(a.size());
      float scale = 0;
      for (std::size_t i = 0; i < a.size(); ++i) {
        a[i] = normal(rng);
        b[i] = normal(rng);
        h[i] = internal::FloatToFp16(b[i]);
        scale += std::abs(a[i] * b[i]) * 1.01f;
      }
      ASSERT_NEAR(DotF32(a.data(), b.data(), n), internal::DotF32Ref(a.data(), b.data(), n), kRelTol * scale);
      ASSERT_NEAR(DotF16(a.data(), h.data(), n), internal::DotF16Ref(a.data(), h.data(), n), kRelTol * scale);
    }
  });
}

// Whole groups from the codec, outliers included: packed dot/axpy equal decode-then-compute.
TEST(PackedDotTest, GroupDotAndAxpyEqualDecodeThenCompute) {
  std::mt19937 rng(6);
  std::normal_distribution<float> normal;
  for (int n : {8, 64, 128}) {
    std::vector<float> x(static_cast<std::size_t>(n)), q(x.size());
    for (auto& v : x) v = normal(rng);
    for (auto& v : q) v = normal(rng);
    x[2] = 40.0f;  // an outlier
    for (int bits : kWidths) {
      auto g = EncodeGroup(x, bits, 0.05);
      ASSERT_TRUE(g.ok());
      std::vector<float> deq(x.size());
      DecodeGroup(*g, deq);
      float expected = 0, scale = 0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        expected += q[i] * deq[i];
        scale += std::abs(q[i] * deq[i]);
      }
      EXPECT_NEAR(GroupDot(q, *g), expected, kRelTol * scale) << bits << " " << n;
      std::vector<float> out(x.size(), 1.0f);
      GroupAxpy(0.5f, *g, out);
      for (std::size_t i = 0; i < x.size(); ++i) {
        EXPECT_NEAR(out[i], 1.0f + 0.5f * deq[i], kRelTol * (1.0f + std::abs(deq[i]))) << bits << " " << i;
      }
    }
  }
}

}  // namespace
}  // namespace qaq
