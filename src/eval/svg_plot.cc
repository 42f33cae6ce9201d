#include "eval/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace qaq::internal {
namespace {

// Colour-blind-friendly palette (Okabe-Ito, then Tableau tones).
constexpr const char* kColors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
                                   "#56B4E9", "#000000", "#F0E442", "#8C564B", "#7F7F7F"};
constexpr int kNumColors = int(sizeof(kColors) / sizeof(kColors[0]));

std::string Marker(int series, double x, double y, const char* color) {
  const double r = 4.5;
  switch (series % 4) {
    case 0:
      return fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{:.1f}\" fill=\"{}\"/>", x, y, r, color);
    case 1:
      return fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>",
                         x - r, y - r, 2 * r, 2 * r, color);
    case 2:
      return fmt::format("<path d=\"M{:.1f},{:.1f} L{:.1f},{:.1f} L{:.1f},{:.1f} Z\" fill=\"{}\"/>", x,
                         y - 1.2 * r, x + 1.1 * r, y + 0.8 * r, x - 1.1 * r, y + 0.8 * r, color);
    default:
      return fmt::format("<path d=\"M{:.1f},{:.1f} L{:.1f},{:.1f} L{:.1f},{:.1f} L{:.1f},{:.1f} Z\" "
                         "fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
                         x, y - 1.3 * r, x + 1.3 * r, y, x, y + 1.3 * r, x - 1.3 * r, y, color);
  }
}

struct Axis {
  double lo, hi;
  bool log;
  double pixel_lo, pixel_hi;
  double Map(double v) const {
    const double a = log ? std::log10(lo) : lo, b = log ? std::log10(hi) : hi;
    const double t = ((log ? std::log10(v) : v) - a) / (b - a);
    return pixel_lo + t * (pixel_hi - pixel_lo);
  }
};

// Padded data range of an axis; log axes snap to whole decades.
std::pair<double, double> AxisRange(double lo, double hi, bool log) {
  if (!(lo <= hi)) return log ? std::pair{1.0, 10.0} : std::pair{0.0, 1.0};
  if (log) {
    // Whole decades, with a decade more where a point would sit on the frame.
    const double la = std::log10(lo), lb = std::log10(hi);
    double a = std::pow(10.0, std::floor(la) - (la - std::floor(la) < 0.05 ? 1 : 0));
    double b = std::pow(10.0, std::ceil(lb) + (std::ceil(lb) - lb < 0.05 ? 1 : 0));
    if (a == b) b = a * 10.0;
    return {a, b};
  }
  if (lo == hi) return {lo - 1.0, hi + 1.0};
  const double pad = 0.05 * (hi - lo);
  return {lo - pad, hi + pad};
}

}  // namespace

std::string XmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> LinearTicks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return ticks;
  const double raw = (hi - lo) / std::max(1, target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= raw) break;
  }
  const double first = std::ceil(lo / step - 1e-9) * step;
  for (double v = first; v <= hi + 1e-9 * step; v += step) {
    ticks.push_back(std::abs(v) < 1e-12 * step ? 0.0 : v);
  }
  return ticks;
}

std::vector<double> LogTicks(double lo, double hi) {
  std::vector<double> ticks;
  if (!(hi > lo) || !(lo > 0)) return ticks;
  const int a = int(std::floor(std::log10(lo) + 1e-9)), b = int(std::ceil(std::log10(hi) - 1e-9));
  const bool fine = b - a < 3;
  for (int e = a; e <= b; ++e) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (m != 1.0 && !fine) continue;
      const double v = m * std::pow(10.0, e);
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push_back(v);
    }
  }
  return ticks;
}

std::string TickLabel(double v, bool log_axis) {
  if (v == 0.0) return "0";
  const double a = std::abs(v);
  if (log_axis && (a < 1e-2 || a >= 1e4)) return fmt::format("{:.0e}", v);
  if (a >= 1e4 || a < 1e-3) return fmt::format("{:.1e}", v);
  std::string s = fmt::format("{:.4f}", v);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::vector<PlotPoint> ParetoFrontier(std::vector<PlotPoint> points, bool y_higher_is_better) {
  std::erase_if(points, [](const PlotPoint& p) { return !std::isfinite(p.x) || !std::isfinite(p.y); });
  const double sign = y_higher_is_better ? -1.0 : 1.0;  // work with "lower is better"
  std::sort(points.begin(), points.end(), [&](const PlotPoint& a, const PlotPoint& b) {
    if (a.x != b.x) return a.x > b.x;
    return sign * a.y < sign * b.y;
  });
  std::vector<PlotPoint> frontier;
  double best = std::numeric_limits<double>::infinity();
  for (const PlotPoint& p : points) {
    if (sign * p.y < best) {
      frontier.push_back(p);
      best = sign * p.y;
    }
  }
  std::reverse(frontier.begin(), frontier.end());
  return frontier;
}

std::string RenderSvg(const PlotSpec& spec) {
  // The legend sits right of the plot; it widens the image (not the plot) for long names, at
  // about 7 px per character of the 12 px font.
  std::size_t longest = 0;
  for (const PlotSeries& s : spec.series) longest = std::max(longest, s.name.size());
  const double right = std::max(200.0, 44.0 + 7.0 * double(longest));
  const double w = spec.width + (right - 200.0), h = spec.height;
  const double left = 78, top = 44, bottom = 62;
  // Data ranges (log axes: y <= 0 drawn at the floor).
  auto shown_y = [&](double y) { return spec.log_y && y <= 0 ? spec.log_floor : y; };
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  bool floored = false;
  for (const PlotSeries& s : spec.series) {
    for (const PlotPoint& p : s.points) {
      if (!std::isfinite(p.x) || !std::isfinite(p.y) || (spec.log_x && p.x <= 0)) continue;
      x_lo = std::min(x_lo, p.x);
      x_hi = std::max(x_hi, p.x);
      y_lo = std::min(y_lo, shown_y(p.y));
      y_hi = std::max(y_hi, shown_y(p.y));
      floored |= spec.log_y && p.y <= 0;
    }
  }
  if (spec.threshold_y) {
    y_lo = std::min(y_lo, *spec.threshold_y);
    y_hi = std::max(y_hi, *spec.threshold_y);
  }
  const auto [xa, xb] = AxisRange(x_lo, x_hi, spec.log_x);
  const auto [ya, yb] = AxisRange(y_lo, y_hi, spec.log_y);
  const Axis ax{xa, xb, spec.log_x, left, w - right};
  const Axis ay{ya, yb, spec.log_y, h - bottom, top};

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0:.0f}\" height=\"{1}\" viewBox=\"0 0 {0:.0f} {1}\" "
      "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      w, spec.height);
  svg += fmt::format("<text x=\"{:.1f}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" "
                     "font-weight=\"bold\">{}</text>\n",
                     (left + w - right) / 2, XmlEscape(spec.title));
  // Grid, ticks and tick labels.
  const std::vector<double> xt = spec.log_x ? LogTicks(xa, xb) : LinearTicks(xa, xb);
  const std::vector<double> yt = spec.log_y ? LogTicks(ya, yb) : LinearTicks(ya, yb);
  for (double v : xt) {
    const double x = ax.Map(v);
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" "
                       "stroke=\"#e5e5e5\"/>\n<line x1=\"{0:.1f}\" y1=\"{2:.1f}\" x2=\"{0:.1f}\" "
                       "y2=\"{3:.1f}\" stroke=\"black\"/>\n<text x=\"{0:.1f}\" y=\"{4:.1f}\" "
                       "text-anchor=\"middle\">{5}</text>\n",
                       x, top, h - bottom, h - bottom + 5, h - bottom + 19,
                       XmlEscape(TickLabel(v, spec.log_x)));
  }
  for (double v : yt) {
    const double y = ay.Map(v);
    svg += fmt::format("<line x1=\"{1:.1f}\" y1=\"{0:.1f}\" x2=\"{2:.1f}\" y2=\"{0:.1f}\" "
                       "stroke=\"#e5e5e5\"/>\n<line x1=\"{3:.1f}\" y1=\"{0:.1f}\" x2=\"{1:.1f}\" "
                       "y2=\"{0:.1f}\" stroke=\"black\"/>\n<text x=\"{4:.1f}\" y=\"{5:.1f}\" "
                       "text-anchor=\"end\">{6}</text>\n",
                       y, left, w - right, left - 5, left - 8, y + 4,
                       XmlEscape(TickLabel(v, spec.log_y)));
  }
  // Axes and their labels.
  svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
                     "fill=\"none\" stroke=\"black\"/>\n",
                     left, top, w - right - left, h - bottom - top);
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"13\">{}</text>\n",
                     (left + w - right) / 2, h - 18, XmlEscape(spec.x_label));
  svg += fmt::format("<text transform=\"translate(18,{:.1f}) rotate(-90)\" text-anchor=\"middle\" "
                     "font-size=\"13\">{}</text>\n",
                     (top + h - bottom) / 2, XmlEscape(spec.y_label));
  if (spec.threshold_y) {
    const double y = ay.Map(*spec.threshold_y);
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#888\" "
                       "stroke-dasharray=\"6,4\"/>\n<text x=\"{:.1f}\" y=\"{:.1f}\" "
                       "text-anchor=\"end\" fill=\"#555\">{}</text>\n",
                       left, y, w - right, y, w - right - 4, y - 4, XmlEscape(spec.threshold_label));
  }
  // Series: frontier line, then markers.
  for (std::size_t i = 0; i < spec.series.size(); ++i) {
    const PlotSeries& s = spec.series[i];
    const char* color = kColors[i % kNumColors];
    svg += fmt::format("<g class=\"series\" data-name=\"{}\">\n", XmlEscape(s.name));
    std::vector<PlotPoint> shown;
    for (const PlotPoint& p : s.points) {
      if (!std::isfinite(p.x) || !std::isfinite(p.y) || (spec.log_x && p.x <= 0)) continue;
      shown.push_back({p.x, shown_y(p.y)});
    }
    if (s.frontier && shown.size() > 1) {
      std::string path;
      std::vector<PlotPoint> line = shown;
      if (spec.x_frontier) {
        line = ParetoFrontier(shown, spec.y_higher_is_better);
      } else {
        std::sort(line.begin(), line.end(), [](const PlotPoint& a, const PlotPoint& b) { return a.x < b.x; });
      }
      for (const PlotPoint& p : line) {
        path += fmt::format("{:.1f},{:.1f} ", ax.Map(p.x), ay.Map(p.y));
      }
      svg += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"/>\n",
                         path, color);
    }
    for (const PlotPoint& p : shown) svg += Marker(int(i), ax.Map(p.x), ay.Map(p.y), color) + "\n";
    svg += "</g>\n";
  }
  // Legend.
  double ly = top + 10;
  const double lx = w - right + 16;
  for (std::size_t i = 0; i < spec.series.size(); ++i) {
    const char* color = kColors[i % kNumColors];
    svg += Marker(int(i), lx + 6, ly, color) +
           fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", lx + 18, ly + 4,
                       XmlEscape(spec.series[i].name));
    ly += 20;
  }
  if (floored) {
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#555\" font-size=\"11\">y = 0 drawn at "
                       "{}</text>\n",
                       lx, ly + 6, XmlEscape(TickLabel(spec.log_floor, true)));
    ly += 20;
  }
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#555\" font-size=\"11\">{}</text>\n", lx,
                     ly + 6, spec.x_frontier ? "lines: frontier of each series" : "lines: each series in order");
  svg += "</svg>\n";
  return svg;
}

}  // namespace qaq::internal
