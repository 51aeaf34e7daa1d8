#include "laws/power_law.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>

#include "laws/burn_in.h"
#include "core/error.h"
#include "spectra/summary.h"
#include "laws/student_t.h"

namespace muspec::analysis {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kMedianEfficiency = 1.2533;  // sd of a sample median / (sd / sqrt(n)), normal data
constexpr double kMinRelativeVariance = 0.1;  // a run's variance is floored at 0.1 x the median run's
constexpr double kConfidence = 0.95;

double weighted_r2(const std::vector<double>& y, const std::vector<double>& w, const std::vector<double>& r) {
  double sw = 0, swy = 0;
  for (size_t i = 0; i < y.size(); ++i) sw += w[i], swy += w[i] * y[i];
  const double mean = swy / sw;
  double ss_tot = 0, ss_res = 0;
  for (size_t i = 0; i < y.size(); ++i) ss_tot += w[i] * (y[i] - mean) * (y[i] - mean), ss_res += w[i] * r[i] * r[i];
  if (ss_tot > 0) return 1.0 - ss_res / ss_tot;
  return ss_res == 0 ? 1.0 : kNaN;
}

size_t distinct_count(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return static_cast<size_t>(std::unique(v.begin(), v.end()) - v.begin());
}

/// FNV-1a: a stable per-law seed offset so each law's bootstrap does not depend on fit order.
uint64_t stable_hash(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  return h;
}

/// Run points (without weights) of the runs that have settled members. A run's standard error
/// uses spreads pooled over the group's runs (matrices of a group are assumed to scatter alike
/// in every run): var_i = max(between-matrix variance, variance of a member's median over
/// steps) / n_i. Per-run spreads from 1-3 matrices would give erratic weights.
/// `member_sd` (optional) receives the pooled between-member standard deviation
/// sqrt(sum_i sum_j (y_ij - y_i)^2 / sum_i (n_i - 1)) and `member_dof` its degrees of freedom
/// sum_i (n_i - 1); both 0 when no run has two settled members.
std::vector<RunPoint> run_points(const std::vector<RunSample>& runs, double* member_sd = nullptr,
                                 int* member_dof = nullptr) {
  std::vector<RunPoint> out;
  double between_ss = 0, between_dof = 0, median_var = 0, matrices = 0;
  for (const auto& r : runs) {
    if (r.matrices.empty()) continue;
    out.push_back(aggregate_run(r));
    for (const auto& m : r.matrices) {
      between_ss += (m.log_median - out.back().log_value) * (m.log_median - out.back().log_value);
      const double sd = kMedianEfficiency * m.log_scale;
      median_var += sd * sd / static_cast<double>(m.settled_log_values.size());
      ++matrices;
    }
    between_dof += static_cast<double>(r.matrices.size() - 1);
  }
  const double between = between_dof > 0 ? between_ss / between_dof : 0.0;
  if (member_sd) *member_sd = std::sqrt(between);
  if (member_dof) *member_dof = static_cast<int>(between_dof);
  const double member_var = std::max(between, matrices > 0 ? median_var / matrices : 0.0);
  for (auto& p : out) p.log_se = std::sqrt(member_var / p.matrices);
  return out;
}

/// Sets weight = 1 / variance (floored), normalized so that mean(1 / weight) = 1.
void assign_weights(std::vector<RunPoint>& points) {
  std::vector<double> var;
  for (const auto& p : points) var.push_back(p.log_se * p.log_se);
  const double floor = kMinRelativeVariance * median_of(var);
  if (!(floor > 0)) {  // no spread information (exact data): equal weights
    for (auto& p : points) p.weight = 1.0;
    return;
  }
  double mean_var = 0;
  for (double& v : var) v = std::max(v, floor), mean_var += v / static_cast<double>(var.size());
  for (size_t i = 0; i < points.size(); ++i) points[i].weight = mean_var / var[i];
}

LineFit fit_points(const std::vector<RunPoint>& points, const PowerLawOptions& o) {
  std::vector<double> x, y, w;
  for (const auto& p : points) x.push_back(std::log(p.model_params)), y.push_back(p.log_value), w.push_back(p.weight);
  return o.robust ? fit_line_huber(x, y, w, o.huber_c) : fit_line_wls(x, y, w);
}

void copy_line(const LineFit& f, FittedLaw& law) {
  law.log_a = f.intercept;
  law.beta = f.slope;
  law.se_log_a = std::sqrt(f.var_intercept);
  law.se_beta = std::sqrt(f.var_slope);
  law.cov_log_a_beta = f.cov;
  law.residual_scale = f.residual_scale;
  law.dof = f.dof;
  law.r2 = f.r2;
  if (f.dof > 0) {
    const double t = student_t_quantile(0.5 + 0.5 * kConfidence, f.dof);
    law.beta_ci_lo = law.beta - t * law.se_beta, law.beta_ci_hi = law.beta + t * law.se_beta;
    law.log_a_ci_lo = law.log_a - t * law.se_log_a, law.log_a_ci_hi = law.log_a + t * law.se_log_a;
  } else {
    law.beta_ci_lo = law.log_a_ci_lo = -std::numeric_limits<double>::infinity();
    law.beta_ci_hi = law.log_a_ci_hi = std::numeric_limits<double>::infinity();
  }
}

/// Slope of one bootstrap replicate: matrices resampled within each run, settled steps
/// resampled within each matrix. Resampled values are spread about the run's mean by
/// sqrt(n / (n - 1)) (n matrices in the run), which removes the bootstrap's variance shrinkage
/// (factor (n - 1) / n) that would otherwise make intervals too narrow for small groups.
double bootstrap_slope(const std::vector<RunSample>& runs, const PowerLawOptions& o, std::mt19937_64& rng) {
  std::vector<RunSample> resampled;
  for (const auto& run : runs) {
    if (run.matrices.empty()) continue;
    RunSample r{run.run, run.model_params, {}, {}};
    const double n = static_cast<double>(run.matrices.size());
    const double center = aggregate_run(run).log_value, inflate = n > 1 ? std::sqrt(n / (n - 1)) : 1.0;
    std::uniform_int_distribution<size_t> pick_matrix(0, run.matrices.size() - 1);
    for (size_t i = 0; i < run.matrices.size(); ++i) {
      const auto& m = run.matrices[pick_matrix(rng)];
      MatrixSample s{m.parameter, {}, 0, 0, m.rows, m.cols};
      std::uniform_int_distribution<size_t> pick_step(0, m.settled_log_values.size() - 1);
      for (size_t k = 0; k < m.settled_log_values.size(); ++k)
        s.settled_log_values.push_back(center + inflate * (m.settled_log_values[pick_step(rng)] - center));
      s.log_median = median_of(s.settled_log_values);
      s.log_scale = robust_scale(s.settled_log_values);
      r.matrices.push_back(std::move(s));
    }
    resampled.push_back(std::move(r));
  }
  std::vector<RunPoint> points = run_points(resampled);
  assign_weights(points);
  return fit_points(points, o).slope;
}

void add_bootstrap(const std::vector<RunSample>& runs, const PowerLawOptions& o, FittedLaw& law) {
  std::mt19937_64 rng(o.seed ^ stable_hash(law.group.name + "|" + std::to_string(law.quantile_level)));
  std::vector<double> slopes;
  for (int b = 0; b < o.bootstrap; ++b) slopes.push_back(bootstrap_slope(runs, o, rng));
  std::sort(slopes.begin(), slopes.end());
  law.has_bootstrap = true;
  law.bootstrap_samples = o.bootstrap;
  law.beta_boot_lo = quantile_linear(slopes, 0.5 - 0.5 * kConfidence);
  law.beta_boot_hi = quantile_linear(slopes, 0.5 + 0.5 * kConfidence);
}

LeaveLargestOut leave_largest_out(const std::vector<RunPoint>& points, const PowerLawOptions& o) {
  LeaveLargestOut llo;
  double largest = 0;
  for (const auto& p : points) largest = std::max(largest, p.model_params);
  std::vector<RunPoint> smaller;
  double actual = 0;
  int held = 0;
  for (const auto& p : points) {
    if (p.model_params < largest) smaller.push_back(p);
    else actual += p.log_value, ++held;
  }
  std::vector<double> sizes;
  for (const auto& p : smaller) sizes.push_back(p.model_params);
  if (distinct_count(sizes) < 2) {
    llo.note = "fewer than 2 smaller model sizes";
    return llo;
  }
  assign_weights(smaller);
  FittedLaw sub;
  copy_line(fit_points(smaller, o), sub);
  llo.done = true;
  llo.held_out_params = largest;
  llo.beta = sub.beta;
  llo.actual_log = actual / held;
  llo.predicted_log = law_log_prediction(sub, largest);
  llo.error_log = llo.predicted_log - llo.actual_log;
  llo.relative_error = std::expm1(llo.error_log);
  if (sub.dof > 0) {
    const double half = student_t_quantile(0.5 + 0.5 * kConfidence, sub.dof) * law_prediction_sd(sub, largest);
    llo.within_interval = std::fabs(llo.error_log) <= half;
  } else {
    llo.note = "no interval: the smaller sizes leave 0 degrees of freedom";
  }
  return llo;
}

Eigen::Matrix2d normal_matrix(const std::vector<double>& x, const std::vector<double>& w) {
  Eigen::Matrix2d m = Eigen::Matrix2d::Zero();
  for (size_t i = 0; i < x.size(); ++i) {
    m(0, 0) += w[i];
    m(0, 1) += w[i] * x[i];
    m(1, 1) += w[i] * x[i] * x[i];
  }
  m(1, 0) = m(0, 1);
  return m;
}

}  // namespace

LineFit fit_line_wls(const std::vector<double>& x, const std::vector<double>& y, const std::vector<double>& w) {
  if (x.size() != y.size() || x.size() != w.size()) throw UsageError("fit_line_wls: x, y and w differ in length");
  if (distinct_count(x) < 2) throw UsageError("fit_line_wls: needs at least two distinct x");
  // Center x for conditioning (log M spans ~10..30), then map back.
  double sw = 0, swx = 0;
  for (size_t i = 0; i < x.size(); ++i) sw += w[i], swx += w[i] * x[i];
  const double xbar = swx / sw;
  std::vector<double> xc;
  for (double v : x) xc.push_back(v - xbar);
  const Eigen::Matrix2d n = normal_matrix(xc, w);
  Eigen::Vector2d rhs = Eigen::Vector2d::Zero();
  for (size_t i = 0; i < x.size(); ++i) rhs(0) += w[i] * y[i], rhs(1) += w[i] * xc[i] * y[i];
  const Eigen::Vector2d beta = n.ldlt().solve(rhs);
  LineFit f;
  f.slope = beta(1);
  f.intercept = beta(0) - beta(1) * xbar;
  double ss = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    f.residuals.push_back(y[i] - f.intercept - f.slope * x[i]);
    ss += w[i] * f.residuals.back() * f.residuals.back();
  }
  f.weights = w;
  f.dof = static_cast<int>(x.size()) - 2;
  f.residual_scale = f.dof > 0 ? std::sqrt(ss / f.dof) : 0.0;
  const Eigen::Matrix2d c = f.residual_scale * f.residual_scale * n.inverse();  // centered parameters
  f.var_slope = c(1, 1);
  f.var_intercept = c(0, 0) + xbar * xbar * c(1, 1) - 2 * xbar * c(0, 1);
  f.cov = c(0, 1) - xbar * c(1, 1);
  f.r2 = weighted_r2(y, w, f.residuals);
  return f;
}

LineFit fit_line_huber(const std::vector<double>& x, const std::vector<double>& y, const std::vector<double>& w,
                       double huber_c) {
  constexpr int kMaxIterations = 100;
  constexpr double kMinWeight = 1e-8;
  LineFit f = fit_line_wls(x, y, w);
  double y_span = 0;
  for (double v : y) y_span = std::max(y_span, std::fabs(v));
  for (int it = 2; it <= kMaxIterations; ++it) {
    std::vector<double> u;
    for (size_t i = 0; i < x.size(); ++i) u.push_back(std::fabs(f.residuals[i]) * std::sqrt(w[i]));
    const double scale = std::max(1.4826 * median_of(u), 1e-12 * (1.0 + y_span));
    std::vector<double> hw;
    for (size_t i = 0; i < x.size(); ++i) hw.push_back(w[i] * (u[i] > 0 ? std::max(kMinWeight, std::min(1.0, huber_c * scale / u[i])) : 1.0));
    LineFit next = fit_line_wls(x, y, hw);
    next.iterations = it;
    const bool converged = std::fabs(next.slope - f.slope) + std::fabs(next.intercept - f.intercept) < 1e-12 * (1.0 + y_span);
    f = std::move(next);
    if (converged) break;
  }
  return f;
}

RunPoint aggregate_run(const RunSample& run) {
  RunPoint p;
  p.run = run.run;
  p.model_params = run.model_params;
  p.matrices = static_cast<int>(run.matrices.size());
  p.unsettled = static_cast<int>(run.unsettled.size());
  const double n = static_cast<double>(run.matrices.size());
  double sum = 0, within = 0;
  for (const auto& m : run.matrices) {
    p.members.push_back(m.parameter);
    sum += m.log_median;
    const double sd_median = kMedianEfficiency * m.log_scale / std::sqrt(static_cast<double>(m.settled_log_values.size()));
    within += sd_median * sd_median;
  }
  p.members.insert(p.members.end(), run.unsettled.begin(), run.unsettled.end());
  p.log_value = sum / n;
  double between = 0;
  for (const auto& m : run.matrices) between += (m.log_median - p.log_value) * (m.log_median - p.log_value);
  between = n > 1 ? between / (n - 1) / n : 0.0;
  p.log_se = std::sqrt(std::max(between, within / n / n));
  return p;
}

FittedLaw fit_power_law(const GroupSelector& group, double quantile_level, const std::string& scale,
                        const std::vector<RunSample>& runs, const PowerLawOptions& options) {
  FittedLaw law;
  law.group = group;
  law.quantile_level = quantile_level;
  law.scale = scale;
  law.method = options.robust ? "huber" : "wls";
  law.points = run_points(runs, &law.member_sd, &law.member_dof);
  law.one_member_per_run = !law.points.empty();
  for (const auto& p : law.points) law.one_member_per_run = law.one_member_per_run && p.matrices == 1;
  std::vector<double> sizes;
  for (const auto& p : law.points) sizes.push_back(p.model_params);
  law.num_runs = static_cast<int>(law.points.size());
  law.num_sizes = static_cast<int>(distinct_count(sizes));
  if (!sizes.empty()) {
    law.params_min = *std::min_element(sizes.begin(), sizes.end());
    law.params_max = *std::max_element(sizes.begin(), sizes.end());
  }
  if (law.num_sizes < options.min_sizes) {
    law.status = "refused";
    if (runs.empty()) {
      law.reason = "no matrices in this group";
      return law;
    }
    law.reason = std::to_string(law.num_sizes) + " distinct model size" + (law.num_sizes == 1 ? "" : "s") +
                 " with settled values; at least " + std::to_string(options.min_sizes) + " needed";
    return law;
  }
  assign_weights(law.points);
  const LineFit f = fit_points(law.points, options);
  copy_line(f, law);
  for (size_t i = 0; i < law.points.size(); ++i) {
    law.points[i].residual = f.residuals[i];
    law.points[i].weight = f.weights[i];  // Huber: includes the down-weighting
  }
  if (options.bootstrap > 0) add_bootstrap(runs, options, law);
  law.leave_largest_out = leave_largest_out(law.points, options);
  return law;
}

}  // namespace muspec::analysis
