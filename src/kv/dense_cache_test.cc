#include "kv/dense_cache.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/rope.h"
#include "kv/kv_registry.h"
#include "qaq/kv_cache.h"

namespace qaq {
namespace {

KvCacheShape TestShape() {
  KvCacheShape s;
  s.n_layers = 2;
  s.n_kv_heads = 2;
  s.head_dim = 8;
  s.max_tokens = 40;
  s.n_heads = 4;
  s.rope_theta = 10000.0f;
  s.rope_dim = 8;
  return s;
}

std::unique_ptr<KvCache> Make(std::string_view spec, const KvCacheShape& shape) {
  auto cache = MakeKvCache(spec, shape);
  EXPECT_TRUE(cache.ok()) << cache.status().message();
  return std::move(cache).value();
}

TEST(KvRegistryTest, NamesAndErrors) {
  EXPECT_EQ(Make("fp32", TestShape())->name(), "fp32");
  EXPECT_EQ(Make("fp16", TestShape())->name(), "fp16");

  auto unknown = MakeKvCache("int3", TestShape());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.status().message(),
            "unknown KV cache 'int3' (valid: fp32, fp16, uniform:B, uniform:KB/VB, kivi:B, qaq)");

  auto options = MakeKvCache("fp16:bits=3", TestShape());
  ASSERT_FALSE(options.ok());
  EXPECT_EQ(options.status().code(), StatusCode::kInvalidArgument);

  KvCacheShape bad = TestShape();
  bad.n_heads = 3;
  EXPECT_EQ(MakeKvCache("fp32", bad).status().code(), StatusCode::kInvalidArgument);
  bad = TestShape();
  bad.max_tokens = 0;
  EXPECT_EQ(MakeKvCache("fp32", bad).status().code(), StatusCode::kInvalidArgument);
  bad = TestShape();
  bad.rope_dim = 9;
  EXPECT_EQ(MakeKvCache("fp32", bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(internal::KvBackendNames(), "fp32, fp16, uniform, kivi, qaq");
}

// Fills a cache with random keys and values and keeps them for checking.
struct Filled {
  std::vector<std::vector<float>> k, v;  // [layer * n_tokens + t][kv_dim]
};

Filled Fill(KvCache& cache, int n_tokens, std::uint32_t seed) {
  const KvCacheShape& s = cache.shape();
  const int kv_dim = s.n_kv_heads * s.head_dim;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  Filled f;
  for (int t = 0; t < n_tokens; ++t) {
    for (int l = 0; l < s.n_layers; ++l) {
      std::vector<float> k(kv_dim), v(kv_dim);
      for (auto& x : k) x = dist(rng);
      for (auto& x : v) x = dist(rng);
      cache.Append(l, t, k, v);
      f.k.push_back(k);
      f.v.push_back(v);
    }
  }
  return f;
}

class DenseCacheTest : public ::testing::TestWithParam<const char*> {
 protected:
  // fp16 keeps 11 significant bits: 2^-11 relative per element.
  double Tolerance() const { return std::string(GetParam()) == "fp16" ? 2e-3 : 1e-6; }
};

TEST_P(DenseCacheTest, ScoresUseRotatedKeys) {
  const KvCacheShape s = TestShape();
  auto cache = Make(GetParam(), s);
  const int n = 21;
  Filled f = Fill(*cache, n, 1);
  EXPECT_EQ(cache->n_tokens(), n);
  std::vector<float> q(s.head_dim);
  for (int d = 0; d < s.head_dim; ++d) q[d] = 0.1f * float(d + 1) - 0.3f;
  for (int l = 0; l < s.n_layers; ++l) {
    for (int h = 0; h < s.n_kv_heads; ++h) {
      std::vector<float> scores(n - 3);  // causal: fewer tokens than stored
      cache->Scores(l, h, q, scores);
      for (int t = 0; t < n - 3; ++t) {
        std::vector<float> k(f.k[t * s.n_layers + l].begin() + h * s.head_dim,
                             f.k[t * s.n_layers + l].begin() + (h + 1) * s.head_dim);
        internal::RopeRef(k.data(), 1, s.head_dim, s.rope_dim, s.rope_theta, t);
        double expected = 0;
        for (int d = 0; d < s.head_dim; ++d) expected += double(q[d]) * k[d];
        EXPECT_NEAR(scores[t], expected, Tolerance()) << "layer " << l << " head " << h << " t " << t;
      }
    }
  }
}

TEST_P(DenseCacheTest, WeightedSumAddsValueRows) {
  const KvCacheShape s = TestShape();
  auto cache = Make(GetParam(), s);
  const int n = 18;
  Filled f = Fill(*cache, n, 2);
  std::vector<float> probs(n);
  for (int t = 0; t < n; ++t) probs[t] = float(t + 1) / 171.0f;
  for (int l = 0; l < s.n_layers; ++l) {
    for (int h = 0; h < s.n_kv_heads; ++h) {
      std::vector<float> out(s.head_dim, 1.0f);
      cache->WeightedSum(l, h, probs, out);
      for (int d = 0; d < s.head_dim; ++d) {
        double expected = 1.0;
        for (int t = 0; t < n; ++t) expected += double(probs[t]) * f.v[t * s.n_layers + l][h * s.head_dim + d];
        EXPECT_NEAR(out[d], expected, Tolerance());
      }
    }
  }
}

TEST_P(DenseCacheTest, TruncateThenAppendOverwrites) {
  const KvCacheShape s = TestShape();
  auto cache = Make(GetParam(), s);
  Fill(*cache, 10, 3);
  cache->Truncate(4);
  EXPECT_EQ(cache->n_tokens(), 4);
  auto reference = Make(GetParam(), s);
  // Same first 4 tokens as `cache`, then new ones in both.
  Fill(*reference, 4, 3);
  std::vector<float> k(s.n_kv_heads * s.head_dim, 0.5f), v(k.size(), -0.25f);
  for (auto* c : {cache.get(), reference.get()}) {
    for (int l = 0; l < s.n_layers; ++l) c->Append(l, 4, k, v);
  }
  std::vector<float> q(s.head_dim, 0.3f), a(5), b(5);
  cache->Scores(1, 1, q, a);
  reference->Scores(1, 1, q, b);
  EXPECT_EQ(a, b);
  cache->Truncate(0);
  EXPECT_EQ(cache->n_tokens(), 0);
}

TEST_P(DenseCacheTest, MemoryCountsStoredTokens) {
  const KvCacheShape s = TestShape();
  auto cache = Make(GetParam(), s);
  EXPECT_EQ(cache->Memory().cache_bytes(), 0u);
  Fill(*cache, 7, 4);
  const KvMemory m = cache->Memory();
  const std::size_t fp16 = 7u * 2 * 2 * 8 * 2 * 2;  // tokens * layers * kv heads * head_dim * K,V * 2 bytes
  EXPECT_EQ(m.fp16_reference_bytes, fp16);
  const bool is_fp32 = std::string(GetParam()) == "fp32";
  EXPECT_EQ(m.code_bytes, is_fp32 ? 2 * fp16 : fp16);
  EXPECT_DOUBLE_EQ(m.compression_ratio(), is_fp32 ? 0.5 : 1.0);
  EXPECT_NE(cache->Summary().find("7 tokens"), std::string::npos) << cache->Summary();
}

INSTANTIATE_TEST_SUITE_P(Backends, DenseCacheTest, ::testing::Values("fp32", "fp16"));

}  // namespace
}  // namespace qaq
