#include "io/gguf_model.h"

#include <cstring>
#include <functional>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "io/gguf_reader.h"
#include "io/gguf_types.h"
#include "io/gguf_writer.h"
#include "io/test_files.h"
#include "qaq/model.h"

namespace qaq::internal {
namespace {

// Small but complete: GQA (4 query heads, 2 KV heads), partial RoPE, non-default constants.
ModelConfig SmallConfig() {
  ModelConfig c;
  c.name = "tiny";
  c.dim = 64;
  c.hidden_dim = 96;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 8;
  c.context_length = 32;
  c.rope_theta = 500000.0f;
  c.rope_dim = 8;
  c.rms_eps = 1e-6f;
  c.shared_classifier = false;
  return c;
}

Vocabulary SmallVocab() {
  Vocabulary v;
  v.pieces = {"<unk>", "<s>", "</s>", "<0x41>", " a", "a b", "b", " "};
  v.scores = {0, 0, 0, 0, -1, -2, -3, -4};
  v.is_byte_token = {0, 0, 0, 1, 0, 0, 0, 0};
  v.add_dummy_prefix = false;
  return v;
}

StatusOr<Model> LoadWriter(const GgufWriter& w) {
  const std::string path = test::TempPath("gguf");
  QAQ_RETURN_IF_ERROR(w.WriteFile(path));
  return LoadModel(path);
}

// Loads the small model after `edit` changed its writer.
StatusOr<Model> LoadEdited(const std::function<void(GgufWriter&)>& edit,
                           TensorType type = TensorType::kF32,
                           const ModelConfig& config = SmallConfig()) {
  const Vocabulary vocab = SmallVocab();
  StatusOr<GgufWriter> w = SyntheticLlamaWriter(config, type, 1, &vocab);
  if (!w.ok()) return w.status();
  edit(*w);
  return LoadWriter(*w);
}

void ExpectError(const StatusOr<Model>& m, StatusCode code, const std::string& fragment) {
  ASSERT_FALSE(m.ok()) << "expected an error containing: " << fragment;
  EXPECT_EQ(m.status().code(), code) << m.status().message();
  EXPECT_NE(m.status().message().find(fragment), std::string::npos)
      << "message: " << m.status().message();
}

class GgufModelTypeTest : public ::testing::TestWithParam<TensorType> {};

TEST_P(GgufModelTypeTest, SyntheticModelRoundTrips) {
  const ModelConfig c = SmallConfig();
  const Vocabulary vocab = SmallVocab();
  auto bytes = BuildSyntheticLlamaGguf(c, GetParam(), 42, &vocab);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  const std::string path = test::TempPath("gguf");
  test::WriteFile(path, *bytes);
  auto model = LoadModel(path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ(model->format(), "gguf");
  const ModelConfig& m = model->config();
  EXPECT_EQ(m.name, "tiny");
  EXPECT_EQ(m.dim, 64);
  EXPECT_EQ(m.hidden_dim, 96);
  EXPECT_EQ(m.n_layers, 2);
  EXPECT_EQ(m.n_heads, 4);
  EXPECT_EQ(m.n_kv_heads, 2);
  EXPECT_EQ(m.head_dim, 16);
  EXPECT_EQ(m.vocab_size, 8);
  EXPECT_EQ(m.context_length, 32);
  EXPECT_EQ(m.rope_dim, 8);
  EXPECT_FLOAT_EQ(m.rope_theta, 500000.0f);
  EXPECT_FLOAT_EQ(m.rms_eps, 1e-6f);
  EXPECT_FALSE(m.shared_classifier);

  // Every view is the file's tensor: same bytes, rows = ne[1], cols = ne[0].
  auto gguf = GgufFile::Parse(*bytes);
  ASSERT_TRUE(gguf.ok());
  const ModelWeights& w = model->weights();
  std::vector<const TensorView*> views = {&w.token_embedding, &w.output_norm, &w.output};
  for (const LayerWeights& l : w.layers) {
    for (const TensorView* t :
         {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_down, &l.w_up}) {
      views.push_back(t);
    }
  }
  std::size_t total = 0;
  for (const TensorView* t : views) {
    SCOPED_TRACE(t->name);
    const GgufTensorInfo* info = gguf->FindTensor(t->name);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(t->cols, static_cast<std::int64_t>(info->dims[0]));
    EXPECT_EQ(t->rows, info->dims.size() > 1 ? static_cast<std::int64_t>(info->dims[1]) : 1);
    ASSERT_EQ(t->bytes, *info->bytes);
    EXPECT_EQ(std::memcmp(t->data, info->data, t->bytes), 0);
    EXPECT_EQ(t->type, info->dims.size() == 1 ? TensorType::kF32 : GetParam());
    total += t->bytes;
  }
  EXPECT_EQ(model->weight_bytes(), total);
  EXPECT_EQ(w.layers[1].wk.rows, 32);
  EXPECT_EQ(w.layers[1].w_down.cols, 96);

  const Vocabulary& v = model->vocabulary();
  EXPECT_EQ(v.pieces, vocab.pieces);  // spaces went through the file as U+2581
  EXPECT_EQ(v.scores, vocab.scores);
  EXPECT_EQ(v.is_byte_token, vocab.is_byte_token);
  EXPECT_FALSE(v.add_dummy_prefix);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, GgufModelTypeTest,
                         ::testing::Values(TensorType::kF32, TensorType::kF16, TensorType::kBF16,
                                           TensorType::kQ8_0),
                         [](const auto& info) { return std::string(TensorTypeName(info.param)); });

TEST(GgufModelTest, AbsentOutputMeansSharedClassifier) {
  ModelConfig c = SmallConfig();
  c.shared_classifier = true;
  auto model = LoadEdited([](GgufWriter&) {}, TensorType::kF32, c);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_TRUE(model->config().shared_classifier);
  EXPECT_EQ(model->weights().output.data, model->weights().token_embedding.data);
}

TEST(GgufModelTest, DefaultsForOptionalKeys) {
  auto model = LoadEdited([](GgufWriter& w) {
    for (const char* key : {"general.name", "llama.attention.head_count_kv", "llama.rope.freq_base",
                            "llama.rope.dimension_count", "llama.attention.layer_norm_rms_epsilon",
                            "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                            "tokenizer.ggml.add_space_prefix", "tokenizer.ggml.bos_token_id"}) {
      w.RemoveKey(key);
    }
    // Without head_count_kv, K and V have as many heads as Q.
    for (int l = 0; l < 2; ++l) {
      for (const char* part : {"attn_k", "attn_v"}) {
        GgufWriter::Tensor* t = w.FindTensor(fmt::format("blk.{}.{}.weight", l, part));
        t->dims = {64, 64};
        t->data.resize(64 * 64 * 4);
      }
    }
  });
  ASSERT_TRUE(model.ok()) << model.status().message();
  const ModelConfig& c = model->config();
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.rope_dim, 16);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_EQ(c.name.find("GgufModelTest.DefaultsForOptionalKeys"), 0u);  // the file name
  const Vocabulary& v = model->vocabulary();
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_TRUE(v.add_dummy_prefix);
  EXPECT_EQ(v.scores, std::vector<float>(8, 0.0f));
  EXPECT_TRUE(v.is_byte_token.empty());
}

TEST(GgufModelTest, NoEmbeddedVocabularyIsFine) {
  ModelConfig c = SmallConfig();
  auto w = SyntheticLlamaWriter(c, TensorType::kF32, 3);
  ASSERT_TRUE(w.ok());
  auto model = LoadWriter(*w);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_TRUE(model->vocabulary().pieces.empty());
}

TEST(GgufModelTest, UnsupportedArchitecture) {
  ExpectError(LoadEdited([](GgufWriter& w) {
                w.RemoveKey("general.architecture");
                w.AddString("general.architecture", "gpt2");
              }),
              StatusCode::kUnimplemented, "architecture 'gpt2' is not supported");
  ExpectError(LoadEdited([](GgufWriter& w) { w.RemoveKey("general.architecture"); }),
              StatusCode::kDataLoss, "missing metadata 'general.architecture'");
}

TEST(GgufModelTest, UnsupportedTensorTypeNamesTensorAndType) {
  ExpectError(LoadEdited([](GgufWriter& w) {
                GgufWriter::Tensor* t = w.FindTensor("blk.1.attn_q.weight");
                t->type = 12;  // q4_K: 256 values in 144 bytes
                t->dims = {256, 16};
                t->data.assign(16 * 144, 0);
              }),
              StatusCode::kUnimplemented, "tensor 'blk.1.attn_q.weight' has type q4_K");
  ExpectError(LoadEdited([](GgufWriter& w) { w.FindTensor("token_embd.weight")->type = 77; }),
              StatusCode::kUnimplemented, "has type type 77");
}

TEST(GgufModelTest, Q8_0WithRowsNotMultipleOf32) {
  ModelConfig c = SmallConfig();
  c.hidden_dim = 172;  // like stories260K's ffn_down
  ExpectError(LoadEdited([](GgufWriter&) {}, TensorType::kQ8_0, c), StatusCode::kInvalidArgument,
              "multiple of 32");
  ExpectError(LoadEdited(
                  [](GgufWriter& w) {
                    GgufWriter::Tensor* t = w.FindTensor("blk.0.ffn_down.weight");
                    t->type = kGgmlQ8_0;
                    t->dims = {172, 64};
                    t->data.assign(64 * 6 * 34, 0);
                  },
                  TensorType::kF32, c),
              StatusCode::kDataLoss, "'blk.0.ffn_down.weight' of type q8_0 has rows of 172 values");
}

TEST(GgufModelTest, MissingTensorsAndKeys) {
  ExpectError(LoadEdited([](GgufWriter& w) { w.RemoveTensor("blk.1.ffn_up.weight"); }),
              StatusCode::kDataLoss, "missing tensor 'blk.1.ffn_up.weight'");
  ExpectError(LoadEdited([](GgufWriter& w) { w.RemoveTensor("token_embd.weight"); }),
              StatusCode::kDataLoss, "missing tensor 'token_embd.weight'");
  ExpectError(LoadEdited([](GgufWriter& w) { w.RemoveKey("llama.block_count"); }),
              StatusCode::kDataLoss, "missing metadata 'llama.block_count'");
  ExpectError(LoadEdited([](GgufWriter& w) {
                w.RemoveKey("llama.embedding_length");
                w.AddString("llama.embedding_length", "64");
              }),
              StatusCode::kDataLoss, "'llama.embedding_length' is a string, expected an integer");
}

TEST(GgufModelTest, ShapeMismatchesNameTheTensor) {
  ExpectError(LoadEdited([](GgufWriter& w) {
                GgufWriter::Tensor* t = w.FindTensor("blk.0.attn_k.weight");
                t->dims = {32, 64};  // transposed
              }),
              StatusCode::kDataLoss,
              "tensor 'blk.0.attn_k.weight' has shape [64, 32], expected [32, 64]");
  ExpectError(LoadEdited([](GgufWriter& w) {
                w.RemoveKey("llama.block_count");
                w.AddUint32("llama.block_count", 3);
              }),
              StatusCode::kDataLoss, "missing tensor 'blk.2.attn_norm.weight'");
  ExpectError(LoadEdited([](GgufWriter& w) {
                w.FindTensor("output.weight")->dims = {64, 4, 2};
              }),
              StatusCode::kDataLoss, "'output.weight' has 3 dimensions");
  ExpectError(LoadEdited([](GgufWriter& w) {
                GgufWriter::Tensor* t = w.FindTensor("blk.0.attn_norm.weight");
                t->type = kGgmlF16;
                t->data.resize(128);
              }),
              StatusCode::kUnimplemented, "norm tensor 'blk.0.attn_norm.weight' has type f16");
}

TEST(GgufModelTest, AbsurdDimensions) {
  auto set = [](const char* key, std::uint64_t value) {
    return [key, value](GgufWriter& w) {
      w.RemoveKey(key);
      w.AddUint64(key, value);
    };
  };
  ExpectError(LoadEdited(set("llama.embedding_length", 0)), StatusCode::kDataLoss,
              "dim = 0 is out of range");
  ExpectError(LoadEdited(set("llama.embedding_length", 1ull << 40)), StatusCode::kDataLoss,
              "'llama.embedding_length' = 1099511627776 is out of range");
  ExpectError(LoadEdited(set("llama.attention.head_count", 3)), StatusCode::kDataLoss,
              "dim 64 is not a multiple of n_heads 3");
  ExpectError(LoadEdited(set("llama.attention.head_count_kv", 3)), StatusCode::kDataLoss,
              "n_heads 4 is not a multiple of n_kv_heads 3");
  ExpectError(LoadEdited(set("llama.rope.dimension_count", 17)), StatusCode::kDataLoss,
              "rope dimension 17");
  ExpectError(LoadEdited(set("llama.block_count", 1u << 20)), StatusCode::kDataLoss,
              "n_layers = 1048576 is out of range");
  ExpectError(LoadEdited([](GgufWriter& w) {
                w.RemoveKey("llama.attention.layer_norm_rms_epsilon");
                w.AddFloat32("llama.attention.layer_norm_rms_epsilon", -1.0f);
              }),
              StatusCode::kDataLoss, "epsilon");
}

TEST(GgufModelTest, UnsupportedVariants) {
  ExpectError(LoadEdited([](GgufWriter& w) { w.AddString("llama.rope.scaling.type", "yarn"); }),
              StatusCode::kUnimplemented, "RoPE scaling 'yarn'");
  ExpectError(LoadEdited([](GgufWriter& w) { w.AddUint32("llama.attention.key_length", 32); }),
              StatusCode::kUnimplemented, "key_length = 32");
  ExpectError(LoadEdited([](GgufWriter& w) { w.AddUint32("llama.expert_count", 8); }),
              StatusCode::kUnimplemented, "mixture-of-experts");
  ExpectError(LoadEdited([](GgufWriter& w) {
                w.AddTensor("rope_freqs.weight", {8}, kGgmlF32, std::vector<std::uint8_t>(32));
              }),
              StatusCode::kUnimplemented, "rope_freqs.weight");
}

TEST(GgufModelTest, BadVocabulary) {
  ExpectError(LoadEdited([](GgufWriter& w) {
                w.RemoveKey("tokenizer.ggml.model");
                w.AddString("tokenizer.ggml.model", "gpt2");
              }),
              StatusCode::kUnimplemented, "tokenizer 'gpt2' is not supported");
  ExpectError(LoadEdited([](GgufWriter& w) {
                w.RemoveKey("tokenizer.ggml.tokens");
                w.AddStringArray("tokenizer.ggml.tokens", {"a", "b"});
              }),
              StatusCode::kDataLoss, "vocabulary has 2 tokens but token_embd.weight has 8 rows");
  ExpectError(LoadEdited([](GgufWriter& w) {
                w.RemoveKey("tokenizer.ggml.scores");
                w.AddFloat32Array("tokenizer.ggml.scores", {1.0f});
              }),
              StatusCode::kDataLoss, "1 token scores for 8 tokens");
  ExpectError(LoadEdited([](GgufWriter& w) {
                w.RemoveKey("tokenizer.ggml.eos_token_id");
                w.AddUint32("tokenizer.ggml.eos_token_id", 8);
              }),
              StatusCode::kDataLoss, "EOS token id 8 is outside the vocabulary of 8");
}

TEST(GgufModelTest, CorruptContainerThroughLoadModel) {
  const Vocabulary vocab = SmallVocab();
  auto bytes = BuildSyntheticLlamaGguf(SmallConfig(), TensorType::kF32, 5, &vocab);
  ASSERT_TRUE(bytes.ok());
  std::vector<std::uint8_t> truncated = *bytes;
  truncated.resize(truncated.size() / 2);
  const std::string path = test::TempPath("gguf");
  test::WriteFile(path, truncated);
  auto model = LoadModel(path);
  ExpectError(model, StatusCode::kDataLoss, "past the end of the file");
  EXPECT_EQ(model.status().message().find("'" + path + "': "), 0u) << model.status().message();
  test::WriteFile(path, {'G', 'G', 'U', 'F', 3, 0, 0});
  ExpectError(LoadModel(path), StatusCode::kDataLoss, "inside the GGUF header");
}

TEST(GgufModelTest, RandomCorruptionNeverCrashes) {
  // Flipping bytes of the header and directory must give a model or a Status, never a crash
  // (run under the address and undefined-behaviour sanitizers to check reads stay in bounds).
  const Vocabulary vocab = SmallVocab();
  auto bytes = BuildSyntheticLlamaGguf(SmallConfig(), TensorType::kQ8_0, 9, &vocab);
  ASSERT_TRUE(bytes.ok());
  auto gguf = GgufFile::Parse(*bytes);
  ASSERT_TRUE(gguf.ok());
  const std::size_t header = gguf->data_offset();
  std::mt19937 rng(2024);
  const std::string path = test::TempPath("gguf");
  int failures = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<std::uint8_t> corrupt = *bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      corrupt[rng() % header] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    }
    test::WriteFile(path, corrupt);
    auto model = LoadModel(path);
    if (!model.ok()) {
      ++failures;
      EXPECT_FALSE(model.status().message().empty());
    }
  }
  EXPECT_GT(failures, 20);  // most flips in lengths, kinds and dims are caught
}

TEST(GgufWriterTest, HalfAndBfloatRounding) {
  auto half = [](float x) {
    auto bytes = EncodeTensor(std::vector<float>{x}, 1, TensorType::kF16);
    std::uint16_t h;
    std::memcpy(&h, bytes->data(), 2);
    return h;
  };
  EXPECT_EQ(half(1.0f), 0x3C00);
  EXPECT_EQ(half(-2.0f), 0xC000);
  EXPECT_EQ(half(65504.0f), 0x7BFF);
  EXPECT_EQ(half(70000.0f), 0x7C00);
  EXPECT_EQ(half(1.0f + 1.0f / 2048), 0x3C00);  // halfway: to even
  EXPECT_EQ(half(1.0f + 3.0f / 2048), 0x3C02);  // halfway: to even (up)
  EXPECT_EQ(half(5.9604645e-8f), 0x0001);       // smallest subnormal
  EXPECT_EQ(half(1e-9f), 0x0000);
  EXPECT_EQ(half(6.1035156e-5f), 0x0400);  // smallest normal
  auto bf16 = [](float x) {
    auto bytes = EncodeTensor(std::vector<float>{x}, 1, TensorType::kBF16);
    std::uint16_t h;
    std::memcpy(&h, bytes->data(), 2);
    return h;
  };
  EXPECT_EQ(bf16(1.0f), 0x3F80);
  EXPECT_EQ(bf16(1.0f + 1.0f / 256), 0x3F80);
  EXPECT_EQ(bf16(1.0f + 3.0f / 256), 0x3F82);
  EXPECT_EQ(bf16(-3.0f), 0xC040);
}

TEST(GgufWriterTest, Q8_0BlocksFollowGgml) {
  std::vector<float> values(32);
  for (int k = 0; k < 32; ++k) values[k] = (k - 16) * 0.5f;  // max |x| = 8
  auto bytes = EncodeTensor(values, 32, TensorType::kQ8_0);
  ASSERT_TRUE(bytes.ok());
  ASSERT_EQ(bytes->size(), 34u);
  std::uint16_t d;
  std::memcpy(&d, bytes->data(), 2);
  EXPECT_EQ(d, 0x2C08);  // fp16(8 / 127 = 0.062992) = 2^-4 * (1 + 8/1024) = 0.0629883
  EXPECT_EQ(static_cast<std::int8_t>((*bytes)[2]), -127);  // -8 / (8/127)
  EXPECT_EQ(static_cast<std::int8_t>((*bytes)[2 + 16]), 0);
  EXPECT_EQ(static_cast<std::int8_t>((*bytes)[2 + 17]), 8);  // 0.5 * 127 / 8 = 7.94
  EXPECT_EQ(EncodeTensor(values, 16, TensorType::kQ8_0).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qaq::internal
