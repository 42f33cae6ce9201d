// A small reader and writer for NumPy .npy files (format versions 1.0-3.0, C order,
// little-endian), the exchange format of `qaq quantize` (and later `qaq dump`).
//
//   QAQ_ASSIGN_OR_RETURN(qaq::NpyArray k, qaq::ReadNpy("K.npy"));   // any supported dtype
//   QAQ_ASSIGN_OR_RETURN(std::vector<float> v, k.ToFloat32());
//   QAQ_RETURN_IF_ERROR(qaq::WriteNpy("out.npy", std::span<const float>(v), k.shape));
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qaq/status.h"

namespace qaq {

// The dtypes qaq reads and writes: '<f4', '<f8', '<i4', '|u1', '|b1'.
enum class NpyType { kFloat32, kFloat64, kInt32, kUint8, kBool };

const char* NpyTypeDescr(NpyType type);  // "<f4", ...
std::size_t NpyTypeSize(NpyType type);

struct NpyArray {
  NpyType type = NpyType::kFloat32;
  std::vector<std::int64_t> shape;   // () for a scalar
  std::vector<std::uint8_t> data;    // raw little-endian elements, C order

  std::size_t size() const;          // number of elements
  // The elements as float32: float64 is rounded, int32/uint8/bool converted. Integers beyond
  // 2^24 are an error (not exactly representable).
  StatusOr<std::vector<float>> ToFloat32() const;
};

// Reads a .npy file. NotFound if it does not exist; DataLoss for a corrupt or truncated file;
// Unimplemented for a valid file qaq does not support (Fortran order, big-endian, other dtypes).
StatusOr<NpyArray> ReadNpy(const std::string& path);
StatusOr<NpyArray> ParseNpy(std::span<const std::uint8_t> bytes);

// Writes a version 1.0 .npy file (header padded to 64 bytes, as NumPy does).
Status WriteNpy(const std::string& path, const NpyArray& array);
Status WriteNpy(const std::string& path, std::span<const float> values, const std::vector<std::int64_t>& shape);
Status WriteNpy(const std::string& path, std::span<const std::int32_t> values, const std::vector<std::int64_t>& shape);
Status WriteNpy(const std::string& path, std::span<const std::uint8_t> values, const std::vector<std::int64_t>& shape,
                NpyType type = NpyType::kUint8);
std::vector<std::uint8_t> SerializeNpy(const NpyArray& array);

}  // namespace qaq
