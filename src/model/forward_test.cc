// The forward pass on small random models against a plain transcription of llama2.c's forward()
// built from the scalar reference kernels.
#include "model/forward.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/matvec.h"
#include "kernels/rope.h"
#include "kernels/tensor_rows.h"
#include "kernels/vector_ops.h"
#include "qaq/engine.h"

namespace qaq {
namespace {

using internal::DequantizeRow;

// A random model whose tensors live in `storage`.
struct TestModel {
  Model model;
  std::vector<std::vector<std::byte>> storage;
};

TensorView MakeTensor(TestModel& m, const std::string& name, std::int64_t rows, std::int64_t cols,
                      TensorType type, std::mt19937& rng, float scale) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> values(std::size_t(rows * cols));
  for (auto& v : values) v = dist(rng);
  if (name.find("norm") != std::string::npos) {
    for (auto& v : values) v = 1.0f + v;  // norm weights around 1
  }
  const std::size_t row_bytes = internal::RowBytes(type, cols);
  std::vector<std::byte> bytes(row_bytes * std::size_t(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    internal::EncodeRow(type, &values[std::size_t(r * cols)], cols, bytes.data() + std::size_t(r) * row_bytes);
  }
  m.storage.push_back(std::move(bytes));
  const auto& b = m.storage.back();
  return TensorView{name, type, b.data(), rows, cols, b.size()};
}

// dim 64, 4 heads of 16 with 2 KV heads, RoPE on 12 of 16 dims, hidden 96 (3 Q8_0 blocks).
std::unique_ptr<TestModel> MakeTestModel(TensorType matrix_type, bool shared_classifier) {
  auto m = std::make_unique<TestModel>();
  m->storage.reserve(64);
  ModelConfig& c = m->model.mutable_config();
  c.dim = 64;
  c.hidden_dim = 96;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 40;
  c.context_length = 100;
  c.rope_theta = 500.0f;
  c.rope_dim = 12;
  c.rms_eps = 1e-5f;
  c.shared_classifier = shared_classifier;
  std::mt19937 rng(5);
  ModelWeights& w = m->model.mutable_weights();
  w.token_embedding = MakeTensor(*m, "token_embd.weight", c.vocab_size, c.dim, matrix_type, rng, 1.0f);
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights lw;
    const float s = 0.2f;
    lw.attn_norm = MakeTensor(*m, "attn_norm", 1, c.dim, TensorType::kF32, rng, 0.1f);
    lw.wq = MakeTensor(*m, "wq", c.dim, c.dim, matrix_type, rng, s);
    lw.wk = MakeTensor(*m, "wk", 32, c.dim, matrix_type, rng, s);
    lw.wv = MakeTensor(*m, "wv", 32, c.dim, matrix_type, rng, s);
    lw.wo = MakeTensor(*m, "wo", c.dim, c.dim, matrix_type, rng, s);
    lw.ffn_norm = MakeTensor(*m, "ffn_norm", 1, c.dim, TensorType::kF32, rng, 0.1f);
    lw.w_gate = MakeTensor(*m, "w_gate", c.hidden_dim, c.dim, matrix_type, rng, s);
    lw.w_down = MakeTensor(*m, "w_down", c.dim, c.hidden_dim, matrix_type, rng, s);
    lw.w_up = MakeTensor(*m, "w_up", c.hidden_dim, c.dim, matrix_type, rng, s);
    w.layers.push_back(lw);
  }
  w.output_norm = MakeTensor(*m, "output_norm", 1, c.dim, TensorType::kF32, rng, 0.1f);
  w.output = shared_classifier ? w.token_embedding
                               : MakeTensor(*m, "output", c.vocab_size, c.dim, matrix_type, rng, 0.5f);
  return m;
}

// llama2.c's forward(), one token at a time, with scalar kernels and an fp32 key/value history.
class ReferenceForward {
 public:
  explicit ReferenceForward(const Model& model) : c_(model.config()), w_(model.weights()) {
    kv_dim_ = c_.n_kv_heads * c_.head_dim;
    keys_.resize(c_.n_layers);
    values_.resize(c_.n_layers);
  }

  std::vector<float> Step(int token, int pos) {
    const int dim = c_.dim, hd = c_.head_dim;
    std::vector<float> x(dim), xb(dim), xb2(dim), q(dim), k(kv_dim_), v(kv_dim_), hb(c_.hidden_dim),
        hb2(c_.hidden_dim), norm(dim);
    DequantizeRow(w_.token_embedding, token, x.data());
    for (int l = 0; l < c_.n_layers; ++l) {
      const LayerWeights& lw = w_.layers[l];
      DequantizeRow(lw.attn_norm, 0, norm.data());
      internal::RmsNormRef(x.data(), norm.data(), xb.data(), dim, c_.rms_eps);
      internal::MatVecRef(lw.wq, xb.data(), q.data(), 0, dim);
      internal::MatVecRef(lw.wk, xb.data(), k.data(), 0, kv_dim_);
      internal::MatVecRef(lw.wv, xb.data(), v.data(), 0, kv_dim_);
      internal::RopeRef(q.data(), c_.n_heads, hd, c_.rope_dim, c_.rope_theta, pos);
      internal::RopeRef(k.data(), c_.n_kv_heads, hd, c_.rope_dim, c_.rope_theta, pos);
      keys_[l].push_back(k);
      values_[l].push_back(v);
      std::fill(xb.begin(), xb.end(), 0.0f);
      for (int h = 0; h < c_.n_heads; ++h) {
        const int kvh = h / (c_.n_heads / c_.n_kv_heads);
        std::vector<float> att(pos + 1);
        for (int t = 0; t <= pos; ++t) {
          float score = 0;
          for (int d = 0; d < hd; ++d) score += q[h * hd + d] * keys_[l][t][kvh * hd + d];
          att[t] = score / std::sqrt(float(hd));
        }
        internal::SoftmaxRef(att.data(), att.size());
        for (int t = 0; t <= pos; ++t) {
          for (int d = 0; d < hd; ++d) xb[h * hd + d] += att[t] * values_[l][t][kvh * hd + d];
        }
      }
      internal::MatVecRef(lw.wo, xb.data(), xb2.data(), 0, dim);
      for (int i = 0; i < dim; ++i) x[i] += xb2[i];
      DequantizeRow(lw.ffn_norm, 0, norm.data());
      internal::RmsNormRef(x.data(), norm.data(), xb.data(), dim, c_.rms_eps);
      internal::MatVecRef(lw.w_gate, xb.data(), hb.data(), 0, c_.hidden_dim);
      internal::MatVecRef(lw.w_up, xb.data(), hb2.data(), 0, c_.hidden_dim);
      internal::SwiGluRef(hb.data(), hb2.data(), hb.data(), c_.hidden_dim);
      internal::MatVecRef(lw.w_down, hb.data(), xb2.data(), 0, dim);
      for (int i = 0; i < dim; ++i) x[i] += xb2[i];
    }
    DequantizeRow(w_.output_norm, 0, norm.data());
    internal::RmsNormRef(x.data(), norm.data(), x.data(), dim, c_.rms_eps);
    std::vector<float> logits(c_.vocab_size);
    internal::MatVecRef(w_.output, x.data(), logits.data(), 0, c_.vocab_size);
    return logits;
  }

 private:
  ModelConfig c_;
  ModelWeights w_;
  int kv_dim_;
  std::vector<std::vector<std::vector<float>>> keys_, values_;  // [layer][pos][kv_dim]
};

std::vector<int> TestTokens(int n) {
  std::vector<int> tokens(n);
  for (int i = 0; i < n; ++i) tokens[i] = (i * 7 + 3) % 40;
  return tokens;
}

struct Case {
  TensorType type;
  bool shared;
};
void PrintTo(const Case& c, std::ostream* os) { *os << "type " << int(c.type) << (c.shared ? " shared" : ""); }

class ForwardTest : public ::testing::TestWithParam<Case> {};

TEST_P(ForwardTest, MatchesReferenceForPrefillAndDecode) {
  auto m = MakeTestModel(GetParam().type, GetParam().shared);
  const int n_prompt = 70, n_total = 90;  // the prompt spans two batch chunks
  const std::vector<int> tokens = TestTokens(n_total);
  ReferenceForward ref(m->model);
  std::vector<std::vector<float>> expected;
  for (int pos = 0; pos < n_total; ++pos) expected.push_back(ref.Step(tokens[pos], pos));

  auto session = Session::Create(m->model);
  ASSERT_TRUE(session.ok()) << session.status().message();
  auto all = session->PrefillAllLogits(std::span<const int>(tokens.data(), n_prompt));
  ASSERT_TRUE(all.ok()) << all.status().message();
  float max_diff = 0;
  for (int pos = 0; pos < n_prompt; ++pos) {
    for (int j = 0; j < 40; ++j) max_diff = std::max(max_diff, std::fabs((*all)[pos * 40 + j] - expected[pos][j]));
  }
  for (int pos = n_prompt; pos < n_total; ++pos) {
    auto logits = session->Decode(tokens[pos]);
    ASSERT_TRUE(logits.ok());
    for (int j = 0; j < 40; ++j) max_diff = std::max(max_diff, std::fabs((*logits)[j] - expected[pos][j]));
  }
  // Reordered fp32 sums (SIMD, FMA) and a fast exp; the logits are of order 1-10.
  EXPECT_LE(max_diff, 2e-4f);
  EXPECT_EQ(session->n_past(), n_total);
}

INSTANTIATE_TEST_SUITE_P(Types, ForwardTest,
                         ::testing::Values(Case{TensorType::kF32, true}, Case{TensorType::kF32, false},
                                           Case{TensorType::kF16, false}, Case{TensorType::kBF16, true},
                                           Case{TensorType::kQ8_0, false}));

TEST(ForwardThreadsTest, AnySplitGivesIdenticalLogits) {
  auto m = MakeTestModel(TensorType::kF16, false);
  const std::vector<int> tokens = TestTokens(80);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3}) {
    KvCacheShape shape{.n_layers = 2, .n_kv_heads = 2, .head_dim = 16, .max_tokens = 100,
                       .n_heads = 4, .rope_theta = 500.0f, .rope_dim = 12};
    auto forward = internal::Forward::Create(m->model.config(), m->model.weights(),
                                             std::move(MakeKvCache("fp32", shape)).value(), threads);
    ASSERT_TRUE(forward.ok());
    (*forward)->set_min_parallel_work(0);  // split every product and every attention row
    auto prefill = (*forward)->Run(std::span<const int>(tokens.data(), 70), true);
    ASSERT_TRUE(prefill.ok());
    std::vector<float> logits(prefill->begin(), prefill->end());
    for (int pos = 70; pos < 80; ++pos) {
      auto step = (*forward)->Run(std::span<const int>(&tokens[pos], 1), false);
      ASSERT_TRUE(step.ok());
      logits.insert(logits.end(), step->begin(), step->end());
    }
    results.push_back(std::move(logits));
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

TEST(ForwardValidationTest, RejectsBadModelsAndCaches) {
  auto m = MakeTestModel(TensorType::kF32, true);
  KvCacheShape shape{.n_layers = 2, .n_kv_heads = 2, .head_dim = 16, .max_tokens = 10, .n_heads = 4,
                     .rope_theta = 500.0f, .rope_dim = 12};
  auto cache = MakeKvCache("fp32", shape);
  ASSERT_TRUE(cache.ok());
  EXPECT_TRUE(Session::Create(m->model, std::move(cache).value(), 1).ok());

  shape.rope_dim = 16;  // differs from the model
  EXPECT_EQ(Session::Create(m->model, std::move(MakeKvCache("fp32", shape)).value(), 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Session::Create(m->model, nullptr, 1).status().code(), StatusCode::kInvalidArgument);

  m->model.mutable_weights().layers[1].wk.rows = 31;  // wrong shape
  EXPECT_EQ(Session::Create(m->model).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace qaq
