#include "ns/quality.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <stdexcept>
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

Band parse_band(const std::string& text) {
  const size_t comma = text.find(',');
  const std::string msg = "band '" + text + "': expected LO,HI with 0 < LO < HI (e.g. 0.7,1.3)";
  if (comma == std::string::npos) throw UsageError(msg);
  Band b;
  try {
    size_t used = 0;
    const std::string lo = text.substr(0, comma), hi = text.substr(comma + 1);
    b.lo = std::stod(lo, &used);
    if (used != lo.size()) throw UsageError(msg);
    b.hi = std::stod(hi, &used);
    if (used != hi.size()) throw UsageError(msg);
  } catch (const std::logic_error&) {
    throw UsageError(msg);
  }
  if (!(b.lo > 0.0 && b.lo < b.hi && std::isfinite(b.hi))) throw UsageError(msg);
  return b;
}

void check_unit_input(double x, const char* what) {
  if (!(x > 0.0 && x <= 1.0))
    throw UsageError(std::string(what) + " = " + num(x) +
                     " is outside (0, 1]: normalized singular values s = sigma/||G||_F lie in (0, 1]");
}

SpectrumQuality evaluate_spectrum(const Schedule& schedule, int steps,
                                  const std::vector<double>& sigma, const Band& band,
                                  double frobenius) {
  if (sigma.empty()) throw UsageError("empty spectrum");
  // One branch-free pass; the offending value is looked up only when there is one.
  // Four independent accumulators break the add/max latency chains.
  constexpr double kMax = std::numeric_limits<double>::max();
  double acc[4] = {0, 0, 0, 0}, mx[4] = {0, 0, 0, 0};
  bool bad = false;
  const size_t n4 = sigma.size() / 4 * 4;
  for (size_t i = 0; i < n4; i += 4) {
    for (size_t j = 0; j < 4; ++j) {
      const double v = sigma[i + j];
      bad |= !(v >= 0.0 && v <= kMax);  // negative, NaN or inf
      acc[j] += v * v;
      mx[j] = v > mx[j] ? v : mx[j];
    }
  }
  for (size_t i = n4; i < sigma.size(); ++i) {
    const double v = sigma[i];
    bad |= !(v >= 0.0 && v <= kMax);
    acc[0] += v * v;
    mx[0] = v > mx[0] ? v : mx[0];
  }
  const double sumsq = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  const double smax = std::max(std::max(mx[0], mx[1]), std::max(mx[2], mx[3]));
  if (bad)
    for (const double v : sigma)
      if (!(v >= 0.0 && v <= kMax))
        throw UsageError("singular value " + num(v) + " is negative or not finite");
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
  q.input_range = Interval{HUGE_VAL, -HUGE_VAL};
  q.output_range = Interval{HUGE_VAL, -HUGE_VAL};
  // Blocks on the stack: no allocation proportional to the spectrum (page faults dominate
  // otherwise for 10⁶ values).
  constexpr size_t kBlock = 2048;
  double s[kBlock], out[kBlock];
  double energy_in = 0.0;
  for (size_t start = 0; start < sigma.size(); start += kBlock) {
    const size_t len = std::min(kBlock, sigma.size() - start);
    for (size_t i = 0; i < len; ++i) s[i] = sigma[start + i] / frobenius;
    // map_values applies the schedule's factor F/(F(1+δ)+ε) to s = σ/F.
    map_values(schedule, steps, s, out, len, frobenius);
    // Branch-free reductions (they vectorize).
    double ilo = q.input_range.lo, ihi = q.input_range.hi, olo = q.output_range.lo, ohi = q.output_range.hi;
    double worst = q.worst_deviation, energy = 0.0;
    int64_t in = 0;
    for (size_t i = 0; i < len; ++i) {
      const double x = s[i], y = out[i], sg = sigma[start + i];
      ilo = x < ilo ? x : ilo;
      ihi = x > ihi ? x : ihi;
      olo = y < olo ? y : olo;
      ohi = y > ohi ? y : ohi;
      const double d = std::abs(y - 1.0);
      worst = d > worst ? d : worst;
      const bool inside = (y >= band.lo) & (y <= band.hi);
      in += inside;
      energy += inside ? sg * sg : 0.0;
    }
    q.input_range = Interval{ilo, ihi};
    q.output_range = Interval{olo, ohi};
    q.worst_deviation = worst;
    q.in_band += in;
    energy_in += energy;
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
