// Always-on invariant checks. A failed QAQ_CHECK is a bug in qaq, not bad input: it prints the
// file, line and message and aborts. Input errors travel as qaq::Status instead (qaq/status.h).
// QAQ_DCHECK is for hot loops and compiles out unless NDEBUG is undefined.
#pragma once

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace qaq::internal {
[[noreturn]] inline void CheckFailed(const char* file, int line, const char* cond,
                                     const std::string& message) {
  std::fprintf(stderr, "qaq: internal error at %s:%d: check '%s' failed%s%s\n", file, line, cond,
               message.empty() ? "" : ": ", message.c_str());
  std::abort();
}
}  // namespace qaq::internal

#define QAQ_CHECK(cond, ...)                                                             \
  do {                                                                                   \
    if (!(cond)) [[unlikely]]                                                            \
      ::qaq::internal::CheckFailed(__FILE__, __LINE__, #cond, fmt::format("" __VA_ARGS__)); \
  } while (0)

#ifdef NDEBUG
#define QAQ_DCHECK(cond, ...) \
  do {                        \
  } while (0)
#else
#define QAQ_DCHECK(cond, ...) QAQ_CHECK(cond, __VA_ARGS__)
#endif
