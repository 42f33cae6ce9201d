// Decoding a token allocates nothing: every buffer is sized when the session is created.
#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include <gtest/gtest.h>

#include "qaq/engine.h"

// Counts every allocation in this test binary (qaq_model_test).
namespace {
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  ++g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace qaq {
namespace {

TEST(AllocationTest, DecodeAndSampleDoNotAllocate) {
  // A small F32 model built in place (vocab 16, dim 32, 2 layers, 4 heads over 2 KV heads).
  Model model;
  ModelConfig& c = model.mutable_config();
  c.dim = 32;
  c.hidden_dim = 48;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.vocab_size = 16;
  c.context_length = 64;
  c.rope_dim = 8;
  std::vector<std::vector<float>> storage;
  storage.reserve(32);
  auto tensor = [&](std::int64_t rows, std::int64_t cols, float value) {
    storage.emplace_back(std::size_t(rows * cols), value);
    return TensorView{"t", TensorType::kF32, storage.back().data(), rows, cols,
                      storage.back().size() * sizeof(float)};
  };
  ModelWeights& w = model.mutable_weights();
  w.token_embedding = tensor(16, 32, 0.1f);
  for (int l = 0; l < 2; ++l) {
    w.layers.push_back({tensor(1, 32, 1.0f), tensor(32, 32, 0.01f), tensor(16, 32, 0.02f),
                        tensor(16, 32, 0.03f), tensor(32, 32, 0.01f), tensor(1, 32, 1.0f),
                        tensor(48, 32, 0.01f), tensor(32, 48, 0.01f), tensor(48, 32, 0.02f)});
  }
  w.output_norm = tensor(1, 32, 1.0f);
  w.output = w.token_embedding;

  for (const char* kv : {"fp32", "fp16"}) {
    const long at_start = g_allocations.load();
    auto session = Session::Create(model, {.n_threads = 1, .kv_cache = kv});
    ASSERT_TRUE(session.ok()) << session.status().message();
    EXPECT_GT(g_allocations.load() - at_start, 0) << "the counter sees the session's buffers";
    Sampler sampler(16, {.temperature = 0.7f, .top_p = 0.9f, .seed = 1});
    const std::vector<int> prompt = {1, 5, 7};
    ASSERT_TRUE(session->Prefill(prompt).ok());
    int token = 3;
    const long before = g_allocations.load();
    for (int i = 0; i < 40; ++i) {
      auto logits = session->Decode(token);
      ASSERT_TRUE(logits.ok());
      token = sampler.Sample(*logits);
    }
    EXPECT_EQ(g_allocations.load() - before, 0) << kv;
  }
}

}  // namespace
}  // namespace qaq
