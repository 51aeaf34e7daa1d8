// Small-multiple log-log charts written as SVG: the figures `muspec plot` draws.
//
// Written here rather than taken from a library: Debian bookworm packages no C++ plotting
// library, and a chart of points, lines and bands on decade axes is a few hundred lines of
// text. The SVG opens in any browser and in Jupyter (IPython.display.SVG).
//
// Every mark carries its data coordinates in its pixel position only; each axis draws a tick
// at every decade it spans (labelled "1e-3"), so a reader (or a test) can map pixels back to
// values. Usage:
//   SvgFigure fig("Settled q0.05 vs model size", 3);  // three panels per row
//   LogLogPanel& p = fig.add_panel("q/depth:0-0.25", {1e4, 1e6}, {1e-4, 1e-2});
//   p.add_line({{2e4, 3e-3}, {3e5, 4e-4}}, "#1f77b4");
//   p.add_point({2e4, 3e-3}, "d16: 3e-3");
//   std::string svg = fig.svg();
#pragma once

#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace muspec::analysis {

/// A data point (x, y), both > 0.
struct PlotPoint {
  double x = 0, y = 0;
};

/// One panel with logarithmic x and y axes over fixed data ranges.
class LogLogPanel {
 public:
  LogLogPanel(std::string title, std::pair<double, double> x_range, std::pair<double, double> y_range);

  /// A marker, with a hover text.
  void add_point(PlotPoint p, const std::string& tooltip, const std::string& color = "#1f77b4");
  /// A vertical bar from y_lo to y_hi at x (an error bar).
  void add_error_bar(double x, double y_lo, double y_hi, const std::string& color = "#1f77b4");
  /// A polyline through the points; dashed for extrapolation.
  void add_line(const std::vector<PlotPoint>& points, const std::string& color, bool dashed = false);
  /// A filled band between lower and upper curves sampled at the same x values.
  void add_band(const std::vector<PlotPoint>& lower, const std::vector<PlotPoint>& upper, const std::string& color);
  /// A line of text under the title (e.g. the fitted exponent).
  void add_caption(const std::string& text);
  /// Labels the axes.
  void set_axis_labels(std::string x_label, std::string y_label);

  /// The panel's SVG group, drawn with its top-left corner at (left, top).
  std::string svg(double left, double top) const;

  static constexpr double kWidth = 360, kHeight = 280;

 private:
  double px(double x) const;  ///< data x -> pixel within the panel
  double py(double y) const;
  std::string path_of(const std::vector<PlotPoint>& points) const;

  std::string title_;
  std::vector<std::string> captions_;
  std::string x_label_, y_label_;
  double x_lo_, x_hi_, y_lo_, y_hi_;  ///< log10 of the ranges
  std::vector<std::string> marks_;    ///< SVG elements in panel pixel coordinates
};

/// A figure: a title and a grid of panels.
class SvgFigure {
 public:
  SvgFigure(std::string title, int panels_per_row);
  LogLogPanel& add_panel(std::string title, std::pair<double, double> x_range, std::pair<double, double> y_range);
  /// A line of text under the figure title (provenance, legend).
  void add_note(const std::string& text);
  std::string svg() const;
  size_t panel_count() const { return panels_.size(); }

 private:
  std::string title_;
  int per_row_;
  std::vector<std::string> notes_;
  std::deque<LogLogPanel> panels_;  ///< a deque: add_panel's references stay valid
};

/// Text made safe for SVG element content and attribute values.
std::string xml_escape(const std::string& text);

/// The smallest range [10^a, 10^b] of whole decades (b > a) holding every value > 0;
/// non-positive and non-finite values are ignored. {1, 10} when none is left.
std::pair<double, double> log_axis_range(const std::vector<double>& values);

}  // namespace muspec::analysis
