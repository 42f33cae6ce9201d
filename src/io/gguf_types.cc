#include "io/gguf_types.h"

#include <array>

#include <fmt/format.h>

namespace qaq::internal {
namespace {

struct GgmlTypeRow {
  const char* name;
  GgmlTypeLayout layout;  // {0, 0}: qaq does not know the size
};

// Index = ggml_type id (ggml.h). Removed ids (31-33, 36-38) have empty names.
constexpr std::array<GgmlTypeRow, 40> kGgmlTypes = {{
    {"f32", {1, 4}},
    {"f16", {1, 2}},
    {"q4_0", {32, 18}},
    {"q4_1", {32, 20}},
    {"", {}},
    {"", {}},
    {"q5_0", {32, 22}},
    {"q5_1", {32, 24}},
    {"q8_0", {32, 34}},
    {"q8_1", {32, 36}},
    {"q2_K", {256, 84}},
    {"q3_K", {256, 110}},
    {"q4_K", {256, 144}},
    {"q5_K", {256, 176}},
    {"q6_K", {256, 210}},
    {"q8_K", {256, 292}},
    {"iq2_xxs", {}},
    {"iq2_xs", {}},
    {"iq3_xxs", {}},
    {"iq1_s", {}},
    {"iq4_nl", {}},
    {"iq3_s", {}},
    {"iq2_s", {}},
    {"iq4_xs", {}},
    {"i8", {1, 1}},
    {"i16", {1, 2}},
    {"i32", {1, 4}},
    {"i64", {1, 8}},
    {"f64", {1, 8}},
    {"iq1_m", {}},
    {"bf16", {1, 2}},
    {"", {}},
    {"", {}},
    {"", {}},
    {"tq1_0", {}},
    {"tq2_0", {}},
    {"", {}},
    {"", {}},
    {"", {}},
    {"mxfp4", {}},
}};

constexpr std::array<const char*, 13> kKindNames = {
    "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
    "bool",  "string", "array",  "uint64", "int64",  "float64"};
constexpr std::array<std::size_t, 13> kKindBytes = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

}  // namespace

std::string GgufKindName(std::uint32_t kind) {
  if (kind < kKindNames.size()) return kKindNames[kind];
  return fmt::format("kind {}", kind);
}

std::size_t GgufScalarBytes(std::uint32_t kind) {
  return kind < kKindBytes.size() ? kKindBytes[kind] : 0;
}

std::string GgmlTypeName(std::uint32_t type) {
  if (type < kGgmlTypes.size() && kGgmlTypes[type].name[0] != '\0') return kGgmlTypes[type].name;
  return fmt::format("type {}", type);
}

std::optional<GgmlTypeLayout> GgmlLayout(std::uint32_t type) {
  if (type >= kGgmlTypes.size() || kGgmlTypes[type].layout.block_values == 0) return std::nullopt;
  return kGgmlTypes[type].layout;
}

std::optional<TensorType> ToTensorType(std::uint32_t ggml_type) {
  switch (ggml_type) {
    case kGgmlF32:
      return TensorType::kF32;
    case kGgmlF16:
      return TensorType::kF16;
    case kGgmlBF16:
      return TensorType::kBF16;
    case kGgmlQ8_0:
      return TensorType::kQ8_0;
    default:
      return std::nullopt;
  }
}

std::uint32_t ToGgmlType(TensorType type) {
  switch (type) {
    case TensorType::kF32:
      return kGgmlF32;
    case TensorType::kF16:
      return kGgmlF16;
    case TensorType::kBF16:
      return kGgmlBF16;
    case TensorType::kQ8_0:
      return kGgmlQ8_0;
  }
  return kGgmlF32;
}

}  // namespace qaq::internal
