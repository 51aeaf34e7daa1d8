#include "ns/design.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "core/error.h"

namespace muspec::ns {

namespace {

constexpr int kMaxExchanges = 100;
constexpr double kNearConvergence = 1.0 - 5e-6;  // reference §5.3

std::string num(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

// True maximum of |p(x) − 1| on [l, u]: at the end points or at an interior critical point.
double max_error(const OddPoly& p, double l, double u) {
  double m = std::max(std::abs(p(l) - 1.0), std::abs(p(u) - 1.0));
  for (double x : p.positive_critical_points())
    if (x > l && x < u) m = std::max(m, std::abs(p(x) - 1.0));
  return m;
}

// Round-off level of evaluating p − 1 on [0, u].
double eval_noise(const OddPoly& p, double u) {
  const double u2 = u * u;
  return 64.0 * std::numeric_limits<double>::epsilon() *
         (1.0 + std::abs(p.a) * u + std::abs(p.b) * u2 * u + std::abs(p.c) * u2 * u2 * u);
}

void finish(MinimaxPoly& m, double l, double u, double levelled_e) {
  const double err = max_error(m.poly, l, u);
  m.converged = std::isfinite(err) && err <= std::abs(levelled_e) * (1.0 + 1e-9) + eval_noise(m.poly, u);
  m.error = std::isfinite(err) ? err : std::numeric_limits<double>::max();
}

MinimaxPoly remez_quintic(double l, double u) {
  // The 4×4 solves run in long double: on the narrow intervals of late steps the system is
  // ill-conditioned (~1/width³), and extended precision keeps the coefficients stable.
  using R = long double;
  MinimaxPoly m;
  R q = (3.0L * l + u) / 4.0L, r = (l + 3.0L * u) / 4.0L;
  R e = 0.0L, old_e = HUGE_VALL;
  OddPoly best;
  std::vector<double> pts;
  for (int it = 0; it < kMaxExchanges; ++it) {
    const R x[4] = {R(l), q, r, R(u)};
    Eigen::Matrix<R, 4, 4> a;
    for (int i = 0; i < 4; ++i) {
      const R x2 = x[i] * x[i];
      a(i, 0) = x[i];
      a(i, 1) = x[i] * x2;
      a(i, 2) = x[i] * x2 * x2;
      a(i, 3) = (i % 2 == 0) ? 1.0L : -1.0L;  // p(l) = 1 − E, p(q) = 1 + E, p(r) = 1 − E, p(u) = 1 + E
    }
    const Eigen::Matrix<R, 4, 1> sol = a.partialPivLu().solve(Eigen::Matrix<R, 4, 1>::Ones());
    if (!sol.allFinite()) break;
    best = OddPoly{double(sol(0)), double(sol(1)), double(sol(2))};
    pts = {double(x[0]), double(x[1]), double(x[2]), double(x[3])};
    e = sol(3);
    m.iterations = it + 1;
    if (std::abs(old_e - e) <= 1e-15L) break;
    old_e = e;
    // Exchange: the interior extrema are the positive roots of p' = a + 3b t + 5c t², t = x².
    const R A = sol(0), B = sol(1), C = sol(2);
    const R disc = 9.0L * B * B - 20.0L * A * C;
    if (!(disc >= 0.0L) || C == 0.0L) break;
    const R qq = -0.5L * (3.0L * B + std::copysign(std::sqrt(disc), B));
    R t1 = qq / (5.0L * C), t2 = A / qq;
    if (t1 > t2) std::swap(t1, t2);
    if (!(t1 > 0.0L)) break;
    const R nq = std::sqrt(t1), nr = std::sqrt(t2);
    if (!(l < nq && nq < nr && nr < u)) break;
    q = nq;
    r = nr;
  }
  m.poly = best;
  m.points = pts;
  finish(m, l, u, double(e));
  return m;
}

MinimaxPoly remez_cubic(double l, double u) {
  using R = long double;  // as remez_quintic
  MinimaxPoly m;
  R q = 0.5L * (R(l) + R(u));
  R e = 0.0L, old_e = HUGE_VALL;
  OddPoly best;
  std::vector<double> pts;
  for (int it = 0; it < kMaxExchanges; ++it) {
    const R x[3] = {R(l), q, R(u)};
    Eigen::Matrix<R, 3, 3> a;
    for (int i = 0; i < 3; ++i) {
      a(i, 0) = x[i];
      a(i, 1) = x[i] * x[i] * x[i];
      a(i, 2) = (i % 2 == 0) ? 1.0L : -1.0L;  // p(l) = 1 − E, p(q) = 1 + E, p(u) = 1 − E
    }
    const Eigen::Matrix<R, 3, 1> sol = a.partialPivLu().solve(Eigen::Matrix<R, 3, 1>::Ones());
    if (!sol.allFinite()) break;
    best = OddPoly{double(sol(0)), double(sol(1)), 0.0};
    pts = {double(x[0]), double(x[1]), double(x[2])};
    e = sol(2);
    m.iterations = it + 1;
    if (std::abs(old_e - e) <= 1e-15L) break;
    old_e = e;
    // Exchange: the interior extremum is the positive root of p' = a + 3b x².
    const R t = -sol(0) / (3.0L * sol(1));
    if (!(t > 0.0L)) break;
    const R nq = std::sqrt(t);
    if (!(l < nq && nq < u)) break;
    q = nq;
  }
  m.poly = best;
  m.points = pts;
  finish(m, l, u, double(e));
  return m;
}

}  // namespace

OddPoly optimal_cubic(double l, double u) {
  const double alpha = std::sqrt(3.0 / (u * u + l * u + l * l));
  const double alpha3 = alpha * alpha * alpha;
  const double beta = 4.0 / (2.0 + l * u * (l + u) * alpha3);
  return OddPoly{1.5 * alpha * beta, -0.5 * alpha3 * beta, 0.0};
}

MinimaxPoly minimax_odd(double l, double u, int degree) {
  if (degree != 3 && degree != 5)
    throw UsageError("polynomial degree must be 3 or 5 (got " + std::to_string(degree) + ")");
  if (!(l > 0.0 && l < u && std::isfinite(u)))
    throw UsageError("minimax interval needs 0 < l < u (got l = " + num(l) + ", u = " + num(u) + ")");
  if (l / u >= kNearConvergence) {
    MinimaxPoly m;
    m.closed_form = true;
    if (degree == 5) {
      m.poly = OddPoly{1.875, -1.25, 0.375}.input_scaled(u);
    } else {
      m.poly = optimal_cubic(l, u);
    }
    m.points = {l, u};
    m.error = max_error(m.poly, l, u);
    m.converged = true;
    return m;
  }
  return degree == 5 ? remez_quintic(l, u) : remez_cubic(l, u);
}

const char* design_status_name(DesignStatus s) {
  switch (s) {
    case DesignStatus::Converged: return "converged";
    case DesignStatus::StepsInsufficient: return "steps_insufficient";
    case DesignStatus::RemezFailed: return "remez_failed";
  }
  return "?";
}

std::vector<OddPoly> DesignResult::polys() const {
  std::vector<OddPoly> p;
  for (const DesignStep& s : steps) p.push_back(s.poly);
  return p;
}

Schedule DesignResult::to_schedule(const std::string& name) const {
  Schedule s;
  s.name = name;
  s.source = "muspec ns design: greedy minimax (Polar Express recursion), l=" + num(options.lower) +
             " u=" + num(options.upper) + " K=" + std::to_string(options.steps) +
             " degree=" + std::to_string(options.degree);
  s.polys = polys();
  s.family = Family::Converging;
  s.default_steps = options.steps;
  s.metadata["design"] = {
      {"lower", options.lower},
      {"upper", options.upper},
      {"steps", options.steps},
      {"degree", options.degree},
      {"cushion", options.cushion.value_or(0.0)},
      {"safety", options.safety},
      {"safety_inside", options.safety_inside},
      {"tolerance", options.tolerance},
      {"status", design_status_name(status)},
      {"image", {image.lo, image.hi}},
      {"worst_error", worst_error},
  };
  return s;
}

DesignResult design_schedule(const DesignOptions& o) {
  if (!(o.upper > 0.0 && o.upper <= 1.0))
    throw UsageError("upper bound U = " + num(o.upper) +
                     " is outside (0, 1]: normalized singular values s = sigma/||G||_F lie in (0, 1]");
  if (!(o.lower > 0.0 && o.lower < o.upper))
    throw UsageError("lower bound l = " + num(o.lower) + " must lie in (0, U) with U = " + num(o.upper) +
                     " (normalized singular values s = sigma/||G||_F lie in (0, 1])");
  if (o.steps < 1 || o.steps > 100)
    throw UsageError("steps must be between 1 and 100 (got " + std::to_string(o.steps) + ")");
  if (o.degree != 3 && o.degree != 5)
    throw UsageError("degree must be 3 or 5 (got " + std::to_string(o.degree) + ")");
  const double cushion = o.cushion.value_or(o.degree == 5 ? kPolarExpressCushion : 0.0);
  if (!(cushion >= 0.0 && cushion < 1.0))
    throw UsageError("cushion must lie in [0, 1) (got " + num(cushion) + ")");
  if (!(o.safety >= 1.0 && o.safety <= 2.0))
    throw UsageError("safety factor must lie in [1, 2] (got " + num(o.safety) + "); 1 means none");
  if (!(o.tolerance > 0.0)) throw UsageError("tolerance must be positive");

  DesignResult res;
  res.options = o;
  res.options.cushion = cushion;
  double l = o.lower, u = o.upper;
  bool all_levelled = true;
  int first_bad = -1;
  for (int t = 0; t < o.steps; ++t) {
    DesignStep st;
    st.interval = Interval{l, u};
    const bool cushioned = cushion > 0.0 && cushion * u > l;
    st.fit_lower = cushioned ? cushion * u : l;
    const MinimaxPoly mm = minimax_odd(st.fit_lower, u, o.degree);
    OddPoly p = mm.poly;
    if (cushioned) {
      // Re-centre on the true interval so that p([l, u]) is symmetric about 1 (§5.5): scale by
      // 2/(min + max) of p on [l, u]. For the quintic the minimum is p(l) and the maximum p(u)
      // (= p(q)), so this is the reference's 2/(p(l) + p(u)), evaluated exactly that way to
      // stay bit-faithful to it. For the cubic p(u) = 1 − E is a minimum and the maximum is the
      // interior peak: 2/(p(l) + p(u)) would send the peak far above 2, so the image is used.
      const double hi = o.degree == 5 ? p(u) : p.image(Interval{l, u}).hi;
      p = p.output_scaled(2.0 / (p(l) + hi));
      st.recentred = true;
    }
    if (o.safety_inside && t + 1 < o.steps && o.safety != 1.0) p = p.input_scaled(o.safety);
    st.poly = p;
    st.minimax_error = mm.error;
    st.remez_iterations = mm.iterations;
    st.closed_form = mm.closed_form;
    st.converged = mm.converged;
    if (!mm.converged && first_bad < 0) first_bad = t;
    all_levelled = all_levelled && mm.converged;
    res.steps.push_back(st);
    // Next interval: [p(l), 2 − p(l)] (§5.1); the guard keeps l ≤ u when the safety factor
    // over-contracts near convergence.
    double nl = p(l);
    if (!(nl > 0.0) || !std::isfinite(nl)) nl = l;  // cannot happen for a levelled step; stay put
    l = std::min(nl, 2.0 - nl);
    u = 2.0 - nl;
    if (u <= l) u = l * (1.0 + 1e-15);
  }
  res.final_interval = Interval{l, u};
  if (!o.safety_inside && o.safety != 1.0)
    for (size_t t = 0; t + 1 < res.steps.size(); ++t)
      res.steps[t].poly = res.steps[t].poly.input_scaled(o.safety);

  res.image = compose_image(res.polys(), Interval{o.lower, o.upper});
  res.worst_error = std::max(std::abs(res.image.lo - 1.0), std::abs(res.image.hi - 1.0));
  if (!std::isfinite(res.worst_error)) res.worst_error = std::numeric_limits<double>::max();
  if (!all_levelled) {
    res.status = DesignStatus::RemezFailed;
    res.message = "the Remez exchange did not level the error at step " + std::to_string(first_bad + 1) +
                  "; its best polynomial was kept";
  } else if (res.worst_error > o.tolerance) {
    res.status = DesignStatus::StepsInsufficient;
    res.message = std::to_string(o.steps) + " steps leave a worst deviation of " + num(res.worst_error) +
                  " from 1 on [" + num(o.lower) + ", " + num(o.upper) + "] (tolerance " +
                  num(o.tolerance) + "); more steps are needed to converge";
  } else {
    res.status = DesignStatus::Converged;
    res.message = "every s in [" + num(o.lower) + ", " + num(o.upper) + "] ends within " +
                  num(res.worst_error) + " of 1";
  }
  return res;
}

}  // namespace muspec::ns
