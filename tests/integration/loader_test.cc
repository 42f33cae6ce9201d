// The three stories260K files (llama2.c .bin, GGUF f32, GGUF Q8_0 + f16) describe one model:
// same configuration, same weights (bit for bit in f32, within quantization error otherwise),
// same vocabulary.
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "qaq/model.h"
#include "qaq/tokenizer.h"
#include "test_support.h"

namespace qaq {
namespace {

using ::testing::ElementsAre;

float HalfToFloat(std::uint16_t h) {
  const std::uint32_t sign = (h & 0x8000u) << 16;
  const int exp = (h >> 10) & 0x1F;
  const std::uint32_t mant = h & 0x3FFu;
  float v = exp == 0 ? std::ldexp(static_cast<float>(mant), -24)
                     : std::ldexp(static_cast<float>(mant | 0x400u), exp - 25);
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(v) | sign);
}

// Row-major fp32 values of a tensor of any supported type.
std::vector<float> Dequantize(const TensorView& t) {
  std::vector<float> out(static_cast<std::size_t>(t.rows * t.cols));
  const auto* bytes = static_cast<const std::uint8_t*>(t.data);
  switch (t.type) {
    case TensorType::kF32:
      std::memcpy(out.data(), bytes, out.size() * 4);
      break;
    case TensorType::kF16:
    case TensorType::kBF16:
      for (std::size_t k = 0; k < out.size(); ++k) {
        std::uint16_t h;
        std::memcpy(&h, bytes + 2 * k, 2);
        out[k] = t.type == TensorType::kF16 ? HalfToFloat(h)
                                            : std::bit_cast<float>(std::uint32_t{h} << 16);
      }
      break;
    case TensorType::kQ8_0:
      for (std::size_t b = 0; b < out.size() / 32; ++b) {
        std::uint16_t d;
        std::memcpy(&d, bytes + 34 * b, 2);
        for (int k = 0; k < 32; ++k) {
          out[32 * b + k] = HalfToFloat(d) * static_cast<std::int8_t>(bytes[34 * b + 2 + k]);
        }
      }
      break;
  }
  return out;
}

// Visits (bin tensor, other tensor) pairs of every weight.
void ForEachTensorPair(const Model& a, const Model& b,
                       const std::function<void(const TensorView&, const TensorView&)>& visit) {
  const ModelWeights& x = a.weights();
  const ModelWeights& y = b.weights();
  visit(x.token_embedding, y.token_embedding);
  visit(x.output_norm, y.output_norm);
  visit(x.output, y.output);
  for (std::size_t l = 0; l < x.layers.size(); ++l) {
    const LayerWeights& p = x.layers[l];
    const LayerWeights& q = y.layers[l];
    visit(p.attn_norm, q.attn_norm);
    visit(p.wq, q.wq);
    visit(p.wk, q.wk);
    visit(p.wv, q.wv);
    visit(p.wo, q.wo);
    visit(p.ffn_norm, q.ffn_norm);
    visit(p.w_gate, q.w_gate);
    visit(p.w_down, q.w_down);
    visit(p.w_up, q.w_up);
  }
}

void ExpectSameConfig(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.dim, b.dim);
  EXPECT_EQ(a.hidden_dim, b.hidden_dim);
  EXPECT_EQ(a.n_layers, b.n_layers);
  EXPECT_EQ(a.n_heads, b.n_heads);
  EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.context_length, b.context_length);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_dim, b.rope_dim);
  EXPECT_EQ(a.rms_eps, b.rms_eps);
}

TEST(Stories260KLoaderTest, F32GgufIsBitIdenticalToTheCheckpoint) {
  QAQ_REQUIRE_SHARED_FILE(bin_path, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(gguf_path, "models/stories260K-f32.gguf");
  auto bin = LoadModel(bin_path);
  auto gguf = LoadModel(gguf_path);
  ASSERT_TRUE(bin.ok()) << bin.status().message();
  ASSERT_TRUE(gguf.ok()) << gguf.status().message();
  EXPECT_EQ(gguf->format(), "gguf");
  EXPECT_EQ(gguf->config().name, "llama");  // general.name as the converter wrote it
  ExpectSameConfig(bin->config(), gguf->config());
  EXPECT_EQ(gguf->config().rms_eps, 1e-5f);
  // The converter writes output.weight as a copy of the embedding.
  EXPECT_TRUE(bin->config().shared_classifier);
  EXPECT_FALSE(gguf->config().shared_classifier);
  int compared = 0;
  // Q and K rows too: llama.cpp's llama2.c converter does not permute them, and its normal
  // (adjacent-pair) RoPE is run.c's.
  ForEachTensorPair(*bin, *gguf, [&](const TensorView& a, const TensorView& b) {
    SCOPED_TRACE(b.name);
    EXPECT_EQ(a.name, b.name.starts_with("output.") ? "token_embd.weight" : b.name);
    ASSERT_EQ(b.type, TensorType::kF32);
    ASSERT_EQ(a.rows, b.rows);
    ASSERT_EQ(a.cols, b.cols);
    ASSERT_EQ(a.bytes, b.bytes);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.bytes), 0);
    ++compared;
  });
  EXPECT_EQ(compared, 3 + 5 * 9);
  EXPECT_EQ(gguf->weight_bytes(), bin->weight_bytes() + 512 * 64 * 4);
}

TEST(Stories260KLoaderTest, Q8GgufMatchesWithinQuantizationError) {
  QAQ_REQUIRE_SHARED_FILE(bin_path, "models/stories260K.bin");
  QAQ_REQUIRE_SHARED_FILE(q8_path, "models/stories260K-q8_0-ffn_down-f16.gguf");
  auto bin = LoadModel(bin_path);
  auto q8 = LoadModel(q8_path);
  ASSERT_TRUE(bin.ok()) << bin.status().message();
  ASSERT_TRUE(q8.ok()) << q8.status().message();
  ExpectSameConfig(bin->config(), q8->config());
  int n_q8 = 0, n_f16 = 0, n_f32 = 0;
  double worst_q8_ratio = 0.0;  // |error| / block scale, at most 1/2 plus fp16 rounding of d
  ForEachTensorPair(*bin, *q8, [&](const TensorView& a, const TensorView& b) {
    SCOPED_TRACE(b.name);
    ASSERT_EQ(a.rows, b.rows);
    ASSERT_EQ(a.cols, b.cols);
    const std::vector<float> x = Dequantize(a);
    const std::vector<float> y = Dequantize(b);
    switch (b.type) {
      case TensorType::kF32:
        ++n_f32;
        EXPECT_EQ(x, y);
        break;
      case TensorType::kF16:
        ++n_f16;
        for (std::size_t k = 0; k < x.size(); ++k) {
          ASSERT_LE(std::fabs(x[k] - y[k]), std::fabs(x[k]) * 0x1p-11f + 0x1p-25f) << k;
        }
        break;
      case TensorType::kQ8_0:
        ++n_q8;
        EXPECT_EQ(b.bytes, static_cast<std::size_t>(b.rows * b.cols / 32 * 34));
        for (std::size_t blk = 0; blk < x.size() / 32; ++blk) {
          float amax = 0.0f;
          for (int k = 0; k < 32; ++k) amax = std::max(amax, std::fabs(x[32 * blk + k]));
          const double d = amax / 127.0;
          for (int k = 0; k < 32; ++k) {
            const double err = std::fabs(x[32 * blk + k] - y[32 * blk + k]);
            if (d > 0) worst_q8_ratio = std::max(worst_q8_ratio, err / d);
          }
        }
        break;
      case TensorType::kBF16:
        ADD_FAILURE() << "unexpected bf16";
    }
  });
  EXPECT_EQ(n_f32, 11);            // 2 norms x 5 layers + output_norm
  EXPECT_EQ(n_f16, 5);             // ffn_down: 172 columns cannot be Q8_0
  EXPECT_EQ(n_q8, 2 + 5 * 6);      // embedding, output, and wq wk wv wo gate up per layer
  EXPECT_GT(worst_q8_ratio, 0.3);  // really quantized
  EXPECT_LT(worst_q8_ratio, 0.5 + 127 * 0x1p-11 + 1e-6);
  EXPECT_EQ(q8->weights().layers[0].w_down.type, TensorType::kF16);
  EXPECT_EQ(q8->weights().layers[0].wq.type, TensorType::kQ8_0);
}

TEST(Stories260KLoaderTest, EmbeddedVocabularyMatchesTok512) {
  QAQ_REQUIRE_SHARED_FILE(bin_path, "models/stories260K.bin");
  auto bin = LoadModel(bin_path);
  ASSERT_TRUE(bin.ok());
  auto reference = LoadTokenizer(*bin);
  ASSERT_TRUE(reference.ok()) << reference.status().message();
  for (const char* relative :
       {"models/stories260K-f32.gguf", "models/stories260K-q8_0-ffn_down-f16.gguf"}) {
    SCOPED_TRACE(relative);
    QAQ_REQUIRE_SHARED_FILE(path, relative);
    auto model = LoadModel(path);
    ASSERT_TRUE(model.ok()) << model.status().message();
    const Vocabulary& v = model->vocabulary();
    ASSERT_EQ(v.pieces.size(), 512u);
    EXPECT_EQ(v.bos_id, 1);
    EXPECT_EQ(v.eos_id, 2);
    EXPECT_EQ(v.unk_id, 0);
    EXPECT_EQ(v.pieces[1], "<s>");
    EXPECT_EQ(v.pieces[403], " Once");
    // Same pieces and scores as tok512.bin, apart from how BOS/EOS are spelled.
    for (int id = 3; id < 512; ++id) {
      ASSERT_EQ(v.pieces[id], reference->vocabulary().pieces[id]) << id;
      ASSERT_EQ(v.scores[id], reference->vocabulary().scores[id]) << id;
      ASSERT_EQ(v.is_byte_token[id], reference->vocabulary().is_byte_token[id]) << id;
    }
    auto tokenizer = LoadTokenizer(*model);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
    EXPECT_THAT(tokenizer->Encode("Once upon a time"), ElementsAre(1, 403, 407, 261, 378));
    const std::string text = "Lily's mom said, \"Caf\xC3\xA9!\"\nThe end.";
    EXPECT_EQ(tokenizer->Encode(text), reference->Encode(text));
    EXPECT_EQ(tokenizer->Decode(tokenizer->Encode(text)), text);
  }
}

TEST(Stories260KLoaderTest, TruncatedRealFilesAreDataLoss) {
  for (const char* relative : {"models/stories260K.bin", "models/stories260K-f32.gguf"}) {
    SCOPED_TRACE(relative);
    QAQ_REQUIRE_SHARED_FILE(path, relative);
    std::ifstream in(path, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string copy = test::ScratchDir("loader_truncated") + "/truncated-" + std::to_string(bytes.size());
    std::ofstream(copy, std::ios::binary).write(bytes.data(), bytes.size() - 1000);
    auto model = LoadModel(copy);
    ASSERT_FALSE(model.ok());
    EXPECT_EQ(model.status().code(), StatusCode::kDataLoss) << model.status().message();
  }
}

}  // namespace
}  // namespace qaq
