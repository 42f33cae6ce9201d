// The authors'-code compatibility mode (formula=authors, codec=authors) against outputs of the
// authors' own Quantizer on small caches (../shared/testdata/authors-quantizer-vectors.json):
// every case must give exactly their bits and outlier masks, and their dequantized values to
// float32 rounding.
#include <cmath>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "qaq/quant.h"
#include "test_support.h"

namespace qaq {
namespace {

// Dequantized values: relative 1e-6 (a few float32 ulps). Reconstructions close to zero are
// measured against the group's scale instead (|value| < 1e-3 would make any ulp "relative").
constexpr double kRelTol = 1e-6;

std::vector<float> Flatten(const nlohmann::json& j) {
  std::vector<float> out;
  if (j.is_array()) {
    for (const auto& e : j) {
      auto sub = Flatten(e);
      out.insert(out.end(), sub.begin(), sub.end());
    }
  } else {
    out.push_back(j.get<float>());
  }
  return out;
}

struct Case {
  KvQuantConfig config;
  std::string name;
};

Case MakeCase(const nlohmann::json& c) {
  Case out;
  KvQuantConfig& k = out.config;
  k.kind = c["kind"] == "key" ? KvKind::kKey : KvKind::kValue;
  const std::string level = c["level"];
  k.granularity = level == "token" ? Granularity::kToken : level == "layer" ? Granularity::kLayer : Granularity::kHead;
  k.outlier_alpha = c["outliers_ratio"].get<double>();
  k.formula = BitsFormula::kAuthors;
  k.codec = CodecKind::kAuthors;
  const auto& cfg = c["config"];
  if (!cfg["use_attentions"].get<bool>()) {
    k.uniform_bits = cfg["n_bits_uniform"].get<int>();
  } else {
    k.window = cfg["last_n_attentions"].get<int>();
    k.target = cfg["target_quantization_error"].get<double>();
    k.bits_min = cfg["n_bits_min"].get<int>();
    k.bits_max = cfg["n_bits_max"].get<int>();
    if (cfg.contains("q_norm")) k.q_norm_sq = cfg["q_norm"].get<double>();
  }
  out.name = c["kind"].get<std::string>() + "/" + level + "/alpha=" + c["outliers_ratio"].dump() + "/" + cfg.dump();
  return out;
}

TEST(AuthorsModeTest, ReproducesTheAuthorsQuantizerOnAllCases) {
  QAQ_REQUIRE_SHARED_FILE(path, "testdata/authors-quantizer-vectors.json");
  std::ifstream in(path);
  const nlohmann::json data = nlohmann::json::parse(in);
  const int L = data["shapes"]["layers"], H = data["shapes"]["kv_heads"], T = data["shapes"]["tokens"],
            D = data["shapes"]["head_dim"];
  ASSERT_EQ(data["layouts"]["cache"], "[L][H][T][D]");
  ASSERT_EQ(data["layouts"]["outlier_mask"], "[T][L][H][D]");
  ASSERT_EQ(data["cases"].size(), 120u);

  int n_cases = 0, worst_case = -1;
  double worst_rel = 0.0;
  for (const auto& c : data["cases"]) {
    const Case tc = MakeCase(c);
    SCOPED_TRACE(tc.name);
    const auto& inputs = data["inputs"][c["inputs"].get<std::string>()];
    const std::vector<float> cache = Flatten(inputs["cache"]);
    const std::vector<float> attention = Flatten(inputs["attention"]);
    ASSERT_EQ(cache.size(), static_cast<std::size_t>(L * H * T * D));
    const KvTensorView kv{L, H, T, D, cache};
    const AttentionTensorView attn{L, H, T, attention};
    auto result = QuantizeKv(tc.config, kv, &attn, nullptr);
    ASSERT_TRUE(result.ok()) << result.status().message();

    // Bits: theirs [T] / [T][L] / [T][L][H]; ours [T] / [L][T] / [L][H][T].
    const std::vector<float> their_bits = Flatten(c["bits"]);
    const int groups = static_cast<int>(their_bits.size()) / T;
    ASSERT_EQ(result->bits.size(), their_bits.size());
    for (int t = 0; t < T; ++t) {
      for (int g = 0; g < groups; ++g) {
        EXPECT_EQ(result->bits[static_cast<std::size_t>(g * T + t)], static_cast<int>(their_bits[static_cast<std::size_t>(t * groups + g)]))
            << "token " << t << " group " << g;
      }
    }
    // Outlier mask: theirs [T][L][H][D], ours [L][H][T][D].
    const std::vector<float> their_mask = Flatten(c["outlier_mask"]);
    const std::vector<float> their_deq = Flatten(c["dequantized"]);
    for (int l = 0; l < L; ++l) {
      for (int h = 0; h < H; ++h) {
        for (int t = 0; t < T; ++t) {
          for (int d = 0; d < D; ++d) {
            const std::size_t ours = static_cast<std::size_t>(((l * H + h) * T + t) * D + d);
            const std::size_t theirs = static_cast<std::size_t>(((t * L + l) * H + h) * D + d);
            EXPECT_EQ(result->outlier_mask[ours], static_cast<int>(their_mask[theirs])) << l << " " << h << " " << t << " " << d;
            const double want = their_deq[ours];  // same layout as the cache
            const double got = result->dequantized[ours];
            const double rel = std::abs(got - want) / std::max(std::abs(want), 1e-3);
            if (rel > worst_rel) {
              worst_rel = rel;
              worst_case = n_cases;
            }
            EXPECT_LE(rel, kRelTol) << "value " << got << " want " << want << " at " << l << " " << h << " " << t << " " << d;
          }
        }
      }
    }
    ++n_cases;
  }
  EXPECT_EQ(n_cases, 120);
  RecordProperty("worst_relative_error", std::to_string(worst_rel));
  std::printf("authors' vectors: 120 cases, worst relative error %.3g (case %d)\n", worst_rel, worst_case);
}

}  // namespace
}  // namespace qaq
