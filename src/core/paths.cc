#include "core/paths.h"

#include <cstdlib>

#ifndef QAQ_DEFAULT_SHARED_DIR
#define QAQ_DEFAULT_SHARED_DIR "../shared"
#endif

namespace qaq {

std::string SharedDir() {
  const char* env = std::getenv("QAQ_SHARED_DIR");
  if (env != nullptr && env[0] != '\0') return env;
  return QAQ_DEFAULT_SHARED_DIR;
}

std::string SharedPath(const std::string& relative) { return SharedDir() + "/" + relative; }

}  // namespace qaq
