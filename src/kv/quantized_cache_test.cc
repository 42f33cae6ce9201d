// The quantized caches' behaviour: exact memory accounting, re-quantization up from the
// full-precision tier and never up without it, the fp16 pass-through, truncation, budget mode.
#include "kv/quantized_cache.h"

#include <cmath>
#include <map>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "kv/kv_test_util.h"

namespace qaq {
namespace {

using internal::GroupRecord;
using internal::QuantizedKvCache;

// The bytes a cache must report, computed from its group table alone (QAQ-method.md §8).
KvMemory CountFromTable(const QuantizedKvCache& cache) {
  const KvCacheShape& s = cache.shape();
  const KvCacheConfig& c = cache.config();
  const std::size_t index_bytes = s.max_tokens <= 65535 ? 2 : 4;
  KvMemory m;
  for (const GroupRecord& g : cache.Groups()) {
    if (g.kind == KvKind::kKey && c.key_layout == KeyLayout::kChannel) {
      if (g.bits == kPassThroughBits) {  // a tail token
        m.code_bytes += static_cast<std::size_t>(s.head_dim) * 2;
        continue;
      }
      m.code_bytes += static_cast<std::size_t>(c.key_block) * static_cast<std::size_t>(s.head_dim) * static_cast<std::size_t>(g.bits) / 8;
      m.metadata_bytes += static_cast<std::size_t>(s.head_dim) * 4;
      m.table_bytes += 1;
      continue;
    }
    std::size_t group = static_cast<std::size_t>(s.head_dim);
    const Granularity granularity = c.backend == KvBackendKind::kQaq ? c.granularity : Granularity::kHead;
    if (granularity == Granularity::kLayer) group *= static_cast<std::size_t>(s.n_kv_heads);
    if (granularity == Granularity::kToken) group *= static_cast<std::size_t>(s.n_kv_heads * s.n_layers);
    m.table_bytes += index_bytes;
    if (g.bits == kPassThroughBits) {
      m.code_bytes += 2 * group;
      continue;
    }
    m.code_bytes += group * static_cast<std::size_t>(g.bits) / 8;
    m.metadata_bytes += 4;
    const std::size_t per_side = static_cast<std::size_t>(std::floor(c.outlier_alpha * double(group) / 2 + 0.5 + 1e-9));
    m.outlier_bytes += 2 * per_side * (4 + (group <= 65536 ? 2 : 4));
  }
  return m;
}

TEST(QuantizedCacheTest, ReportedBytesEqualACountFromTheTokenTables) {
  const KvCacheShape shape = test::SmallShape(16, 96);
  const test::RandomKv kv(shape, 60, 11);
  for (const std::string spec :
       {"uniform:4", "uniform:3/5,outliers=0.1", "uniform:2,keys=channel:16", "kivi:2", "kivi:4,residual=8",
        "qaq", "qaq,granularity=layer,bits=0:6", "qaq,granularity=token,outliers=0.05",
        "qaq,keys=channel:8,prerope", "qaq,bits=16:16,outliers=0"}) {
    auto cache = test::MakeQuantized(spec, shape);
    kv.AppendTo(*cache, 0, 40);
    for (int t = 40; t < 45; ++t) kv.AppendTo(*cache, t, t + 1);
    const KvMemory got = cache->Memory(), want = CountFromTable(*cache);
    EXPECT_EQ(got.code_bytes, want.code_bytes) << spec;
    EXPECT_EQ(got.metadata_bytes, want.metadata_bytes) << spec;
    EXPECT_EQ(got.outlier_bytes, want.outlier_bytes) << spec;
    EXPECT_EQ(got.table_bytes, want.table_bytes) << spec;
    EXPECT_EQ(got.fp16_reference_bytes, 45u * 2 * 2 * 16 * 2 * 2) << spec;
    const bool has_tier = spec.rfind("qaq", 0) == 0;
    EXPECT_EQ(got.full_precision_bytes, has_tier ? 45u * 2 * 2 * 16 * 2 * 4 : 0u) << spec;
    EXPECT_NE(cache->Summary().find("ratio"), std::string::npos);
  }
}

TEST(QuantizedCacheTest, UniformWidthsAndRatio) {
  const KvCacheShape shape = test::SmallShape(16, 96);
  const test::RandomKv kv(shape, 32, 12);
  auto cache = test::MakeQuantized("uniform:4/2", shape);
  kv.AppendTo(*cache, 0, 32);
  for (const GroupRecord& g : cache->Groups()) EXPECT_EQ(g.bits, g.kind == KvKind::kKey ? 4 : 2);
  // Per group of 16 values: keys 8 + 4 + 2 bytes, values 4 + 4 + 2, against 32 + 32 in fp16.
  EXPECT_NEAR(cache->Memory().compression_ratio(), 64.0 / 24.0, 1e-12);
}

// Drives a qaq cache by hand: tokens appended, attention rows chosen by the test.
class Driver {
 public:
  Driver(QuantizedKvCache& cache, const test::RandomKv& kv) : cache_(cache), kv_(kv) {}

  // Appends token t and reports an attention row for position t in which `favoured` gets
  // weight `w` and every other token shares the rest.
  void Step(int t, int favoured, float w) {
    const KvCacheShape& s = cache_.shape();
    for (int l = 0; l < s.n_layers; ++l) cache_.Append(l, t, kv_.k[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)], kv_.v[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)]);
    std::vector<float> probs(static_cast<std::size_t>(t + 1), (1.0f - w) / float(t));
    probs[static_cast<std::size_t>(favoured)] = w;
    for (int l = 0; l < s.n_layers; ++l) {
      for (int h = 0; h < s.n_heads; ++h) cache_.ObserveAttention(l, h, t, probs);
    }
    cache_.EndStep();
  }

 private:
  QuantizedKvCache& cache_;
  const test::RandomKv& kv_;
};

std::map<std::pair<int, int>, int> ValueBits(const QuantizedKvCache& cache) {
  std::map<std::pair<int, int>, int> bits;  // (unit, token) -> bits
  for (const GroupRecord& g : cache.Groups()) {
    if (g.kind == KvKind::kValue) bits[{g.unit, g.token}] = g.bits;
  }
  return bits;
}

TEST(QuantizedCacheTest, RisingAttentionRaisesBitsFromTheFullPrecisionTier) {
  const KvCacheShape shape = test::SmallShape(16, 96);
  const test::RandomKv kv(shape, 40, 13);
  auto cache = test::MakeQuantized("qaq,granularity=head,window=2,bits=1:8,outliers=0,value_error=0.05", shape);
  Driver driver(*cache, kv);
  // Token 3 is ignored for a while: its value bits fall to the minimum.
  for (int t = 0; t < 20; ++t) driver.Step(t, 0, 0.9f);
  const int low = ValueBits(*cache)[{0, 3}];
  EXPECT_EQ(low, 1);
  // Then it receives almost all the attention: its bits rise.
  for (int t = 20; t < 23; ++t) driver.Step(t, 3, 0.95f);
  const int high = ValueBits(*cache)[{0, 3}];
  EXPECT_GE(high, 6);
  EXPECT_GT(cache->stats().up, 0u);
  // The raised value comes from the tier: it is within half a step of the original, which a
  // re-quantization of the 1-bit codes could not achieve.
  const internal::TokenRows& values = cache->values();
  const internal::WidthArena* arena = values.arena(0, high);
  ASSERT_NE(arena, nullptr);
  std::vector<float> decoded(16);
  bool found = false;
  for (std::size_t s = 0; s < arena->size(); ++s) {
    if (arena->token(s) != 3) continue;
    found = true;
    values.ReadGroup(0, *arena, s, decoded);
    const AffineMeta m = AffineFromMeta(arena->meta(s), high);
    for (int d = 0; d < 16; ++d) {
      EXPECT_NEAR(decoded[static_cast<std::size_t>(d)], kv.v[3][0][static_cast<std::size_t>(d)], 0.5 * m.scale + 1e-6) << d;
    }
  }
  EXPECT_TRUE(found);
}

TEST(QuantizedCacheTest, WithoutATierBitsNeverRise) {
  const KvCacheShape shape = test::SmallShape(16, 96);
  const test::RandomKv kv(shape, 40, 14);
  auto cache = test::MakeQuantized("qaq,granularity=head,window=2,bits=1:8,outliers=0,value_error=0.05,tier=none", shape);
  EXPECT_EQ(cache->Memory().full_precision_bytes, 0u);
  Driver driver(*cache, kv);
  std::map<std::pair<int, int>, int> previous;
  for (int t = 0; t < 30; ++t) {
    driver.Step(t, t < 20 ? 0 : 3, t < 20 ? 0.9f : 0.95f);
    const auto now = ValueBits(*cache);
    for (const auto& [key, bits] : now) {
      const auto before = previous.find(key);
      if (before != previous.end() && before->second != kPassThroughBits) {
        EXPECT_LE(bits, before->second) << "unit " << key.first << " token " << key.second << " step " << t;
      }
    }
    previous = now;
  }
  EXPECT_EQ(cache->stats().up, 0u);
  EXPECT_GT(cache->stats().down, 0u);
  EXPECT_EQ((ValueBits(*cache)[{0, 3}]), 1);
}

TEST(QuantizedCacheTest, DiskTierBehavesAsRam) {
  const KvCacheShape shape = test::SmallShape(16, 96);
  const test::RandomKv kv(shape, 30, 15);
  auto ram = test::MakeQuantized("qaq,granularity=head,window=2,bits=1:8,value_error=0.05", shape);
  auto disk = test::MakeQuantized("qaq,granularity=head,window=2,bits=1:8,value_error=0.05,tier=disk", shape);
  Driver a(*ram, kv), b(*disk, kv);
  for (int t = 0; t < 30; ++t) {
    a.Step(t, t < 20 ? 0 : 3, 0.9f);
    b.Step(t, t < 20 ? 0 : 3, 0.9f);
  }
  EXPECT_EQ(ValueBits(*ram), ValueBits(*disk));
  EXPECT_EQ(ram->Memory().full_precision_bytes, disk->Memory().full_precision_bytes);
  std::vector<float> q = test::TestQuery(16, 1), sa(30), sb(30);
  ram->Scores(1, 1, q, sa);
  disk->Scores(1, 1, q, sb);
  EXPECT_EQ(sa, sb);
  EXPECT_NE(disk->Summary().find("tier (disk)"), std::string::npos) << disk->Summary();
}

TEST(QuantizedCacheTest, DiskTierInAMissingFolderIsAnError) {
  auto config = ParseKvCacheSpec("qaq,tier=disk,tier_dir=/nonexistent/folder");
  ASSERT_TRUE(config.ok());
  auto cache = QuantizedKvCache::Create(*config, test::SmallShape());
  ASSERT_FALSE(cache.ok());
  EXPECT_EQ(cache.status().code(), StatusCode::kInternal);
  EXPECT_NE(cache.status().message().find("/nonexistent/folder"), std::string::npos);
}

TEST(QuantizedCacheTest, Fp16PassThroughIsBitwiseTheFp16Cache) {
  const KvCacheShape shape = test::SmallShape(16, 96);
  const test::RandomKv kv(shape, 50, 16);
  // Default layout (fp16 key tail, token granularity) and per-token keys in width arenas.
  for (const auto& [spec, ratio] : {std::pair{"qaq,bits=16:16,outliers=0", 256.0 / 258.0},
                                    std::pair{"qaq,bits=16:16,outliers=0,keys=token,granularity=head", 64.0 / 68.0}}) {
  auto fp16 = test::MakeCache("fp16", shape);
  auto qaq = test::MakeCache(spec, shape);
  // Prefill of 37 tokens (with causal prefixes), then single steps.
  for (auto* c : {fp16.get(), qaq.get()}) {
    for (int l = 0; l < shape.n_layers; ++l) {
      for (int t = 0; t < 37; ++t) c->Append(l, t, kv.k[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)], kv.v[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)]);
    }
  }
  auto compare = [&](int n) {
    for (int l = 0; l < shape.n_layers; ++l) {
      for (int h = 0; h < shape.n_kv_heads; ++h) {
        const std::vector<float> q = test::TestQuery(16, n + h);
        std::vector<float> a(static_cast<std::size_t>(n)), b(static_cast<std::size_t>(n)), probs(static_cast<std::size_t>(n));
        fp16->Scores(l, h, q, a);
        qaq->Scores(l, h, q, b);
        ASSERT_EQ(a, b) << spec << ": scores, " << n << " tokens";
        for (int t = 0; t < n; ++t) probs[static_cast<std::size_t>(t)] = float(t % 5 + 1) / float(3 * n);
        std::vector<float> oa(16, 0.0f), ob(16, 0.0f);
        fp16->WeightedSum(l, h, probs, oa);
        qaq->WeightedSum(l, h, probs, ob);
        ASSERT_EQ(oa, ob) << spec << ": weighted sum, " << n << " tokens";
      }
    }
  };
  for (int n = 1; n <= 37; n += 3) compare(n);
  fp16->EndStep();
  qaq->EndStep();
  for (int t = 37; t < 50; ++t) {
    for (auto* c : {fp16.get(), qaq.get()}) {
      for (int l = 0; l < shape.n_layers; ++l) c->Append(l, t, kv.k[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)], kv.v[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)]);
      c->EndStep();
    }
    compare(t + 1);
  }
  EXPECT_DOUBLE_EQ(qaq->Memory().compression_ratio(), ratio) << spec;  // 2-byte token tables
  }
}

TEST(QuantizedCacheTest, TruncateForgetsTokensAndStartsAgain) {
  const KvCacheShape shape = test::SmallShape(16, 96);
  const test::RandomKv kv(shape, 60, 17);
  for (const std::string spec : {"uniform:3,keys=channel:8", "qaq,keys=channel:8,prerope", "qaq,granularity=layer"}) {
    auto cache = test::MakeQuantized(spec, shape);
    kv.AppendTo(*cache, 0, 45);
    cache->Truncate(21);  // cuts a channel block
    EXPECT_EQ(cache->n_tokens(), 21);
    for (const GroupRecord& g : cache->Groups()) EXPECT_LT(g.token, 21) << spec;
    kv.AppendTo(*cache, 21, 30);
    EXPECT_EQ(cache->n_tokens(), 30);
    // The same as a cache that saw tokens 0..29 in two steps (0..20 quantized, then 21..29):
    auto fresh = test::MakeQuantized(spec, shape);
    kv.AppendTo(*fresh, 0, 21);
    kv.AppendTo(*fresh, 21, 30);
    EXPECT_EQ(cache->Memory().cache_bytes(), fresh->Memory().cache_bytes()) << spec;
    cache->Truncate(0);
    EXPECT_EQ(cache->n_tokens(), 0);
    EXPECT_EQ(cache->Memory().cache_bytes(), 0u);
    EXPECT_EQ(cache->Memory().full_precision_bytes, 0u);
    EXPECT_EQ(cache->stats().quantized, 0u);
  }
}

TEST(QuantizedCacheTest, BudgetModeReachesTheRatioOnThePrompt) {
  const KvCacheShape shape = test::SmallShape(16, 160);
  const test::RandomKv kv(shape, 128, 18);
  for (const double ratio : {2.5, 3.2}) {
    for (const std::string layout : {"token", "channel:16"}) {
      const std::string spec = fmt::format("qaq,ratio={},keys={},outliers=0", ratio, layout);
      auto cache = test::MakeQuantized(spec, shape);
      // A prompt with attention rows, as prefill reports them.
      for (int l = 0; l < shape.n_layers; ++l) {
        for (int t = 0; t < 128; ++t) cache->Append(l, t, kv.k[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)], kv.v[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)]);
      }
      for (int pos = 0; pos < 128; ++pos) {
        std::vector<float> probs(static_cast<std::size_t>(pos + 1), 1.0f / float(pos + 1));
        for (int l = 0; l < shape.n_layers; ++l) {
          for (int h = 0; h < shape.n_heads; ++h) cache->ObserveAttention(l, h, pos, probs);
        }
      }
      cache->EndStep();
      ASSERT_TRUE(cache->budget().solved);
      EXPECT_TRUE(cache->budget().reachable) << spec;
      EXPECT_NEAR(cache->budget().planned_ratio, cache->Memory().compression_ratio(), 1e-9) << spec;
      EXPECT_NEAR(cache->Memory().compression_ratio(), ratio, 0.25 * ratio) << spec;
      EXPECT_GE(cache->Memory().compression_ratio(), ratio) << spec;
      EXPECT_NE(cache->Summary().find("budget: ratio"), std::string::npos) << cache->Summary();
    }
  }
  // Out of reach: fp16 tails and metadata alone exceed 1/40 of fp16.
  auto cache = test::MakeQuantized("qaq,ratio=40", shape);
  kv.AppendTo(*cache, 0, 64);
  EXPECT_FALSE(cache->budget().reachable);
  EXPECT_NE(cache->Summary().find("out of reach"), std::string::npos);
}

TEST(QuantizedCacheTest, BudgetModeSolvesAgainAsTheCacheDoubles) {
  // One token per step (no prompt): the targets are chosen at 1, 2, 4, ... tokens, and right
  // after each solve the cache is at the requested ratio.
  const KvCacheShape shape = test::SmallShape(16, 160);
  const test::RandomKv kv(shape, 128, 19);
  auto cache = test::MakeQuantized("qaq,ratio=3,keys=token,outliers=0", shape);
  Driver driver(*cache, kv);
  for (int t = 0; t < 128; ++t) {
    driver.Step(t, 0, 0.5f);
    if (t + 1 >= 32 && ((t + 1) & t) == 0) {  // 32, 64, 128 tokens
      EXPECT_EQ(cache->budget().solved_tokens, t + 1);
      EXPECT_TRUE(cache->budget().reachable);
      EXPECT_GE(cache->Memory().compression_ratio(), 3.0) << t;
      EXPECT_LT(cache->Memory().compression_ratio(), 3.75) << t;
    }
  }
  EXPECT_EQ(cache->budget().solves, 8);  // 1, 2, 4, ..., 128
}

TEST(QuantizedCacheTest, SaturatesValuesBeyondFp16) {
  const KvCacheShape shape = test::SmallShape(16, 8);
  auto cache = test::MakeQuantized("qaq,outliers=0.1", shape);
  std::vector<float> k(32, 1.0f), v(32, 0.5f);
  k[3] = std::numeric_limits<float>::infinity();
  v[5] = std::nanf("");
  v[6] = 1e9f;
  for (int l = 0; l < 2; ++l) cache->Append(l, 0, k, v);
  cache->EndStep();
  std::vector<float> q(16, 0.1f), scores(1), out(16, 0.0f), probs = {1.0f};
  cache->Scores(0, 0, q, scores);
  EXPECT_TRUE(std::isfinite(scores[0]));
  cache->WeightedSum(0, 0, probs, out);
  for (float x : out) EXPECT_TRUE(std::isfinite(x));
  EXPECT_NEAR(out[6], 65504.0f, 1.0f);
}

}  // namespace
}  // namespace qaq
