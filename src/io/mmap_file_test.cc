#include "io/mmap_file.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "io/test_files.h"

namespace qaq {
namespace {

TEST(MappedFileTest, MapsWholeFile) {
  const std::string path = test::TempPath("bin");
  test::WriteFile(path, {1, 2, 3, 250});
  auto file = MappedFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  ASSERT_EQ((*file)->size(), 4u);
  EXPECT_EQ((*file)->data()[0], 1);
  EXPECT_EQ((*file)->data()[3], 250);
  EXPECT_EQ((*file)->path(), path);
}

TEST(MappedFileTest, MissingFileIsNotFound) {
  auto file = MappedFile::Open(test::TempPath("does-not-exist"));
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
  EXPECT_NE(file.status().message().find("no such file"), std::string::npos);
}

TEST(MappedFileTest, EmptyFileIsDataLoss) {
  const std::string path = test::TempPath("empty");
  test::WriteFile(path, {});
  auto file = MappedFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(file.status().message().find("is empty"), std::string::npos);
}

TEST(MappedFileTest, DirectoryIsRejected) {
  const std::string path = test::TempPath("dir");
  std::filesystem::create_directories(path);
  auto file = MappedFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
  EXPECT_NE(file.status().message().find("not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace qaq
