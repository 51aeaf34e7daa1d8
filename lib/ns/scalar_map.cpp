#include "ns/scalar_map.h"

#include <algorithm>

namespace muspec::ns {

void map_values(const Schedule& schedule, int steps, const double* in, double* out, size_t n,
                double frobenius) {
  const double f = schedule.input_factor(frobenius);
  const std::vector<OddPoly> polys = schedule.polys_for(steps);
  // Blocks that stay in L1 while every step is applied; the inner loops vectorize.
  constexpr size_t kBlock = 2048;
  for (size_t start = 0; start < n; start += kBlock) {
    const size_t len = std::min(kBlock, n - start);
    const double* src = in + start;
    double* dst = out + start;
    for (size_t i = 0; i < len; ++i) dst[i] = src[i] * f;
    for (const OddPoly& p : polys) {
      const double a = p.a, b = p.b, c = p.c;
      for (size_t i = 0; i < len; ++i) {
        const double x = dst[i], x2 = x * x;
        dst[i] = x * (a + x2 * (b + x2 * c));
      }
    }
  }
}

std::vector<double> map_values(const Schedule& schedule, int steps, const std::vector<double>& in,
                               double frobenius) {
  std::vector<double> out(in.size());
  map_values(schedule, steps, in.data(), out.data(), in.size(), frobenius);
  return out;
}

double map_value(const Schedule& schedule, int steps, double s, double frobenius) {
  double x = s * schedule.input_factor(frobenius);
  for (int k = 0; k < steps; ++k) x = schedule.step(k)(x);
  return x;
}

Interval map_image(const Schedule& schedule, int steps, const Interval& s, double frobenius) {
  const double f = schedule.input_factor(frobenius);
  Interval x{s.lo * f, s.hi * f};
  for (int k = 0; k < steps; ++k) x = schedule.step(k).image(x);
  return x;
}

}  // namespace muspec::ns
