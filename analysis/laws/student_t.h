// Student's t distribution: the CDF and quantile behind the t-based confidence and prediction
// intervals of the scaling-law fits. Tested against 30-digit values in tests/test_power_law.cpp.
#pragma once

namespace muspec::analysis {

/// Regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1
/// (continued fraction, relative accuracy ~1e-14).
double incomplete_beta(double a, double b, double x);

/// P(T <= t) for T ~ Student t with `dof` > 0 degrees of freedom (dof may be fractional).
double student_t_cdf(double t, double dof);

/// The p-quantile of Student t with `dof` > 0 degrees of freedom, 0 < p < 1.
/// Absolute accuracy ~1e-12 in t for p in [1e-10, 1 - 1e-10].
double student_t_quantile(double p, double dof);

}  // namespace muspec::analysis
