// Internal pieces of the HTML report (html_report.h): each returns one section of the page.
#pragma once

#include <string>
#include <vector>

#include "report/html_report.h"

namespace muspec::analysis::html {

/// Text made safe for HTML element content and attribute values (the XML escape).
std::string esc(const std::string& text);
/// A number as shown in tables: 4 significant digits; "–" for NaN, "inf" for infinity.
std::string shown(double v);
/// A number for data-v attributes and JSON: 17 significant digits; "nan" / "inf" / "-inf".
std::string exact(double v);

/// Records grouped by (run, step): indices into in.records, in order of first appearance.
struct RunStep {
  std::string run;
  int64_t step = -1;
  std::vector<size_t> records;
};
std::vector<RunStep> group_by_run_step(const std::vector<SpectrumRecord>& records);

std::string overview_section(const ReportInputs& in);
std::string tables_section(const ReportInputs& in);
/// The downsampled spectra (JSON inside a script element) that the page draws on demand.
std::string spectra_data(const ReportInputs& in);
std::string profiles_section(const ReportInputs& in);
std::string training_section(const ReportInputs& in);
std::string laws_section(const ReportInputs& in);
std::string config_section(const ReportInputs& in);

/// A panel with a linear x axis and a log10 y axis, drawn as one <svg> element.
struct LinLogPanel {
  std::string title, x_label, y_label;
  double x_lo = 0, x_hi = 1;        ///< linear x range
  double y_lo = 1e-3, y_hi = 1;     ///< y range (powers of ten)
  std::vector<std::string> marks;   ///< SVG elements, in pixel coordinates

  static constexpr double kWidth = 330, kHeight = 240;
  static constexpr double kLeft = 58, kRight = kWidth - 12, kTop = 30, kBottom = kHeight - 36;
  double px(double x) const;
  double py(double y) const;
  void line(const std::vector<std::pair<double, double>>& xy, const std::string& color, bool dashed = false);
  void marker(double x, double y, const std::string& color, const std::string& tooltip);
  void vline(double x, const std::string& color, const std::string& label);
  void hline(double y, const std::string& color, const std::string& label);
  std::string svg(const std::string& css_class) const;
};

/// A stable color per op type.
std::string op_color(const std::string& op_type);

}  // namespace muspec::analysis::html
