// qaq/status.h: how the library reports errors caused by input.
//
// Anything a user can get wrong (a missing file, a corrupt GGUF, a bad flag, a prompt longer than
// the context) comes back as a `Status` or a `StatusOr<T>`, never as an exception or an abort.
// The command-line tool turns a failed status into one line on stderr and exit code 1
// (kInvalidArgument from flag parsing: exit code 2). Broken internal invariants are not input
// errors: they abort through QAQ_CHECK (src/core/check.h).
//
//   qaq::StatusOr<Model> model = qaq::LoadModel(path);
//   if (!model.ok()) return model.status();
//   QAQ_ASSIGN_OR_RETURN(Model m, qaq::LoadModel(path));   // the same, shorter
#pragma once

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace qaq {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // a bad flag, option or parameter value
  kNotFound,          // a file or a named item that does not exist
  kDataLoss,          // a file that is truncated or corrupt
  kUnimplemented,     // valid input that qaq does not support (tensor type, architecture)
  kOutOfRange,        // sizes beyond what a buffer or the context allows
  kInternal,          // an operating-system call that failed
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prepends context ("loading model.gguf: ") to the message, keeping the code.
  Status WithContext(std::string_view context) const {
    if (ok()) return *this;
    return Status(code_, fmt::format("{}: {}", context, message_));
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }

template <typename... Args>
Status InvalidArgumentError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kInvalidArgument, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status NotFoundError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kNotFound, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status DataLossError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kDataLoss, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status UnimplementedError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kUnimplemented, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status OutOfRangeError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kOutOfRange, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status InternalError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kInternal, fmt::format(f, std::forward<Args>(args)...));
}

// A value of type T or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) std::abort();  // an OK status carries no value: a programming error
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T&& operator*() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace qaq

#define QAQ_STATUS_CONCAT_INNER(a, b) a##b
#define QAQ_STATUS_CONCAT(a, b) QAQ_STATUS_CONCAT_INNER(a, b)

// Returns from the calling function if `expr` (a Status) is not OK.
#define QAQ_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::qaq::Status qaq_status_ = (expr);        \
    if (!qaq_status_.ok()) return qaq_status_; \
  } while (0)

// `QAQ_ASSIGN_OR_RETURN(T x, StatusOrExpr)`: declares x from the value, or returns the status.
#define QAQ_ASSIGN_OR_RETURN(lhs, expr)                                        \
  auto QAQ_STATUS_CONCAT(qaq_statusor_, __LINE__) = (expr);                    \
  if (!QAQ_STATUS_CONCAT(qaq_statusor_, __LINE__).ok())                        \
    return QAQ_STATUS_CONCAT(qaq_statusor_, __LINE__).status();                \
  lhs = std::move(QAQ_STATUS_CONCAT(qaq_statusor_, __LINE__)).value()
