// The profile figures of the HTML report: each quantile of σ/‖X‖_F against relative depth (one
// line per op type, per run and kind, at the run's last step), and over training steps with
// the burn-in end marked (laws/burn_in.h).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "laws/burn_in.h"
#include "report/html_parts.h"
#include "report/scan_report.h"
#include "report/svg_plot.h"

namespace muspec::analysis::html {

namespace {

std::string px2(double v) { return format_number("%.2f", v); }

/// Mean of the values at each key; keys ascending.
template <class Key>
std::map<Key, double> means(const std::map<Key, std::vector<double>>& values) {
  std::map<Key, double> out;
  for (const auto& [k, v] : values) {
    double sum = 0;
    for (const double x : v) sum += x;
    out[k] = sum / static_cast<double>(v.size());
  }
  return out;
}

/// The quantile levels of the first analysed record.
std::vector<double> levels_of(const std::vector<SpectrumRecord>& records) {
  for (const SpectrumRecord& r : records)
    if (!r.sigma.empty()) {
      std::vector<double> l;
      for (const QuantileValue& q : r.summary.quantiles) l.push_back(q.q);
      return l;
    }
  return {};
}

/// A usable value of level k: analysed, positive, finite.
bool value_of(const SpectrumRecord& r, size_t k, double& v) {
  if (r.sigma.empty() || k >= r.summary.quantiles.size()) return false;
  v = r.summary.quantiles[k].rel_frob;
  return std::isfinite(v) && v > 0;
}

/// (run, kind) pairs in order of first appearance.
std::vector<std::pair<std::string, std::string>> run_kinds(const std::vector<SpectrumRecord>& records) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const SpectrumRecord& r : records) {
    const auto key = std::make_pair(r.run, r.kind);
    if (std::find(out.begin(), out.end(), key) == out.end()) out.push_back(key);
  }
  return out;
}

std::string legend(const std::set<std::string>& ops) {
  std::string o = "<p class=\"note legend\">";
  for (const auto& op : ops) o += "<span style=\"color:" + op_color(op) + "\">■ " + esc(op) + "</span> ";
  return o + "</p>";
}

std::string panel_attrs(const std::string& run, const std::string& kind, double level) {
  return "\" data-run=\"" + esc(run) + "\" data-kind=\"" + esc(kind) + "\" data-level=\"" + quantile_label(level);
}

}  // namespace

std::string op_color(const std::string& op) {
  static const std::map<std::string, std::string> colors = {
      {"q", "#1f77b4"},    {"k", "#ff7f0e"},    {"v", "#2ca02c"},   {"qkv", "#17becf"}, {"o", "#d62728"},
      {"gate", "#9467bd"}, {"up", "#8c564b"},   {"gate_up", "#bcbd22"}, {"down", "#e377c2"},
      {"embed", "#7f7f7f"}, {"head", "#000000"}, {"norm", "#aec7e8"}};
  const auto it = colors.find(op);
  return it == colors.end() ? "#555555" : it->second;
}

double LinLogPanel::px(double x) const { return kLeft + (x - x_lo) / (x_hi - x_lo) * (kRight - kLeft); }
double LinLogPanel::py(double y) const {
  const double a = std::log10(y_lo), b = std::log10(y_hi);
  return kBottom - (std::log10(y) - a) / (b - a) * (kBottom - kTop);
}

void LinLogPanel::line(const std::vector<std::pair<double, double>>& xy, const std::string& color, bool dashed) {
  if (xy.size() < 2) return;
  std::string d;
  for (const auto& [x, y] : xy) d += (d.empty() ? "M" : " L") + px2(px(x)) + " " + px2(py(y));
  marks.push_back("<path d=\"" + d + "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"1.5\"" +
                  (dashed ? " stroke-dasharray=\"5 3\"" : "") + "/>");
}

void LinLogPanel::marker(double x, double y, const std::string& color, const std::string& tooltip) {
  marks.push_back("<circle class=\"pt\" cx=\"" + px2(px(x)) + "\" cy=\"" + px2(py(y)) + "\" r=\"3\" fill=\"" + color +
                  "\"><title>" + esc(tooltip) + "</title></circle>");
}

void LinLogPanel::vline(double x, const std::string& color, const std::string& label) {
  marks.push_back("<line class=\"burn-in\" x1=\"" + px2(px(x)) + "\" x2=\"" + px2(px(x)) + "\" y1=\"" + px2(kTop) +
                  "\" y2=\"" + px2(kBottom) + "\" stroke=\"" + color + "\" stroke-dasharray=\"3 3\"><title>" +
                  esc(label) + "</title></line>");
}

void LinLogPanel::hline(double y, const std::string& color, const std::string& label) {
  marks.push_back("<line x1=\"" + px2(kLeft) + "\" x2=\"" + px2(kRight) + "\" y1=\"" + px2(py(y)) + "\" y2=\"" +
                  px2(py(y)) + "\" stroke=\"" + color + "\" stroke-dasharray=\"4 3\"><title>" + esc(label) +
                  "</title></line>");
}

std::string LinLogPanel::svg(const std::string& attrs) const {
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"panel" << attrs << "\" width=\"" << kWidth << "\" height=\""
    << kHeight << "\" font-family=\"sans-serif\"><rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    << "<text x=\"6\" y=\"16\" font-size=\"12\" font-weight=\"bold\">" << esc(title) << "</text>"
    << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << kRight - kLeft << "\" height=\"" << kBottom - kTop
    << "\" fill=\"none\" stroke=\"#999\"/>";
  const int e0 = static_cast<int>(std::lround(std::log10(y_lo))), e1 = static_cast<int>(std::lround(std::log10(y_hi)));
  for (int e = e0; e <= e1; ++e) {
    const double y = py(std::pow(10.0, e));
    o << "<line class=\"ytick\" data-label=\"1e" << e << "\" x1=\"" << kLeft << "\" x2=\"" << kRight << "\" y1=\""
      << px2(y) << "\" y2=\"" << px2(y) << "\" stroke=\"#eee\"/><text x=\"" << kLeft - 4 << "\" y=\"" << px2(y + 4)
      << "\" font-size=\"10\" text-anchor=\"end\">1e" << e << "</text>";
  }
  for (int i = 0; i <= 4; ++i) {
    const double x = x_lo + (x_hi - x_lo) * i / 4.0;
    o << "<line class=\"xtick\" data-label=\"" << format_number("%.6g", x) << "\" x1=\"" << px2(px(x)) << "\" x2=\""
      << px2(px(x)) << "\" y1=\"" << kBottom << "\" y2=\"" << kBottom + 4 << "\" stroke=\"#999\"/><text x=\""
      << px2(px(x)) << "\" y=\"" << kBottom + 15 << "\" font-size=\"10\" text-anchor=\"middle\">"
      << format_number("%.4g", x) << "</text>";
  }
  o << "<text x=\"" << (kLeft + kRight) / 2 << "\" y=\"" << kHeight - 4 << "\" font-size=\"11\" text-anchor=\"middle\">"
    << esc(x_label) << "</text>";
  for (const std::string& m : marks) o << m;
  o << "</svg>";
  return o.str();
}

std::string profiles_section(const ReportInputs& in) {
  std::ostringstream o;
  o << "<section id=\"profiles\"><h2>Profiles over depth</h2><p class=\"note\">Each panel: one quantile of "
       "σ/‖X‖_F against relative depth (layer / (layers − 1)) at the run's last step, the mean over the "
       "matrices of each op type and layer; one line per op type. A late-layer effect shows as lines bending "
       "at the right.</p>";
  const std::vector<double> levels = levels_of(in.records);
  for (const auto& [run, kind] : run_kinds(in.records)) {
    int64_t last = -1;
    for (const SpectrumRecord& r : in.records)
      if (r.run == run && r.kind == kind) last = std::max(last, r.step);
    std::set<std::string> ops;
    std::string figs;
    for (size_t k = 0; k < levels.size(); ++k) {
      std::map<std::string, std::map<double, std::vector<double>>> by_op;
      std::vector<double> all;
      for (const SpectrumRecord& r : in.records) {
        double v = 0;
        if (r.run != run || r.kind != kind || r.step != last || r.rel_depth < 0 || !value_of(r, k, v)) continue;
        by_op[r.op_type][r.rel_depth].push_back(v);
        all.push_back(v);
      }
      if (all.empty()) continue;
      LinLogPanel p;
      p.title = "q" + quantile_label(levels[k]) + " of σ/‖X‖_F";
      p.x_label = "relative depth";
      std::tie(p.y_lo, p.y_hi) = log_axis_range(all);
      for (const auto& [op, values] : by_op) {
        ops.insert(op);
        std::vector<std::pair<double, double>> xy;
        for (const auto& [x, y] : means(values)) {
          xy.push_back({x, y});
          p.marker(x, y, op_color(op), op + " at depth " + format_number("%.3g", x) + ": " + format_number("%.4g", y));
        }
        p.line(xy, op_color(op));
      }
      figs += p.svg(" profile" + panel_attrs(run, kind, levels[k]));
    }
    if (figs.empty()) continue;
    o << "<h3>run " << esc(run) << ", " << esc(kind) << ", step " << last << "</h3>" << legend(ops)
      << "<div class=\"figs\">" << figs << "</div>\n";
  }
  o << "</section>\n";
  return o.str();
}

std::string training_section(const ReportInputs& in) {
  BurnInRule rule;
  bool from_laws = false;
  if (in.laws && !in.laws->burn_in.empty()) {
    try {
      rule = parse_burn_in(in.laws->burn_in);
      from_laws = true;
    } catch (const UsageError&) {
      // a laws.json with a rule this version cannot read: the figures fall back to auto
    }
  }
  std::ostringstream o;
  o << "<section id=\"training\"><h2>Profiles over training</h2><p class=\"note\">Each panel: one quantile of "
       "σ/‖X‖_F over training steps, the mean over each op type's matrices; dashed vertical lines mark where "
       "each op type's series settles (burn-in rule <code>"
    << esc(burn_in_spec(rule)) << "</code>"
    << (from_laws ? ", from the laws file" : ", the default of muspec fit") << "; docs/scaling-laws.md).</p>";
  const std::vector<double> levels = levels_of(in.records);
  for (const auto& [run, kind] : run_kinds(in.records)) {
    std::set<int64_t> steps;
    for (const SpectrumRecord& r : in.records)
      if (r.run == run && r.kind == kind && r.step >= 0) steps.insert(r.step);
    if (steps.size() < 2) continue;
    std::set<std::string> ops;
    std::string figs;
    for (size_t k = 0; k < levels.size(); ++k) {
      std::map<std::string, std::map<int64_t, std::vector<double>>> by_op;
      std::vector<double> all;
      for (const SpectrumRecord& r : in.records) {
        double v = 0;
        if (r.run != run || r.kind != kind || r.step < 0 || !value_of(r, k, v)) continue;
        by_op[r.op_type][r.step].push_back(v);
        all.push_back(v);
      }
      if (all.empty()) continue;
      LinLogPanel p;
      p.title = "q" + quantile_label(levels[k]) + " of σ/‖X‖_F";
      p.x_label = "training step";
      p.x_lo = static_cast<double>(*steps.begin()), p.x_hi = static_cast<double>(*steps.rbegin());
      std::tie(p.y_lo, p.y_hi) = log_axis_range(all);
      for (const auto& [op, values] : by_op) {
        ops.insert(op);
        std::vector<std::pair<double, double>> xy;
        std::vector<int64_t> s;
        std::vector<double> y;
        for (const auto& [step, mean] : means(values)) {
          xy.push_back({static_cast<double>(step), mean});
          s.push_back(step), y.push_back(mean);
          p.marker(static_cast<double>(step), mean, op_color(op),
                   op + " at step " + std::to_string(step) + ": " + format_number("%.4g", mean));
        }
        p.line(xy, op_color(op));
        const SettledValue settled = settle_series(s, y, rule);
        if (settled.settled && settled.burn_in_end_step >= 0)
          p.vline(static_cast<double>(settled.burn_in_end_step), op_color(op),
                  op + " settles at step " + std::to_string(settled.burn_in_end_step));
      }
      figs += p.svg(" training" + panel_attrs(run, kind, levels[k]));
    }
    if (figs.empty()) continue;
    o << "<h3>run " << esc(run) << ", " << esc(kind) << "</h3>" << legend(ops) << "<div class=\"figs\">" << figs
      << "</div>\n";
  }
  o << "</section>\n";
  return o.str();
}

}  // namespace muspec::analysis::html
