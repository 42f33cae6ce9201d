#include "test_support.h"

#include <cstdlib>
#include <filesystem>
#include <string_view>

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

}  // namespace qaq::test
