// Helpers for tests that need the shared models and data.
#pragma once

#include <string>

#include <gtest/gtest.h>

namespace qaq::test {

// True when running under CI (CI=true): there a missing model is a failure, never a skip.
bool InCi();

// Full path of a file under the shared folder (models/..., data/..., testdata/...), or "" if it
// does not exist. Use QAQ_REQUIRE_SHARED_FILE to skip (locally) or fail (CI) when it is missing.
std::string SharedFileOrEmpty(const std::string& relative);

// A fresh, empty folder for one test's files, unique to this process (`ctest -j` runs tests of
// the same program, and other checkouts may run the same tests, at the same time).
std::string ScratchDir(const std::string& name);

}  // namespace qaq::test

// Declares `std::string var` holding the path of a shared file; skips the test with a clear
// message when the file is absent, except under CI=true where that is a failure.
#define QAQ_REQUIRE_SHARED_FILE(var, relative)                                               \
  const std::string var = ::qaq::test::SharedFileOrEmpty(relative);                          \
  if (var.empty()) {                                                                          \
    if (::qaq::test::InCi()) FAIL() << "missing shared file " << (relative) << " (CI=true)"; \
    GTEST_SKIP() << "shared file " << (relative)                                             \
                 << " not found; set QAQ_SHARED_DIR to the folder holding models/ and data/"; \
  }
