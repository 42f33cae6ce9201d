// Sweeps on the synthetic model: grid expansion, outputs, byte accounting and resuming.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "eval/svg_plot.h"
#include "eval/sweep_output.h"
#include "eval/synthetic_model.h"
#include "qaq/eval.h"

namespace qaq {
namespace {

TEST(SweepGridTest, ExpandsValueLists) {
  auto g = ParseSweepGrid(R"({"title": "t", "context": 64, "chunks": 3,
      "protocols": ["prompt", "stream"], "kl_threshold": 0.02,
      "runs": [{"series": "fp16", "args": "--kv fp16"},
               {"series": "u{k}", "label": "K{k} V{v}", "args": "--kv x:{k}/{v}",
                "values": {"v": [2, 3], "k": [8, "6"]}}]})");
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->title, "t");
  EXPECT_EQ(g->context, 64);
  EXPECT_EQ(g->n_chunks, 3);
  EXPECT_EQ(g->protocols.size(), 2u);
  EXPECT_DOUBLE_EQ(g->kl_threshold, 0.02);
  ASSERT_EQ(g->runs.size(), 5u);
  EXPECT_EQ(g->runs[0].label, "--kv fp16");  // label defaults to the args
  // Keys in alphabetical order, the first ("k") varying slowest.
  EXPECT_EQ(g->runs[1].label, "K8 V2");
  EXPECT_EQ(g->runs[1].args, "--kv x:8/2");
  EXPECT_EQ(g->runs[1].series, "u8");
  EXPECT_EQ(g->runs[2].label, "K8 V3");
  EXPECT_EQ(g->runs[3].label, "K6 V2");
  EXPECT_EQ(g->runs[4].args, "--kv x:6/3");
}

TEST(SweepGridTest, RunsMayGiveTheirXValue) {
  auto g = ParseSweepGrid(R"({"x_label": "bits", "runs": [
      {"series": "k", "args": "--kv uniform:{b}/16", "x": "{b}", "values": {"b": [2, 8]}},
      {"series": "f", "args": "--kv fp16", "x": 16}]})");
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->x_label, "bits");
  ASSERT_EQ(g->runs.size(), 3u);
  EXPECT_EQ(g->runs[0].x, 2.0);
  EXPECT_EQ(g->runs[1].x, 8.0);
  EXPECT_EQ(g->runs[2].x, 16.0);
  EXPECT_TRUE(std::isnan(ParseSweepGrid(R"({"runs": [{"series": "a", "args": "b"}]})")->runs[0].x));
  EXPECT_EQ(ParseSweepGrid(R"({"runs": [{"series": "a", "args": "b", "x": "{q}"}]})").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(SweepGridTest, RejectsMalformedGrids) {
  for (const char* bad : {"[]", "{}", R"({"runs": []})", R"({"runs": [{"args": "--kv fp16"}]})",
                          R"({"runs": [{"series": "a"}]})",
                          R"({"runs": [{"series": "a", "args": "b", "values": {"x": []}}]})",
                          R"({"runs": [{"series": "a", "args": "b"}], "protocols": ["batch"]})",
                          R"({"runs": [{"series": "a", "args": "b"}], "chunk": 3})",
                          R"({"runs": [{"series": "a", "args": "b"}], "kl_threshold": -1})"}) {
    EXPECT_EQ(ParseSweepGrid(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class SweepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = test::LoadSyntheticModel();
    ASSERT_NE(model_, nullptr);
    tokens_ = test::SyntheticTokens(4 * 32);
    dir_ = test::TempPath("sweep");
    std::filesystem::remove_all(dir_);
    grid_.title = "synthetic";
    grid_.context = 32;
    grid_.n_chunks = 3;
    grid_.protocols = {EvalProtocol::kPrompt, EvalProtocol::kStream};
    grid_.runs = {{"full", "fp32", "--kv fp32", {.kv_cache = "fp32"}},
                  {"half", "fp16", "--kv fp16", {.kv_cache = "fp16"}}};
  }
  SweepOptions Options() const {
    SweepOptions o;
    o.out_dir = dir_;
    o.model_id = "synthetic";
    o.n_threads = 2;
    o.progress = nullptr;
    return o;
  }
  std::unique_ptr<Model> model_;
  std::vector<int> tokens_;
  std::string dir_;
  SweepGrid grid_;
};

TEST_F(SweepTest, WritesEveryOutputAndCountsBytes) {
  auto r = RunSweep(*model_, tokens_, grid_, Options());
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->rows.size(), 4u);
  EXPECT_EQ(r->n_reused, 0);
  for (const char* f : {"results.csv", "results.json", "summary.md", "kl_vs_ratio_prompt.svg",
                        "kl_vs_ratio_stream.svg", "top1_vs_ratio_prompt.svg", "top1_vs_ratio_stream.svg"}) {
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/" + f)) << f;
  }
  const SweepRow& fp32 = r->rows[0];
  EXPECT_EQ(fp32.series, "full");
  EXPECT_EQ(fp32.mean_kl, 0.0);
  EXPECT_EQ(fp32.top1, 1.0);
  EXPECT_DOUBLE_EQ(fp32.compression_ratio, 0.5);
  EXPECT_DOUBLE_EQ(fp32.bits_per_value, 32.0);
  const SweepRow& fp16 = r->rows[1];
  EXPECT_GT(fp16.mean_kl, 0.0);
  EXPECT_DOUBLE_EQ(fp16.compression_ratio,
                   double(fp16.memory.fp16_reference_bytes) / double(fp16.memory.cache_bytes()));
  EXPECT_EQ(r->rows[2].protocol, EvalProtocol::kStream);
  // The CSV's ratio is the cache's own byte count: the same cache over the same chunk gives it.
  auto one = EvaluatePerplexity(*model_, tokens_, {.kv_cache = "fp16"},
                                {.context = 32, .n_chunks = 3});
  ASSERT_TRUE(one.ok());
  const std::string csv = Slurp(dir_ + "/results.csv");
  EXPECT_NE(csv.find(fmt::format(",{},", one->memory.cache_bytes())), std::string::npos) << csv;
  EXPECT_NE(csv.find("half,fp16,prompt,,--kv fp16,fp16,1,1,16,16,16,0,"), std::string::npos) << csv;
  const std::string summary = Slurp(dir_ + "/summary.md");
  EXPECT_NE(summary.find("| full | prompt | 0.50x | fp32 |"), std::string::npos) << summary;
  EXPECT_NE(summary.find("| half | stream | 1.00x | fp16 |"), std::string::npos) << summary;
}

TEST_F(SweepTest, ResumesFinishedRows) {
  auto first = RunSweep(*model_, tokens_, grid_, Options());
  ASSERT_TRUE(first.ok());
  const std::string json_before = Slurp(dir_ + "/results.json");
  auto second = RunSweep(*model_, tokens_, grid_, Options());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->n_reused, 4);
  EXPECT_EQ(Slurp(dir_ + "/results.json"), json_before);
  // A new run and a renamed label: only the new run is computed; the old rows keep their figures.
  grid_.runs[1].label = "half precision";
  grid_.runs.push_back({"half", "fp16 again", "--kv fp16 ", {.kv_cache = "fp16"}});
  auto third = RunSweep(*model_, tokens_, grid_, Options());
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->n_reused, 4);
  ASSERT_EQ(third->rows.size(), 6u);
  EXPECT_EQ(third->rows[1].label, "half precision");
  EXPECT_EQ(third->rows[1].mean_kl, first->rows[1].mean_kl);
  EXPECT_EQ(third->rows[2].mean_kl, first->rows[1].mean_kl);  // recomputed, same figures
  // Without resume every row is computed again.
  SweepOptions o = Options();
  o.resume = false;
  auto fourth = RunSweep(*model_, tokens_, grid_, o);
  ASSERT_TRUE(fourth.ok());
  EXPECT_EQ(fourth->n_reused, 0);
}

TEST_F(SweepTest, ReportsErrorsWithTheRow) {
  grid_.runs.push_back({"bad", "broken", "--kv nope", {.kv_cache = "nope"}});
  auto r = RunSweep(*model_, tokens_, grid_, Options());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("broken"), std::string::npos) << r.status().message();
  // Rows finished before the failure are on disk.
  const auto rows = internal::ReadSweepJson(Slurp(dir_ + "/results.json"));
  EXPECT_EQ(rows.size(), 2u);
  SweepOptions o = Options();
  o.out_dir = "";
  EXPECT_EQ(RunSweep(*model_, tokens_, grid_, o).status().code(), StatusCode::kInvalidArgument);
}

TEST(SweepOutputTest, JsonRoundTripsAndForeignFilesAreIgnored) {
  SweepRow r;
  r.id = "abc";
  r.series = "s,1";
  r.label = "quote \" label";
  r.args = "--kv fp16";
  r.protocol = EvalProtocol::kStream;
  r.cache_name = "fp16";
  r.compression_ratio = 1.0 / 3.0;
  r.mean_kl = 1e-7;
  r.memory.code_bytes = 123;
  r.memory.fp16_reference_bytes = 456;
  const auto rows = internal::ReadSweepJson(internal::SweepJson({}, {r}));
  ASSERT_EQ(rows.count("abc"), 1u);
  EXPECT_EQ(rows.at("abc").compression_ratio, r.compression_ratio);
  EXPECT_EQ(rows.at("abc").label, r.label);
  EXPECT_EQ(rows.at("abc").protocol, EvalProtocol::kStream);
  EXPECT_EQ(rows.at("abc").memory.code_bytes, 123u);
  r.x = 3.0;
  EXPECT_EQ(internal::ReadSweepJson(internal::SweepJson({}, {r})).at("abc").x, 3.0);
  EXPECT_TRUE(internal::ReadSweepJson("not json").empty());
  EXPECT_TRUE(internal::ReadSweepJson(R"({"format": "other", "rows": []})").empty());
  const std::string csv = internal::SweepCsv({r});
  EXPECT_NE(csv.find("\"s,1\",\"quote \"\" label\",stream"), std::string::npos) << csv;
}

TEST(SweepOutputTest, BestRatioPerSeriesHonoursTheThreshold) {
  std::vector<SweepRow> rows(4);
  rows[0].series = "a"; rows[0].compression_ratio = 2; rows[0].mean_kl = 0.001;
  rows[1].series = "a"; rows[1].compression_ratio = 4; rows[1].mean_kl = 0.009;
  rows[2].series = "a"; rows[2].compression_ratio = 6; rows[2].mean_kl = 0.02;
  rows[3].series = "b"; rows[3].compression_ratio = 3; rows[3].mean_kl = 0.5;
  const auto best = BestRatioPerSeries(rows, 0.01);
  ASSERT_EQ(best.size(), 2u);
  EXPECT_EQ(best[0].row, &rows[1]);
  EXPECT_EQ(best[1].series, "b");
  EXPECT_EQ(best[1].row, nullptr);
}

}  // namespace
}  // namespace qaq
