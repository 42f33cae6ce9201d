#include "io/gguf_reader.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <unordered_set>

#include "io/gguf_types.h"
#include "io/model_validation.h"

namespace qaq::internal {
namespace {

constexpr int kMaxArrayDepth = 8;      // GGUF nests arrays rarely; bounds recursion on bad files
constexpr std::uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr std::uint64_t kMaxAlignment = 1 << 30;

// Bounds-checked little-endian cursor over the file.
class Cursor {
 public:
  explicit Cursor(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return bytes_.size() - pos_; }
  const std::uint8_t* here() const { return bytes_.data() + pos_; }

  template <typename T>
  Status Read(T* out, const char* what) {
    if (remaining() < sizeof(T)) {
      return DataLossError("file ends at byte {} inside {} (truncated?)", bytes_.size(), what);
    }
    std::memcpy(out, here(), sizeof(T));
    pos_ += sizeof(T);
    return OkStatus();
  }

  Status Skip(std::uint64_t n, const char* what) {
    if (remaining() < n) {
      return DataLossError("{} of {} bytes at byte {} runs past the end of the file ({} bytes)",
                           what, n, pos_, bytes_.size());
    }
    pos_ += n;
    return OkStatus();
  }

  Status ReadString(std::string_view* out, const char* what) {
    std::uint64_t length = 0;
    QAQ_RETURN_IF_ERROR(Read(&length, what));
    const std::size_t start = pos_;
    if (remaining() < length) {
      return DataLossError("{} at byte {} claims {} bytes, more than the {} left in the file", what,
                           start - 8, length, remaining());
    }
    *out = std::string_view(reinterpret_cast<const char*>(here()), length);
    pos_ += length;
    return OkStatus();
  }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
};

Status ReadValue(Cursor& in, std::uint32_t kind, int depth, GgufValue* out, bool keep);

Status ReadScalar(Cursor& in, std::uint32_t kind, GgufValue* out) {
  switch (static_cast<GgufKind>(kind)) {
#define QAQ_GGUF_SCALAR(enum_name, type, field)  \
  case GgufKind::enum_name: {                    \
    type v{};                                    \
    QAQ_RETURN_IF_ERROR(in.Read(&v, "a value")); \
    out->field = v;                              \
    return OkStatus();                           \
  }
    QAQ_GGUF_SCALAR(kUint8, std::uint8_t, u)
    QAQ_GGUF_SCALAR(kInt8, std::int8_t, i)
    QAQ_GGUF_SCALAR(kUint16, std::uint16_t, u)
    QAQ_GGUF_SCALAR(kInt16, std::int16_t, i)
    QAQ_GGUF_SCALAR(kUint32, std::uint32_t, u)
    QAQ_GGUF_SCALAR(kInt32, std::int32_t, i)
    QAQ_GGUF_SCALAR(kFloat32, float, f)
    QAQ_GGUF_SCALAR(kBool, std::uint8_t, u)
    QAQ_GGUF_SCALAR(kUint64, std::uint64_t, u)
    QAQ_GGUF_SCALAR(kInt64, std::int64_t, i)
    QAQ_GGUF_SCALAR(kFloat64, double, f)
#undef QAQ_GGUF_SCALAR
    default:
      return DataLossError("unknown metadata value kind {}", kind);
  }
}

Status ReadArray(Cursor& in, int depth, GgufValue* out, bool keep) {
  if (depth >= kMaxArrayDepth) return DataLossError("arrays nested more than {} deep", depth);
  std::uint32_t element_kind = 0;
  std::uint64_t count = 0;
  QAQ_RETURN_IF_ERROR(in.Read(&element_kind, "an array header"));
  QAQ_RETURN_IF_ERROR(in.Read(&count, "an array header"));
  out->element_kind = element_kind;
  out->count = count;
  const std::size_t scalar = GgufScalarBytes(element_kind);
  if (scalar > 0) {
    out->elements = in.here();
    std::uint64_t bytes = 0;
    if (!CheckedMul(count, scalar, &bytes)) {
      return DataLossError("array of {} {} values is larger than any file", count,
                           GgufKindName(element_kind));
    }
    return in.Skip(bytes, "array");
  }
  if (element_kind != static_cast<std::uint32_t>(GgufKind::kString) &&
      element_kind != static_cast<std::uint32_t>(GgufKind::kArray)) {
    return DataLossError("unknown array element kind {}", element_kind);
  }
  // Each string or nested array takes at least 8 bytes: reject impossible counts before
  // reserving anything.
  if (count > in.remaining() / 8) {
    return DataLossError("array claims {} elements, more than the {} bytes left can hold", count,
                         in.remaining());
  }
  if (element_kind == static_cast<std::uint32_t>(GgufKind::kString)) {
    if (keep) out->strings.reserve(count);
    for (std::uint64_t k = 0; k < count; ++k) {
      std::string_view s;
      QAQ_RETURN_IF_ERROR(in.ReadString(&s, "a string in an array"));
      if (keep) out->strings.push_back(s);
    }
    return OkStatus();
  }
  for (std::uint64_t k = 0; k < count; ++k) {
    GgufValue nested;
    QAQ_RETURN_IF_ERROR(ReadValue(in, element_kind, depth + 1, &nested, /*keep=*/false));
  }
  return OkStatus();
}

Status ReadValue(Cursor& in, std::uint32_t kind, int depth, GgufValue* out, bool keep) {
  out->kind = kind;
  if (kind == static_cast<std::uint32_t>(GgufKind::kString)) {
    return in.ReadString(&out->str, "a string value");
  }
  if (kind == static_cast<std::uint32_t>(GgufKind::kArray)) return ReadArray(in, depth, out, keep);
  return ReadScalar(in, kind, out);
}

bool IsIntegerKind(std::uint32_t kind) {
  switch (static_cast<GgufKind>(kind)) {
    case GgufKind::kUint8:
    case GgufKind::kInt8:
    case GgufKind::kUint16:
    case GgufKind::kInt16:
    case GgufKind::kUint32:
    case GgufKind::kInt32:
    case GgufKind::kUint64:
    case GgufKind::kInt64:
      return true;
    default:
      return false;
  }
}

bool IsSignedKind(std::uint32_t kind) {
  switch (static_cast<GgufKind>(kind)) {
    case GgufKind::kInt8:
    case GgufKind::kInt16:
    case GgufKind::kInt32:
    case GgufKind::kInt64:
      return true;
    default:
      return false;
  }
}

// One element of a numeric array as a double.
double NumberAt(const GgufValue& v, std::uint64_t index) {
  const std::uint8_t* p = v.elements + index * GgufScalarBytes(v.element_kind);
  auto load = [p](auto zero) {
    decltype(zero) x;
    std::memcpy(&x, p, sizeof(x));
    return static_cast<double>(x);
  };
  switch (static_cast<GgufKind>(v.element_kind)) {
    case GgufKind::kUint8:
      return load(std::uint8_t{});
    case GgufKind::kInt8:
      return load(std::int8_t{});
    case GgufKind::kUint16:
      return load(std::uint16_t{});
    case GgufKind::kInt16:
      return load(std::int16_t{});
    case GgufKind::kUint32:
      return load(std::uint32_t{});
    case GgufKind::kInt32:
      return load(std::int32_t{});
    case GgufKind::kFloat32:
      return load(float{});
    case GgufKind::kBool:
      return load(std::uint8_t{});
    case GgufKind::kUint64:
      return load(std::uint64_t{});
    case GgufKind::kInt64:
      return load(std::int64_t{});
    case GgufKind::kFloat64:
      return load(double{});
    default:
      return 0.0;
  }
}

Status WrongKind(std::string_view key, const GgufValue& v, const char* expected) {
  return DataLossError("metadata '{}' is a {}, expected {}", key, GgufKindName(v.kind), expected);
}

}  // namespace

StatusOr<GgufFile> GgufFile::Parse(std::span<const std::uint8_t> bytes) {
  GgufFile file;
  Cursor in(bytes);
  std::uint32_t magic = 0;
  QAQ_RETURN_IF_ERROR(in.Read(&magic, "the GGUF magic"));
  if (magic != kGgufMagic) return DataLossError("not a GGUF file (magic is not \"GGUF\")");
  QAQ_RETURN_IF_ERROR(in.Read(&file.version_, "the GGUF header"));
  if (file.version_ != 2 && file.version_ != 3) {
    return UnimplementedError("GGUF version {} is not supported (versions 2 and 3 are{})",
                              file.version_, file.version_ > 0xFFFF ? "; a big-endian file?" : "");
  }
  std::uint64_t n_tensors = 0, n_kv = 0;
  QAQ_RETURN_IF_ERROR(in.Read(&n_tensors, "the GGUF header"));
  QAQ_RETURN_IF_ERROR(in.Read(&n_kv, "the GGUF header"));
  // A key-value pair takes at least 13 bytes, a tensor entry at least 24.
  if (n_kv > in.remaining() / 13) {
    return DataLossError("header claims {} metadata entries; the file is too small for that", n_kv);
  }
  if (n_tensors > in.remaining() / 24) {
    return DataLossError("header claims {} tensors; the file is too small for that", n_tensors);
  }

  std::unordered_set<std::string_view> seen;
  file.metadata_.reserve(n_kv);
  for (std::uint64_t k = 0; k < n_kv; ++k) {
    GgufMetadata entry;
    QAQ_RETURN_IF_ERROR(in.ReadString(&entry.key, "a metadata key"));
    std::uint32_t kind = 0;
    QAQ_RETURN_IF_ERROR(in.Read(&kind, "a metadata entry"));
    Status status = ReadValue(in, kind, 0, &entry.value, /*keep=*/true);
    if (!status.ok()) return status.WithContext(fmt::format("metadata '{}'", entry.key));
    if (!seen.insert(entry.key).second) {
      return DataLossError("metadata key '{}' appears twice", entry.key);
    }
    file.metadata_.push_back(std::move(entry));
  }

  file.alignment_ = kGgufDefaultAlignment;
  if (file.Find("general.alignment") != nullptr) {
    QAQ_ASSIGN_OR_RETURN(file.alignment_, file.GetUint("general.alignment"));
    if (file.alignment_ == 0 || file.alignment_ > kMaxAlignment ||
        (file.alignment_ & (file.alignment_ - 1)) != 0) {
      return DataLossError("general.alignment {} is not a power of two up to {}", file.alignment_,
                           kMaxAlignment);
    }
  }

  seen.clear();
  file.tensors_.reserve(n_tensors);
  for (std::uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t;
    QAQ_RETURN_IF_ERROR(in.ReadString(&t.name, "a tensor name"));
    std::uint32_t n_dims = 0;
    QAQ_RETURN_IF_ERROR(in.Read(&n_dims, "a tensor entry"));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return DataLossError("tensor '{}' has {} dimensions (1..{} allowed)", t.name, n_dims,
                           kMaxDims);
    }
    t.dims.resize(n_dims);
    t.elements = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      QAQ_RETURN_IF_ERROR(in.Read(&t.dims[d], "a tensor entry"));
      if (t.dims[d] > static_cast<std::uint64_t>(INT64_MAX) ||
          !CheckedMul(t.elements, t.dims[d], &t.elements) || t.elements > INT64_MAX) {
        return DataLossError("tensor '{}' has absurd dimensions (overflow)", t.name);
      }
    }
    QAQ_RETURN_IF_ERROR(in.Read(&t.type, "a tensor entry"));
    QAQ_RETURN_IF_ERROR(in.Read(&t.offset, "a tensor entry"));
    if (!seen.insert(t.name).second) return DataLossError("tensor '{}' appears twice", t.name);
    file.tensors_.push_back(std::move(t));
  }

  const std::uint64_t header_end = in.pos();
  file.data_offset_ = (header_end + file.alignment_ - 1) / file.alignment_ * file.alignment_;
  const std::uint64_t file_size = bytes.size();
  if (file.data_offset_ > file_size && !file.tensors_.empty()) {
    return DataLossError("file ends before its tensor data (truncated?)");
  }

  for (GgufTensorInfo& t : file.tensors_) {
    if (t.offset % file.alignment_ != 0) {
      return DataLossError("tensor '{}' offset {} is not a multiple of the alignment {}", t.name,
                           t.offset, file.alignment_);
    }
    if (t.offset > file_size - std::min(file_size, file.data_offset_)) {
      return DataLossError("tensor '{}' starts at byte {}, past the end of the file ({} bytes)",
                           t.name, file.data_offset_ + t.offset, file_size);
    }
    t.data = bytes.data() + file.data_offset_ + t.offset;
    const std::optional<GgmlTypeLayout> layout = GgmlLayout(t.type);
    if (!layout) continue;  // size unknown to qaq; rejected later if the model needs it
    if (t.dims[0] % layout->block_values != 0) {
      return DataLossError(
          "tensor '{}' of type {} has rows of {} values, not a multiple of its {}-value blocks",
          t.name, GgmlTypeName(t.type), t.dims[0], layout->block_values);
    }
    std::uint64_t tensor_bytes = 0;
    const std::uint64_t end = file.data_offset_ + t.offset;
    if (!CheckedMul(t.elements / layout->block_values, layout->block_bytes, &tensor_bytes) ||
        tensor_bytes > file_size - end) {
      return DataLossError(
          "tensor '{}' ({} bytes at byte {}) extends past the end of the file ({} bytes; "
          "truncated?)",
          t.name, t.elements / layout->block_values * layout->block_bytes, end, file_size);
    }
    t.bytes = tensor_bytes;
  }
  return file;
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  for (const GgufMetadata& m : metadata_) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  for (const GgufTensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

StatusOr<std::uint64_t> GgufFile::GetUint(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return DataLossError("missing metadata '{}'", key);
  if (!IsIntegerKind(v->kind)) return WrongKind(key, *v, "an integer");
  if (IsSignedKind(v->kind)) {
    if (v->i < 0) return DataLossError("metadata '{}' is negative ({})", key, v->i);
    return static_cast<std::uint64_t>(v->i);
  }
  return v->u;
}

StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return DataLossError("missing metadata '{}'", key);
  if (v->kind == static_cast<std::uint32_t>(GgufKind::kFloat32) ||
      v->kind == static_cast<std::uint32_t>(GgufKind::kFloat64)) {
    return v->f;
  }
  if (IsIntegerKind(v->kind)) {
    return IsSignedKind(v->kind) ? static_cast<double>(v->i) : static_cast<double>(v->u);
  }
  return WrongKind(key, *v, "a number");
}

StatusOr<std::string_view> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return DataLossError("missing metadata '{}'", key);
  if (v->kind != static_cast<std::uint32_t>(GgufKind::kString))
    return WrongKind(key, *v, "a string");
  return v->str;
}

StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return DataLossError("missing metadata '{}'", key);
  if (v->kind != static_cast<std::uint32_t>(GgufKind::kBool)) return WrongKind(key, *v, "a bool");
  return v->u != 0;
}

StatusOr<std::vector<std::string_view>> GgufFile::GetStringArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return DataLossError("missing metadata '{}'", key);
  if (v->kind != static_cast<std::uint32_t>(GgufKind::kArray) ||
      v->element_kind != static_cast<std::uint32_t>(GgufKind::kString)) {
    return WrongKind(key, *v, "an array of strings");
  }
  return v->strings;
}

StatusOr<std::vector<double>> GgufFile::GetNumberArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return DataLossError("missing metadata '{}'", key);
  if (v->kind != static_cast<std::uint32_t>(GgufKind::kArray) ||
      GgufScalarBytes(v->element_kind) == 0) {
    return WrongKind(key, *v, "an array of numbers");
  }
  std::vector<double> out(v->count);
  for (std::uint64_t k = 0; k < v->count; ++k) out[k] = NumberAt(*v, k);
  return out;
}

}  // namespace qaq::internal
