// Test helpers for writing small files (synthetic checkpoints, corrupt inputs) to a temp folder.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace qaq::test {

// A path in the test temp folder, unique per test case: "<tmp>/<suite>.<test>.<suffix>".
inline std::string TempPath(std::string_view suffix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string leaf =
      std::string(info->test_suite_name()) + "." + info->name() + "." + std::string(suffix);
  for (char& ch : leaf) {
    if (ch == '/') ch = '_';  // parameterized test names contain '/'
  }
  std::string dir = ::testing::TempDir();
  if (!dir.empty() && dir.back() != '/') dir += '/';
  return dir + leaf;
}

inline void WriteFile(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

// Little-endian byte sink for building files.
class ByteWriter {
 public:
  template <typename T>
  void Put(T value) {
    const std::size_t at = bytes_.size();
    bytes_.resize(at + sizeof(T));
    std::memcpy(bytes_.data() + at, &value, sizeof(T));
  }
  void PutBytes(std::string_view s) { bytes_.insert(bytes_.end(), s.begin(), s.end()); }
  std::vector<std::uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<std::uint8_t> bytes_;
};

}  // namespace qaq::test
