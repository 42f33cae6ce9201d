#include "io/gguf_writer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "io/gguf_types.h"
#include "io/model_validation.h"

namespace qaq::internal {
namespace {

template <typename T>
void Put(std::vector<std::uint8_t>& out, T value) {
  const std::size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

void PutString(std::vector<std::uint8_t>& out, const std::string& s) {
  Put<std::uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

// IEEE binary16 bits of `x`, rounded to nearest even (overflow to infinity).
std::uint16_t HalfBits(float x) {
  const std::uint32_t f = std::bit_cast<std::uint32_t>(x);
  const std::uint32_t sign = (f >> 16) & 0x8000u;
  const std::uint32_t abs = f & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u)
    return static_cast<std::uint16_t>(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0));
  if (abs >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // rounds to inf
  if (abs < 0x38800000u) {
    // Subnormal half (or zero): value / 2^-24 rounded to nearest even.
    const float scaled = std::bit_cast<float>(abs) * 16777216.0f;  // exact: power of two
    return static_cast<std::uint16_t>(sign | static_cast<std::uint32_t>(std::nearbyint(scaled)));
  }
  const std::uint32_t mantissa_round = ((abs >> 13) & 1u) + 0xFFFu;
  return static_cast<std::uint16_t>(sign | ((abs + mantissa_round - 0x38000000u) >> 13));
}

std::uint16_t Bf16Bits(float x) {
  const std::uint32_t f = std::bit_cast<std::uint32_t>(x);
  if ((f & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((f >> 16) | 0x40u);  // NaN
  return static_cast<std::uint16_t>((f + 0x7FFFu + ((f >> 16) & 1u)) >> 16);
}

}  // namespace

std::vector<std::uint8_t>& GgufWriter::AddKey(const std::string& key, std::uint32_t kind) {
  Entry& e = metadata_.emplace_back();
  e.key = key;
  PutString(e.bytes, key);
  Put<std::uint32_t>(e.bytes, kind);
  return e.bytes;
}

void GgufWriter::AddUint8(const std::string& key, std::uint8_t value) {
  std::vector<std::uint8_t>& out = AddKey(key, static_cast<std::uint32_t>(GgufKind::kUint8));
  Put(out, value);
}
void GgufWriter::AddUint32(const std::string& key, std::uint32_t value) {
  std::vector<std::uint8_t>& out = AddKey(key, static_cast<std::uint32_t>(GgufKind::kUint32));
  Put(out, value);
}
void GgufWriter::AddInt32(const std::string& key, std::int32_t value) {
  std::vector<std::uint8_t>& out = AddKey(key, static_cast<std::uint32_t>(GgufKind::kInt32));
  Put(out, value);
}
void GgufWriter::AddUint64(const std::string& key, std::uint64_t value) {
  std::vector<std::uint8_t>& out = AddKey(key, static_cast<std::uint32_t>(GgufKind::kUint64));
  Put(out, value);
}
void GgufWriter::AddFloat32(const std::string& key, float value) {
  std::vector<std::uint8_t>& out = AddKey(key, static_cast<std::uint32_t>(GgufKind::kFloat32));
  Put(out, value);
}
void GgufWriter::AddBool(const std::string& key, bool value) {
  std::vector<std::uint8_t>& out = AddKey(key, static_cast<std::uint32_t>(GgufKind::kBool));
  Put<std::uint8_t>(out, value ? 1 : 0);
}
void GgufWriter::AddString(const std::string& key, const std::string& value) {
  std::vector<std::uint8_t>& out = AddKey(key, static_cast<std::uint32_t>(GgufKind::kString));
  PutString(out, value);
}
void GgufWriter::AddStringArray(const std::string& key, const std::vector<std::string>& values) {
  std::vector<std::uint8_t>& out = AddKey(key, static_cast<std::uint32_t>(GgufKind::kArray));
  Put<std::uint32_t>(out, static_cast<std::uint32_t>(GgufKind::kString));
  Put<std::uint64_t>(out, values.size());
  for (const std::string& v : values) PutString(out, v);
}
void GgufWriter::AddFloat32Array(const std::string& key, const std::vector<float>& values) {
  std::vector<std::uint8_t>& out = AddKey(key, static_cast<std::uint32_t>(GgufKind::kArray));
  Put<std::uint32_t>(out, static_cast<std::uint32_t>(GgufKind::kFloat32));
  Put<std::uint64_t>(out, values.size());
  for (float v : values) Put(out, v);
}
void GgufWriter::AddInt32Array(const std::string& key, const std::vector<std::int32_t>& values) {
  std::vector<std::uint8_t>& out = AddKey(key, static_cast<std::uint32_t>(GgufKind::kArray));
  Put<std::uint32_t>(out, static_cast<std::uint32_t>(GgufKind::kInt32));
  Put<std::uint64_t>(out, values.size());
  for (std::int32_t v : values) Put(out, v);
}

void GgufWriter::AddTensor(const std::string& name, std::vector<std::uint64_t> dims,
                           std::uint32_t ggml_type, std::vector<std::uint8_t> data) {
  tensors_.push_back({name, std::move(dims), ggml_type, std::move(data)});
}

GgufWriter::Tensor* GgufWriter::FindTensor(const std::string& name) {
  for (Tensor& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

void GgufWriter::RemoveTensor(const std::string& name) {
  std::erase_if(tensors_, [&](const Tensor& t) { return t.name == name; });
}

void GgufWriter::RemoveKey(const std::string& key) {
  std::erase_if(metadata_, [&](const Entry& e) { return e.key == key; });
}

void GgufWriter::SetAlignment(std::uint32_t alignment) {
  alignment_ = alignment;
  if (alignment != kGgufDefaultAlignment) AddUint32("general.alignment", alignment);
}

std::vector<std::uint8_t> GgufWriter::Serialize() const {
  std::vector<std::uint8_t> out;
  Put<std::uint32_t>(out, kGgufMagic);
  Put<std::uint32_t>(out, version_);
  Put<std::uint64_t>(out, tensors_.size());
  Put<std::uint64_t>(out, metadata_.size());
  for (const Entry& e : metadata_) out.insert(out.end(), e.bytes.begin(), e.bytes.end());
  auto aligned = [this](std::uint64_t n) { return (n + alignment_ - 1) / alignment_ * alignment_; };
  std::uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    PutString(out, t.name);
    Put<std::uint32_t>(out, static_cast<std::uint32_t>(t.dims.size()));
    for (std::uint64_t d : t.dims) Put(out, d);
    Put(out, t.type);
    Put(out, offset);
    offset = aligned(offset + t.data.size());
  }
  out.resize(aligned(out.size()), 0);
  for (const Tensor& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    out.resize(aligned(out.size()), 0);
  }
  return out;
}

Status GgufWriter::WriteFile(const std::string& path) const {
  const std::vector<std::uint8_t> bytes = Serialize();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return InternalError("cannot create '{}'", path);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) return InternalError("cannot write '{}'", path);
  return OkStatus();
}

StatusOr<std::vector<std::uint8_t>> EncodeTensor(std::span<const float> values, std::int64_t cols,
                                                 TensorType type) {
  std::vector<std::uint8_t> out;
  switch (type) {
    case TensorType::kF32:
      for (float v : values) Put(out, v);
      return out;
    case TensorType::kF16:
      for (float v : values) Put(out, HalfBits(v));
      return out;
    case TensorType::kBF16:
      for (float v : values) Put(out, Bf16Bits(v));
      return out;
    case TensorType::kQ8_0:
      break;
  }
  if (cols <= 0 || cols % kQ8_0BlockValues != 0) {
    return InvalidArgumentError("Q8_0 needs rows that are a multiple of 32 values, not {}", cols);
  }
  // ggml's quantize_row_q8_0_ref: d = max|x| / 127, q = round(x / d).
  for (std::size_t b = 0; b + kQ8_0BlockValues <= values.size(); b += kQ8_0BlockValues) {
    float amax = 0.0f;
    for (int k = 0; k < kQ8_0BlockValues; ++k) amax = std::max(amax, std::fabs(values[b + k]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    Put(out, HalfBits(d));
    for (int k = 0; k < kQ8_0BlockValues; ++k) {
      Put(out, static_cast<std::int8_t>(std::lround(values[b + k] * id)));
    }
  }
  return out;
}

StatusOr<GgufWriter> SyntheticLlamaWriter(const ModelConfig& c, TensorType matrix_type,
                                          std::uint32_t seed, const Vocabulary* vocabulary) {
  QAQ_RETURN_IF_ERROR(ValidateConfig(c));
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddString("general.name", c.name.empty() ? "synthetic" : c.name);
  w.AddUint32("llama.context_length", c.context_length);
  w.AddUint32("llama.embedding_length", c.dim);
  w.AddUint32("llama.feed_forward_length", c.hidden_dim);
  w.AddUint32("llama.block_count", c.n_layers);
  w.AddUint32("llama.attention.head_count", c.n_heads);
  w.AddUint32("llama.attention.head_count_kv", c.n_kv_heads);
  w.AddUint32("llama.rope.dimension_count", c.rope_dim);
  w.AddFloat32("llama.rope.freq_base", c.rope_theta);
  w.AddFloat32("llama.attention.layer_norm_rms_epsilon", c.rms_eps);
  if (vocabulary != nullptr) {
    std::vector<std::string> pieces;
    std::vector<std::int32_t> types;
    for (std::size_t k = 0; k < vocabulary->pieces.size(); ++k) {
      std::string piece = vocabulary->pieces[k];
      std::string spm;
      for (char ch : piece) spm += ch == ' ' ? std::string("\xE2\x96\x81") : std::string(1, ch);
      pieces.push_back(std::move(spm));
      const bool byte = k < vocabulary->is_byte_token.size() && vocabulary->is_byte_token[k];
      types.push_back(byte ? 6 : 1);
    }
    w.AddString("tokenizer.ggml.model", "llama");
    w.AddStringArray("tokenizer.ggml.tokens", pieces);
    w.AddFloat32Array("tokenizer.ggml.scores", vocabulary->scores);
    w.AddInt32Array("tokenizer.ggml.token_type", types);
    w.AddUint32("tokenizer.ggml.bos_token_id", vocabulary->bos_id);
    w.AddUint32("tokenizer.ggml.eos_token_id", vocabulary->eos_id);
    w.AddUint32("tokenizer.ggml.unknown_token_id", vocabulary->unk_id);
    w.AddBool("tokenizer.ggml.add_space_prefix", vocabulary->add_dummy_prefix);
  }

  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  Status status;
  auto matrix = [&](const std::string& name, std::int64_t rows, std::int64_t cols) {
    std::vector<float> values(static_cast<std::size_t>(rows * cols));
    const float scale = 1.0f / std::sqrt(static_cast<float>(cols));
    for (float& v : values) v = uniform(rng) * scale;
    StatusOr<std::vector<std::uint8_t>> bytes = EncodeTensor(values, cols, matrix_type);
    if (!bytes.ok()) {
      if (status.ok()) status = bytes.status().WithContext(name);
      return;
    }
    w.AddTensor(name, {static_cast<std::uint64_t>(cols), static_cast<std::uint64_t>(rows)},
                ToGgmlType(matrix_type), std::move(*bytes));
  };
  auto norm = [&](const std::string& name) {
    std::vector<std::uint8_t> bytes;
    for (int k = 0; k < c.dim; ++k) Put(bytes, 1.0f + 0.1f * uniform(rng));
    w.AddTensor(name, {static_cast<std::uint64_t>(c.dim)}, kGgmlF32, std::move(bytes));
  };
  const std::int64_t q_dim = std::int64_t{c.n_heads} * c.head_dim;
  const std::int64_t kv_dim = std::int64_t{c.n_kv_heads} * c.head_dim;
  matrix("token_embd.weight", c.vocab_size, c.dim);
  for (int l = 0; l < c.n_layers; ++l) {
    norm(LayerTensorName(l, "attn_norm"));
    matrix(LayerTensorName(l, "attn_q"), q_dim, c.dim);
    matrix(LayerTensorName(l, "attn_k"), kv_dim, c.dim);
    matrix(LayerTensorName(l, "attn_v"), kv_dim, c.dim);
    matrix(LayerTensorName(l, "attn_output"), c.dim, q_dim);
    norm(LayerTensorName(l, "ffn_norm"));
    matrix(LayerTensorName(l, "ffn_gate"), c.hidden_dim, c.dim);
    matrix(LayerTensorName(l, "ffn_down"), c.dim, c.hidden_dim);
    matrix(LayerTensorName(l, "ffn_up"), c.hidden_dim, c.dim);
  }
  norm("output_norm.weight");
  if (!c.shared_classifier) matrix("output.weight", c.vocab_size, c.dim);
  QAQ_RETURN_IF_ERROR(status);
  return w;
}

StatusOr<std::vector<std::uint8_t>> BuildSyntheticLlamaGguf(const ModelConfig& config,
                                                            TensorType matrix_type,
                                                            std::uint32_t seed,
                                                            const Vocabulary* vocabulary) {
  QAQ_ASSIGN_OR_RETURN(const GgufWriter writer,
                       SyntheticLlamaWriter(config, matrix_type, seed, vocabulary));
  return writer.Serialize();
}

}  // namespace qaq::internal
