#include "quant/npy.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace qaq {
namespace {

std::vector<std::uint8_t> Bytes(const std::string& header, std::size_t data_bytes, int major = 1) {
  std::vector<std::uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<std::uint8_t>(major), 0};
  out.push_back(static_cast<std::uint8_t>(header.size() & 0xff));
  out.push_back(static_cast<std::uint8_t>(header.size() >> 8));
  if (major >= 2) {
    out.push_back(0);
    out.push_back(0);
  }
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, 0);
  return out;
}

TEST(NpyTest, ParsesWhatNumpyWrites) {
  // np.save of np.zeros((2, 3), np.float32): this exact header, padded to a multiple of 64 bytes.
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  auto bytes = Bytes(header, 24);
  float v = 1.5f;
  std::memcpy(bytes.data() + 10 + header.size() + 4, &v, 4);
  auto a = ParseNpy(bytes);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->type, NpyType::kFloat32);
  EXPECT_EQ(a->shape, (std::vector<std::int64_t>{2, 3}));
  auto f = a->ToFloat32();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)[1], 1.5f);
  // The writer produces the same bytes.
  EXPECT_EQ(SerializeNpy(*a), bytes);
  // Version 2 header, 1-D shape, bool.
  auto b = ParseNpy(Bytes("{'descr': '|b1', 'fortran_order': False, 'shape': (5,), }\n", 5, 2));
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->shape, (std::vector<std::int64_t>{5}));
  auto scalar = ParseNpy(Bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (), }\n", 4));
  ASSERT_TRUE(scalar.ok());
  EXPECT_EQ(scalar->size(), 1u);
}

TEST(NpyTest, FileRoundTripEveryType) {
  const std::string dir = std::filesystem::temp_directory_path().string();
  const std::vector<float> f = {1.0f, -2.5f, 3.25f, 0.0f, 5.0f, 6.0f};
  ASSERT_TRUE(WriteNpy(dir + "/qaq_npy_f.npy", std::span<const float>(f), {2, 3}).ok());
  auto rf = ReadNpy(dir + "/qaq_npy_f.npy");
  ASSERT_TRUE(rf.ok());
  EXPECT_EQ(*rf->ToFloat32(), f);
  EXPECT_EQ(rf->shape, (std::vector<std::int64_t>{2, 3}));
  const std::vector<std::int32_t> i = {1, -7, 300};
  ASSERT_TRUE(WriteNpy(dir + "/qaq_npy_i.npy", std::span<const std::int32_t>(i), {3}).ok());
  auto ri = ReadNpy(dir + "/qaq_npy_i.npy");
  ASSERT_TRUE(ri.ok());
  EXPECT_EQ(ri->type, NpyType::kInt32);
  EXPECT_EQ(*ri->ToFloat32(), (std::vector<float>{1.0f, -7.0f, 300.0f}));
  const std::vector<std::uint8_t> m = {0, 1, 1, 0};
  ASSERT_TRUE(WriteNpy(dir + "/qaq_npy_b.npy", std::span<const std::uint8_t>(m), {2, 1, 2}, NpyType::kBool).ok());
  auto rb = ReadNpy(dir + "/qaq_npy_b.npy");
  ASSERT_TRUE(rb.ok());
  EXPECT_EQ(rb->type, NpyType::kBool);
  EXPECT_EQ(rb->data, m);
  for (const char* name : {"f", "i", "b"}) std::remove((dir + "/qaq_npy_" + name + ".npy").c_str());
  // Every header is padded to a multiple of 64 bytes.
  NpyArray big;
  big.shape = {1000, 1000, 7};
  big.type = NpyType::kUint8;
  big.data.resize(big.size());
  EXPECT_EQ((SerializeNpy(big).size() - big.data.size()) % 64, 0u);
}

TEST(NpyTest, BadFilesAreStatuses) {
  EXPECT_EQ(ReadNpy("/nonexistent/x.npy").status().code(), StatusCode::kNotFound);
  const std::vector<std::uint8_t> junk = {'h', 'e', 'l', 'l', 'o', 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(ParseNpy(junk).status().code(), StatusCode::kDataLoss);
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
  EXPECT_EQ(ParseNpy(Bytes(ok, 20)).status().code(), StatusCode::kDataLoss);  // truncated data
  EXPECT_EQ(ParseNpy(Bytes(ok, 28)).status().code(), StatusCode::kDataLoss);  // trailing bytes
  auto truncated_header = Bytes(ok, 0);
  truncated_header.resize(30);
  EXPECT_EQ(ParseNpy(truncated_header).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ParseNpy(Bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", 8)).status().code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(ParseNpy(Bytes("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }\n", 4)).status().code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(ParseNpy(Bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n", 8)).status().code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(ParseNpy(Bytes("{'descr': '<f4', 'shape': (2,), }\n", 8)).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ParseNpy(Bytes("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }\n", 8)).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(ParseNpy(Bytes(ok, 24, 4)).status().code(), StatusCode::kUnimplemented);
  // Writing with a shape that does not match the values.
  const std::vector<float> f = {1.0f};
  EXPECT_EQ(WriteNpy("/tmp/qaq_never.npy", std::span<const float>(f), {2}).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qaq
