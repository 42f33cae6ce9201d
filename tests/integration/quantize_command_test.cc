// `qaq quantize` end to end: .npy files in, .npy files out, through the built tool.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "quant/npy.h"
#include "test_support.h"

namespace qaq {
namespace {

int RunTool(const std::string& args) {
  const std::string command = std::string(QAQ_TOOL_PATH) + " quantize " + args + " >/dev/null 2>&1";
  const int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::vector<float> Flatten(const nlohmann::json& j) {
  std::vector<float> out;
  if (!j.is_array()) return {j.get<float>()};
  for (const auto& e : j) {
    auto sub = Flatten(e);
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

// One case of the authors' vectors through the tool: value cache, head level, window 3,
// alpha 0.1; the outputs must equal the authors' outputs.
TEST(QuantizeCommandTest, AuthorsCaseThroughTheTool) {
  QAQ_REQUIRE_SHARED_FILE(path, "testdata/authors-quantizer-vectors.json");
  std::ifstream in(path);
  const nlohmann::json data = nlohmann::json::parse(in);
  const nlohmann::json* chosen = nullptr;
  for (const auto& c : data["cases"]) {
    if (c["kind"] == "value" && c["level"] == "head" && c["outliers_ratio"].get<double>() == 0.1 &&
        c["config"]["use_attentions"].get<bool>() && c["config"]["last_n_attentions"] == 3 &&
        c["config"]["target_quantization_error"].get<double>() == 0.05) {
      chosen = &c;
    }
  }
  ASSERT_NE(chosen, nullptr);
  const std::string dir = test::ScratchDir("quantize_authors");
  const std::vector<float> cache = Flatten(data["inputs"]["value"]["cache"]);
  const std::vector<float> attention = Flatten(data["inputs"]["value"]["attention"]);
  ASSERT_TRUE(WriteNpy(dir + "/V.npy", std::span<const float>(cache), {2, 2, 12, 8}).ok());
  ASSERT_TRUE(WriteNpy(dir + "/A.npy", std::span<const float>(attention), {2, 2, 12, 12}).ok());
  std::ofstream(dir + "/config.json")
      << R"({"kind": "value", "bits": "0:8", "target": 0.05, "window": 3, "alpha": 0.1,
            "granularity": "head", "formula": "authors", "codec": "authors"})";
  ASSERT_EQ(RunTool("--kv-config " + dir + "/config.json --in " + dir + "/V.npy --attn " + dir + "/A.npy --out " +
                    dir + "/out"),
            0);
  auto deq = ReadNpy(dir + "/out/dequantized.npy");
  auto bits = ReadNpy(dir + "/out/bits.npy");
  auto mask = ReadNpy(dir + "/out/outlier_mask.npy");
  ASSERT_TRUE(deq.ok() && bits.ok() && mask.ok());
  EXPECT_EQ(deq->shape, (std::vector<std::int64_t>{2, 2, 12, 8}));
  EXPECT_EQ(bits->shape, (std::vector<std::int64_t>{2, 2, 12}));
  EXPECT_EQ(mask->type, NpyType::kBool);
  EXPECT_EQ(*deq->ToFloat32(), Flatten((*chosen)["dequantized"]));
  const std::vector<float> their_bits = Flatten((*chosen)["bits"]);  // [T][L][H]
  const std::vector<float> our_bits = *bits->ToFloat32();            // [L][H][T]
  for (int t = 0; t < 12; ++t)
    for (int g = 0; g < 4; ++g) EXPECT_EQ(our_bits[static_cast<std::size_t>(g * 12 + t)], their_bits[static_cast<std::size_t>(t * 4 + g)]);
  std::ifstream summary_file(dir + "/out/summary.json");
  const nlohmann::json summary = nlohmann::json::parse(summary_file);
  EXPECT_EQ(summary["fp16_bytes"], 2 * 2 * 12 * 8 * 2);
  // The authors' rule keeps one value per side of every 8-wide group: 2 x 48 groups, 6 bytes each
  // (fp32 + 16-bit position). That alone costs 0.75 of the fp16 size: this setting does not compress.
  std::size_t n_mask = 0;
  for (std::uint8_t m : mask->data) n_mask += m;
  EXPECT_EQ(summary["n_outliers"], n_mask);
  EXPECT_EQ(n_mask, 96u);
  EXPECT_EQ(summary["outlier_bytes"], 96 * 6);
  EXPECT_EQ(summary["metadata_bytes"], 48 * 4);
  EXPECT_EQ(summary["total_bytes"].get<std::size_t>(), summary["code_bytes"].get<std::size_t>() + 48 * 4 + 96 * 6);
  EXPECT_DOUBLE_EQ(summary["compression_ratio"].get<double>(), 768.0 / summary["total_bytes"].get<double>());
}

TEST(QuantizeCommandTest, KeyValueFlagsAndErrors) {
  const std::string dir = test::ScratchDir("quantize_errors");
  std::vector<float> k(1 * 2 * 4 * 8);
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<float>(i % 7) * 0.5f;
  ASSERT_TRUE(WriteNpy(dir + "/K.npy", std::span<const float>(k), {1, 2, 4, 8}).ok());
  const std::vector<std::int32_t> ints(64, 1);
  ASSERT_TRUE(WriteNpy(dir + "/I.npy", std::span<const std::int32_t>(ints), {1, 2, 4, 8}).ok());
  ASSERT_TRUE(WriteNpy(dir + "/K3.npy", std::span<const float>(k), {2, 4, 8}).ok());
  // Keys need no attention.
  EXPECT_EQ(RunTool("--kv-config kind=key,bits=2:8,target=0.01,q_norm=4 --in " + dir + "/K.npy --out " + dir + "/o"), 0);
  auto bits = ReadNpy(dir + "/o/bits.npy");
  ASSERT_TRUE(bits.ok());
  EXPECT_EQ(bits->shape, (std::vector<std::int64_t>{1, 2, 4}));
  // Uniform bits at token level.
  EXPECT_EQ(RunTool("--kv-config bits=3,granularity=token --in " + dir + "/K.npy --out " + dir + "/u"), 0);
  auto ubits = ReadNpy(dir + "/u/bits.npy");
  ASSERT_TRUE(ubits.ok());
  EXPECT_EQ(ubits->shape, (std::vector<std::int64_t>{4}));
  // Errors: values without --attn, bad config, missing file, wrong dtype, wrong rank, missing flag.
  EXPECT_EQ(RunTool("--kv-config kind=value --in " + dir + "/K.npy --out " + dir + "/x"), 2);
  EXPECT_EQ(RunTool("--kv-config kind=nope --in " + dir + "/K.npy --out " + dir + "/x"), 2);
  EXPECT_EQ(RunTool("--kv-config bits=4 --in " + dir + "/missing.npy --out " + dir + "/x"), 1);
  EXPECT_EQ(RunTool("--kv-config bits=4 --in " + dir + "/I.npy --out " + dir + "/x"), 2);
  EXPECT_EQ(RunTool("--kv-config bits=4 --in " + dir + "/K3.npy --out " + dir + "/x"), 2);
  EXPECT_EQ(RunTool("--kv-config bits=4 --in " + dir + "/K.npy"), 2);
}

}  // namespace
}  // namespace qaq
