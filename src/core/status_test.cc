#include "qaq/status.h"

#include <gtest/gtest.h>

namespace qaq {
namespace {

StatusOr<int> ParsePositive(int x) {
  if (x <= 0) return InvalidArgumentError("expected a positive number, got {}", x);
  return x;
}

Status Doubled(int x, int* out) {
  QAQ_ASSIGN_OR_RETURN(int v, ParsePositive(x));
  *out = 2 * v;
  return OkStatus();
}

TEST(StatusTest, OkAndErrorCarryCodeAndMessage) {
  EXPECT_TRUE(OkStatus().ok());
  Status s = NotFoundError("no file '{}'", "a.gguf");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "no file 'a.gguf'");
  EXPECT_EQ(s.WithContext("loading").message(), "loading: no file 'a.gguf'");
}

TEST(StatusTest, AssignOrReturnPropagates) {
  int out = 0;
  EXPECT_TRUE(Doubled(4, &out).ok());
  EXPECT_EQ(out, 8);
  Status s = Doubled(-1, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "expected a positive number, got -1");
}

}  // namespace
}  // namespace qaq
