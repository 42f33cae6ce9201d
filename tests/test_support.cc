#include "test_support.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string_view>

#include <gtest/gtest.h>

#include "core/paths.h"

namespace qaq::test {

bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

std::string SharedFileOrEmpty(const std::string& relative) {
  std::string path = SharedPath(relative);
  std::error_code ec;
  return std::filesystem::exists(path, ec) ? path : std::string();
}

std::string ScratchDir(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / ("qaq-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace qaq::test
