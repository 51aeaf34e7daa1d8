#include "spectra/summary.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace muspec {

const std::vector<double>& default_quantiles() {
  static const std::vector<double> q = {0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.99};
  return q;
}

double quantile_linear(const std::vector<double>& x, double q) {
  if (x.empty()) throw UsageError("quantile of an empty spectrum");
  if (!(q >= 0.0 && q <= 1.0)) throw UsageError("quantile level " + std::to_string(q) + " is outside [0, 1]");
  const double h = static_cast<double>(x.size() - 1) * q;
  const auto lo = static_cast<size_t>(std::floor(h));
  if (lo + 1 >= x.size()) return x.back();
  return x[lo] + (h - static_cast<double>(lo)) * (x[lo + 1] - x[lo]);
}

namespace {
double safe_ratio(double num, double den) {
  if (den > 0.0) return num / den;
  return num > 0.0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
}
}  // namespace

SpectralSummary summarize_spectrum(const std::vector<double>& sigma, double frobenius, double floor,
                                   const std::vector<double>& levels) {
  if (sigma.empty()) throw UsageError("summary of an empty spectrum");
  SpectralSummary s;
  s.sigma_max = sigma.back();
  s.sigma_min = sigma.front();
  s.frobenius = frobenius;
  for (double v : sigma) s.nuclear += v;
  s.cond = safe_ratio(s.sigma_max, s.sigma_min);
  s.stable_rank = safe_ratio(frobenius * frobenius, s.sigma_max * s.sigma_max);
  double entropy = 0.0;
  if (s.nuclear > 0.0) {
    for (double v : sigma) {
      const double p = v / s.nuclear;
      if (p > 0.0) entropy -= p * std::log(p);
    }
    s.effective_rank = std::exp(entropy);
  }
  for (double v : sigma) s.below_floor += v < floor ? 1 : 0;
  for (double q : levels) {
    QuantileValue qv;
    qv.q = q;
    qv.sigma = quantile_linear(sigma, q);
    qv.rel_max = safe_ratio(qv.sigma, s.sigma_max);
    qv.rel_frob = safe_ratio(qv.sigma, frobenius);
    qv.cond = safe_ratio(s.sigma_max, qv.sigma);
    s.quantiles.push_back(qv);
  }
  return s;
}

}  // namespace muspec
