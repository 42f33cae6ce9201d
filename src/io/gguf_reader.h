// GGUF container reader (format versions 2 and 3): header, metadata, tensor directory.
//
// File layout (little-endian):
//   "GGUF", uint32 version, uint64 n_tensors, uint64 n_kv,
//   n_kv x {string key, uint32 kind, value},           string = uint64 length + bytes
//   n_tensors x {string name, uint32 n_dims, uint64 ne[n_dims], uint32 ggml_type, uint64 offset},
//   padding to `general.alignment` (default 32), then the tensor data; offsets are relative to it.
// ne[0] is the innermost dimension: a matrix of `rows` outputs of `cols` inputs has
// ne = {cols, rows}.
//
// GgufFile does not own the bytes: its string views and data pointers point into them, so the
// mapping must outlive it. Every length and offset is checked against the file before use, so a
// corrupt length cannot make the reader allocate or read beyond the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qaq/status.h"

namespace qaq::internal {

struct GgufValue {
  std::uint32_t kind = 0;  // GgufKind
  // Scalars, widened: unsigned kinds and bool in `u`, signed kinds in `i`, floats in `f`.
  std::uint64_t u = 0;
  std::int64_t i = 0;
  double f = 0.0;
  std::string_view str;  // kString
  // kArray: element kind and count; numeric elements stay in the file (little-endian), strings
  // are listed; nested arrays are skipped (count only).
  std::uint32_t element_kind = 0;
  std::uint64_t count = 0;
  const std::uint8_t* elements = nullptr;
  std::vector<std::string_view> strings;
};

struct GgufMetadata {
  std::string_view key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string_view name;
  std::vector<std::uint64_t> dims;  // ne: dims[0] is the innermost (columns)
  std::uint32_t type = 0;           // ggml type id
  std::uint64_t offset = 0;         // relative to the data section, as stored
  std::uint64_t elements = 0;
  std::optional<std::uint64_t> bytes;  // when qaq knows the type's layout
  const std::uint8_t* data = nullptr;  // start of the tensor's bytes
};

class GgufFile {
 public:
  // Errors: kDataLoss (bad magic, truncation, lengths/offsets beyond the file, duplicates,
  // misalignment), kUnimplemented (other format versions).
  static StatusOr<GgufFile> Parse(std::span<const std::uint8_t> bytes);

  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  std::uint64_t data_offset() const { return data_offset_; }
  const std::vector<GgufMetadata>& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  const GgufValue* Find(std::string_view key) const;
  const GgufTensorInfo* FindTensor(std::string_view name) const;

  // Typed access; kDataLoss naming the key when it is missing or has another kind.
  StatusOr<std::uint64_t> GetUint(std::string_view key) const;  // any integer kind, >= 0
  StatusOr<double> GetFloat(std::string_view key) const;        // float32/64 or integer
  StatusOr<std::string_view> GetString(std::string_view key) const;
  StatusOr<bool> GetBool(std::string_view key) const;
  StatusOr<std::vector<std::string_view>> GetStringArray(std::string_view key) const;
  StatusOr<std::vector<double>> GetNumberArray(std::string_view key) const;  // numeric elements

 private:
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 0;
  std::uint64_t data_offset_ = 0;
  std::vector<GgufMetadata> metadata_;
  std::vector<GgufTensorInfo> tensors_;
};

}  // namespace qaq::internal
