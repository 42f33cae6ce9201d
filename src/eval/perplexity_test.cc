// Perplexity and KL divergence on a tiny synthetic model: llama.cpp's chunking and scoring, the
// fp32-against-itself identity, thread-count independence, references and error reporting.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "eval/statistics.h"
#include "eval/synthetic_model.h"
#include "qaq/eval.h"

namespace qaq {
namespace {

TEST(PlanChunksTest, FollowsLlamaCpp) {
  auto c = PlanChunks(1000, 256, -1);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->n_chunks, 3);
  EXPECT_EQ(c->first, 128);
  EXPECT_EQ(c->n_scored_per_chunk(), 127);
  EXPECT_EQ(c->n_scored(), 381);
  EXPECT_EQ(PlanChunks(1000, 256, 2)->n_chunks, 2);
  EXPECT_EQ(PlanChunks(1000, 256, 50)->n_chunks, 3);
  EXPECT_EQ(PlanChunks(1000, 7, 1)->first, 3);
}

TEST(PlanChunksTest, RejectsBadRequests) {
  EXPECT_EQ(PlanChunks(100, 256, -1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanChunks(1000, 3, -1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanChunks(1000, 256, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanChunks(1000, 256, -2).status().code(), StatusCode::kInvalidArgument);
}

TEST(EvalProtocolTest, NamesRoundTrip) {
  EXPECT_EQ(*ParseEvalProtocol("prompt"), EvalProtocol::kPrompt);
  EXPECT_EQ(*ParseEvalProtocol("stream"), EvalProtocol::kStream);
  EXPECT_STREQ(EvalProtocolName(EvalProtocol::kStream), "stream");
  EXPECT_EQ(ParseEvalProtocol("batch").status().code(), StatusCode::kInvalidArgument);
}

class PerplexityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = test::LoadSyntheticModel();
    ASSERT_NE(model_, nullptr);
    tokens_ = test::SyntheticTokens(5 * 40 + 7);
  }
  std::unique_ptr<Model> model_;
  std::vector<int> tokens_;
};

// The figure llama.cpp computes, by hand: one batch per chunk, BOS first, NLL of positions
// first+1 .. n_ctx-1 from the logits one position earlier.
TEST_F(PerplexityTest, MatchesHandComputedLlamaCppPerplexity) {
  const int ctx = 40, n_chunks = 5;
  auto session = Session::Create(*model_, {.context_length = ctx});
  ASSERT_TRUE(session.ok());
  std::vector<double> nll;
  for (int c = 0; c < n_chunks; ++c) {
    std::vector<int> chunk(tokens_.begin() + c * ctx, tokens_.begin() + (c + 1) * ctx);
    chunk[0] = 1;
    session->Truncate(0);
    auto logits = session->PrefillAllLogits(chunk);
    ASSERT_TRUE(logits.ok());
    for (int p = ctx / 2; p <= ctx - 2; ++p) {
      nll.push_back(internal::NegLogLikelihood(logits->subspan(std::size_t(p) * 48, 48), chunk[p + 1]));
    }
  }
  const Estimate expected = internal::PerplexityOf(nll);
  for (EvalProtocol protocol : {EvalProtocol::kPrompt, EvalProtocol::kStream}) {
    auto r = EvaluatePerplexity(*model_, tokens_, {.kv_cache = "fp32"},
                                {.context = ctx, .n_chunks = -1, .protocol = protocol});
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->chunks.n_chunks, n_chunks);
    EXPECT_EQ(r->chunks.n_scored(), 5 * 19);
    // Batch and token-by-token runs differ only by float rounding.
    EXPECT_NEAR(r->ppl.value, expected.value, 1e-5 * expected.value) << EvalProtocolName(protocol);
    EXPECT_NEAR(r->ppl.error, expected.error, 1e-4 * expected.error);
    ASSERT_EQ(r->running_ppl.size(), 5u);
    EXPECT_DOUBLE_EQ(r->running_ppl.back(), r->ppl.value);
    EXPECT_FALSE(r->kl.has_value());
    EXPECT_EQ(r->cache_name, "fp32");
  }
}

TEST_F(PerplexityTest, Fp32AgainstItselfHasZeroDivergence) {
  for (EvalProtocol protocol : {EvalProtocol::kPrompt, EvalProtocol::kStream}) {
    auto r = EvaluatePerplexity(*model_, tokens_, {.kv_cache = "fp32"},
                                {.context = 40, .protocol = protocol, .kl_base = true});
    ASSERT_TRUE(r.ok()) << r.status().message();
    ASSERT_TRUE(r->kl.has_value());
    EXPECT_EQ(r->kl->mean.value, 0.0);
    EXPECT_EQ(r->kl->max, 0.0);
    EXPECT_EQ(r->kl->top1.value, 1.0);
    EXPECT_EQ(r->kl->base_ppl.value, r->ppl.value);
    EXPECT_EQ(r->kl->ln_ppl_ratio.value, 0.0);
    // fp32 holds twice the bytes of fp16.
    EXPECT_DOUBLE_EQ(r->memory.compression_ratio(), 0.5);
  }
}

TEST_F(PerplexityTest, Fp16DivergenceIsSmallButNotZero) {
  auto r = EvaluatePerplexity(*model_, tokens_, {.kv_cache = "fp16"},
                              {.context = 40, .protocol = EvalProtocol::kStream, .kl_base = true});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GT(r->kl->mean.value, 0.0);
  EXPECT_LT(r->kl->mean.value, 1e-5);
  EXPECT_GE(r->kl->p99, r->kl->median);
  EXPECT_GE(r->kl->max, r->kl->p999);
  EXPECT_GT(r->kl->top1.value, 0.95);
  EXPECT_DOUBLE_EQ(r->memory.compression_ratio(), 1.0);
  // 5 chunks of 39 cached positions, 2 layers x 2 KV heads x 8 x (K and V) x 2 bytes.
  EXPECT_EQ(r->memory.fp16_reference_bytes, 5u * 39 * 2 * 2 * 8 * 2 * 2);
  // When the cache held the first half: 20 positions per chunk.
  EXPECT_EQ(r->prompt_memory.fp16_reference_bytes, 5u * 20 * 2 * 2 * 8 * 2 * 2);
  EXPECT_EQ(r->key_memory.cache_bytes() + r->value_memory.cache_bytes(), r->memory.cache_bytes());
}

// Adaptive caches keep state across steps: a chunk must give the same figures whichever thread
// and fresh session runs it.
TEST_F(PerplexityTest, QuantizedCachesGiveTheSameFiguresOnAnyThreadCount) {
  for (const char* kv : {"uniform:4", "qaq", "kivi:2"}) {
    for (EvalProtocol protocol : {EvalProtocol::kPrompt, EvalProtocol::kStream}) {
      TextEvalOptions o;
      o.context = 40;
      o.protocol = protocol;
      o.kl_base = true;
      o.n_threads = 1;
      auto one = EvaluatePerplexity(*model_, tokens_, {.kv_cache = kv}, o);
      o.n_threads = 3;
      auto three = EvaluatePerplexity(*model_, tokens_, {.kv_cache = kv}, o);
      ASSERT_TRUE(one.ok()) << one.status().message();
      ASSERT_TRUE(three.ok());
      EXPECT_GT(one->kl->mean.value, 0.0) << kv;
      EXPECT_EQ(one->kl->mean.value, three->kl->mean.value) << kv;
      EXPECT_EQ(one->ppl.value, three->ppl.value) << kv;
      EXPECT_EQ(one->memory.cache_bytes(), three->memory.cache_bytes()) << kv;
      EXPECT_GT(one->memory.compression_ratio(), 1.0) << kv;
      EXPECT_EQ(one->key_memory.cache_bytes() + one->value_memory.cache_bytes(),
                one->memory.cache_bytes()) << kv;
    }
  }
}

TEST_F(PerplexityTest, ResultsDoNotDependOnThreadCount) {
  TextEvalOptions o{.context = 40, .protocol = EvalProtocol::kStream, .kl_base = true};
  o.n_threads = 1;
  auto one = EvaluatePerplexity(*model_, tokens_, {.kv_cache = "fp16"}, o);
  o.n_threads = 3;
  int calls = 0, last_done = 0;
  o.progress = [&](int done, int total) {
    ++calls;
    last_done = done;
    EXPECT_EQ(total, 5);
  };
  auto three = EvaluatePerplexity(*model_, tokens_, {.kv_cache = "fp16"}, o);
  ASSERT_TRUE(one.ok() && three.ok());
  EXPECT_EQ(one->ppl.value, three->ppl.value);
  EXPECT_EQ(one->ppl.error, three->ppl.error);
  EXPECT_EQ(one->kl->mean.value, three->kl->mean.value);
  EXPECT_EQ(one->kl->p99, three->kl->p99);
  EXPECT_EQ(one->running_ppl, three->running_ppl);
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(last_done, 5);
}

TEST_F(PerplexityTest, ReferenceGivesTheSameFiguresAsTheSamePassBase) {
  const TextEvalOptions o{.context = 40, .n_chunks = 3, .protocol = EvalProtocol::kPrompt,
                          .kl_base = true, .n_threads = 2};
  auto same_pass = EvaluatePerplexity(*model_, tokens_, {.kv_cache = "fp16"}, o);
  auto ref = ComputeReference(*model_, tokens_, o);
  ASSERT_TRUE(same_pass.ok() && ref.ok());
  EXPECT_EQ(ref->chunks().n_chunks, 3);
  auto with_ref = EvaluatePerplexity(*model_, tokens_, {.kv_cache = "fp16"},
                                     {.context = 40, .n_chunks = 3}, &*ref);
  ASSERT_TRUE(with_ref.ok()) << with_ref.status().message();
  EXPECT_EQ(with_ref->kl->mean.value, same_pass->kl->mean.value);
  EXPECT_EQ(with_ref->kl->top1.value, same_pass->kl->top1.value);
  EXPECT_EQ(with_ref->kl->base_ppl.value, same_pass->kl->base_ppl.value);
}

TEST_F(PerplexityTest, RejectsAReferenceFromOtherTokensOrProtocol) {
  auto ref = ComputeReference(*model_, tokens_, {.context = 40, .n_chunks = 2});
  ASSERT_TRUE(ref.ok());
  std::vector<int> other = tokens_;
  other[5] = (other[5] + 1) % 48;
  auto r = EvaluatePerplexity(*model_, other, {.kv_cache = "fp16"}, {.context = 40, .n_chunks = 2},
                              &*ref);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  auto s = EvaluatePerplexity(*model_, tokens_, {.kv_cache = "fp16"},
                              {.context = 40, .n_chunks = 2, .protocol = EvalProtocol::kStream},
                              &*ref);
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("protocol"), std::string::npos);
}

TEST_F(PerplexityTest, ReportsBadInputAsStatus) {
  EXPECT_EQ(EvaluatePerplexity(*model_, tokens_, {.kv_cache = "nope"}, {.context = 40})
                .status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EvaluatePerplexity(*model_, tokens_, {}, {.context = 40, .n_threads = 0})
                .status().code(),
            StatusCode::kInvalidArgument);
  // More positions than the model's context.
  const std::vector<int> long_text = test::SyntheticTokens(400);
  EXPECT_EQ(EvaluatePerplexity(*model_, long_text, {}, {.context = 200}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EvaluatePerplexity(*model_, std::vector<int>{1, 5}, {}, {.context = 40})
                .status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(PerplexityTest, ReportNamesProtocolAndFigures) {
  auto r = EvaluatePerplexity(*model_, tokens_, {.kv_cache = "fp16"},
                              {.context = 40, .n_chunks = 2, .kl_base = true});
  ASSERT_TRUE(r.ok());
  const std::string report = FormatPerplexityReport(*r);
  EXPECT_NE(report.find("protocol: prompt"), std::string::npos) << report;
  EXPECT_NE(report.find("Final estimate: PPL = "), std::string::npos);
  EXPECT_NE(report.find("Mean    KLD:"), std::string::npos);
  EXPECT_NE(report.find("Same top p:"), std::string::npos);
  EXPECT_NE(report.find("compression ratio 1.000x"), std::string::npos) << report;
}

}  // namespace
}  // namespace qaq
