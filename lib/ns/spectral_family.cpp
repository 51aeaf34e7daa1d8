#include "ns/spectral_family.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "core/error.h"
#include "ns/catalog.h"
#include "ns/cost.h"
#include "ns/scalar_map.h"
#include "spectra/summary.h"

namespace muspec::ns {

namespace {

SpectralPower reduced(int num, int den) {
  const int g = std::gcd(num, den);
  return g > 0 ? SpectralPower{num / g, den / g} : SpectralPower{0, 1};
}

bool is_power_of_two(int x) { return x > 0 && (x & (x - 1)) == 0; }

// t^e by repeated squaring, in the order the matrix code multiplies (so both round alike).
double int_power(double t, int e) {
  double result = 1.0, base = t;
  bool have = false;
  while (e > 0) {
    if (e & 1) result = have ? result * base : base, have = true;
    e >>= 1;
    if (e > 0) base = base * base;
  }
  return have ? result : 1.0;
}

// Products of t^e by repeated squaring: ⌊log₂e⌋ squarings + (popcount − 1) multiplications.
int power_matmuls(int e) {
  if (e <= 1) return 0;
  int squarings = 0, bits = 0;
  for (int x = e; x > 0; x >>= 1) bits += x & 1, ++squarings;
  return squarings - 1 + bits - 1;
}

void check_spectrum(const std::vector<double>& sigma) {
  if (sigma.empty()) throw UsageError("spectral map: empty spectrum");
  double sum = 0.0;
  for (double v : sigma) {
    if (!std::isfinite(v) || v < 0.0) throw UsageError("spectral map: singular values must be finite and >= 0");
    sum += v;
  }
  if (!(sum > 0.0)) throw UsageError("spectral map: all singular values are zero");
}

// Shift and Frobenius-normalize the eigenvalues as the matrix code does: a = (λ + shift)/‖A‖_F.
// Returns ‖A‖_F; `a` receives the normalized values.
double regularize_and_normalize(const std::vector<double>& lambda, const Regularization& reg, std::vector<double>& a) {
  const double trace = std::accumulate(lambda.begin(), lambda.end(), 0.0);
  const double shift = reg.shift(trace, static_cast<int64_t>(lambda.size()));
  a.resize(lambda.size());
  double sumsq = 0.0;
  for (size_t i = 0; i < lambda.size(); ++i) a[i] = lambda[i] + shift, sumsq += a[i] * a[i];
  const double norm = std::sqrt(sumsq);
  if (!(norm > 0.0)) throw UsageError("spectral map: the regularized Gram matrix is zero");
  for (double& v : a) v /= norm;
  return norm;
}

double smallest(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

std::vector<double> squares(const std::vector<double>& sigma) {
  std::vector<double> out(sigma.size());
  for (size_t i = 0; i < sigma.size(); ++i) out[i] = sigma[i] * sigma[i];
  return out;
}

// O ↦ O·G^{-1/4}: the paper's half power (inverse square root, then the square root of that).
std::vector<double> half_power_values(const std::vector<double>& sigma, const SpectralMap& m, double* first_smallest) {
  const RootValues inv_sqrt = coupled_newton_values(squares(sigma), m.steps, m.regularization);
  const RootValues quarter = coupled_newton_values(inv_sqrt.inverse_root, m.steps, m.regularization);
  if (first_smallest) *first_smallest = inv_sqrt.smallest_normalized;
  std::vector<double> out(sigma.size());
  for (size_t i = 0; i < sigma.size(); ++i) out[i] = sigma[i] * quarter.root[i];
  return out;
}

std::vector<double> map_spectrum_detail(const SpectralMap& m, const std::vector<double>& sigma, double* first_smallest) {
  check_spectrum(sigma);
  if (first_smallest) *first_smallest = NAN;
  if (m.is_identity()) return sigma;
  std::vector<double> out(sigma.size());
  switch (m.iteration) {
    case IterationKind::NewtonSchulz: {
      double sumsq = 0.0;
      for (double v : sigma) sumsq += v * v;
      const double frob = std::sqrt(sumsq);
      for (size_t i = 0; i < sigma.size(); ++i) out[i] = sigma[i] / frob;
      map_values(m.schedule, m.steps, out.data(), out.data(), out.size(), frob);
      for (double& v : out) v = std::abs(v);  // singular values are |p(s)|
      return out;
    }
    case IterationKind::CoupledNewton: {
      if (m.power.num == 0) {  // O·G^{-1/2} = U Vᵀ from one call's inverse square root
        const RootValues r = coupled_newton_values(squares(sigma), m.steps, m.regularization);
        if (first_smallest) *first_smallest = r.smallest_normalized;
        for (size_t i = 0; i < sigma.size(); ++i) out[i] = sigma[i] * r.inverse_root[i];
        return out;
      }
      out = sigma;
      for (int k = 0; k < m.half_powers(); ++k) {
        double s = NAN;
        out = half_power_values(out, m, &s);
        if (k == 0 && first_smallest) *first_smallest = s;
      }
      return out;
    }
    case IterationKind::GuoHigham: {
      const RootValues r = guo_higham_values(squares(sigma), m.root_index(), m.steps, m.regularization);
      if (first_smallest) *first_smallest = r.smallest_normalized;
      for (size_t i = 0; i < sigma.size(); ++i) out[i] = sigma[i] * int_power(r.inverse_root[i], m.root_power());
      return out;
    }
  }
  return out;
}

}  // namespace

std::string SpectralPower::text() const {
  if (num == 0) return "0";
  if (num == den) return "1";
  return std::to_string(num) + "/" + std::to_string(den);
}

SpectralPower parse_power(const std::string& text) {
  const std::string bad = "--power '" + text + "': ";
  const size_t slash = text.find('/');
  try {
    if (slash != std::string::npos) {
      size_t u1 = 0, u2 = 0;
      const std::string a = text.substr(0, slash), b = text.substr(slash + 1);
      const int num = std::stoi(a, &u1), den = std::stoi(b, &u2);
      if (u1 != a.size() || u2 != b.size() || den <= 0 || num < 0 || num > den)
        throw UsageError(bad + "expected a fraction NUM/DEN with 0 <= NUM <= DEN");
      const SpectralPower p = reduced(num, den);
      if (p.den > kMaxPowerDenominator) throw UsageError(bad + "denominator above " + std::to_string(kMaxPowerDenominator));
      return p;
    }
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used != text.size() || !(v >= 0.0 && v <= 1.0)) throw UsageError(bad + "expected a number in [0, 1]");
    for (int den = 1; den <= kMaxPowerDenominator; ++den) {
      const double num = std::round(v * den);
      if (std::abs(num / den - v) <= 1e-9) return reduced(static_cast<int>(num), den);
    }
  } catch (const std::logic_error&) {
    throw UsageError(bad + "not a number or fraction");
  }
  throw UsageError(bad + "not a fraction with denominator <= " + std::to_string(kMaxPowerDenominator));
}

const char* iteration_name(IterationKind k) {
  switch (k) {
    case IterationKind::NewtonSchulz: return "newton-schulz";
    case IterationKind::CoupledNewton: return "coupled-newton";
    case IterationKind::GuoHigham: return "guo-higham";
  }
  return "?";
}

IterationKind parse_iteration(const std::string& s) {
  if (s == "newton-schulz" || s == "ns") return IterationKind::NewtonSchulz;
  if (s == "coupled-newton") return IterationKind::CoupledNewton;
  if (s == "guo-higham") return IterationKind::GuoHigham;
  throw UsageError("unknown --iteration '" + s + "' (expected newton-schulz, coupled-newton or guo-higham)");
}

IterationKind default_iteration(SpectralPower p) {
  if (p.num == 0) return IterationKind::NewtonSchulz;
  if (p.num == 1 && is_power_of_two(p.den)) return IterationKind::CoupledNewton;
  return IterationKind::GuoHigham;
}

int SpectralMap::half_powers() const {
  if (power.num != 1 || !is_power_of_two(power.den)) return 0;
  int k = 0;
  for (int d = power.den; d > 1; d >>= 1) ++k;
  return k;
}

int SpectralMap::root_index() const { return reduced(power.den - power.num, 2 * power.den).den; }
int SpectralMap::root_power() const { return reduced(power.den - power.num, 2 * power.den).num; }

void SpectralMap::validate() const {
  if (steps < 1) throw UsageError("spectral map: steps must be >= 1");
  if (is_identity()) return;
  if (iteration == IterationKind::NewtonSchulz) {
    if (power.num != 0)
      throw UsageError("newton-schulz computes p = 0 only (U V^T); use --iteration guo-higham for p = " + power.text());
    schedule.validate();
  }
  if (iteration == IterationKind::CoupledNewton && power.num != 0 && half_powers() == 0)
    throw UsageError("coupled-newton reaches p = 0 and p = 2^-k (1/2, 1/4, ...) only; use --iteration guo-higham for p = " +
                     power.text());
  if (!(regularization.absolute >= 0.0 && regularization.relative >= 0.0))
    throw UsageError("spectral map: the regularization must be >= 0");
}

std::string SpectralMap::describe() const {
  if (is_identity()) return "p=1 identity";
  std::string it = iteration_name(iteration);
  if (iteration == IterationKind::NewtonSchulz) it += " " + schedule.name;
  return "p=" + power.text() + " " + it + " x" + std::to_string(steps);
}

SpectralMap make_spectral_map(SpectralPower p, std::optional<IterationKind> iteration, int steps,
                              const Schedule* schedule) {
  SpectralMap m;
  m.power = p;
  m.iteration = iteration.value_or(default_iteration(p));
  m.steps = steps;
  m.schedule = schedule ? *schedule : builtin_schedule("keller");
  m.validate();
  return m;
}

std::vector<double> exact_power(const std::vector<double>& sigma, SpectralPower p) {
  std::vector<double> out(sigma.size());
  for (size_t i = 0; i < sigma.size(); ++i) out[i] = sigma[i] > 0.0 ? std::pow(sigma[i], p.value()) : 0.0;
  return out;
}

RootValues coupled_newton_values(const std::vector<double>& lambda, int steps, const Regularization& reg) {
  std::vector<double> y;
  const double norm = regularize_and_normalize(lambda, reg, y);
  RootValues r;
  r.smallest_normalized = smallest(y);
  std::vector<double> z(y.size(), 1.0);
  // Y and Z are polynomials in A, so each eigenvalue follows T = (3 − zy)/2, y ← yT, z ← Tz.
  for (int k = 0; k < steps; ++k)
    for (size_t i = 0; i < y.size(); ++i) {
      const double t = 0.5 * (3.0 - z[i] * y[i]);
      y[i] = y[i] * t;
      z[i] = t * z[i];
    }
  const double root_scale = std::sqrt(norm);
  r.root.resize(y.size());
  r.inverse_root.resize(y.size());
  for (size_t i = 0; i < y.size(); ++i) r.root[i] = root_scale * y[i], r.inverse_root[i] = z[i] / root_scale;
  return r;
}

RootValues guo_higham_values(const std::vector<double>& lambda, int q, int steps, const Regularization& reg) {
  std::vector<double> mvals;
  const double norm = regularize_and_normalize(lambda, reg, mvals);
  RootValues r;
  r.smallest_normalized = smallest(mvals);
  std::vector<double> x(mvals.size(), 1.0);
  // X_{k+1} = X_k T, M_{k+1} = T^q M_k with T = ((q+1)I − M)/q; M = X^q·A/‖A‖_F → I.
  for (int k = 0; k < steps; ++k)
    for (size_t i = 0; i < x.size(); ++i) {
      const double t = ((q + 1) - mvals[i]) / q;
      x[i] = x[i] * t;
      mvals[i] = int_power(t, q) * mvals[i];
    }
  const double scale = std::pow(norm, -1.0 / q);  // (A/‖A‖_F)^{-1/q} · ‖A‖_F^{-1/q} = A^{-1/q}
  r.inverse_root.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) r.inverse_root[i] = x[i] * scale;
  return r;
}

std::vector<double> map_spectrum(const SpectralMap& m, const std::vector<double>& sigma) {
  return map_spectrum_detail(m, sigma, nullptr);
}

double least_squares_scale(const std::vector<double>& out, const std::vector<double>& target) {
  MUSPEC_ASSERT(out.size() == target.size());
  double xt = 0.0, xx = 0.0;
  for (size_t i = 0; i < out.size(); ++i) xt += out[i] * target[i], xx += out[i] * out[i];
  return xx > 0.0 ? xt / xx : 0.0;
}

double scaled_rel_error(const std::vector<double>& out, const std::vector<double>& target) {
  double tt = 0.0;
  for (double t : target) tt += t * t;
  if (!(tt > 0.0)) return 0.0;
  const double c = least_squares_scale(out, target);
  double res = 0.0;
  for (size_t i = 0; i < out.size(); ++i) res += (c * out[i] - target[i]) * (c * out[i] - target[i]);
  return std::sqrt(res / tt);
}

double FamilyEvaluation::error_at_quantile(double q) const {
  // rel_error follows the ascending σ, so interpolating it at level q is the error at the
  // scan's q-quantile of σ.
  return rel_error.empty() ? NAN : quantile_linear(rel_error, q);
}

FamilyEvaluation evaluate_family(const SpectralMap& m, const std::vector<double>& sigma, double tolerance) {
  FamilyEvaluation e;
  e.sigma = sigma;
  std::sort(e.sigma.begin(), e.sigma.end());
  e.tolerance = tolerance;
  e.output = map_spectrum_detail(m, e.sigma, &e.smallest_normalized);
  const std::vector<double> target = exact_power(e.sigma, m.power);
  e.scale = least_squares_scale(e.output, target);
  e.rel_error.resize(e.sigma.size());
  for (size_t i = 0; i < e.sigma.size(); ++i) {
    const double out = e.output[i];
    const double err = target[i] > 0.0 ? std::abs(out / target[i] - 1.0) : (out == 0.0 ? 0.0 : INFINITY);
    e.rel_error[i] = err;
    e.max_rel_error = std::max(e.max_rel_error, err);
    e.not_converged += err > tolerance ? 1 : 0;
  }
  e.not_converged_fraction = static_cast<double>(e.not_converged) / static_cast<double>(e.sigma.size());
  e.matrix_rel_error = scaled_rel_error(e.output, target);
  return e;
}

std::optional<int> min_family_steps(SpectralMap m, const std::vector<double>& sigma, double quantile,
                                    double tolerance, int max_steps) {
  std::vector<double> sorted = sigma;
  std::sort(sorted.begin(), sorted.end());
  const double floor = quantile_linear(sorted, quantile);
  for (int k = 1; k <= max_steps; ++k) {
    m.steps = k;
    const FamilyEvaluation e = evaluate_family(m, sorted, tolerance);
    bool ok = true;
    for (size_t i = 0; i < sorted.size() && ok; ++i) ok = sorted[i] < floor || e.rel_error[i] <= tolerance;
    if (ok) return k;
  }
  return std::nullopt;
}

double newton_threshold(int steps, double tolerance) {
  auto converged = [&](double a) {
    double u = std::sqrt(a);
    for (int k = 0; k < steps; ++k) u = u * (3.0 - u * u) / 2.0;
    return 1.0 - u <= tolerance;
  };
  double lo = -300.0, hi = 0.0;  // log10 a; u is increasing in a on (0, 1], so bisect
  if (converged(1e-300)) return 1e-300;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (converged(std::pow(10.0, mid)) ? hi : lo) = mid;
  }
  return std::pow(10.0, hi);
}

int family_step_matmuls(const SpectralMap& m) {
  switch (m.iteration) {
    case IterationKind::NewtonSchulz: return step_matmuls(m.schedule.step(0));
    case IterationKind::CoupledNewton: return 3;
    case IterationKind::GuoHigham: return 2 + power_matmuls(m.root_index());
  }
  return 0;
}

FamilyCost family_cost(const SpectralMap& m, int64_t rows, int64_t cols) {
  FamilyCost c;
  if (m.is_identity()) return c;
  if (m.iteration == IterationKind::NewtonSchulz) {
    for (int k = 0; k < m.steps; ++k) c.matmuls += step_matmuls(m.schedule.step(k));
    c.flops = schedule_flops(m.schedule, m.steps, rows, cols);
    return c;
  }
  const double n = static_cast<double>(std::min(rows, cols)), big = static_cast<double>(std::max(rows, cols));
  const double gram_and_apply = 2.0 * (2.0 * big * n * n);  // OᵀO and O·R
  const double square = 2.0 * n * n * n;                     // one n×n product
  int64_t square_products = 0;
  int rounds = 1;  // Gram + root(s) + apply, repeated per half power
  if (m.iteration == IterationKind::CoupledNewton) {
    const int calls = m.power.num == 0 ? 1 : 2;
    rounds = m.power.num == 0 ? 1 : m.half_powers();
    square_products = static_cast<int64_t>(rounds) * calls * 3 * m.steps;
  } else {
    square_products = static_cast<int64_t>(m.steps) * family_step_matmuls(m) + power_matmuls(m.root_power());
  }
  c.matmuls = square_products + 2 * rounds;
  c.flops = static_cast<double>(square_products) * square + rounds * gram_and_apply;
  return c;
}

}  // namespace muspec::ns
