#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "qaq/quant.h"

namespace qaq {
namespace {

TEST(QueryNormCalibrationTest, QuantileInterpolatesLikeNumpy) {
  QueryNormCalibration c(1, 2, 0.9);
  for (int i = 1; i <= 11; ++i) ASSERT_TRUE(c.AddSample(0, 0, static_cast<double>(i)).ok());
  for (double v : {4.0, 1.0, 3.0, 2.0}) ASSERT_TRUE(c.AddSample(0, 1, v).ok());
  ASSERT_TRUE(c.Finalize().ok());
  EXPECT_DOUBLE_EQ(c.QNormSq(0, 0), 10.0);  // position 0.9 * 10 = 9 -> the 10th value
  EXPECT_DOUBLE_EQ(c.QNormSq(0, 1), 3.7);   // position 2.7 between 3 and 4
  EXPECT_EQ(c.n_samples(0, 0), 11u);
}

TEST(QueryNormCalibrationTest, JsonRoundTripAndFile) {
  QueryNormCalibration c(2, 1, 0.5);
  ASSERT_TRUE(c.AddSample(0, 0, 2.0).ok());
  ASSERT_TRUE(c.AddSample(0, 0, 4.0).ok());
  ASSERT_TRUE(c.AddSample(1, 0, 1.25).ok());
  ASSERT_TRUE(c.Finalize().ok());
  auto back = QueryNormCalibration::FromJson(c.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->n_layers(), 2);
  EXPECT_EQ(back->n_kv_heads(), 1);
  EXPECT_DOUBLE_EQ(back->quantile(), 0.5);
  EXPECT_DOUBLE_EQ(back->QNormSq(0, 0), 3.0);
  EXPECT_DOUBLE_EQ(back->QNormSq(1, 0), 1.25);
  EXPECT_EQ(back->n_samples(0, 0), 2u);
  const std::string path = (std::filesystem::temp_directory_path() / "qaq_calibration_test.json").string();
  ASSERT_TRUE(c.Save(path).ok());
  auto loaded = QueryNormCalibration::Load(path);
  ASSERT_TRUE(loaded.ok());
  EXPECT_DOUBLE_EQ(loaded->QNormSq(0, 0), 3.0);
  std::remove(path.c_str());
}

TEST(QueryNormCalibrationTest, FallbackAndConstant) {
  EXPECT_DOUBLE_EQ(QueryNormCalibration::FallbackQNormSq(64), 300.0 / 64.0);
  const QueryNormCalibration c = QueryNormCalibration::Constant(3, 2, 7.5);
  EXPECT_DOUBLE_EQ(c.QNormSq(2, 1), 7.5);
}

TEST(QueryNormCalibrationTest, BadInputsAreStatuses) {
  QueryNormCalibration c(1, 1);
  EXPECT_EQ(c.AddSample(1, 0, 1.0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.AddSample(0, 0, -1.0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.AddSample(0, 0, std::nan("")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.Finalize().code(), StatusCode::kInvalidArgument);  // no samples
  EXPECT_EQ(QueryNormCalibration::Load("/nonexistent/q.json").status().code(), StatusCode::kNotFound);
  const char* bad[] = {
      "[1, 2]",
      R"({"format": "other", "version": 1})",
      R"({"format": "qaq-query-norm-calibration", "version": 2, "includes_softmax_scale": true})",
      R"({"format": "qaq-query-norm-calibration", "version": 1, "includes_softmax_scale": false,
          "quantile": 0.9, "n_layers": 1, "n_kv_heads": 1, "q_norm_sq": [[1.0]]})",
      R"({"format": "qaq-query-norm-calibration", "version": 1, "includes_softmax_scale": true,
          "quantile": 0.9, "n_layers": 1, "n_kv_heads": 2, "q_norm_sq": [[1.0]]})",
      R"({"format": "qaq-query-norm-calibration", "version": 1, "includes_softmax_scale": true,
          "quantile": 0.9, "n_layers": 1, "n_kv_heads": 1, "q_norm_sq": [[-1.0]]})",
      R"({"format": "qaq-query-norm-calibration", "version": 1, "includes_softmax_scale": true,
          "quantile": 1.5, "n_layers": 1, "n_kv_heads": 1, "q_norm_sq": [[1.0]]})",
      R"({"format": "qaq-query-norm-calibration", "version": 1, "includes_softmax_scale": true,
          "quantile": 0.9, "n_layers": 0, "n_kv_heads": 1, "q_norm_sq": []})",
  };
  for (const char* json : bad) EXPECT_FALSE(QueryNormCalibration::FromJson(json).ok()) << json;
  // A malformed n_samples is ignored, not a crash.
  EXPECT_TRUE(QueryNormCalibration::FromJson(
                  R"({"format": "qaq-query-norm-calibration", "version": 1, "includes_softmax_scale": true,
                      "quantile": 0.9, "n_layers": 1, "n_kv_heads": 1, "q_norm_sq": [[1.0]], "n_samples": 3})")
                  .ok());
}

}  // namespace
}  // namespace qaq
