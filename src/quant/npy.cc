#include "quant/npy.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace qaq {
namespace {

static_assert(std::endian::native == std::endian::little, ".npy data is read as little-endian");

constexpr std::uint8_t kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

// The value of 'key' in the header dict, up to the next top-level ',' or '}' (tuples kept whole).
StatusOr<std::string_view> DictValue(std::string_view header, std::string_view key) {
  const std::string quoted1 = fmt::format("'{}'", key), quoted2 = fmt::format("\"{}\"", key);
  std::size_t at = header.find(quoted1);
  std::size_t key_len = quoted1.size();
  if (at == std::string_view::npos) {
    at = header.find(quoted2);
    key_len = quoted2.size();
  }
  if (at == std::string_view::npos) return DataLossError(".npy header has no '{}'", key);
  std::size_t pos = header.find(':', at + key_len);
  if (pos == std::string_view::npos) return DataLossError(".npy header: '{}' has no value", key);
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  std::size_t end = pos;
  int depth = 0;
  while (end < header.size()) {
    const char c = header[end];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
    ++end;
  }
  if (end >= header.size()) return DataLossError(".npy header: value of '{}' is not terminated", key);
  std::string_view value = header.substr(pos, end - pos);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  return value;
}

StatusOr<std::vector<std::int64_t>> ParseShape(std::string_view text) {
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') {
    return DataLossError(".npy header: shape '{}' is not a tuple", text);
  }
  std::vector<std::int64_t> shape;
  std::string_view rest = text.substr(1, text.size() - 2);
  while (!rest.empty()) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == ',')) rest.remove_prefix(1);
    if (rest.empty()) break;
    std::int64_t v = 0;
    std::size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') {
      if (v > (std::int64_t{1} << 48)) return DataLossError(".npy header: dimension too large in '{}'", text);
      v = v * 10 + (rest[digits] - '0');
      ++digits;
    }
    if (digits == 0) return DataLossError(".npy header: bad shape '{}'", text);
    shape.push_back(v);
    rest.remove_prefix(digits);
  }
  return shape;
}

StatusOr<NpyType> ParseDescr(std::string_view text) {
  if (text.size() >= 2 && (text.front() == '\'' || text.front() == '"')) text = text.substr(1, text.size() - 2);
  if (text == "<f4") return NpyType::kFloat32;
  if (text == "<f8") return NpyType::kFloat64;
  if (text == "<i4") return NpyType::kInt32;
  if (text == "|u1" || text == "<u1") return NpyType::kUint8;
  if (text == "|b1") return NpyType::kBool;
  return UnimplementedError(".npy dtype '{}' is not supported (use float32 '<f4', float64, int32, uint8 or bool)", text);
}

}  // namespace

const char* NpyTypeDescr(NpyType type) {
  switch (type) {
    case NpyType::kFloat32: return "<f4";
    case NpyType::kFloat64: return "<f8";
    case NpyType::kInt32: return "<i4";
    case NpyType::kUint8: return "|u1";
    case NpyType::kBool: return "|b1";
  }
  return "?";
}

std::size_t NpyTypeSize(NpyType type) {
  switch (type) {
    case NpyType::kFloat32: case NpyType::kInt32: return 4;
    case NpyType::kFloat64: return 8;
    case NpyType::kUint8: case NpyType::kBool: return 1;
  }
  return 1;
}

std::size_t NpyArray::size() const {
  std::size_t n = 1;
  for (std::int64_t d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

StatusOr<std::vector<float>> NpyArray::ToFloat32() const {
  const std::size_t n = size();
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (type) {
      case NpyType::kFloat32: std::memcpy(&out[i], data.data() + 4 * i, 4); break;
      case NpyType::kFloat64: {
        double v;
        std::memcpy(&v, data.data() + 8 * i, 8);
        out[i] = static_cast<float>(v);
        break;
      }
      case NpyType::kInt32: {
        std::int32_t v;
        std::memcpy(&v, data.data() + 4 * i, 4);
        if (v > (1 << 24) || v < -(1 << 24)) return OutOfRangeError("int32 element {} = {} is not exact as float32", i, v);
        out[i] = static_cast<float>(v);
        break;
      }
      case NpyType::kUint8: case NpyType::kBool: out[i] = static_cast<float>(data[i]); break;
    }
  }
  return out;
}

StatusOr<NpyArray> ParseNpy(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return DataLossError("not a .npy file (bad magic)");
  }
  const int major = bytes[6];
  std::size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<std::size_t>(bytes[8]) | (static_cast<std::size_t>(bytes[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return DataLossError(".npy file truncated in its header");
    header_len = static_cast<std::size_t>(bytes[8]) | (static_cast<std::size_t>(bytes[9]) << 8) |
                 (static_cast<std::size_t>(bytes[10]) << 16) | (static_cast<std::size_t>(bytes[11]) << 24);
    header_start = 12;
  } else {
    return UnimplementedError(".npy format version {} is not supported", major);
  }
  if (bytes.size() < header_start + header_len) return DataLossError(".npy file truncated in its header");
  const std::string_view header(reinterpret_cast<const char*>(bytes.data() + header_start), header_len);

  NpyArray array;
  QAQ_ASSIGN_OR_RETURN(std::string_view descr, DictValue(header, "descr"));
  QAQ_ASSIGN_OR_RETURN(array.type, ParseDescr(descr));
  QAQ_ASSIGN_OR_RETURN(std::string_view fortran, DictValue(header, "fortran_order"));
  if (fortran == "True") return UnimplementedError(".npy arrays in Fortran order are not supported");
  if (fortran != "False") return DataLossError(".npy header: fortran_order '{}'", fortran);
  QAQ_ASSIGN_OR_RETURN(std::string_view shape, DictValue(header, "shape"));
  QAQ_ASSIGN_OR_RETURN(array.shape, ParseShape(shape));

  const std::size_t data_start = header_start + header_len;
  const std::size_t expected = array.size() * NpyTypeSize(array.type);
  if (bytes.size() - data_start != expected) {
    return DataLossError(".npy data has {} bytes, shape {} needs {}", bytes.size() - data_start, shape, expected);
  }
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(data_start), bytes.end());
  return array;
}

StatusOr<NpyArray> ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot open '{}'", path);
  const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto array = ParseNpy(bytes);
  if (!array.ok()) return array.status().WithContext(path);
  return array;
}

std::vector<std::uint8_t> SerializeNpy(const NpyArray& array) {
  // Python tuple syntax: "()", "(5,)", "(2, 3)".
  std::string shape;
  if (array.shape.size() == 1) {
    shape = fmt::format("({},)", array.shape[0]);
  } else {
    shape = fmt::format("({})", fmt::join(array.shape, ", "));
  }
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                   NpyTypeDescr(array.type), shape);
  // Pad with spaces so that magic + version + length + header is a multiple of 64, ending in \n.
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::vector<std::uint8_t> out(std::begin(kMagic), std::end(kMagic));
  out.push_back(1);
  out.push_back(0);
  out.push_back(static_cast<std::uint8_t>(header.size() & 0xff));
  out.push_back(static_cast<std::uint8_t>(header.size() >> 8));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), array.data.begin(), array.data.end());
  return out;
}

Status WriteNpy(const std::string& path, const NpyArray& array) {
  const std::vector<std::uint8_t> bytes = SerializeNpy(array);
  std::ofstream out(path, std::ios::binary);
  if (!out) return InternalError("cannot write '{}'", path);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return InternalError("writing '{}' failed", path);
  return OkStatus();
}

namespace {
template <typename T>
Status WriteTyped(const std::string& path, std::span<const T> values, const std::vector<std::int64_t>& shape,
                  NpyType type) {
  NpyArray array;
  array.type = type;
  array.shape = shape;
  if (array.size() != values.size()) {
    return InvalidArgumentError("writing '{}': {} values for a shape of {} elements", path, values.size(), array.size());
  }
  array.data.resize(values.size() * sizeof(T));
  std::memcpy(array.data.data(), values.data(), array.data.size());
  return WriteNpy(path, array);
}
}  // namespace

Status WriteNpy(const std::string& path, std::span<const float> values, const std::vector<std::int64_t>& shape) {
  return WriteTyped(path, values, shape, NpyType::kFloat32);
}
Status WriteNpy(const std::string& path, std::span<const std::int32_t> values, const std::vector<std::int64_t>& shape) {
  return WriteTyped(path, values, shape, NpyType::kInt32);
}
Status WriteNpy(const std::string& path, std::span<const std::uint8_t> values, const std::vector<std::int64_t>& shape,
                NpyType type) {
  return WriteTyped(path, values, shape, type);
}

}  // namespace qaq
