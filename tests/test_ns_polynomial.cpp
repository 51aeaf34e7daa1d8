// Odd polynomials: evaluation, critical points and exact interval images, checked against the
// published anatomy of Keller Jordan's quintic (reference §9.1) and dense sampling.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "ns/polynomial.h"

using muspec::ns::Interval;
using muspec::ns::OddPoly;

namespace {

const OddPoly kKJ{3.4445, -4.7750, 2.0315};

// Sampled min/max of p over [lo, hi] (independent of OddPoly::image).
Interval sampled_range(const std::vector<OddPoly>& ps, double lo, double hi, int n) {
  Interval r{HUGE_VAL, -HUGE_VAL};
  for (int i = 0; i <= n; ++i) {
    double x = lo + (hi - lo) * i / n;
    for (const OddPoly& p : ps) x = p.a * x + p.b * x * x * x + p.c * x * x * x * x * x;
    r.lo = std::min(r.lo, x);
    r.hi = std::max(r.hi, x);
  }
  return r;
}

}  // namespace

TEST_CASE("ns: KJ quintic anatomy matches reference §9.1", "[ns][polynomial]") {
  CHECK(kKJ(1.0) == Approx(0.701).margin(5e-4));
  CHECK(kKJ.derivative(0.0) == Approx(3.4445));
  const std::vector<double> cp = kKJ.positive_critical_points();
  REQUIRE(cp.size() == 2);
  // local maximum at 0.5545 (p = 1.2024), local minimum at 1.0501 (p = 0.6818)
  CHECK(cp[0] == Approx(0.5545).margin(5e-5));
  CHECK(kKJ(cp[0]) == Approx(1.2024).margin(5e-5));
  CHECK(cp[1] == Approx(1.0501).margin(5e-5));
  CHECK(kKJ(cp[1]) == Approx(0.6818).margin(5e-5));
  // the derivative vanishes there (checked independently of the root formula)
  for (double x : cp) CHECK(std::abs(kKJ.derivative(x)) < 1e-12);
  // fixed points 0.8680 (|p'| = 1.58, repelling) and 1.2637
  CHECK(kKJ(0.8680) == Approx(0.8680).margin(2e-4));
  CHECK(std::abs(kKJ.derivative(0.8680)) == Approx(1.58).margin(0.01));
  CHECK(kKJ(1.2637) == Approx(1.2637).margin(2e-4));
  // transient band: p(0.6818) = 1.1344, p(1.2024) = 0.9465
  CHECK(kKJ(0.6818) == Approx(1.1344).margin(2e-4));
  CHECK(kKJ(1.2024) == Approx(0.9465).margin(2e-4));
}

TEST_CASE("ns: cubic critical point and degree", "[ns][polynomial]") {
  const OddPoly cubic{1.5, -0.5, 0.0};
  CHECK(cubic.degree() == 3);
  CHECK(kKJ.degree() == 5);
  const auto cp = cubic.positive_critical_points();
  REQUIRE(cp.size() == 1);
  CHECK(cp[0] == Approx(1.0));
  CHECK(cubic(1.0) == Approx(1.0));
}

TEST_CASE("ns: safety scaling is p(x/f)", "[ns][polynomial]") {
  const OddPoly q = kKJ.input_scaled(1.01);
  for (double x : {0.01, 0.3, 0.9, 1.0}) CHECK(q(x) == Approx(kKJ(x / 1.01)).epsilon(1e-14));
  const OddPoly r = kKJ.output_scaled(2.0);
  CHECK(r(0.37) == Approx(2.0 * kKJ(0.37)).epsilon(1e-15));
}

TEST_CASE("ns: interval images are exact and tight against dense sampling", "[ns][polynomial]") {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  const std::vector<std::vector<OddPoly>> schedules = {
      {kKJ}, {kKJ, kKJ, kKJ}, {{1.5, -0.5, 0.0}, {1.5, -0.5, 0.0}}, {{8.2, -22.9, 16.46}, {4.07, -2.86, 0.518}}};
  for (const auto& ps : schedules) {
    for (int trial = 0; trial < 20; ++trial) {
      double lo = u01(rng) * 1.2, hi = u01(rng) * 1.2;
      if (lo > hi) std::swap(lo, hi);
      const Interval exact = muspec::ns::compose_image(ps, Interval{lo, hi});
      const Interval sampled = sampled_range(ps, lo, hi, 200000);
      INFO("lo=" << lo << " hi=" << hi);
      // the exact image contains every sample and is no wider than sampling resolution allows
      CHECK(exact.lo <= sampled.lo + 1e-12);
      CHECK(exact.hi >= sampled.hi - 1e-12);
      CHECK(exact.lo == Approx(sampled.lo).margin(1e-6));
      CHECK(exact.hi == Approx(sampled.hi).margin(1e-6));
    }
  }
}

TEST_CASE("ns: compose applies polynomials in order", "[ns][polynomial]") {
  const OddPoly p{2.0, 0.0, 0.0}, q{1.0, 1.0, 0.0};  // q(p(x)) = 2x + 8x³
  CHECK(muspec::ns::compose({p, q}, 0.5) == Approx(2.0));
  CHECK(muspec::ns::compose({q, p}, 0.5) == Approx(1.25));
}
