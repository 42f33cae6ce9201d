#include "eval/svg_plot.h"

#include <cmath>

#include <gtest/gtest.h>

namespace qaq::internal {
namespace {

TEST(SvgPlotTest, LinearTicksUseNiceSteps) {
  EXPECT_EQ(LinearTicks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(LinearTicks(0.9, 8.3, 6), (std::vector<double>{2, 4, 6, 8}));  // 7.4 / 6 -> step 2
  EXPECT_EQ(LinearTicks(0.9, 8.3, 8), (std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8}));
  const auto t = LinearTicks(-0.03, 0.12, 4);  // step 0.05
  ASSERT_EQ(t.size(), 3u);
  EXPECT_DOUBLE_EQ(t[0], 0.0);
  EXPECT_NEAR(t[2], 0.1, 1e-12);
  EXPECT_TRUE(LinearTicks(1, 1).empty());
}

TEST(SvgPlotTest, LogTicksAreDecades) {
  const auto wide = LogTicks(1e-6, 1);
  ASSERT_EQ(wide.size(), 7u);
  EXPECT_DOUBLE_EQ(wide.front(), 1e-6);
  EXPECT_DOUBLE_EQ(wide.back(), 1.0);
  // Under three decades the 2x and 5x ticks are added.
  EXPECT_EQ(LogTicks(1e-3, 1e-1).size(), 7u);
  EXPECT_TRUE(LogTicks(0, 1).empty());
}

TEST(SvgPlotTest, TickLabels) {
  EXPECT_EQ(TickLabel(0.5, false), "0.5");
  EXPECT_EQ(TickLabel(12, false), "12");
  EXPECT_EQ(TickLabel(1e-4, true), "1e-04");
  EXPECT_EQ(TickLabel(0.1, true), "0.1");
  EXPECT_EQ(TickLabel(0, false), "0");
}

TEST(SvgPlotTest, ParetoFrontierKeepsUndominatedPoints) {
  // (ratio, KL): higher ratio and lower KL are better.
  const std::vector<PlotPoint> pts = {{2, 0.001}, {3, 0.01}, {3, 0.02}, {4, 0.005}, {5, 0.1}, {1, 0.0}};
  const auto f = ParetoFrontier(pts, /*y_higher_is_better=*/false);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0].x, 1);
  EXPECT_EQ(f[1].x, 2);
  EXPECT_EQ(f[2].x, 4);  // (3, 0.01) is beaten by (4, 0.005)
  EXPECT_EQ(f[3].x, 5);
  const auto g = ParetoFrontier({{1, 99}, {2, 98}, {3, 90}, {2, 97}}, /*y_higher_is_better=*/true);
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[1].y, 98);
}

TEST(SvgPlotTest, RendersAxesLegendSeriesAndThreshold) {
  PlotSpec spec;
  spec.title = "KL <vs> ratio & more";
  spec.x_label = "compression ratio";
  spec.y_label = "mean KL";
  spec.log_y = true;
  spec.threshold_y = 0.01;
  spec.threshold_label = "mean KL = 0.01";
  spec.series = {{"uniform", {{2, 0.001}, {4, 0.05}, {8, 0.9}}, true},
                 {"qaq", {{3, 0.0}, {6, 0.008}}, true}};
  const std::string svg = RenderSvg(spec);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("KL &lt;vs&gt; ratio &amp; more"), std::string::npos);
  EXPECT_NE(svg.find(">compression ratio<"), std::string::npos);
  EXPECT_NE(svg.find(">mean KL<"), std::string::npos);
  EXPECT_NE(svg.find(">uniform<"), std::string::npos);
  EXPECT_NE(svg.find(">qaq<"), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
  EXPECT_NE(svg.find(">mean KL = 0.01<"), std::string::npos);
  EXPECT_NE(svg.find(">1e-04<"), std::string::npos);    // a decade tick of the log axis
  EXPECT_NE(svg.find("y = 0 drawn at"), std::string::npos);  // the KL 0 point is floored
  EXPECT_EQ(std::count(svg.begin(), svg.end(), '\n') > 20, true);
  // Two frontier lines.
  std::size_t lines = 0;
  for (std::size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++lines;
  EXPECT_EQ(lines, 2u);
  // With x a setting (bits), every point is on the line, in order of x.
  spec.x_frontier = false;
  const std::string settings = RenderSvg(spec);
  EXPECT_NE(settings.find("lines: each series in order"), std::string::npos);
}

TEST(SvgPlotTest, EmptyAndNonFinitePointsDoNotBreakTheDocument) {
  PlotSpec spec;
  spec.series = {{"empty", {}, true}, {"nan", {{std::nan(""), 1.0}}, true}};
  const std::string svg = RenderSvg(spec);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  // Only the series group's name and the legend mention "nan"; no coordinate does.
  std::size_t n = 0;
  for (std::size_t at = svg.find("nan"); at != std::string::npos; at = svg.find("nan", at + 1)) ++n;
  EXPECT_EQ(n, 2u);
}

}  // namespace
}  // namespace qaq::internal
