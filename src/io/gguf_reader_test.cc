#include "io/gguf_reader.h"

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "io/gguf_types.h"
#include "io/gguf_writer.h"
#include "io/test_files.h"

namespace qaq::internal {
namespace {

std::vector<std::uint8_t> FloatBytes(std::vector<float> values) {
  std::vector<std::uint8_t> out(values.size() * 4);
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

void ExpectError(const StatusOr<GgufFile>& f, StatusCode code, const std::string& fragment) {
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), code) << f.status().message();
  EXPECT_NE(f.status().message().find(fragment), std::string::npos)
      << "message: " << f.status().message();
}

// Patches the uint64 at `pos`.
void PatchU64(std::vector<std::uint8_t>& bytes, std::size_t pos, std::uint64_t value) {
  std::memcpy(bytes.data() + pos, &value, 8);
}

TEST(GgufReaderTest, ReadsEveryMetadataKind) {
  GgufWriter w;
  w.AddUint8("u8", 200);
  w.AddUint32("u32", 4000000000u);
  w.AddInt32("i32", -7);
  w.AddUint64("u64", 1ull << 40);
  w.AddFloat32("f32", 0.25f);
  w.AddBool("yes", true);
  w.AddString("name", "stories");
  w.AddStringArray("strings", {"a", "", "\xE2\x96\x81x"});
  w.AddFloat32Array("floats", {1.5f, -2.0f});
  w.AddInt32Array("ints", {3, -4, 5});
  const std::vector<std::uint8_t> bytes = w.Serialize();
  auto f = GgufFile::Parse(bytes);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->metadata().size(), 10u);
  EXPECT_EQ(*f->GetUint("u8"), 200u);
  EXPECT_EQ(*f->GetUint("u32"), 4000000000u);
  EXPECT_EQ(*f->GetUint("u64"), 1ull << 40);
  EXPECT_EQ(f->GetUint("i32").status().code(), StatusCode::kDataLoss);  // negative
  EXPECT_DOUBLE_EQ(*f->GetFloat("i32"), -7.0);
  EXPECT_DOUBLE_EQ(*f->GetFloat("f32"), 0.25);
  EXPECT_TRUE(*f->GetBool("yes"));
  EXPECT_EQ(*f->GetString("name"), "stories");
  const auto strings = f->GetStringArray("strings");
  ASSERT_TRUE(strings.ok());
  ASSERT_EQ(strings->size(), 3u);
  EXPECT_EQ((*strings)[2], "\xE2\x96\x81x");
  EXPECT_EQ(*f->GetNumberArray("floats"), (std::vector<double>{1.5, -2.0}));
  EXPECT_EQ(*f->GetNumberArray("ints"), (std::vector<double>{3, -4, 5}));
  // Missing keys and wrong kinds name the key.
  EXPECT_NE(f->GetUint("nope").status().message().find("missing metadata 'nope'"),
            std::string::npos);
  EXPECT_NE(f->GetString("u8").status().message().find("'u8' is a uint8, expected a string"),
            std::string::npos);
  EXPECT_EQ(f->GetStringArray("floats").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(f->GetNumberArray("strings").status().code(), StatusCode::kDataLoss);
}

TEST(GgufReaderTest, TensorDirectoryAndAlignment) {
  for (std::uint32_t alignment : {32u, 64u, 8u}) {
    SCOPED_TRACE(alignment);
    GgufWriter w;
    w.SetAlignment(alignment);
    w.AddTensor("a", {3}, kGgmlF32, FloatBytes({1, 2, 3}));
    w.AddTensor("b", {2, 2}, kGgmlF32, FloatBytes({4, 5, 6, 7}));
    const std::vector<std::uint8_t> bytes = w.Serialize();
    auto f = GgufFile::Parse(bytes);
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_EQ(f->alignment(), alignment);
    EXPECT_EQ(f->data_offset() % alignment, 0u);
    ASSERT_EQ(f->tensors().size(), 2u);
    const GgufTensorInfo* b = f->FindTensor("b");
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->offset, (12 + alignment - 1) / alignment * alignment);
    EXPECT_EQ(b->elements, 4u);
    EXPECT_EQ(*b->bytes, 16u);
    float first;
    std::memcpy(&first, b->data, 4);
    EXPECT_EQ(first, 4.0f);
    EXPECT_EQ(f->FindTensor("c"), nullptr);
  }
}

TEST(GgufReaderTest, WrongMagicAndVersion) {
  std::vector<std::uint8_t> bytes = GgufWriter().Serialize();
  bytes[0] = 'X';
  ExpectError(GgufFile::Parse(bytes), StatusCode::kDataLoss, "not a GGUF file");
  GgufWriter v1;
  v1.SetVersion(1);
  ExpectError(GgufFile::Parse(v1.Serialize()), StatusCode::kUnimplemented, "GGUF version 1");
  GgufWriter big_endian;
  big_endian.SetVersion(0x03000000);
  ExpectError(GgufFile::Parse(big_endian.Serialize()), StatusCode::kUnimplemented, "big-endian");
}

TEST(GgufReaderTest, EveryTruncationIsDataLoss) {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddStringArray("tokens", {"x", "yz"});
  w.AddTensor("t", {4}, kGgmlF32, FloatBytes({1, 2, 3, 4}));
  const std::vector<std::uint8_t> bytes = w.Serialize();
  auto whole = GgufFile::Parse(bytes);
  ASSERT_TRUE(whole.ok());
  // Cutting the file anywhere (header, metadata, directory, data) is an error, never a crash;
  // only the padding after the last tensor may go.
  const std::size_t data_end = whole->data_offset() + 16;
  ASSERT_LT(data_end, bytes.size());
  EXPECT_TRUE(GgufFile::Parse(std::span(bytes.data(), data_end)).ok());
  for (std::size_t n = 0; n < data_end; ++n) {
    SCOPED_TRACE(n);
    auto f = GgufFile::Parse(std::span(bytes.data(), n));
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), StatusCode::kDataLoss) << f.status().message();
  }
}

TEST(GgufReaderTest, HugeLengthsFailFastWithoutAllocating) {
  GgufWriter w;
  w.AddString("key", "value");
  std::vector<std::uint8_t> bytes = w.Serialize();
  // Layout: magic 4, version 4, n_tensors 8, n_kv 8, key length at 24, "key", kind, value length.
  std::vector<std::uint8_t> bad_key = bytes;
  PatchU64(bad_key, 24, ~0ull);
  ExpectError(GgufFile::Parse(bad_key), StatusCode::kDataLoss, "claims 18446744073709551615 bytes");
  std::vector<std::uint8_t> bad_value = bytes;
  PatchU64(bad_value, 24 + 8 + 3 + 4, 1ull << 40);
  ExpectError(GgufFile::Parse(bad_value), StatusCode::kDataLoss, "metadata 'key'");
  std::vector<std::uint8_t> many_kv = bytes;
  PatchU64(many_kv, 16, 1ull << 60);
  ExpectError(GgufFile::Parse(many_kv), StatusCode::kDataLoss, "metadata entries");
  std::vector<std::uint8_t> many_tensors = bytes;
  PatchU64(many_tensors, 8, 1ull << 60);
  ExpectError(GgufFile::Parse(many_tensors), StatusCode::kDataLoss, "tensors");

  GgufWriter arrays;
  arrays.AddStringArray("s", {"a"});
  arrays.AddFloat32Array("f", {1.0f});
  std::vector<std::uint8_t> a = arrays.Serialize();
  // "s": key at 24 (8 + 1), kind at 33, element kind at 37, count at 41.
  std::vector<std::uint8_t> many_strings = a;
  PatchU64(many_strings, 41, 1ull << 62);
  ExpectError(GgufFile::Parse(many_strings), StatusCode::kDataLoss, "array claims");
  // "f": the string "a" ends at 58; key length 58, "f" 66, kind 67, element kind 71, count 75.
  std::vector<std::uint8_t> many_floats = a;
  PatchU64(many_floats, 75, 1ull << 62);
  ExpectError(GgufFile::Parse(many_floats), StatusCode::kDataLoss, "metadata 'f'");
}

TEST(GgufReaderTest, UnknownKindsAndNestingAreDataLoss) {
  GgufWriter w;
  w.AddUint32("k", 1);
  std::vector<std::uint8_t> bytes = w.Serialize();
  const std::uint32_t bad_kind = 99;
  std::memcpy(bytes.data() + 24 + 8 + 1, &bad_kind, 4);
  ExpectError(GgufFile::Parse(bytes), StatusCode::kDataLoss, "unknown metadata value kind 99");

  // An array of arrays of arrays ... nested past the limit.
  test::ByteWriter b;
  b.Put(kGgufMagic);
  b.Put(std::uint32_t{3});
  b.Put(std::uint64_t{0});
  b.Put(std::uint64_t{1});
  b.Put(std::uint64_t{1});
  b.PutBytes("n");
  b.Put(std::uint32_t{9});
  for (int depth = 0; depth < 20; ++depth) {
    b.Put(std::uint32_t{9});
    b.Put(std::uint64_t{1});
  }
  b.Put(std::uint32_t{4});
  b.Put(std::uint64_t{0});
  ExpectError(GgufFile::Parse(b.bytes()), StatusCode::kDataLoss, "nested");
}

TEST(GgufReaderTest, DuplicatesAreDataLoss) {
  GgufWriter keys;
  keys.AddUint32("k", 1);
  keys.AddUint32("k", 2);
  ExpectError(GgufFile::Parse(keys.Serialize()), StatusCode::kDataLoss, "'k' appears twice");
  GgufWriter tensors;
  tensors.AddTensor("t", {1}, kGgmlF32, FloatBytes({1}));
  tensors.AddTensor("t", {1}, kGgmlF32, FloatBytes({2}));
  ExpectError(GgufFile::Parse(tensors.Serialize()), StatusCode::kDataLoss, "'t' appears twice");
}

TEST(GgufReaderTest, BadAlignmentIsDataLoss) {
  for (std::uint32_t alignment : {0u, 24u, 1u << 31}) {
    GgufWriter w;
    w.AddUint32("general.alignment", alignment);
    ExpectError(GgufFile::Parse(w.Serialize()), StatusCode::kDataLoss, "not a power of two");
  }
  GgufWriter wrong_kind;
  wrong_kind.AddString("general.alignment", "32");
  ExpectError(GgufFile::Parse(wrong_kind.Serialize()), StatusCode::kDataLoss,
              "expected an integer");
}

// A file with one tensor "t" whose directory entry is patched by `patch`.
std::vector<std::uint8_t> OneTensor(std::vector<std::uint64_t> dims, std::uint32_t type,
                                    std::size_t data_bytes) {
  GgufWriter w;
  w.AddTensor("t", std::move(dims), type, std::vector<std::uint8_t>(data_bytes, 0));
  return w.Serialize();
}

TEST(GgufReaderTest, TensorBoundsAreChecked) {
  // Directory entry of "t": name at 24 (8 + 1), n_dims at 33, ne at 37.., then type, offset.
  std::vector<std::uint8_t> past_eof = OneTensor({8}, kGgmlF32, 32);
  PatchU64(past_eof, 37 + 8 + 4, 1 << 20);
  ExpectError(GgufFile::Parse(past_eof), StatusCode::kDataLoss, "past the end of the file");
  std::vector<std::uint8_t> misaligned = OneTensor({8}, kGgmlF32, 32);
  PatchU64(misaligned, 37 + 8 + 4, 4);
  ExpectError(GgufFile::Parse(misaligned), StatusCode::kDataLoss,
              "not a multiple of the alignment");
  std::vector<std::uint8_t> truncated = OneTensor({8}, kGgmlF32, 32);
  truncated.resize(truncated.size() - 4);
  ExpectError(GgufFile::Parse(truncated), StatusCode::kDataLoss, "extends past the end");
  std::vector<std::uint8_t> huge = OneTensor({8}, kGgmlF32, 32);
  PatchU64(huge, 37, 1ull << 62);
  ExpectError(GgufFile::Parse(huge), StatusCode::kDataLoss, "extends past the end");
  ExpectError(GgufFile::Parse(OneTensor({1ull << 32, 1ull << 32, 1ull << 8}, kGgmlF32, 0)),
              StatusCode::kDataLoss, "absurd dimensions");
  ExpectError(GgufFile::Parse(OneTensor({}, kGgmlF32, 0)), StatusCode::kDataLoss, "0 dimensions");
  ExpectError(GgufFile::Parse(OneTensor({1, 1, 1, 1, 1}, kGgmlF32, 4)), StatusCode::kDataLoss,
              "5 dimensions");
}

TEST(GgufReaderTest, BlockTypesNeedWholeBlocksPerRow) {
  // 172 columns of Q8_0 (34 bytes per 32 values) cannot be stored: 172 = 5 * 32 + 12.
  ExpectError(GgufFile::Parse(OneTensor({172, 2}, kGgmlQ8_0, 2 * 6 * 34)), StatusCode::kDataLoss,
              "rows of 172 values, not a multiple of its 32-value blocks");
  auto ok = GgufFile::Parse(OneTensor({64, 2}, kGgmlQ8_0, 2 * 2 * 34));
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(*ok->tensors()[0].bytes, 136u);
  // Types qaq does not size (iq*) are listed without a byte count.
  auto iq = GgufFile::Parse(OneTensor({256}, 16, 66));
  ASSERT_TRUE(iq.ok()) << iq.status().message();
  EXPECT_FALSE(iq->tensors()[0].bytes.has_value());
}

TEST(GgmlTypesTest, NamesAndLayouts) {
  EXPECT_EQ(GgmlTypeName(0), "f32");
  EXPECT_EQ(GgmlTypeName(8), "q8_0");
  EXPECT_EQ(GgmlTypeName(12), "q4_K");
  EXPECT_EQ(GgmlTypeName(30), "bf16");
  EXPECT_EQ(GgmlTypeName(31), "type 31");
  EXPECT_EQ(GgmlTypeName(1000), "type 1000");
  EXPECT_EQ(GgmlLayout(8)->block_bytes, 34u);
  EXPECT_EQ(GgmlLayout(14)->block_bytes, 210u);
  EXPECT_FALSE(GgmlLayout(20).has_value());
  EXPECT_EQ(GgufKindName(8), "string");
  EXPECT_EQ(GgufKindName(13), "kind 13");
}

}  // namespace
}  // namespace qaq::internal
