// A small GGUF v3 writer, for tests and for building synthetic models: metadata of any scalar
// kind, string and number arrays, and tensors given as raw bytes or encoded from floats.
//
//   GgufWriter w;
//   w.AddString("general.architecture", "llama");
//   w.AddTensor("output_norm.weight", {64}, kGgmlF32, bytes);
//   QAQ_RETURN_IF_ERROR(w.WriteFile(path));
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qaq/model.h"
#include "qaq/status.h"

namespace qaq::internal {

class GgufWriter {
 public:
  struct Tensor {
    std::string name;
    std::vector<std::uint64_t> dims;  // innermost first
    std::uint32_t type = 0;           // ggml type id
    std::vector<std::uint8_t> data;
  };

  void AddUint8(const std::string& key, std::uint8_t value);
  void AddUint32(const std::string& key, std::uint32_t value);
  void AddInt32(const std::string& key, std::int32_t value);
  void AddUint64(const std::string& key, std::uint64_t value);
  void AddFloat32(const std::string& key, float value);
  void AddBool(const std::string& key, bool value);
  void AddString(const std::string& key, const std::string& value);
  void AddStringArray(const std::string& key, const std::vector<std::string>& values);
  void AddFloat32Array(const std::string& key, const std::vector<float>& values);
  void AddInt32Array(const std::string& key, const std::vector<std::int32_t>& values);

  // `dims` innermost first (ne[0] = columns); `data` is the tensor's exact bytes.
  void AddTensor(const std::string& name, std::vector<std::uint64_t> dims, std::uint32_t ggml_type,
                 std::vector<std::uint8_t> data);

  // For tests that corrupt a valid file: edit or drop entries before serializing.
  Tensor* FindTensor(const std::string& name);
  void RemoveTensor(const std::string& name);
  void RemoveKey(const std::string& key);

  // Alignment of the data section and of every tensor (written as general.alignment when it is
  // not the default 32). Call before adding tensors.
  void SetAlignment(std::uint32_t alignment);
  void SetVersion(std::uint32_t version) { version_ = version; }

  std::vector<std::uint8_t> Serialize() const;
  Status WriteFile(const std::string& path) const;

 private:
  struct Entry {
    std::string key;
    std::vector<std::uint8_t> bytes;  // the serialized key, kind and value
  };
  // Starts a new entry and returns its byte sink.
  std::vector<std::uint8_t>& AddKey(const std::string& key, std::uint32_t kind);

  std::uint32_t version_ = 3;
  std::uint64_t alignment_ = 32;
  std::vector<Entry> metadata_;
  std::vector<Tensor> tensors_;
};

// Encodes `values` (row-major, rows x cols) as a tensor of `type`: fp16 and bf16 round to
// nearest even; Q8_0 follows ggml's reference quantizer (scale = max|x| / 127 per 32 values).
// kInvalidArgument when a Q8_0 row is not a multiple of 32 values.
StatusOr<std::vector<std::uint8_t>> EncodeTensor(std::span<const float> values, std::int64_t cols,
                                                 TensorType type);

// A complete llama GGUF file for `config` with pseudo-random weights from `seed`: matrices of
// `matrix_type` (embedding included), uniform in +-1/sqrt(cols); norms in f32 near 1. Adds
// output.weight unless config.shared_classifier, and the vocabulary when `vocabulary` is given.
StatusOr<GgufWriter> SyntheticLlamaWriter(const ModelConfig& config, TensorType matrix_type,
                                          std::uint32_t seed,
                                          const Vocabulary* vocabulary = nullptr);
// SyntheticLlamaWriter(...).Serialize().
StatusOr<std::vector<std::uint8_t>> BuildSyntheticLlamaGguf(const ModelConfig& config,
                                                            TensorType matrix_type,
                                                            std::uint32_t seed,
                                                            const Vocabulary* vocabulary = nullptr);

}  // namespace qaq::internal
