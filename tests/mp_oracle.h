// Marchenko–Pastur quantiles by numeric integration, independent of analysis/laws_null_model:
// the test oracle for the Gaussian null. For a p x N matrix with i.i.d. N(0, 1) entries
// (p <= N, ratio lambda = p / N), the eigenvalues of X X^T / N follow, as p, N grow, the density
//   f(x) = sqrt((b - x)(x - a)) / (2 pi lambda x)  on [a, b],  a, b = (1 -+ sqrt(lambda))^2,
// and ||X||_F^2 ~ p N, so the level-q quantile of sigma / ||X||_F tends to sqrt(x_q / p).
#pragma once

#include <cmath>

namespace muspec_test {

/// CDF of the MP law at the point x(t) = a + (b - a)(1 - cos t) / 2, t in [0, pi]. The
/// substitution removes the square-root edges (and the 1/sqrt(x) pole at a = 0 when lambda = 1):
/// f dx = ((b - a) / 2)^2 sin^2 t / (2 pi lambda x(t)) dt, a smooth integrand. Simpson's rule.
inline double mp_cdf_at_t(double lambda, double t_end, int intervals = 4000) {
  const double a = std::pow(1 - std::sqrt(lambda), 2), b = std::pow(1 + std::sqrt(lambda), 2);
  const double half = (b - a) / 2, pi = std::acos(-1.0);
  auto g = [&](double t) {
    const double x = a + half * (1 - std::cos(t));
    if (x <= 0) return half / (pi * lambda);  // a = 0 (lambda = 1), t -> 0: x ~ half t^2 / 2, sin^2 t ~ t^2
    return half * half * std::sin(t) * std::sin(t) / (2 * pi * lambda * x);
  };
  const double h = t_end / intervals;
  double s = g(0) + g(t_end);
  for (int i = 1; i < intervals; ++i) s += (i % 2 ? 4 : 2) * g(i * h);
  return s * h / 3;
}

/// The level-q quantile of the MP law (eigenvalues of X X^T / N), by bisection on t.
inline double mp_eigen_quantile(double lambda, double q) {
  const double a = std::pow(1 - std::sqrt(lambda), 2), b = std::pow(1 + std::sqrt(lambda), 2);
  double lo = 0, hi = std::acos(-1.0);
  for (int it = 0; it < 60; ++it) {
    const double mid = 0.5 * (lo + hi);
    (mp_cdf_at_t(lambda, mid, 400) < q ? lo : hi) = mid;
  }
  const double t = 0.5 * (lo + hi);
  return a + (b - a) * (1 - std::cos(t)) / 2;
}

/// Asymptotic level-q quantile of sigma / ||X||_F for a rows x cols Gaussian matrix.
inline double mp_rel_frob_quantile(double rows, double cols, double q) {
  const double p = std::fmin(rows, cols), n = std::fmax(rows, cols);
  return std::sqrt(mp_eigen_quantile(p / n, q) / p);
}

}  // namespace muspec_test
