#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "qaq/eval.h"

namespace qaq {

StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return NotFoundError("{}: no such file", path);
  if (std::filesystem::is_directory(path, ec)) return InvalidArgumentError("{} is a directory", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) return InternalError("{}: cannot open: {}", path, std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return InternalError("{}: read error", path);
  return s.str();
}

}  // namespace qaq
