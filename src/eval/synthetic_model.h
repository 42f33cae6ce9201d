// Test helper: a tiny pseudo-random llama model written as GGUF to the test temp folder, so the
// evaluation pipeline can be unit-tested without the shared model files.
#pragma once

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "io/gguf_writer.h"
#include "io/test_files.h"
#include "qaq/model.h"

namespace qaq::test {

// dim 32, 2 layers, 4 query heads sharing 2 KV heads of 8, vocab 48, context 96.
inline std::unique_ptr<Model> LoadSyntheticModel(std::uint32_t seed = 7) {
  ModelConfig c;
  c.dim = 32;
  c.hidden_dim = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.vocab_size = 48;
  c.context_length = 96;
  c.rope_dim = 8;
  c.shared_classifier = true;
  auto bytes = internal::BuildSyntheticLlamaGguf(c, TensorType::kF32, seed);
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  if (!bytes.ok()) return nullptr;
  const std::string path = TempPath("synthetic.gguf");
  WriteFile(path, *bytes);
  auto model = LoadModel(path);
  EXPECT_TRUE(model.ok()) << model.status().message();
  if (!model.ok()) return nullptr;
  return std::make_unique<Model>(std::move(*model));
}

// A deterministic token stream over the vocabulary, BOS (1) first.
inline std::vector<int> SyntheticTokens(int n, int vocab = 48, std::uint32_t seed = 3) {
  std::vector<int> t(static_cast<std::size_t>(n));
  std::uint32_t s = seed;
  for (int i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    t[std::size_t(i)] = i == 0 ? 1 : int(3 + (s >> 8) % std::uint32_t(vocab - 3));
  }
  return t;
}

}  // namespace qaq::test
