#include "report/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "report/scan_report.h"

namespace muspec::analysis {

namespace {

// Panel layout, in pixels: the plot area inside each panel.
constexpr double kAreaLeft = 64, kAreaRight = LogLogPanel::kWidth - 14;
constexpr double kAreaTop = 52, kAreaBottom = LogLogPanel::kHeight - 42;
constexpr double kFigureHeader = 30, kNoteLine = 16;

std::string num(double v) { return format_number("%.2f", v); }  // pixels

std::string decade_label(int e) { return "1e" + std::to_string(e); }

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters other than tab/newline are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') out += ' ';
        else out += c;
    }
  }
  return out;
}

std::pair<double, double> log_axis_range(const std::vector<double>& values) {
  double lo = HUGE_VAL, hi = -HUGE_VAL;
  for (const double v : values)
    if (std::isfinite(v) && v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
  if (lo > hi) return {1.0, 10.0};
  double a = std::floor(std::log10(lo)), b = std::ceil(std::log10(hi));
  if (b <= a) b = a + 1;
  return {std::pow(10.0, a), std::pow(10.0, b)};
}

LogLogPanel::LogLogPanel(std::string title, std::pair<double, double> x_range, std::pair<double, double> y_range)
    : title_(std::move(title)),
      x_lo_(std::log10(x_range.first)), x_hi_(std::log10(x_range.second)),
      y_lo_(std::log10(y_range.first)), y_hi_(std::log10(y_range.second)) {}

double LogLogPanel::px(double x) const {
  return kAreaLeft + (std::log10(x) - x_lo_) / (x_hi_ - x_lo_) * (kAreaRight - kAreaLeft);
}

double LogLogPanel::py(double y) const {
  return kAreaBottom - (std::log10(y) - y_lo_) / (y_hi_ - y_lo_) * (kAreaBottom - kAreaTop);
}

std::string LogLogPanel::path_of(const std::vector<PlotPoint>& points) const {
  std::string d;
  for (const PlotPoint& p : points) d += (d.empty() ? "M" : " L") + num(px(p.x)) + " " + num(py(p.y));
  return d;
}

void LogLogPanel::add_point(PlotPoint p, const std::string& tooltip, const std::string& color) {
  marks_.push_back("<circle class=\"point\" cx=\"" + num(px(p.x)) + "\" cy=\"" + num(py(p.y)) +
                   "\" r=\"3.5\" fill=\"" + color + "\"><title>" + xml_escape(tooltip) + "</title></circle>");
}

void LogLogPanel::add_error_bar(double x, double y_lo, double y_hi, const std::string& color) {
  marks_.push_back("<line class=\"error\" x1=\"" + num(px(x)) + "\" y1=\"" + num(py(y_lo)) + "\" x2=\"" +
                   num(px(x)) + "\" y2=\"" + num(py(y_hi)) + "\" stroke=\"" + color + "\"/>");
}

void LogLogPanel::add_line(const std::vector<PlotPoint>& points, const std::string& color, bool dashed) {
  if (points.size() < 2) return;
  marks_.push_back(std::string("<path class=\"") + (dashed ? "extrapolation" : "fit") + "\" d=\"" +
                   path_of(points) + "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"1.5\"" +
                   (dashed ? " stroke-dasharray=\"5 3\"" : "") + "/>");
}

void LogLogPanel::add_band(const std::vector<PlotPoint>& lower, const std::vector<PlotPoint>& upper,
                           const std::string& color) {
  if (lower.size() < 2 || upper.size() != lower.size()) return;
  std::vector<PlotPoint> outline(lower);
  outline.insert(outline.end(), upper.rbegin(), upper.rend());
  marks_.push_back("<path class=\"band\" d=\"" + path_of(outline) + " Z\" fill=\"" + color +
                   "\" fill-opacity=\"0.18\" stroke=\"none\"/>");
}

void LogLogPanel::add_caption(const std::string& text) { captions_.push_back(text); }

void LogLogPanel::set_axis_labels(std::string x_label, std::string y_label) {
  x_label_ = std::move(x_label);
  y_label_ = std::move(y_label);
}

std::string LogLogPanel::svg(double left, double top) const {
  std::ostringstream o;
  o << "<g class=\"panel\" transform=\"translate(" << num(left) << "," << num(top) << ")\">\n";
  o << "<text class=\"title\" x=\"" << num(kAreaLeft) << "\" y=\"16\" font-weight=\"bold\">" << xml_escape(title_)
    << "</text>\n";
  for (size_t i = 0; i < captions_.size(); ++i)
    o << "<text class=\"caption\" x=\"" << num(kAreaLeft) << "\" y=\"" << num(31 + 13 * static_cast<double>(i))
      << "\" font-size=\"11\">" << xml_escape(captions_[i]) << "</text>\n";
  o << "<rect x=\"" << num(kAreaLeft) << "\" y=\"" << num(kAreaTop) << "\" width=\"" << num(kAreaRight - kAreaLeft)
    << "\" height=\"" << num(kAreaBottom - kAreaTop) << "\" fill=\"none\" stroke=\"#999\"/>\n";
  // A grid line and a label at every decade of each axis.
  for (int e = static_cast<int>(std::lround(x_lo_)); e <= static_cast<int>(std::lround(x_hi_)); ++e) {
    const double x = px(std::pow(10.0, e));
    o << "<line class=\"xgrid\" x1=\"" << num(x) << "\" y1=\"" << num(kAreaTop) << "\" x2=\"" << num(x)
      << "\" y2=\"" << num(kAreaBottom) << "\" stroke=\"#e5e5e5\"/>"
      << "<text class=\"xtick\" x=\"" << num(x) << "\" y=\"" << num(kAreaBottom + 14)
      << "\" font-size=\"10\" text-anchor=\"middle\">" << decade_label(e) << "</text>\n";
  }
  for (int e = static_cast<int>(std::lround(y_lo_)); e <= static_cast<int>(std::lround(y_hi_)); ++e) {
    const double y = py(std::pow(10.0, e));
    o << "<line class=\"ygrid\" x1=\"" << num(kAreaLeft) << "\" y1=\"" << num(y) << "\" x2=\"" << num(kAreaRight)
      << "\" y2=\"" << num(y) << "\" stroke=\"#e5e5e5\"/>"
      << "<text class=\"ytick\" x=\"" << num(kAreaLeft - 4) << "\" y=\"" << num(y + 3)
      << "\" font-size=\"10\" text-anchor=\"end\">" << decade_label(e) << "</text>\n";
  }
  o << "<text class=\"xlabel\" x=\"" << num((kAreaLeft + kAreaRight) / 2) << "\" y=\"" << num(kHeight - 10)
    << "\" font-size=\"11\" text-anchor=\"middle\">" << xml_escape(x_label_) << "</text>\n";
  o << "<text class=\"ylabel\" transform=\"translate(14," << num((kAreaTop + kAreaBottom) / 2)
    << ") rotate(-90)\" font-size=\"11\" text-anchor=\"middle\">" << xml_escape(y_label_) << "</text>\n";
  for (const std::string& m : marks_) o << m << "\n";
  o << "</g>\n";
  return o.str();
}

SvgFigure::SvgFigure(std::string title, int panels_per_row) : title_(std::move(title)), per_row_(std::max(1, panels_per_row)) {}

LogLogPanel& SvgFigure::add_panel(std::string title, std::pair<double, double> x_range,
                                  std::pair<double, double> y_range) {
  panels_.emplace_back(std::move(title), x_range, y_range);
  return panels_.back();
}

void SvgFigure::add_note(const std::string& text) { notes_.push_back(text); }

std::string SvgFigure::svg() const {
  const size_t per_row = static_cast<size_t>(per_row_);
  const size_t columns = std::max<size_t>(1, std::min(per_row, panels_.size()));
  const size_t rows = (panels_.size() + per_row - 1) / per_row;
  const double header = kFigureHeader + kNoteLine * static_cast<double>(notes_.size()) + 6;
  const double width = LogLogPanel::kWidth * static_cast<double>(columns) + 20;
  const double height = header + LogLogPanel::kHeight * static_cast<double>(rows) + 10;
  std::ostringstream o;
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(width) << "\" height=\"" << num(height)
    << "\" viewBox=\"0 0 " << num(width) << " " << num(height) << "\" font-family=\"sans-serif\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text class=\"figure-title\" x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">" << xml_escape(title_)
    << "</text>\n";
  for (size_t i = 0; i < notes_.size(); ++i)
    o << "<text class=\"note\" x=\"10\" y=\"" << num(kFigureHeader + 12 + kNoteLine * static_cast<double>(i))
      << "\" font-size=\"11\" fill=\"#444\">" << xml_escape(notes_[i]) << "</text>\n";
  for (size_t i = 0; i < panels_.size(); ++i)
    o << panels_[i].svg(10 + LogLogPanel::kWidth * static_cast<double>(i % per_row),
                        header + LogLogPanel::kHeight * static_cast<double>(i / per_row));
  o << "</svg>\n";
  return o.str();
}

}  // namespace muspec::analysis
