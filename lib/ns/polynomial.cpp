#include "ns/polynomial.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace muspec::ns {

OddPoly OddPoly::input_scaled(double f) const {
  const double f2 = f * f;
  return OddPoly{a / f, b / (f2 * f), c / (f2 * f2 * f)};
}

OddPoly OddPoly::output_scaled(double f) const { return OddPoly{a * f, b * f, c * f}; }

std::vector<double> OddPoly::positive_critical_points() const {
  // p'(x) = 0  <=>  5c·t² + 3b·t + a = 0 with t = x².
  std::vector<double> t;
  if (c == 0.0) {
    if (b != 0.0) t.push_back(-a / (3.0 * b));
  } else {
    const double disc = 9.0 * b * b - 20.0 * a * c;
    if (disc >= 0.0) {
      // Numerically stable quadratic roots (no cancellation).
      const double q = -0.5 * (3.0 * b + std::copysign(std::sqrt(disc), b));
      if (q != 0.0) {
        t.push_back(q / (5.0 * c));
        t.push_back(a / q);
      }
    }
  }
  std::vector<double> x;
  for (double ti : t)
    if (ti > 0.0 && std::isfinite(ti)) x.push_back(std::sqrt(ti));
  std::sort(x.begin(), x.end());
  x.erase(std::unique(x.begin(), x.end()), x.end());
  return x;
}

Interval OddPoly::image(const Interval& x) const {
  double lo = (*this)(x.lo), hi = lo;
  auto take = [&](double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  };
  take((*this)(x.hi));
  for (double cp : positive_critical_points()) {
    for (double s : {cp, -cp})
      if (s > x.lo && s < x.hi) take((*this)(s));
  }
  return Interval{lo, hi};
}

double compose(const std::vector<OddPoly>& polys, double x) {
  for (const OddPoly& p : polys) x = p(x);
  return x;
}

Interval compose_image(const std::vector<OddPoly>& polys, const Interval& x) {
  Interval y = x;
  for (const OddPoly& p : polys) y = p.image(y);
  return y;
}

std::string to_string(const OddPoly& p) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%.17g, %.17g, %.17g", p.a, p.b, p.c);
  return buf;
}

}  // namespace muspec::ns
