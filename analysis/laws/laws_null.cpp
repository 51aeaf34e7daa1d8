#include "laws/laws_null.h"

#include <cmath>
#include <limits>
#include <map>
#include <utility>

#include "laws/student_t.h"

namespace muspec::analysis {

namespace {

constexpr double kConfidence = 0.95;
using Shape = std::pair<int64_t, int64_t>;

/// WLS slope as a linear function of y: slope = sum_i c_i y_i.
std::vector<double> slope_coefficients(const std::vector<double>& x, const std::vector<double>& w) {
  double sw = 0, swx = 0;
  for (size_t i = 0; i < x.size(); ++i) sw += w[i], swx += w[i] * x[i];
  const double xbar = swx / sw;
  double sxx = 0;
  for (size_t i = 0; i < x.size(); ++i) sxx += w[i] * (x[i] - xbar) * (x[i] - xbar);
  std::vector<double> c;
  for (size_t i = 0; i < x.size(); ++i) c.push_back(w[i] * (x[i] - xbar) / sxx);
  return c;
}

/// The null's run values, and per shape the weight with which its simulated mean enters the
/// slope (sum over runs i and members j of that shape of c_i / n_i). False with a note when a
/// member has no shape or the simulation gave no value.
bool null_run_values(const std::vector<const RunSample*>& settled, const std::vector<double>& c, double level,
                     GaussianNull& null, std::vector<double>* y0, std::map<Shape, double>* slope_weight,
                     std::map<Shape, double>* se, std::string* note) {
  for (size_t i = 0; i < settled.size(); ++i) {
    const auto& members = settled[i]->matrices;
    double sum = 0;
    for (const auto& m : members) {
      if (m.rows < 1 || m.cols < 1) {
        *note = "member " + m.parameter + " has no recorded shape";
        return false;
      }
      const NullStats s = null.stats(m.rows, m.cols, level);
      if (!s.ok) {
        *note = "the Gaussian null has no positive quantile at this level for " + std::to_string(m.rows) + "x" +
                std::to_string(m.cols);
        return false;
      }
      sum += s.mean_log;
      const Shape key{std::min(m.rows, m.cols), std::max(m.rows, m.cols)};
      (*slope_weight)[key] += c[i] / static_cast<double>(members.size());
      (*se)[key] = s.se_log;
    }
    y0->push_back(sum / static_cast<double>(members.size()));
  }
  return true;
}

}  // namespace

void compare_with_null(FittedLaw& law, const std::vector<RunSample>& runs, GaussianNull* null) {
  NullComparison& n = law.null;
  n = NullComparison{};
  if (law.status != "ok") return;
  if (!null || law.scale != null->scale()) {
    n.note = law.scale == "sigma" ? "no null on the raw sigma scale (a Gaussian's entry scale is arbitrary)"
                                  : "no null computed";
    return;
  }
  std::vector<const RunSample*> settled;
  for (const auto& r : runs)
    if (!r.matrices.empty()) settled.push_back(&r);
  if (settled.size() != law.points.size()) {  // fit_power_law keeps exactly these runs, in order
    n.note = "internal: runs and fitted points differ";
    return;
  }
  std::vector<double> x, w;
  for (const auto& p : law.points) x.push_back(std::log(p.model_params)), w.push_back(p.weight);
  const std::vector<double> c = slope_coefficients(x, w);
  std::vector<double> y0;
  std::map<Shape, double> slope_weight, se;
  if (!null_run_values(settled, c, law.quantile_level, *null, &y0, &slope_weight, &se, &n.note)) return;
  // The same weighted line as the real law (for Huber: its final weighted step).
  n.beta_null = fit_line_wls(x, y0, w).slope;
  double var_null = 0;
  for (const auto& [shape, k] : slope_weight) var_null += k * k * se[shape] * se[shape];
  n.se_beta_null = std::sqrt(var_null);
  n.diff = law.beta - n.beta_null;
  n.se_diff = std::sqrt(law.se_beta * law.se_beta + var_null);
  if (law.dof > 0) {
    const double half = student_t_quantile(0.5 + 0.5 * kConfidence, law.dof) * n.se_diff;
    n.diff_ci_lo = n.diff - half, n.diff_ci_hi = n.diff + half;
    n.differs = n.diff_ci_lo > 0 || n.diff_ci_hi < 0;
  } else {
    n.diff_ci_lo = -std::numeric_limits<double>::infinity(), n.diff_ci_hi = std::numeric_limits<double>::infinity();
    n.note = "0 degrees of freedom: no interval";
  }
  n.done = true;
  for (size_t i = 0; i < y0.size(); ++i) law.points[i].null_log_value = y0[i];
}

NullTally tally_null(const LawSet& laws) {
  NullTally t;
  for (const auto& f : laws.laws) {
    if (f.status != "ok" || !f.null.done) continue;
    ++t.compared;
    t.differ += f.null.differs;
    t.steeper += f.null.differs && f.null.diff < 0;
  }
  return t;
}

}  // namespace muspec::analysis
