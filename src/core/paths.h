// Where qaq finds the shared models and data (../shared beside the repository by default).
#pragma once

#include <string>

namespace qaq {

// The shared folder: $QAQ_SHARED_DIR if set, else the ../shared beside the source tree.
std::string SharedDir();

// SharedDir() + "/" + relative, e.g. SharedPath("models/stories260K.bin").
std::string SharedPath(const std::string& relative);

}  // namespace qaq
