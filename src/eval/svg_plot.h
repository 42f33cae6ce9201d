// Scatter plots with frontier lines as standalone SVG: quality against compression, one series
// per method, axes with ticks and labels, a legend, and an optional threshold line. Written by
// hand (no plotting dependency); the output is plain text, diffable and viewable in a browser.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qaq::internal {

struct PlotPoint {
  double x = 0.0;
  double y = 0.0;
};

struct PlotSeries {
  std::string name;
  std::vector<PlotPoint> points;
  bool frontier = true;  // join the series' Pareto frontier (max x, min y) with a line
};

struct PlotSpec {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;
  bool log_y = false;
  // Points with y <= 0 on a log axis are drawn at this floor (and said so in the legend).
  double log_floor = 1e-6;
  bool y_higher_is_better = false;  // frontier direction: false minimises y (KL), true maximises
  // true: x is a benefit (compression) and lines join each series' Pareto frontier; false: x is
  // a setting (e.g. bits) and lines join the points in order of x.
  bool x_frontier = true;
  std::optional<double> threshold_y;  // a dashed horizontal line, e.g. mean KL = 0.01
  std::string threshold_label;
  std::vector<PlotSeries> series;
  int width = 760;
  int height = 520;
};

// Tick positions covering [lo, hi]: linear steps of 1, 2 or 5 x 10^k (about `target` ticks), or
// the decades 10^k (log axes; also 2x and 5x when the range spans fewer than 3 decades).
std::vector<double> LinearTicks(double lo, double hi, int target = 6);
std::vector<double> LogTicks(double lo, double hi);
// Tick label: "0.5", "12", "1e-04".
std::string TickLabel(double v, bool log_axis);

// The Pareto frontier of the points, by increasing x: points that no other point beats in both
// larger x and better y (lower, or higher when y_higher_is_better).
std::vector<PlotPoint> ParetoFrontier(std::vector<PlotPoint> points, bool y_higher_is_better);

// The whole SVG document.
std::string RenderSvg(const PlotSpec& spec);

// XML text escaping of &, <, >, " and '.
std::string XmlEscape(const std::string& text);

}  // namespace qaq::internal
