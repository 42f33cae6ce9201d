#include "qaq/kv_config.h"

#include <gtest/gtest.h>

namespace qaq {
namespace {

KvCacheConfig Parse(const std::string& spec) {
  auto c = ParseKvCacheSpec(spec);
  EXPECT_TRUE(c.ok()) << spec << ": " << c.status().message();
  return c.ok() ? *c : KvCacheConfig{};
}

std::string Error(const std::string& spec) {
  auto c = ParseKvCacheSpec(spec);
  EXPECT_FALSE(c.ok()) << spec;
  if (c.ok()) return "";
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << spec;
  return c.status().message();
}

TEST(KvConfigTest, BackendsAndArguments) {
  EXPECT_EQ(Parse("fp32").backend, KvBackendKind::kFp32);
  EXPECT_EQ(Parse("fp16").backend, KvBackendKind::kFp16);
  KvCacheConfig u = Parse("uniform:4");
  EXPECT_EQ(u.backend, KvBackendKind::kUniform);
  EXPECT_EQ(u.key_bits, 4);
  EXPECT_EQ(u.value_bits, 4);
  EXPECT_EQ(u.outlier_alpha, 0.0);
  u = Parse("uniform:8/2,keys=channel:32,prerope,outliers=0.02");
  EXPECT_EQ(u.key_bits, 8);
  EXPECT_EQ(u.value_bits, 2);
  EXPECT_EQ(u.key_layout, KeyLayout::kChannel);
  EXPECT_EQ(u.key_block, 32);
  EXPECT_TRUE(u.keys_prerope);
  EXPECT_DOUBLE_EQ(u.outlier_alpha, 0.02);
  const KvCacheConfig k = Parse("kivi:2");
  EXPECT_EQ(k.key_layout, KeyLayout::kChannel);
  EXPECT_EQ(k.key_block, 32);
  EXPECT_EQ(k.value_bits, 2);
  const KvCacheConfig q = Parse("qaq");
  EXPECT_EQ(q.backend, KvBackendKind::kQaq);
  EXPECT_DOUBLE_EQ(q.outlier_alpha, 0.01);
  EXPECT_EQ(q.window, 5);
  EXPECT_EQ(q.tier, FullPrecisionTier::kRam);
  EXPECT_TRUE(q.auto_granularity);
  EXPECT_EQ(q.key_layout, KeyLayout::kChannel);
  EXPECT_EQ(q.key_block, 64);
  EXPECT_FALSE(q.keys_prerope);
  EXPECT_TRUE(Parse("qaq,prerope").keys_prerope);
  EXPECT_FALSE(Parse("qaq,prerope,prerope=0").keys_prerope);
  EXPECT_EQ(Parse("qaq,key_bits=3").key_bits_fixed, 3);
  KvCacheShape shape;
  shape.head_dim = 8, shape.n_kv_heads = 4;
  EXPECT_EQ(AutoGranularity(shape), Granularity::kToken);
  shape.n_kv_heads = 8;
  EXPECT_EQ(AutoGranularity(shape), Granularity::kLayer);
  shape.head_dim = 128;
  EXPECT_EQ(AutoGranularity(shape), Granularity::kHead);
}

TEST(KvConfigTest, QaqOptions) {
  const KvCacheConfig q = Parse(
      "qaq,key_error=0.03,value_error=0.4,window=7,bits=1:6,granularity=layer,formula=authors,tier=disk,"
      "tier_dir=/tmp,calib=c.json,ratio=6,keys=channel:64,prerope");
  EXPECT_DOUBLE_EQ(q.key_error, 0.03);
  EXPECT_DOUBLE_EQ(q.value_error, 0.4);
  EXPECT_EQ(q.window, 7);
  EXPECT_EQ(q.bits_min, 1);
  EXPECT_EQ(q.bits_max, 6);
  EXPECT_EQ(q.granularity, Granularity::kLayer);
  EXPECT_FALSE(q.auto_granularity);
  EXPECT_EQ(q.formula, BitsFormula::kAuthors);
  EXPECT_EQ(q.tier, FullPrecisionTier::kDisk);
  EXPECT_EQ(q.tier_dir, "/tmp");
  EXPECT_EQ(q.calibration_path, "c.json");
  EXPECT_DOUBLE_EQ(q.target_ratio, 6.0);
  EXPECT_DOUBLE_EQ(Parse("qaq,kv_bits=2").target_ratio, 8.0);
  EXPECT_EQ(Parse("qaq,bits=16:16").bits_min, 16);
  // The spec form reads back to the same config.
  const KvCacheConfig again = Parse(FormatKvCacheSpec(q));
  EXPECT_EQ(FormatKvCacheSpec(again), FormatKvCacheSpec(q));
  EXPECT_EQ(FormatKvCacheSpec(Parse("uniform:3/5,keys=channel:16")), "uniform:3/5,keys=channel:16,outliers=0");
}

TEST(KvConfigTest, ErrorsNameTheProblem) {
  EXPECT_NE(Error("qaq,bits=9:3").find("--qaq-bits 9:3"), std::string::npos);
  EXPECT_NE(Error("qaq,bits=3:9").find("--qaq-bits"), std::string::npos);
  EXPECT_NE(Error("qaq,bits=16:8").find("--qaq-bits"), std::string::npos);
  EXPECT_NE(Error("qaq,window=0").find("--qaq-window 0"), std::string::npos);
  EXPECT_NE(Error("qaq,ratio=0.5").find("--kv-ratio 0.5"), std::string::npos);
  EXPECT_NE(Error("qaq,kv_bits=0").find("--kv-bits"), std::string::npos);
  EXPECT_NE(Error("qaq,key_error=-1").find("--qaq-key-error"), std::string::npos);
  EXPECT_NE(Error("qaq,outliers=1").find("--qaq-outliers"), std::string::npos);
  EXPECT_NE(Error("qaq,tier=tape").find("ram, disk or none"), std::string::npos);
  EXPECT_NE(Error("qaq,granularity=block").find("auto, head, layer or token"), std::string::npos);
  EXPECT_NE(Error("qaq,key_bits=9").find("key_bits 9"), std::string::npos);
  EXPECT_NE(Error("qaq,formula=new").find("paper, authors or strict"), std::string::npos);
  EXPECT_NE(Error("qaq,window=five").find("not an integer"), std::string::npos);
  EXPECT_NE(Error("uniform:9").find("9 bits"), std::string::npos);
  EXPECT_NE(Error("uniform").find("uniform:B"), std::string::npos);
  EXPECT_NE(Error("uniform:4,window=3").find("--kv qaq"), std::string::npos);
  EXPECT_NE(Error("fp16,outliers=0.1").find("takes no options"), std::string::npos);
  EXPECT_NE(Error("fp16:3").find("takes no arguments"), std::string::npos);
  EXPECT_NE(Error("kivi:0").find("1..8"), std::string::npos);
  EXPECT_NE(Error("uniform:4,keys=channel:0").find("channel:0"), std::string::npos);
  EXPECT_NE(Error("uniform:4,keys=rows").find("token or channel:G"), std::string::npos);
  EXPECT_NE(Error("qaq,colour=red").find("unknown KV cache option 'colour'"), std::string::npos);
  EXPECT_NE(Error("int3").find("unknown KV cache 'int3'"), std::string::npos);
}

}  // namespace
}  // namespace qaq
