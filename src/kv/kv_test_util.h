// Helpers shared by the KV-cache unit tests: a small shape, random keys and values, and the
// dequantize-then-attend reference.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "qaq/kv_cache.h"
#include "kv/quantized_cache.h"
#include "qaq/kv_config.h"

namespace qaq::test {

inline KvCacheShape SmallShape(int head_dim = 16, int max_tokens = 96) {
  KvCacheShape s;
  s.n_layers = 2;
  s.n_kv_heads = 2;
  s.head_dim = head_dim;
  s.max_tokens = max_tokens;
  s.n_heads = 4;
  s.rope_theta = 10000.0f;
  s.rope_dim = head_dim;
  return s;
}

inline std::unique_ptr<KvCache> MakeCache(std::string_view spec, const KvCacheShape& shape) {
  auto cache = MakeKvCache(spec, shape);
  EXPECT_TRUE(cache.ok()) << spec << ": " << cache.status().message();
  return cache.ok() ? std::move(cache).value() : nullptr;
}

// A quantized cache from a spec (a test failure, and null, when it cannot be made).
inline std::unique_ptr<internal::QuantizedKvCache> MakeQuantized(const std::string& spec, const KvCacheShape& shape) {
  auto config = ParseKvCacheSpec(spec);
  EXPECT_TRUE(config.ok()) << spec << ": " << config.status().message();
  if (!config.ok()) return nullptr;
  auto cache = internal::QuantizedKvCache::Create(*config, shape);
  EXPECT_TRUE(cache.ok()) << spec << ": " << cache.status().message();
  return cache.ok() ? std::move(cache).value() : nullptr;
}

// The q-quantile by linear interpolation between order statistics (numpy's default), written
// out independently of the library's for the tests to check it.
inline double NumpyQuantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * double(v.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

// Random keys and values, [token][layer][kv_dim], with a few large values (outlier material)
// and a per-channel offset on keys, as real keys have.
struct RandomKv {
  std::vector<std::vector<std::vector<float>>> k, v;

  RandomKv(const KvCacheShape& s, int n_tokens, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int kv_dim = s.n_kv_heads * s.head_dim;
    for (int t = 0; t < n_tokens; ++t) {
      k.emplace_back(), v.emplace_back();
      for (int l = 0; l < s.n_layers; ++l) {
        std::vector<float> kr(static_cast<std::size_t>(kv_dim)), vr(static_cast<std::size_t>(kv_dim));
        for (int i = 0; i < kv_dim; ++i) {
          kr[static_cast<std::size_t>(i)] = normal(rng) + float(i % 5) - 2.0f;
          vr[static_cast<std::size_t>(i)] = normal(rng);
          if (rng() % 23 == 0) kr[static_cast<std::size_t>(i)] *= 6.0f;
          if (rng() % 29 == 0) vr[static_cast<std::size_t>(i)] *= 6.0f;
        }
        k.back().push_back(std::move(kr));
        v.back().push_back(std::move(vr));
      }
    }
  }

  // Appends tokens [begin, end) to every layer, then ends the step.
  void AppendTo(KvCache& cache, int begin, int end) const {
    for (int l = 0; l < cache.shape().n_layers; ++l) {
      for (int t = begin; t < end; ++t) cache.Append(l, t, k[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)], v[static_cast<std::size_t>(t)][static_cast<std::size_t>(l)]);
    }
    cache.EndStep();
  }
};

// A deterministic query of head_dim values.
inline std::vector<float> TestQuery(int head_dim, int salt) {
  std::vector<float> q(static_cast<std::size_t>(head_dim));
  for (int d = 0; d < head_dim; ++d) q[static_cast<std::size_t>(d)] = 0.3f * std::sin(0.7f * float(d + 1) + float(salt)) + 0.05f;
  return q;
}

}  // namespace qaq::test
