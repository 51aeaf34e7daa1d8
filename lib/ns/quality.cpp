#include "ns/quality.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "ns/scalar_map.h"

namespace muspec::ns {

namespace {

std::string num(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

// Geometric bisection for the boundary of a monotone predicate on (0, 1]: `pred` is false
// below the boundary and true above it; pred(1) must be true. Returns the smallest x found
// with pred(x) true (within a relative 1e-15).
template <class Pred>
double boundary(Pred pred) {
  double lo = 1e-300, hi = 1.0;
  if (pred(lo)) return lo;
  for (int it = 0; it < 200 && hi / lo > 1.0 + 1e-15; ++it) {
    const double mid = (hi / lo > 4.0) ? std::sqrt(lo) * std::sqrt(hi) : 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    (pred(mid) ? hi : lo) = mid;
  }
  return hi;
}

}  // namespace

void check_unit_input(double x, const char* what) {
  if (!(x > 0.0 && x <= 1.0))
    throw UsageError(std::string(what) + " = " + num(x) +
                     " is outside (0, 1]: normalized singular values s = sigma/||G||_F lie in (0, 1]");
}

SpectrumQuality evaluate_spectrum(const Schedule& schedule, int steps,
                                  const std::vector<double>& sigma, const Band& band,
                                  double frobenius) {
  if (sigma.empty()) throw UsageError("empty spectrum");
  double sumsq = 0.0, smax = 0.0;
  for (double s : sigma) {
    if (!std::isfinite(s) || s < 0.0)
      throw UsageError("singular value " + num(s) + " is negative or not finite");
    sumsq += s * s;
    smax = std::max(smax, s);
  }
  if (std::isnan(frobenius)) frobenius = std::sqrt(sumsq);
  if (!(frobenius > 0.0) || !std::isfinite(frobenius))
    throw UsageError("the Frobenius norm must be positive and finite (all singular values zero?)");
  // A full spectrum has max σ ≤ ‖G‖_F; allow rounding in the stored norm.
  if (smax > frobenius * (1.0 + 1e-9))
    throw UsageError("largest singular value " + num(smax) + " exceeds the Frobenius norm " +
                     num(frobenius) + ": normalized input " + num(smax / frobenius) +
                     " is outside (0, 1]");

  SpectrumQuality q;
  q.count = static_cast<int64_t>(sigma.size());
  q.frobenius = frobenius;
  std::vector<double> s(sigma.size());
  for (size_t i = 0; i < sigma.size(); ++i) s[i] = sigma[i] / frobenius;
  std::vector<double> out(s.size());
  // map_values applies the schedule's factor F/(F(1+δ)+ε) to s = σ/F.
  map_values(schedule, steps, s.data(), out.data(), s.size(), frobenius);
  double energy_in = 0.0;
  q.input_range = Interval{s[0], s[0]};
  q.output_range = Interval{out[0], out[0]};
  for (size_t i = 0; i < s.size(); ++i) {
    q.input_range.lo = std::min(q.input_range.lo, s[i]);
    q.input_range.hi = std::max(q.input_range.hi, s[i]);
    q.output_range.lo = std::min(q.output_range.lo, out[i]);
    q.output_range.hi = std::max(q.output_range.hi, out[i]);
    q.worst_deviation = std::max(q.worst_deviation, std::abs(out[i] - 1.0));
    if (band.contains(out[i])) {
      ++q.in_band;
      energy_in += sigma[i] * sigma[i];
    }
  }
  q.band_fraction = static_cast<double>(q.in_band) / static_cast<double>(q.count);
  q.energy_fraction = sumsq > 0.0 ? energy_in / sumsq : 0.0;
  return q;
}

std::optional<double> threshold(const Schedule& schedule, int steps, const Band& band) {
  auto reaches = [&](double x) { return map_image(schedule, steps, Interval{0.0, x}).hi >= band.lo; };
  if (!reaches(1.0)) return std::nullopt;
  return boundary(reaches);
}

bool covers(const Schedule& schedule, int steps, double lower, const Band& band) {
  return band.contains(map_image(schedule, steps, Interval{lower, 1.0}));
}

std::optional<double> coverage_lower(const Schedule& schedule, int steps, const Band& band) {
  auto ok = [&](double x) { return covers(schedule, steps, x, band); };
  if (!ok(1.0)) return std::nullopt;
  return boundary(ok);
}

std::optional<int> min_steps(const Schedule& schedule, double lower, const Band& band,
                             int max_steps) {
  check_unit_input(lower, "lower bound");
  for (int k = 1; k <= max_steps; ++k)
    if (covers(schedule, k, lower, band)) return k;
  return std::nullopt;
}

}  // namespace muspec::ns
