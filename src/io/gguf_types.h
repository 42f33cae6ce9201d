// GGUF's value kinds and ggml's tensor types: ids as stored in files, names, block sizes.
// Both enums are append-only in ggml, so the numbers are stable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "qaq/model.h"

namespace qaq::internal {

inline constexpr std::uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as little-endian uint32
inline constexpr std::uint64_t kGgufDefaultAlignment = 32;

// Metadata value kinds (gguf_type).
enum class GgufKind : std::uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "uint8", ..., or "kind N" for ids outside the table.
std::string GgufKindName(std::uint32_t kind);
// Bytes of one scalar of this kind; 0 for strings, arrays and unknown kinds.
std::size_t GgufScalarBytes(std::uint32_t kind);

// ggml tensor type ids qaq reads (the others are recognised by name only).
inline constexpr std::uint32_t kGgmlF32 = 0;
inline constexpr std::uint32_t kGgmlF16 = 1;
inline constexpr std::uint32_t kGgmlQ8_0 = 8;
inline constexpr std::uint32_t kGgmlBF16 = 30;

inline constexpr int kQ8_0BlockValues = 32;
inline constexpr int kQ8_0BlockBytes = 2 + kQ8_0BlockValues;  // fp16 scale + 32 int8

// Storage layout of a ggml type: `block_values` values take `block_bytes` bytes.
struct GgmlTypeLayout {
  std::uint64_t block_values = 0;
  std::uint64_t block_bytes = 0;
};

// "f32", "q4_K", ..., or "type N" for ids ggml does not define.
std::string GgmlTypeName(std::uint32_t type);
// The layout, when qaq knows it (every non-"iq" type); the size of other tensors is unchecked.
std::optional<GgmlTypeLayout> GgmlLayout(std::uint32_t type);
// The qaq TensorType for a ggml type id, if supported.
std::optional<TensorType> ToTensorType(std::uint32_t ggml_type);
std::uint32_t ToGgmlType(TensorType type);

}  // namespace qaq::internal
