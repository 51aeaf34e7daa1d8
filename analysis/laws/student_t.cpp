#include "laws/student_t.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace muspec::analysis {

namespace {

/// Continued fraction of I_x(a, b) (modified Lentz evaluation); converges fast for
/// x < (a + 1) / (a + b + 2).
double beta_continued_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300, kEps = 1e-15;
  double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double result = d;
  for (int m = 1; m <= 1000; ++m) {
    // even term d_{2m}, then odd term d_{2m+1}
    for (int parity = 0; parity < 2; ++parity) {
      const double num = parity == 0 ? m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m))
                                     : -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
      d = 1.0 + num * d;
      if (std::fabs(d) < kTiny) d = kTiny;
      c = 1.0 + num / c;
      if (std::fabs(c) < kTiny) c = kTiny;
      d = 1.0 / d;
      const double delta = c * d;
      result *= delta;
      if (parity == 1 && std::fabs(delta - 1.0) < kEps) return result;
    }
  }
  return result;
}

}  // namespace

double incomplete_beta(double a, double b, double x) {
  MUSPEC_ASSERT(a > 0 && b > 0 && x >= 0 && x <= 1);
  if (x == 0.0 || x == 1.0) return x;
  const double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) +
                           b * std::log1p(-x);
  const double front = std::exp(log_front);
  if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_continued_fraction(a, b, x) / a;
  return 1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b;
}

double student_t_cdf(double t, double dof) {
  MUSPEC_ASSERT(dof > 0);
  if (std::isinf(t)) return t > 0 ? 1.0 : 0.0;
  // P(|T| > |t|) = I_{dof / (dof + t^2)}(dof / 2, 1 / 2)
  const double tail = 0.5 * incomplete_beta(0.5 * dof, 0.5, dof / (dof + t * t));
  return t >= 0 ? 1.0 - tail : tail;
}

double student_t_quantile(double p, double dof) {
  MUSPEC_ASSERT(dof > 0 && p > 0 && p < 1);
  if (p == 0.5) return 0.0;
  if (p < 0.5) return -student_t_quantile(1.0 - p, dof);
  // Bracket the root in [0, hi], then bisect on the CDF: monotone and safe for any dof.
  double lo = 0.0, hi = 1.0;
  while (student_t_cdf(hi, dof) < p) {
    lo = hi;
    hi *= 2.0;
    if (hi > 1e300) return std::numeric_limits<double>::infinity();
  }
  for (int i = 0; i < 200 && hi - lo > 1e-13 * (1.0 + hi); ++i) {
    const double mid = 0.5 * (lo + hi);
    (student_t_cdf(mid, dof) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace muspec::analysis
