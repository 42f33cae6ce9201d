#include "io/llama2c_reader.h"

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "io/test_files.h"
#include "qaq/model.h"
#include "test_support.h"

namespace qaq {
namespace {

struct Dims {
  std::int32_t dim = 8, hidden = 12, layers = 2, heads = 2, kv_heads = 1, vocab = 10, seq = 4;
};

std::int64_t FloatCount(const Dims& d) {
  const std::int64_t head = d.dim / d.heads, kv = std::int64_t{d.kv_heads} * head;
  const std::int64_t vocab = d.vocab < 0 ? -std::int64_t{d.vocab} : d.vocab;
  std::int64_t n = vocab * d.dim;
  n += std::int64_t{d.layers} *
       (2 * d.dim + 2 * d.dim * d.dim + 2 * kv * d.dim + 3 * d.hidden * d.dim);
  n += d.dim + std::int64_t{d.seq} * head;
  if (d.vocab < 0) n += vocab * d.dim;
  return n;
}

// A checkpoint whose i-th weight is float(i), so each tensor's first value is its offset.
std::vector<std::uint8_t> Checkpoint(const Dims& d, std::int64_t n_floats) {
  test::ByteWriter w;
  for (std::int32_t v : {d.dim, d.hidden, d.layers, d.heads, d.kv_heads, d.vocab, d.seq}) w.Put(v);
  for (std::int64_t i = 0; i < n_floats; ++i) w.Put(static_cast<float>(i));
  return w.bytes();
}

StatusOr<Model> LoadBytes(const std::vector<std::uint8_t>& bytes) {
  const std::string path = test::TempPath("bin");
  test::WriteFile(path, bytes);
  return LoadModel(path);
}

float First(const TensorView& t) {
  float v;
  std::memcpy(&v, t.data, sizeof(v));
  return v;
}

void ExpectError(const StatusOr<Model>& model, StatusCode code, const std::string& fragment) {
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), code) << model.status().message();
  EXPECT_NE(model.status().message().find(fragment), std::string::npos)
      << "message: " << model.status().message();
}

TEST(Llama2cReaderTest, LoadsStories260K) {
  QAQ_REQUIRE_SHARED_FILE(path, "models/stories260K.bin");
  auto model = LoadModel(path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const ModelConfig& c = model->config();
  EXPECT_EQ(model->format(), "llama2c");
  EXPECT_EQ(c.name, "stories260K");
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.context_length, 512);
  EXPECT_EQ(c.rope_dim, 8);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_TRUE(c.shared_classifier);
  const ModelWeights& w = model->weights();
  ASSERT_EQ(w.layers.size(), 5u);
  EXPECT_EQ(w.layers[0].wk.rows, 32);
  EXPECT_EQ(w.layers[0].wk.cols, 64);
  EXPECT_EQ(w.layers[4].w_down.rows, 64);
  EXPECT_EQ(w.layers[4].w_down.cols, 172);
  EXPECT_EQ(w.output.data, w.token_embedding.data);
  EXPECT_TRUE(model->vocabulary().pieces.empty());
  // All floats but the two unused RoPE tables (512 * 4 each): 260032 floats.
  EXPECT_EQ(model->weight_bytes(), 260032u * 4u);
  // The embedding starts right after the 28-byte header; rms_final ends 4096 floats before EOF.
  EXPECT_EQ(static_cast<const std::uint8_t*>(w.output_norm.data) + 64 * 4 + 4096 * 4 - 1056540,
            static_cast<const std::uint8_t*>(w.token_embedding.data) - 28);
}

TEST(Llama2cReaderTest, SyntheticLayoutPointsAtEachTensor) {
  Dims d;  // dim 8, hidden 12, 2 layers, 2 heads (head 4), 1 kv head, vocab 10, seq 4
  auto model = LoadBytes(Checkpoint(d, FloatCount(d)));
  ASSERT_TRUE(model.ok()) << model.status().message();
  const ModelWeights& w = model->weights();
  // Offsets in floats: embedding 80, then per kind 2 layers: attn_norm 8, wq 64, wk 32, wv 32,
  // wo 64, ffn_norm 8, w1 96, w2 96, w3 96.
  EXPECT_EQ(First(w.token_embedding), 0.0f);
  EXPECT_EQ(First(w.layers[0].attn_norm), 80.0f);
  EXPECT_EQ(First(w.layers[1].attn_norm), 88.0f);
  EXPECT_EQ(First(w.layers[0].wq), 96.0f);
  EXPECT_EQ(First(w.layers[1].wq), 160.0f);
  EXPECT_EQ(First(w.layers[0].wk), 224.0f);
  EXPECT_EQ(First(w.layers[1].wk), 256.0f);
  EXPECT_EQ(First(w.layers[0].wv), 288.0f);
  EXPECT_EQ(First(w.layers[0].wo), 352.0f);
  EXPECT_EQ(First(w.layers[0].ffn_norm), 480.0f);
  EXPECT_EQ(First(w.layers[0].w_gate), 496.0f);
  EXPECT_EQ(First(w.layers[0].w_down), 688.0f);
  EXPECT_EQ(First(w.layers[1].w_down), 784.0f);
  EXPECT_EQ(First(w.layers[0].w_up), 880.0f);
  EXPECT_EQ(First(w.output_norm), 1072.0f);
  EXPECT_EQ(w.layers[0].wk.rows, 4);
  EXPECT_EQ(w.layers[0].w_down.cols, 12);
  EXPECT_EQ(w.layers[0].wq.bytes, 64u * 4u);
  EXPECT_TRUE(model->config().shared_classifier);
  EXPECT_EQ(w.output.data, w.token_embedding.data);
}

TEST(Llama2cReaderTest, NegativeVocabMeansUnsharedClassifier) {
  Dims d;
  d.vocab = -10;
  auto model = LoadBytes(Checkpoint(d, FloatCount(d)));
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_FALSE(model->config().shared_classifier);
  EXPECT_EQ(model->config().vocab_size, 10);
  // wcls follows rms_final (8 floats) and the two RoPE tables (4 * 2 floats each).
  EXPECT_EQ(First(model->weights().output), 1072.0f + 8 + 16);
  EXPECT_EQ(model->weights().output.rows, 10);
  // Everything but the RoPE tables is a weight, the classifier included.
  EXPECT_EQ(model->weight_bytes(), static_cast<std::size_t>(FloatCount(d) - 16) * 4u);
}

TEST(Llama2cReaderTest, TruncatedFileIsDataLoss) {
  Dims d;
  std::vector<std::uint8_t> bytes = Checkpoint(d, FloatCount(d));
  bytes.pop_back();
  ExpectError(LoadBytes(bytes), StatusCode::kDataLoss, "truncated");
}

TEST(Llama2cReaderTest, TrailingBytesAreRejected) {
  Dims d;
  ExpectError(LoadBytes(Checkpoint(d, FloatCount(d) + 1)), StatusCode::kDataLoss,
              "4 bytes after the weights");
}

TEST(Llama2cReaderTest, LargeButValidDimsOnSmallFileIsTruncated) {
  Dims d{4096, 11008, 32, 32, 32, 32000, 2048};
  ExpectError(LoadBytes(Checkpoint(d, 100)), StatusCode::kDataLoss, "truncated");
}

TEST(Llama2cReaderTest, AbsurdDimensionsAreRejected) {
  struct Case {
    Dims dims;
    std::string fragment;
  };
  const std::vector<Case> cases = {
      {{0, 12, 2, 2, 1, 10, 4}, "dim = 0 is out of range"},
      {{-8, 12, 2, 2, 1, 10, 4}, "dim = -8 is out of range"},
      {{8, 12, 0, 2, 1, 10, 4}, "n_layers = 0"},
      {{8, 12, 2, 3, 1, 10, 4}, "dim 8 is not a multiple of n_heads 3"},
      {{8, 12, 2, 4, 3, 10, 4}, "n_heads 4 is not a multiple of n_kv_heads 3"},
      {{8, 12, 2, 8, 1, 10, 4}, "rope dimension 1 must be even"},
      {{1 << 30, 12, 2, 2, 1, 10, 4}, "dim = 1073741824 is out of range"},
      {{8, 12, 2, 2, 1, INT32_MIN, 4}, "vocab_size = 0"},
      {{8, 12, 2, 2, 1, 10, 0}, "context_length = 0"},
      {{8, 2147483647, 2147483647, 2, 1, 10, 4}, "hidden_dim = 2147483647 is out of range"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fragment);
    auto model = LoadBytes(Checkpoint(c.dims, 64));
    ExpectError(model, StatusCode::kDataLoss, c.fragment);
    if (!model.ok()) {
      EXPECT_NE(model.status().message().find("not a valid llama2.c checkpoint"),
                std::string::npos);
    }
  }
}

TEST(Llama2cReaderTest, TextFileIsNotAModel) {
  test::ByteWriter w;
  w.PutBytes("Once upon a time there was a file that was not a model at all.\n");
  ExpectError(LoadBytes(w.bytes()), StatusCode::kDataLoss, "not a valid llama2.c checkpoint");
}

TEST(Llama2cReaderTest, ShortFileIsDataLoss) {
  ExpectError(LoadBytes({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}), StatusCode::kDataLoss,
              "too short for a llama2.c header");
}

TEST(Llama2cReaderTest, VersionedExportIsUnimplemented) {
  test::ByteWriter w;
  w.Put(std::uint32_t{0x616b3432});
  w.Put(std::int32_t{2});
  for (int i = 0; i < 60; ++i) w.Put(std::int32_t{0});
  ExpectError(LoadBytes(w.bytes()), StatusCode::kUnimplemented, "ak42");
}

TEST(Llama2cReaderTest, MissingAndEmptyFiles) {
  ExpectError(LoadModel(test::TempPath("missing.bin")), StatusCode::kNotFound, "no such file");
  ExpectError(LoadBytes({}), StatusCode::kDataLoss, "is empty");
}

TEST(Llama2cReaderTest, ErrorsNameTheFile) {
  const std::string path = test::TempPath("bin");
  test::WriteFile(path, {1, 2, 3});
  auto model = LoadModel(path);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find(path), std::string::npos) << model.status().message();
}

}  // namespace
}  // namespace qaq
