#include "spectra/layer_metrics.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include "core/error.h"

// Written here rather than taken from a library: Debian ships no C/C++ implementation of the
// Clauset-Shalizi-Newman fit or of WeightWatcher's MP fit; the R package poweRlaw is the
// oracle the tests compare against (tests/test_layer_metrics.cpp).

namespace muspec {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// KS distance of the power law (alpha, x[i]) against the tail x[i..m), abandoned (returning a
// value > `bound`) as soon as one point exceeds `bound`: the candidate cannot win then.
double tail_ks_distance(const std::vector<double>& log_x, size_t i, double alpha, double bound) {
  const size_t n = log_x.size() - i;
  const double inv_n = 1.0 / static_cast<double>(n);
  const double log_xmin = log_x[i];
  double d = 0.0;
  for (size_t k = 0; k < n; ++k) {
    const double model_cdf = -std::expm1((1.0 - alpha) * (log_x[i + k] - log_xmin));
    d = std::max(d, std::abs(static_cast<double>(k) * inv_n - model_cdf));
    if (d > bound) return d;
  }
  return d;
}

}  // namespace

PowerLawFit fit_power_law(const std::vector<double>& x) {
  const size_t m = x.size();
  if (m == 0 || !(x.front() > 0.0)) throw UsageError("power-law fit needs positive values");
  // Distinct values and the index of each one's first occurrence.
  std::vector<size_t> first;
  for (size_t i = 0; i < m; ++i) {
    if (i > 0 && !(x[i] >= x[i - 1])) throw UsageError("power-law fit needs ascending values");
    if (i == 0 || x[i] != x[i - 1]) first.push_back(i);
  }
  if (first.size() < 3) throw UsageError("power-law fit needs at least 3 distinct values");
  const size_t candidates = first.size() - 2;  // each leaves >= 3 distinct values in its tail

  std::vector<double> log_x(m);
  for (size_t i = 0; i < m; ++i) log_x[i] = std::log(x[i]);
  // suffix[i] = sum_{j >= i} ln x_j, in long double: alpha needs suffix[i] - n ln x_i, a
  // difference of two large nearly equal numbers when the tail is narrow.
  std::vector<long double> suffix(m + 1, 0.0L);
  for (size_t i = m; i-- > 0;) suffix[i] = suffix[i + 1] + static_cast<long double>(log_x[i]);
  auto alpha_at = [&](size_t i) {
    const long double n = static_cast<long double>(m - i);
    return static_cast<double>(1.0L + n / (suffix[i] - n * static_cast<long double>(log_x[i])));
  };

  // A coarse pass over ~64 spread candidates first gives a tight bound for the early exit;
  // ties in D go to the smaller xmin (R's which.min, numpy's argmin).
  double best_d = std::numeric_limits<double>::infinity();
  size_t best = 0;
  auto consider = [&](size_t c) {
    const size_t i = first[c];
    const double d = tail_ks_distance(log_x, i, alpha_at(i), best_d);
    if (d < best_d || (d == best_d && c < best)) best_d = d, best = c;
  };
  const size_t stride = std::max<size_t>(1, candidates / 64);
  for (size_t c = 0; c < candidates; c += stride) consider(c);
  for (size_t c = 0; c < candidates; ++c) consider(c);

  PowerLawFit fit;
  const size_t i = first[best];
  fit.xmin = x[i];
  fit.alpha = alpha_at(i);
  fit.ks_distance = best_d;
  fit.n_tail = static_cast<int64_t>(m - i);
  fit.std_error = (fit.alpha - 1.0) / std::sqrt(static_cast<double>(fit.n_tail));
  return fit;
}

namespace {

// In u = ln(x / xmin) on [0, T], the truncated power law is a truncated exponential with rate
// beta = alpha - 1: density beta e^{-beta u} / (1 - e^{-beta T}). Its mean, 1/beta - T/(e^{beta T} - 1),
// falls from T to 0 as beta runs over the reals (T/2 at beta = 0).
double truncated_mean(double beta, double t) {
  const double bt = beta * t;
  if (std::abs(bt) < 1e-5) return t / 2.0 - beta * t * t / 12.0;
  return 1.0 / beta - t / std::expm1(bt);
}

double truncated_cdf(double beta, double u, double t) {
  if (std::abs(beta * t) < 1e-12) return u / t;
  return std::expm1(-beta * u) / std::expm1(-beta * t);
}

}  // namespace

TruncatedPowerLawFit fit_truncated_power_law(const std::vector<double>& tail, double xmin, double xmax) {
  if (tail.size() < 2 || !(xmin > 0.0) || !(xmax > xmin))
    throw UsageError("truncated power-law fit needs 2 values and 0 < xmin < xmax");
  const double t = std::log(xmax / xmin);
  std::vector<double> u(tail.size());
  double mean = 0.0;
  for (size_t k = 0; k < tail.size(); ++k) {
    if (tail[k] < xmin || tail[k] > xmax) throw UsageError("truncated power-law fit: value outside [xmin, xmax]");
    u[k] = std::log(tail[k] / xmin);
    mean += u[k];
  }
  mean /= static_cast<double>(tail.size());
  // The score equation E_beta[u] = mean has one root (the mean is monotone in beta); mean = 0
  // or T (all values at one end) has none: the likelihood grows without bound.
  if (!std::isfinite(t) || !(mean > 0.0 && mean < t)) return {kNaN, kNaN};
  double lo = -1.0 / t, hi = 1.0 / t;
  while (truncated_mean(lo, t) < mean) lo *= 2.0;
  while (truncated_mean(hi, t) > mean) hi *= 2.0;
  for (int it = 0; it < 200 && hi - lo > 1e-15 * std::max(1.0, std::abs(lo)); ++it) {
    const double mid = 0.5 * (lo + hi);
    (truncated_mean(mid, t) > mean ? lo : hi) = mid;
  }
  const double beta = 0.5 * (lo + hi);
  double d = 0.0;
  const double n = static_cast<double>(tail.size());
  for (size_t k = 0; k < u.size(); ++k)
    d = std::max(d, std::abs(static_cast<double>(k) / n - truncated_cdf(beta, u[k], t)));
  return {1.0 + beta, d};
}

namespace {

constexpr int kKdePoints = 1000;        // WeightWatcher: np.linspace(0, max + 0.5, 1000)
constexpr double kKdeBandwidth = 0.1;   // WeightWatcher: bw = 0.1, sklearn kernel='linear'
constexpr double kKdeThreshold = 0.01;  // grid points with a lower density are left out

struct Density {
  std::vector<double> x, y;  // grid points with density > kKdeThreshold
  double x_mode = 0.0, x_last = 0.0;
};

// (1 / (n h)) sum_i max(0, 1 - |x - d_i| / h): sklearn's normalized linear kernel in 1-D.
Density linear_kde(const std::vector<double>& data_ascending) {
  Density out;
  const double h = kKdeBandwidth;
  const double top = data_ascending.back() + 0.5;
  const double norm = 1.0 / (static_cast<double>(data_ascending.size()) * h);
  double y_mode = -1.0;
  for (int g = 0; g < kKdePoints; ++g) {
    const double xg = top * g / (kKdePoints - 1);
    auto it = std::upper_bound(data_ascending.begin(), data_ascending.end(), xg - h);
    double sum = 0.0;
    for (; it != data_ascending.end() && *it < xg + h; ++it) sum += std::max(0.0, 1.0 - std::abs(xg - *it) / h);
    const double y = sum * norm;
    if (!(y > kKdeThreshold)) continue;
    out.x.push_back(xg), out.y.push_back(y);
    if (y > y_mode) y_mode = y, out.x_mode = xg;
    out.x_last = xg;
  }
  return out;
}

// WeightWatcher's resid_mp: squared distance of the MP (or, for square matrices, quarter-
// circle) density with scale sigma from the estimate, with a flat penalty when the MP bulk
// edge falls left of the mode or right of the data, or the lower edge right of the mode.
double mp_residual(const Density& kde, double q, double sigma) {
  double sum = 0.0;
  if (q == 1.0) {
    for (size_t k = 0; k < kde.x.size(); ++k) {
      const double x = kde.x[k];
      const double model = x <= 2.0 ? std::sqrt(4.0 - x * x) / (M_PI * sigma * sigma) : 0.0;
      sum += (model - kde.y[k]) * (model - kde.y[k]);
    }
    return sum;
  }
  const double a = std::pow(sigma * (1.0 - std::sqrt(1.0 / q)), 2.0);
  const double b = std::pow(sigma * (1.0 + std::sqrt(1.0 / q)), 2.0);
  if (b < kde.x_mode || b > kde.x_last || a > kde.x_mode) return 1e6 * static_cast<double>(kde.x.size());
  for (size_t k = 0; k < kde.x.size(); ++k) {
    const double x = kde.x[k];
    const double model = x > a && x < b ? q / (2.0 * M_PI * sigma * sigma * x) * std::sqrt((b - x) * (x - a)) : 0.0;
    sum += (model - kde.y[k]) * (model - kde.y[k]);
  }
  return sum;
}

}  // namespace

MarchenkoPasturFit fit_marchenko_pastur(const std::vector<double>& lambda, int64_t rows, int64_t cols) {
  const double n_big = static_cast<double>(std::max(rows, cols));
  const double m_small = static_cast<double>(std::min(rows, cols));
  double total = 0.0;
  for (double l : lambda) total += l;
  if (lambda.size() < 2 || !(total > 0.0) || !(m_small > 0.0))
    throw UsageError("MP fit needs at least 2 eigenvalues with a positive sum");
  const double q = n_big / m_small;
  const double scale = static_cast<double>(lambda.size()) / total;  // eigenvalues rescaled to mean 1
  std::vector<double> fit_data(lambda.size());
  for (size_t i = 0; i < lambda.size(); ++i)
    fit_data[i] = q == 1.0 ? std::sqrt(lambda[i] * scale) : lambda[i] * scale;
  const double lambda_max = lambda.back() * scale;
  const Density kde = linear_kde(fit_data);

  // WeightWatcher's grid: sigma from 0.05 s0 to 2 s0 in steps of 0.01 s0 (195 values), s0 the
  // sigma whose bulk edge is lambda_max; scipy's brute then polishes with fmin (Nelder-Mead),
  // for which a golden-section search over the neighbouring grid cells stands in here.
  const double s0 = std::sqrt(lambda_max) / (1.0 + 1.0 / std::sqrt(q));
  const double step = 0.01 * s0;
  double best_sigma = 0.05 * s0, best_r = std::numeric_limits<double>::infinity();
  for (int k = 0; k < 195; ++k) {
    const double s = 0.05 * s0 + k * step;
    const double r = mp_residual(kde, q, s);
    if (r < best_r) best_r = r, best_sigma = s;
  }
  const double phi = (std::sqrt(5.0) - 1.0) / 2.0;
  double lo = std::max(best_sigma - step, 1e-3 * step), hi = best_sigma + step;
  for (int it = 0; it < 60; ++it) {
    const double c1 = hi - phi * (hi - lo), c2 = lo + phi * (hi - lo);
    if (mp_residual(kde, q, c1) <= mp_residual(kde, q, c2))
      hi = c2;
    else
      lo = c1;
  }
  const double polished = 0.5 * (lo + hi);
  const double sigma = mp_residual(kde, q, polished) <= best_r ? polished : best_sigma;

  MarchenkoPasturFit fit;
  fit.sigma = sigma;
  const double bulk_max = std::pow(sigma * (1.0 + 1.0 / std::sqrt(q)), 2.0);
  fit.softrank = bulk_max / lambda_max;
  // WeightWatcher counts spikes above the edge plus sqrt of a Tracy-Widom-scale margin.
  const double tw = 1.0 / std::sqrt(q) * std::pow(bulk_max, 2.0 / 3.0) * std::pow(m_small, -2.0 / 3.0);
  const double cutoff = bulk_max + std::sqrt(tw);
  fit.num_spikes = 0;
  for (double l : lambda) fit.num_spikes += l * scale > cutoff ? 1 : 0;
  fit.bulk_max = bulk_max / scale;
  return fit;
}

double matrix_entropy(const std::vector<double>& sigma, int64_t rows, int64_t cols) {
  if (sigma.empty()) return kNaN;
  const double tol = sigma.back() * static_cast<double>(std::max(rows, cols)) * DBL_EPSILON;
  double rank = 0.0, total = 0.0;
  for (double s : sigma) rank += s > tol ? 1.0 : 0.0, total += s * s;
  if (rank < 2.0 || !(total > 0.0)) return kNaN;
  constexpr double kEpsilon = 1e-10;  // WeightWatcher's EPSILON, added to every p and to the rank
  double h = 0.0;
  for (double s : sigma) {
    const double p = s * s / total + kEpsilon;
    h -= p * std::log(p);
  }
  return h / std::log(rank + kEpsilon);
}

namespace {

void add_note(std::string& note, const std::string& what) { note += (note.empty() ? "" : "; ") + what; }

// log10 sum exp(alpha ln lambda) over positive lambda, without overflow for large alpha.
double log10_alpha_norm(const std::vector<double>& lambda, double alpha) {
  const double log_max = std::log(lambda.back());
  double sum = 0.0;
  for (double l : lambda)
    if (l > 0.0) sum += std::exp(alpha * (std::log(l) - log_max));
  return (alpha * log_max + std::log(sum)) / std::log(10.0);
}

}  // namespace

LayerMetrics compute_layer_metrics(const std::vector<double>& sigma, int64_t rows, int64_t cols, double floor) {
  LayerMetrics lm;
  if (sigma.empty() || !(sigma.back() > 0.0)) {
    lm.note = "all singular values are zero";
    return lm;
  }
  std::vector<double> lambda(sigma.size());
  double total = 0.0;
  for (size_t i = 0; i < sigma.size(); ++i) lambda[i] = sigma[i] * sigma[i], total += lambda[i];
  if (!std::isfinite(total)) {
    lm.note = "eigenvalues overflow double precision";
    return lm;
  }
  const double lambda_max = lambda.back();
  lm.log_norm = std::log10(total);
  lm.log_spectral_norm = std::log10(lambda_max);
  lm.matrix_entropy = matrix_entropy(sigma, rows, cols);
  if (std::isnan(lm.matrix_entropy)) add_note(lm.note, "matrix_entropy: numerical rank below 2");

  std::vector<double> fit_values;  // eigenvalues of reliable, non-zero singular values
  for (size_t i = 0; i < sigma.size(); ++i)
    if (lambda[i] > 0.0 && sigma[i] >= floor) fit_values.push_back(lambda[i]);  // sigma^2 may underflow to 0
  size_t distinct = 0;
  for (size_t i = 0; i < fit_values.size(); ++i) distinct += i == 0 || fit_values[i] != fit_values[i - 1];
  if (distinct < 3) {
    add_note(lm.note, "alpha: fewer than 3 distinct non-zero eigenvalues above the floor");
  } else {
    const PowerLawFit pl = fit_power_law(fit_values);
    lm.alpha = pl.alpha, lm.alpha_xmin = pl.xmin, lm.alpha_ks_distance = pl.ks_distance;
    lm.alpha_std_error = pl.std_error, lm.num_pl_spikes = pl.n_tail;
    lm.alpha_weighted = pl.alpha * lm.log_spectral_norm;
    lm.log_alpha_norm = log10_alpha_norm(lambda, pl.alpha);
    const std::vector<double> tail(fit_values.end() - pl.n_tail, fit_values.end());
    const TruncatedPowerLawFit tpl = fit_truncated_power_law(tail, pl.xmin, lambda_max);
    lm.alpha_truncated = tpl.alpha, lm.alpha_truncated_ks_distance = tpl.ks_distance;
  }
  if (sigma.size() < 2) {
    add_note(lm.note, "mp_softrank: a single eigenvalue");
  } else {
    const MarchenkoPasturFit mp = fit_marchenko_pastur(lambda, rows, cols);
    lm.mp_softrank = mp.softrank, lm.mp_bulk_max = mp.bulk_max, lm.num_spikes = mp.num_spikes;
  }
  return lm;
}

const std::vector<LayerMetricField>& layer_metric_fields() {
  using L = LayerMetrics;
  static const std::vector<LayerMetricField> fields = {
      {"alpha", &L::alpha, nullptr},
      {"alpha_xmin", &L::alpha_xmin, nullptr},
      {"alpha_ks_distance", &L::alpha_ks_distance, nullptr},
      {"alpha_std_error", &L::alpha_std_error, nullptr},
      {"num_pl_spikes", nullptr, &L::num_pl_spikes},
      {"alpha_weighted", &L::alpha_weighted, nullptr},
      {"log_norm", &L::log_norm, nullptr},
      {"log_spectral_norm", &L::log_spectral_norm, nullptr},
      {"log_alpha_norm", &L::log_alpha_norm, nullptr},
      {"matrix_entropy", &L::matrix_entropy, nullptr},
      {"mp_softrank", &L::mp_softrank, nullptr},
      {"mp_bulk_max", &L::mp_bulk_max, nullptr},
      {"num_spikes", nullptr, &L::num_spikes},
      {"alpha_truncated", &L::alpha_truncated, nullptr},
      {"alpha_truncated_ks_distance", &L::alpha_truncated_ks_distance, nullptr},
  };
  return fields;
}

}  // namespace muspec
