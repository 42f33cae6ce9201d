#include "kv/recording_cache.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/rope.h"
#include "model/forward.h"
#include "qaq/engine.h"
#include "qaq/model.h"
#include "test_support.h"

namespace qaq {
namespace {

// fp32 scores are sums of head_dim products in another order than the test's double sum.
constexpr double kScoreTolerance = 1e-5;
// Softmax rows: float exp and sum against a double recomputation.
constexpr double kProbTolerance = 1e-5;

KvCacheShape TestShape() {
  KvCacheShape s;
  s.n_layers = 2;
  s.n_kv_heads = 2;
  s.head_dim = 8;
  s.max_tokens = 40;
  s.n_heads = 6;  // groups of 3 query heads
  s.rope_theta = 10000.0f;
  s.rope_dim = 6;  // the last pair of each head is not rotated
  return s;
}

std::unique_ptr<RecordingCache> MakeRecorder(RecordOptions options, const KvCacheShape& shape = TestShape()) {
  auto recorder = RecordingCache::Create("fp32", shape, options);
  EXPECT_TRUE(recorder.ok()) << recorder.status().message();
  return std::move(recorder).value();
}

std::vector<float> Random(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<float> Softmax(std::span<const float> scores) {
  const double max = *std::max_element(scores.begin(), scores.end());
  double sum = 0;
  for (float s : scores) sum += std::exp(double(s) - max);
  std::vector<float> p(scores.size());
  for (std::size_t t = 0; t < p.size(); ++t) p[t] = float(std::exp(double(scores[t]) - max) / sum);
  return p;
}

double Dot(std::span<const float> a, std::span<const float> b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return s;
}

// What the engine does for one position: scores of every head (in `order`) into that head's own
// row buffer, softmax in place, then ObserveAttention in head order. Returns the queries used.
std::vector<std::vector<float>> AttendOnePosition(RecordingCache& cache, int layer, int pos,
                                                  const std::vector<int>& order, std::mt19937& rng,
                                                  bool copy_rows = false) {
  const KvCacheShape& s = cache.shape();
  std::vector<std::vector<float>> queries(std::size_t(s.n_heads)), rows(std::size_t(s.n_heads));
  for (int h : order) {
    queries[std::size_t(h)] = Random(std::size_t(s.head_dim), rng);
    rows[std::size_t(h)].resize(std::size_t(pos) + 1);
    cache.Scores(layer, h / (s.n_heads / s.n_kv_heads), queries[std::size_t(h)], rows[std::size_t(h)]);
    const std::vector<float> p = Softmax(rows[std::size_t(h)]);
    std::copy(p.begin(), p.end(), rows[std::size_t(h)].begin());  // in place, as the engine does
  }
  for (int h = 0; h < s.n_heads; ++h) {
    std::vector<float> row = rows[std::size_t(h)];
    cache.ObserveAttention(layer, h, pos, copy_rows ? std::span<const float>(row) : rows[std::size_t(h)]);
  }
  return queries;
}

TEST(RecordingCacheTest, KeysValuesAndScoresMatchTheInnerCache) {
  const KvCacheShape s = TestShape();
  auto cache = MakeRecorder(RecordOptions::Everything());
  std::mt19937 rng(1);
  const int n = 23;
  std::vector<std::vector<float>> ks, vs;  // [t * n_layers + l]
  for (int t = 0; t < n; ++t) {
    for (int l = 0; l < s.n_layers; ++l) {
      ks.push_back(Random(std::size_t(s.n_kv_heads * s.head_dim), rng));
      vs.push_back(Random(ks.back().size(), rng));
      cache->Append(l, t, ks.back(), vs.back());
    }
  }
  ASSERT_EQ(cache->n_tokens(), n);
  ASSERT_EQ(cache->n_positions(1), n);
  for (int l = 0; l < s.n_layers; ++l) {
    for (int h = 0; h < s.n_kv_heads; ++h) {
      for (int t = 0; t < n; ++t) {
        const auto& k = ks[std::size_t(t * s.n_layers + l)];
        const std::vector<float> k_head(k.begin() + h * s.head_dim, k.begin() + (h + 1) * s.head_dim);
        std::vector<float> rotated = k_head;
        internal::RopeRef(rotated.data(), 1, s.head_dim, s.rope_dim, s.rope_theta, t);
        const auto pre = cache->Key(l, h, t, /*rotated=*/false);
        const auto post = cache->Key(l, h, t, /*rotated=*/true);
        EXPECT_EQ(std::vector<float>(pre.begin(), pre.end()), k_head);
        EXPECT_EQ(std::vector<float>(post.begin(), post.end()), rotated);  // RopeTable equals RopeRef bitwise
        const auto& v = vs[std::size_t(t * s.n_layers + l)];
        const auto value = cache->Value(l, h, t);
        EXPECT_EQ(std::vector<float>(value.begin(), value.end()),
                  std::vector<float>(v.begin() + h * s.head_dim, v.begin() + (h + 1) * s.head_dim));
      }
      // q . K_rot[t] is what the inner cache scores.
      const std::vector<float> q = Random(std::size_t(s.head_dim), rng);
      std::vector<float> scores(static_cast<std::size_t>(n));
      cache->inner().Scores(l, h, q, scores);
      for (int t = 0; t < n; ++t) {
        EXPECT_NEAR(scores[std::size_t(t)], Dot(q, cache->Key(l, h, t, true)), kScoreTolerance);
      }
    }
  }
  const std::vector<float> k_all = cache->KeysTensor(/*rotated=*/true);
  ASSERT_EQ(k_all.size(), std::size_t(s.n_layers * s.n_kv_heads * n * s.head_dim));
  // [l][h][t][d]: layer 1, head 1, token 5, dim 3.
  EXPECT_EQ(k_all[((std::size_t(1) * 2 + 1) * n + 5) * 8 + 3], cache->Key(1, 1, 5, true)[3]);
  EXPECT_EQ(cache->ValuesTensor()[((std::size_t(0) * 2 + 1) * n + 7) * 8 + 2], cache->Value(0, 1, 7)[2]);
}

TEST(RecordingCacheTest, QueriesAndAttentionPairedWithTheirHeads) {
  const KvCacheShape s = TestShape();
  auto cache = MakeRecorder(RecordOptions::Everything());
  std::mt19937 rng(2);
  const int n = 9;
  // Heads scored out of order, as threads may do; each head keeps its own row buffer.
  const std::vector<int> order = {4, 1, 0, 5, 3, 2};
  std::vector<std::vector<std::vector<float>>> queries(std::size_t(s.n_layers));  // [l][t * n_heads + h]
  for (int t = 0; t < n; ++t) {
    for (int l = 0; l < s.n_layers; ++l) {
      std::vector<float> k = Random(std::size_t(s.n_kv_heads * s.head_dim), rng);
      cache->Append(l, t, k, k);
    }
    for (int l = 0; l < s.n_layers; ++l) {
      auto q = AttendOnePosition(*cache, l, t, order, rng);
      queries[std::size_t(l)].insert(queries[std::size_t(l)].end(), q.begin(), q.end());
    }
    cache->EndStep();
  }
  EXPECT_EQ(cache->n_unpaired_queries(), 0u);
  EXPECT_EQ(cache->n_paired_by_content(), 0u);
  for (int l = 0; l < s.n_layers; ++l) {
    for (int t = 0; t < n; ++t) {
      for (int h = 0; h < s.n_heads; ++h) {
        const auto q = cache->Query(l, h, t);
        EXPECT_EQ(std::vector<float>(q.begin(), q.end()), queries[std::size_t(l)][std::size_t(t * s.n_heads + h)]);
        const auto row = cache->AttentionRow(l, h, t);
        ASSERT_EQ(row.size(), std::size_t(t) + 1);
        EXPECT_NEAR(std::accumulate(row.begin(), row.end(), 0.0), 1.0, kProbTolerance);
        // The recorded row is the softmax of the recorded query against the recorded keys.
        std::vector<float> scores(std::size_t(t) + 1);
        for (int j = 0; j <= t; ++j) scores[std::size_t(j)] = float(Dot(q, cache->Key(l, h / 3, j, true)));
        const std::vector<float> p = Softmax(scores);
        for (int j = 0; j <= t; ++j) EXPECT_NEAR(row[std::size_t(j)], p[std::size_t(j)], kProbTolerance);
      }
    }
  }
  const std::vector<float> att = cache->AttentionTensor();
  ASSERT_EQ(att.size(), std::size_t(s.n_layers * s.n_heads * n * n));
  // [l][h][t][j]: zero above the diagonal, the row below it.
  EXPECT_EQ(att[((std::size_t(1) * 6 + 4) * n + 3) * n + 5], 0.0f);
  EXPECT_EQ(att[((std::size_t(1) * 6 + 4) * n + 3) * n + 2], cache->AttentionRow(1, 4, 3)[2]);
  EXPECT_EQ(cache->QueriesTensor()[((std::size_t(0) * 6 + 5) * n + 8) * 8 + 7], cache->Query(0, 5, 8)[7]);
}

TEST(RecordingCacheTest, RowsInOtherBuffersArePairedByContent) {
  const KvCacheShape s = TestShape();
  auto cache = MakeRecorder(RecordOptions::Everything());
  std::mt19937 rng(3);
  const int n = 6;
  std::vector<std::vector<float>> queries;  // layer 0: [t * n_heads + h]
  for (int t = 0; t < n; ++t) {
    for (int l = 0; l < s.n_layers; ++l) {
      std::vector<float> k = Random(std::size_t(s.n_kv_heads * s.head_dim), rng);
      cache->Append(l, t, k, k);
    }
    auto q = AttendOnePosition(*cache, 0, t, {5, 4, 3, 2, 1, 0}, rng, /*copy_rows=*/true);
    queries.insert(queries.end(), q.begin(), q.end());
    AttendOnePosition(*cache, 1, t, {0, 1, 2, 3, 4, 5}, rng, /*copy_rows=*/true);
    cache->EndStep();
  }
  EXPECT_EQ(cache->n_paired_by_content(), std::size_t(n * s.n_heads * s.n_layers));
  EXPECT_EQ(cache->n_unpaired_queries(), 0u);
  // Position 0 is ambiguous (every row is [1]); later rows identify their query.
  for (int t = 1; t < n; ++t) {
    for (int h = 0; h < s.n_heads; ++h) {
      const auto q = cache->Query(0, h, t);
      EXPECT_EQ(std::vector<float>(q.begin(), q.end()), queries[std::size_t(t * s.n_heads + h)]) << t << " " << h;
    }
  }
}

TEST(RecordingCacheTest, QueryNormsAreMaxOverTheGroup) {
  const KvCacheShape s = TestShape();
  auto cache = MakeRecorder(RecordOptions::QueryNormsOnly());
  std::mt19937 rng(4);
  const int n = 5;
  std::vector<std::vector<std::vector<float>>> queries(std::size_t(s.n_layers));
  for (int t = 0; t < n; ++t) {
    for (int l = 0; l < s.n_layers; ++l) {
      std::vector<float> k = Random(std::size_t(s.n_kv_heads * s.head_dim), rng);
      cache->Append(l, t, k, k);
    }
    for (int l = 0; l < s.n_layers; ++l) {
      auto q = AttendOnePosition(*cache, l, t, {2, 0, 1, 3, 5, 4}, rng);
      queries[std::size_t(l)].insert(queries[std::size_t(l)].end(), q.begin(), q.end());
    }
    cache->EndStep();
  }
  for (int l = 0; l < s.n_layers; ++l) {
    for (int kv = 0; kv < s.n_kv_heads; ++kv) {
      const std::vector<double> max = cache->QueryNormSamples(l, kv, QueryHeadReduction::kMax);
      std::vector<double> each = cache->QueryNormSamples(l, kv, QueryHeadReduction::kEach);
      ASSERT_EQ(max.size(), std::size_t(n));
      ASSERT_EQ(each.size(), std::size_t(n * 3));
      std::vector<double> expected_each;
      for (int t = 0; t < n; ++t) {
        double expected = 0;
        for (int h = kv * 3; h < kv * 3 + 3; ++h) {
          const auto& q = queries[std::size_t(l)][std::size_t(t * s.n_heads + h)];
          expected = std::max(expected, Dot(q, q));
          expected_each.push_back(Dot(q, q));
        }
        EXPECT_NEAR(max[std::size_t(t)], expected, 1e-12);
      }
      std::sort(each.begin(), each.end());
      std::sort(expected_each.begin(), expected_each.end());
      for (std::size_t i = 0; i < each.size(); ++i) EXPECT_NEAR(each[i], expected_each[i], 1e-12);
    }
  }
}

TEST(RecordingCacheTest, TruncateDropsRecordedPositions) {
  const KvCacheShape s = TestShape();
  auto cache = MakeRecorder(RecordOptions::Everything());
  std::mt19937 rng(5);
  for (int t = 0; t < 7; ++t) {
    for (int l = 0; l < s.n_layers; ++l) {
      std::vector<float> k = Random(std::size_t(s.n_kv_heads * s.head_dim), rng);
      cache->Append(l, t, k, k);
    }
    for (int l = 0; l < s.n_layers; ++l) AttendOnePosition(*cache, l, t, {0, 1, 2, 3, 4, 5}, rng);
    cache->EndStep();
  }
  cache->Truncate(3);
  EXPECT_EQ(cache->n_tokens(), 3);
  EXPECT_EQ(cache->n_positions(0), 3);
  EXPECT_EQ(cache->QueryNormSamples(1, 1, QueryHeadReduction::kMax).size(), 3u);
  EXPECT_EQ(cache->KeysTensor(false).size(), std::size_t(2 * 2 * 3 * 8));
  EXPECT_EQ(cache->AttentionTensor().size(), std::size_t(2 * 6 * 3 * 3));
  // Appending again continues at position 3.
  std::vector<float> k(std::size_t(s.n_kv_heads * s.head_dim), 0.5f);
  for (int l = 0; l < s.n_layers; ++l) cache->Append(l, 3, k, k);
  EXPECT_EQ(cache->Key(0, 1, 3, false)[0], 0.5f);
  cache->Truncate(0);
  EXPECT_TRUE(cache->QueryNormSamples(0, 0, QueryHeadReduction::kEach).empty());
}

// The engine on stories260K: everything recorded is consistent with itself and the inner cache.
TEST(RecordingCacheTest, RecordsAForwardPassOfTheModel) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/stories260K.bin");
  auto model = LoadModel(path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const ModelConfig& c = model->config();
  KvCacheShape shape{c.n_layers, c.n_kv_heads, c.head_dim, 64, c.n_heads, c.rope_theta, c.rope_dim};
  auto recorder = MakeRecorder(RecordOptions::Everything(), shape);
  RecordingCache* rec = recorder.get();
  auto session = Session::Create(*model, std::move(recorder), 1);
  ASSERT_TRUE(session.ok()) << session.status().message();
  const std::vector<int> prompt = {1, 403, 407, 261, 378, 11, 40, 99, 300, 17, 250, 31};
  ASSERT_TRUE(session->Prefill(std::span<const int>(prompt).first(7)).ok());
  ASSERT_TRUE(session->Prefill(std::span<const int>(prompt).subspan(7)).ok());  // a second batch
  ASSERT_TRUE(session->Decode(5).ok());
  const int n = int(prompt.size()) + 1;
  ASSERT_EQ(rec->n_tokens(), n);
  EXPECT_EQ(rec->n_unpaired_queries(), 0u);
  EXPECT_EQ(rec->n_paired_by_content(), 0u);  // the engine computes the softmax in place
  const int group = c.n_heads / c.n_kv_heads;
  for (int l = 0; l < c.n_layers; ++l) {
    for (int h = 0; h < c.n_heads; ++h) {
      for (int t = 0; t < n; ++t) {
        const auto q = rec->Query(l, h, t);
        const auto row = rec->AttentionRow(l, h, t);
        EXPECT_NEAR(std::accumulate(row.begin(), row.end(), 0.0), 1.0, kProbTolerance);
        std::vector<float> inner_scores(std::size_t(t) + 1);
        rec->inner().Scores(l, h / group, q, inner_scores);
        std::vector<float> scores(std::size_t(t) + 1);
        for (int j = 0; j <= t; ++j) {
          scores[std::size_t(j)] = float(Dot(q, rec->Key(l, h / group, j, true)));
          EXPECT_NEAR(scores[std::size_t(j)], inner_scores[std::size_t(j)], kScoreTolerance);
        }
        const std::vector<float> p = Softmax(scores);
        for (int j = 0; j <= t; ++j) EXPECT_NEAR(row[std::size_t(j)], p[std::size_t(j)], kProbTolerance);
      }
    }
    // The query norms are those of the recorded queries, which carry the softmax scale.
    for (int kv = 0; kv < c.n_kv_heads; ++kv) {
      const std::vector<double> samples = rec->QueryNormSamples(l, kv, QueryHeadReduction::kMax);
      ASSERT_EQ(samples.size(), std::size_t(n));
      for (int t = 0; t < n; ++t) {
        double expected = 0;
        for (int h = kv * group; h < (kv + 1) * group; ++h) expected = std::max(expected, Dot(rec->Query(l, h, t), rec->Query(l, h, t)));
        EXPECT_NEAR(samples[std::size_t(t)], expected, 1e-9 * expected);
      }
    }
  }
}

// With every step split over threads, heads of one group are scored on different threads in
// any order; the recorded queries must still be the single-thread ones, bit for bit.
TEST(RecordingCacheTest, ThreadsDoNotChangeWhatIsRecorded) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/stories260K.bin");
  auto model = LoadModel(path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const ModelConfig& c = model->config();
  KvCacheShape shape{c.n_layers, c.n_kv_heads, c.head_dim, 32, c.n_heads, c.rope_theta, c.rope_dim};
  const std::vector<int> prompt = {1, 403, 407, 261, 378, 11, 40, 99, 300, 17};
  std::vector<std::vector<float>> q, a;
  std::vector<std::vector<double>> norms;
  for (int threads : {1, 3}) {
    auto recorder = MakeRecorder(RecordOptions::Everything(), shape);
    RecordingCache* rec = recorder.get();
    auto forward = internal::Forward::Create(c, model->weights(), std::move(recorder), threads);
    ASSERT_TRUE(forward.ok()) << forward.status().message();
    (*forward)->set_min_parallel_work(0);
    ASSERT_TRUE((*forward)->Run(prompt, false).ok());
    EXPECT_EQ(rec->n_unpaired_queries(), 0u);
    q.push_back(rec->QueriesTensor());
    a.push_back(rec->AttentionTensor());
    norms.push_back(rec->QueryNormSamples(2, 1, QueryHeadReduction::kMax));
  }
  EXPECT_EQ(q[0], q[1]);
  EXPECT_EQ(a[0], a[1]);
  EXPECT_EQ(norms[0], norms[1]);
}

}  // namespace
}  // namespace qaq
