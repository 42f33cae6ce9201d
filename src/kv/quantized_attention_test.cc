// Attention on packed codes equals dequantize-then-attend in fp32/fp64: for every bit width, with
// and without outliers, every key layout, keys before or after RoPE, every granularity.
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "kernels/rope.h"
#include "kv/kv_test_util.h"
#include "kv/quantized_cache.h"

namespace qaq {
namespace {

using internal::ArenaBits;
using internal::kArenaSlots;
using internal::QuantizedKvCache;

// |got - expected| <= kRelative * (sum of |terms|): relative to the size of the products summed,
// which stays meaningful when a score is close to 0 by cancellation.
constexpr double kRelative = 1e-5;

// Dequantized keys and values of one cache: [layer][kv_head][token][head_dim], keys rotated.
struct Decoded {
  std::vector<std::vector<std::vector<std::vector<float>>>> k, v;
};

Decoded Decode(const QuantizedKvCache& cache) {
  const KvCacheShape& s = cache.shape();
  const int n = cache.n_tokens(), d = s.head_dim;
  Decoded out;
  auto empty = std::vector(static_cast<std::size_t>(s.n_layers), std::vector(static_cast<std::size_t>(s.n_kv_heads),
                                                                  std::vector(static_cast<std::size_t>(n), std::vector<float>())));
  out.k = out.v = empty;
  const internal::RopeRotator rope(s.rope_theta, s.rope_dim, d, s.max_tokens);
  for (const internal::TokenRows* rows : {cache.token_keys(), &cache.values()}) {
    if (rows == nullptr) continue;
    auto& dst = rows->kind() == KvKind::kKey ? out.k : out.v;
    std::vector<float> group(static_cast<std::size_t>(rows->group_size()));
    for (int u = 0; u < rows->n_units(); ++u) {
      for (int a = 0; a < kArenaSlots; ++a) {
        const internal::WidthArena* arena = rows->arena(u, ArenaBits(a));
        for (std::size_t slot = 0; arena != nullptr && slot < arena->size(); ++slot) {
          rows->ReadGroup(u, *arena, slot, group);
          const int token = int(arena->token(slot));
          for (int p = 0; p < rows->planes_per_unit(); ++p) {
            int l = 0, h = 0;
            rows->PairOf(u, p, &l, &h);
            std::vector<float> x(group.begin() + p * d, group.begin() + (p + 1) * d);
            if (rows->prerope()) rope.Rotate(x.data(), token, x.data());
            dst[static_cast<std::size_t>(l)][static_cast<std::size_t>(h)][static_cast<std::size_t>(token)] = x;
          }
        }
      }
    }
  }
  if (const internal::ChannelKeys* keys = cache.channel_keys()) {
    for (int l = 0; l < s.n_layers; ++l) {
      for (int h = 0; h < s.n_kv_heads; ++h) {
        std::vector<float> block(static_cast<std::size_t>(keys->block() * d));
        for (int b = 0; b < keys->n_blocks(l, h); ++b) {
          keys->ReadBlock(l, h, b, block.data());
          for (int r = 0; r < keys->block(); ++r) {
            const int token = b * keys->block() + r;
            std::vector<float> x(block.begin() + r * d, block.begin() + (r + 1) * d);
            if (keys->prerope()) rope.Rotate(x.data(), token, x.data());
            out.k[static_cast<std::size_t>(l)][static_cast<std::size_t>(h)][static_cast<std::size_t>(token)] = x;
          }
        }
        for (int i = 0; i < keys->tail_size(l, h); ++i) {
          const int token = keys->n_blocks(l, h) * keys->block() + i;
          std::vector<float> x(static_cast<std::size_t>(d));
          keys->ReadTail(l, h, i, x.data());
          if (keys->prerope()) rope.Rotate(x.data(), token, x.data());
          out.k[static_cast<std::size_t>(l)][static_cast<std::size_t>(h)][static_cast<std::size_t>(token)] = x;
        }
      }
    }
  }
  return out;
}

// Checks Scores and WeightedSum of every (layer, KV head) against the decoded cache, for all
// tokens and for a causal prefix.
void ExpectAttentionMatchesDecoded(const QuantizedKvCache& cache, const std::string& label) {
  const KvCacheShape& s = cache.shape();
  const int n = cache.n_tokens(), d = s.head_dim;
  const Decoded ref = Decode(cache);
  for (int l = 0; l < s.n_layers; ++l) {
    for (int h = 0; h < s.n_kv_heads; ++h) {
      for (const int m : {n, n / 2 + 1}) {
        const std::vector<float> q = test::TestQuery(d, l * 7 + h);
        std::vector<float> scores(static_cast<std::size_t>(m), -1e30f);
        cache.Scores(l, h, q, scores);
        std::vector<float> probs(static_cast<std::size_t>(m));
        for (int t = 0; t < m; ++t) {
          const auto& key = ref.k[static_cast<std::size_t>(l)][static_cast<std::size_t>(h)][static_cast<std::size_t>(t)];
          ASSERT_EQ(key.size(), static_cast<std::size_t>(d)) << label << " token " << t << " has no decoded key";
          double expected = 0, magnitude = 0;
          for (int i = 0; i < d; ++i) {
            expected += double(q[static_cast<std::size_t>(i)]) * key[static_cast<std::size_t>(i)];
            magnitude += std::abs(double(q[static_cast<std::size_t>(i)]) * key[static_cast<std::size_t>(i)]);
          }
          ASSERT_NEAR(scores[static_cast<std::size_t>(t)], expected, kRelative * magnitude + 1e-7)
              << label << " layer " << l << " head " << h << " token " << t << " of " << m;
          probs[static_cast<std::size_t>(t)] = float(t % 7 + 1) / float(4 * m);
        }
        std::vector<float> out(static_cast<std::size_t>(d), 0.25f);
        cache.WeightedSum(l, h, probs, out);
        for (int i = 0; i < d; ++i) {
          double expected = 0.25, magnitude = 0.25;
          for (int t = 0; t < m; ++t) {
            const double term = double(probs[static_cast<std::size_t>(t)]) * ref.v[static_cast<std::size_t>(l)][static_cast<std::size_t>(h)][static_cast<std::size_t>(t)][static_cast<std::size_t>(i)];
            expected += term;
            magnitude += std::abs(term);
          }
          ASSERT_NEAR(out[static_cast<std::size_t>(i)], expected, kRelative * magnitude + 1e-7)
              << label << " layer " << l << " head " << h << " dim " << i << " of " << m;
        }
      }
    }
  }
}

TEST(QuantizedAttentionTest, EveryWidthLayoutAndOutlierSettingMatchesDequantizedAttention) {
  const KvCacheShape shape = test::SmallShape(/*head_dim=*/16, /*max_tokens=*/96);
  const test::RandomKv kv(shape, 70, 5);
  for (const int bits : {0, 1, 2, 3, 4, 5, 6, 7, 8, 16}) {
    for (const std::string keys : {"token", "channel:8", "channel:24"}) {
      if (bits == 16 && keys != "token") continue;  // channel blocks hold 0..8 bits
      for (const bool prerope : {false, true}) {
        for (const double alpha : {0.0, 0.2}) {
          const std::string spec = fmt::format("uniform:{},keys={},outliers={}{}", bits, keys, alpha, prerope ? ",prerope" : "");
          auto cache = test::MakeQuantized(spec, shape);
          // A prompt of 50 tokens, then single steps: quantized groups, fp16 tails and new tokens mix.
          kv.AppendTo(*cache, 0, 50);
          for (int t = 50; t < 53; ++t) kv.AppendTo(*cache, t, t + 1);
          ExpectAttentionMatchesDecoded(*cache, spec);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// Head sizes of real models, where the kernels read rows through lane plans (quant/lane_plan.h),
// four rows at a time and with zero-padded last rows; partial RoPE (rope_dim < head_dim) too.
TEST(QuantizedAttentionTest, ModelHeadSizesMatchDequantizedAttention) {
  for (const int head_dim : {64, 128}) {
    KvCacheShape shape = test::SmallShape(head_dim, /*max_tokens=*/80);
    if (head_dim == 128) shape.rope_dim = 96;
    const test::RandomKv kv(shape, 70, 9);
    for (const int bits : {0, 1, 2, 3, 4, 5, 6, 7, 8}) {
      for (const std::string keys : {"token", "channel:24"}) {
        for (const bool prerope : {false, true}) {
          const std::string spec =
              fmt::format("uniform:{},keys={},outliers={}{}", bits, keys, keys == "token" ? 0.05 : 0.0, prerope ? ",prerope" : "");
          auto cache = test::MakeQuantized(spec, shape);
          kv.AppendTo(*cache, 0, 61);
          for (int t = 61; t < 63; ++t) kv.AppendTo(*cache, t, t + 1);
          ExpectAttentionMatchesDecoded(*cache, fmt::format("{} head_dim {}", spec, head_dim));
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST(QuantizedAttentionTest, MixedWidthsAndCoarseGranularity) {
  // qaq at layer and token granularity: groups span several heads, outlier positions fall in any
  // plane, and widths differ from token to token.
  const KvCacheShape shape = test::SmallShape(16, 96);
  const test::RandomKv kv(shape, 40, 6);
  // Outlier ratio 0.3 gives 20 outliers per 64-value token group: a plane finds its own by binary
  // search instead of testing each (more than kLinearOutlierScan).
  for (const auto& [g, alpha] : std::vector<std::pair<std::string, double>>{
           {"head", 0.05}, {"layer", 0.05}, {"token", 0.05}, {"token", 0.3}}) {
    for (const bool prerope : {false, true}) {
      const std::string spec = fmt::format("qaq,granularity={},outliers={},bits=1:6,key_error=0.5{}", g, alpha,
                                           prerope ? ",prerope" : "");
      auto cache = test::MakeQuantized(spec, shape);
      for (int l = 0; l < shape.n_layers; ++l) {
        for (int t = 0; t < 40; ++t) cache->Append(l, t, kv.k[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)], kv.v[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)]);
      }
      // Attention rows that favour some tokens (so value widths differ).
      for (int pos = 35; pos < 40; ++pos) {
        for (int l = 0; l < shape.n_layers; ++l) {
          for (int head = 0; head < shape.n_heads; ++head) {
            std::vector<float> probs(static_cast<std::size_t>(pos + 1));
            float sum = 0;
            for (int t = 0; t <= pos; ++t) sum += probs[static_cast<std::size_t>(t)] = std::exp(-0.3f * float((t * 13 + head) % 17));
            for (float& p : probs) p /= sum;
            cache->ObserveAttention(l, head, pos, probs);
          }
        }
      }
      cache->EndStep();
      std::vector<int> widths(17, 0);
      for (const auto& group : cache->Groups()) ++widths[static_cast<std::size_t>(group.bits)];
      int distinct = 0;
      for (int w : widths) distinct += w > 0;
      EXPECT_GE(distinct, 3) << spec;
      ExpectAttentionMatchesDecoded(*cache, spec);
      if (HasFatalFailure()) return;
    }
  }
}

}  // namespace
}  // namespace qaq
