#include <gtest/gtest.h>

#include "qaq/quant.h"

namespace qaq {
namespace {

TEST(KvQuantConfigTest, KeyValueForm) {
  auto c = ParseKvQuantConfig("kind=key, bits=2:6,target=0.2,window=3,alpha=0.05,granularity=layer,"
                              "formula=authors,codec=authors,q_norm=300");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->kind, KvKind::kKey);
  EXPECT_EQ(c->bits_min, 2);
  EXPECT_EQ(c->bits_max, 6);
  EXPECT_EQ(c->uniform_bits, -1);
  EXPECT_EQ(c->target, 0.2);
  EXPECT_EQ(c->window, 3);
  EXPECT_EQ(c->outlier_alpha, 0.05);
  EXPECT_EQ(c->granularity, Granularity::kLayer);
  EXPECT_EQ(c->formula, BitsFormula::kAuthors);
  EXPECT_EQ(c->codec, CodecKind::kAuthors);
  EXPECT_EQ(c->q_norm_sq, 300.0);
}

TEST(KvQuantConfigTest, JsonFormAndDefaults) {
  auto c = ParseKvQuantConfig(R"({"kind": "value", "bits": 4, "alpha": 0})");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->uniform_bits, 4);
  EXPECT_EQ(c->outlier_alpha, 0.0);
  EXPECT_EQ(c->granularity, Granularity::kHead);  // default
  EXPECT_EQ(c->formula, BitsFormula::kPaper);
  auto d = ParseKvQuantConfig(R"({"bits": "1:7", "target": 0.5, "granularity": "token"})");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->bits_min, 1);
  EXPECT_EQ(d->bits_max, 7);
  EXPECT_EQ(d->granularity, Granularity::kToken);
  auto e = ParseKvQuantConfig("bits=16");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->uniform_bits, kPassThroughBits);
}

TEST(KvQuantConfigTest, FormatRoundTrips) {
  KvQuantConfig c;
  c.kind = KvKind::kKey;
  c.bits_min = 1;
  c.bits_max = 5;
  c.target = 0.123;
  c.window = 7;
  c.outlier_alpha = 0.02;
  c.granularity = Granularity::kToken;
  c.q_norm_sq = 2.5;
  const std::string text = FormatKvQuantConfig(c);
  auto back = ParseKvQuantConfig(text);
  ASSERT_TRUE(back.ok()) << text;
  EXPECT_EQ(FormatKvQuantConfig(*back), text);
  EXPECT_EQ(back->target, 0.123);
}

TEST(KvQuantConfigTest, BadInputsNameTheProblem) {
  const auto message = [](std::string_view text) {
    auto c = ParseKvQuantConfig(text);
    EXPECT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << text;
    return c.ok() ? std::string() : c.status().message();
  };
  EXPECT_NE(message("kind=both").find("kind"), std::string::npos);
  EXPECT_NE(message("bits=9").find("bits"), std::string::npos);
  EXPECT_NE(message("bits=5:3").find("bits"), std::string::npos);
  EXPECT_NE(message("bits=0:9").find("bits"), std::string::npos);
  EXPECT_NE(message("bits=x").find("bits"), std::string::npos);
  EXPECT_NE(message("target=0").find("target"), std::string::npos);
  EXPECT_NE(message("target=nan").find("target"), std::string::npos);
  EXPECT_NE(message("window=0").find("window"), std::string::npos);
  EXPECT_NE(message("alpha=1").find("alpha"), std::string::npos);
  EXPECT_NE(message("alpha=-0.1").find("alpha"), std::string::npos);
  EXPECT_NE(message("granularity=channel").find("granularity"), std::string::npos);
  EXPECT_NE(message("formula=magic").find("formula"), std::string::npos);
  EXPECT_NE(message("codec=q4").find("codec"), std::string::npos);
  EXPECT_NE(message("q_norm=-1").find("q_norm"), std::string::npos);
  EXPECT_NE(message("colour=red").find("unknown key 'colour'"), std::string::npos);
  EXPECT_NE(message("kind").find("key=value"), std::string::npos);
  EXPECT_NE(message("{\"kind\": ").find("JSON"), std::string::npos);
  EXPECT_NE(message("{\"bits\": [1, 2]}").find("bits"), std::string::npos);
}

}  // namespace
}  // namespace qaq
