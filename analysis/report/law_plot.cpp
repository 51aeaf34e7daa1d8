#include "report/law_plot.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "report/scan_report.h"
#include "laws/student_t.h"
#include "report/svg_plot.h"

namespace muspec::analysis {

namespace {

constexpr const char* kPointColor = "#1f77b4";
constexpr const char* kLineColor = "#d62728";
constexpr int kLineSamples = 48;

bool same_level(double a, double b) { return std::fabs(a - b) <= 1e-9; }

std::string scale_label(const std::string& scale, double level) {
  const std::string q = "q" + quantile_label(level);
  if (scale == "rel_frob") return q + " of σ / ‖X‖_F";
  if (scale == "rel_max") return q + " of σ / σ_max";
  return q + " of σ";
}

/// log M sampled evenly from lo to hi.
std::vector<double> log_grid(double lo, double hi) {
  std::vector<double> g(kLineSamples);
  for (int i = 0; i < kLineSamples; ++i)
    g[static_cast<size_t>(i)] = std::log(lo) + (std::log(hi) - std::log(lo)) * i / (kLineSamples - 1);
  return g;
}

/// The fitted law and its 95% confidence band (of the mean line) over a range of log M.
struct LawCurve {
  std::vector<PlotPoint> line, lower, upper;
};

LawCurve law_curve(const FittedLaw& f, double lo, double hi) {
  LawCurve c;
  const double t = f.dof > 0 ? student_t_quantile(0.975, f.dof) : 0.0;
  for (const double x : log_grid(lo, hi)) {
    const double y = f.log_a + f.beta * x;
    const double var = f.se_log_a * f.se_log_a + 2 * x * f.cov_log_a_beta + x * x * f.se_beta * f.se_beta;
    const double half = t * std::sqrt(std::max(0.0, var));
    c.line.push_back({std::exp(x), std::exp(y)});
    c.lower.push_back({std::exp(x), std::exp(y - half)});
    c.upper.push_back({std::exp(x), std::exp(y + half)});
  }
  return c;
}

std::string law_caption(const FittedLaw& f) {
  if (f.status != "ok") return "refused: " + f.reason;
  return "β = " + format_number("%.3f", f.beta) + " " + format_interval("%.3f", f.beta_ci_lo, f.beta_ci_hi) +
         ", R² = " + format_number("%.3f", f.r2) + ", " + std::to_string(f.num_runs) + " runs";
}

void draw_law(SvgFigure& fig, const FittedLaw& f, const LawPlotOptions& o) {
  const bool fitted = f.status == "ok";
  const double lo = f.params_min, hi = f.params_max;
  const double target = o.target_params;
  const double span_lo = target > 0 ? std::min(lo, target) : lo, span_hi = target > 0 ? std::max(hi, target) : hi;
  LawCurve fit, extension;
  if (fitted && hi > lo) {
    fit = law_curve(f, lo, hi);
    if (target > hi) extension = law_curve(f, hi, target);
    if (target > 0 && target < lo) extension = law_curve(f, target, lo);
  }
  std::vector<double> xs{span_lo, span_hi}, ys;
  for (const RunPoint& p : f.points) {
    xs.push_back(p.model_params);
    ys.push_back(std::exp(p.log_value - p.log_se));
    ys.push_back(std::exp(p.log_value + p.log_se));
  }
  for (const LawCurve* c : {&fit, &extension})
    for (const auto* v : {&c->lower, &c->upper})
      for (const PlotPoint& p : *v) ys.push_back(p.y);
  LogLogPanel& panel = fig.add_panel(f.group.name, log_axis_range(xs), log_axis_range(ys));
  panel.add_caption(law_caption(f));
  panel.set_axis_labels("model size M (parameters)", scale_label(f.scale, f.quantile_level));
  if (!fit.line.empty()) {
    panel.add_band(fit.lower, fit.upper, kLineColor);
    panel.add_line(fit.line, kLineColor);
  }
  if (!extension.line.empty()) {
    panel.add_band(extension.lower, extension.upper, kLineColor);
    panel.add_line(extension.line, kLineColor, true);
  }
  for (const RunPoint& p : f.points) {
    const double v = std::exp(p.log_value);
    panel.add_error_bar(p.model_params, std::exp(p.log_value - p.log_se), std::exp(p.log_value + p.log_se), kPointColor);
    panel.add_point({p.model_params, v}, p.run + ": M = " + format_number("%.4g", p.model_params) + ", q = " +
                                             format_number("%.4g", v) + ", " + std::to_string(p.matrices) + " matrices",
                    kPointColor);
  }
}

}  // namespace

std::vector<double> plotted_quantile_levels(const LawSet& laws) {
  std::set<double> levels;
  for (const FittedLaw& f : laws.laws) levels.insert(f.quantile_level);
  return {levels.begin(), levels.end()};
}

std::string laws_svg(const LawSet& laws, const LawPlotOptions& o) {
  const std::vector<double> levels = plotted_quantile_levels(laws);
  if (levels.empty()) throw UsageError(laws.path + ": holds no law to plot");
  const double level = o.quantile_level < 0 ? levels.front() : o.quantile_level;
  if (std::none_of(levels.begin(), levels.end(), [&](double l) { return same_level(l, level); })) {
    std::string have;
    for (const double l : levels) have += (have.empty() ? "" : ", ") + quantile_label(l);
    throw UsageError("--quantile " + quantile_label(level) + ": " + laws.path + " has laws at " + have);
  }
  if (o.target_params != 0 && !(o.target_params >= kMinModelParams && o.target_params <= kMaxModelParams))
    throw UsageError("--params: expected a model size in [1e3, 1e15] parameters");
  SvgFigure fig("muspec fit: settled " + quantile_label(level) + "-quantile (" + laws.kind + ") vs model size",
                o.panels_per_row);
  fig.add_note("laws: " + (laws.path.empty() ? std::string("(in memory)") : laws.path) + "   grouping: " +
               laws.grouping + "   burn-in: " + laws.burn_in + "   fit: " + laws.method);
  fig.add_note("points: each run's group mean, bars ±1 standard error; red: fitted q = a·M^β with its 95% "
               "confidence band" + std::string(o.target_params > 0 ? ", dashed: extrapolated to M = " +
                                                                       format_number("%.3g", o.target_params)
                                                                 : ""));
  for (const FittedLaw& f : laws.laws)
    if (same_level(f.quantile_level, level)) draw_law(fig, f, o);
  return fig.svg();
}

}  // namespace muspec::analysis
