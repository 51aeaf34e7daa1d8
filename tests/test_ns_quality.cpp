// Thresholds, coverage, minimal steps and spectrum quality figures, checked against the
// published threshold tables (reference §10) and against an independent scan + bisection on the
// plain composite written here.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "ns/catalog.h"
#include "ns/quality.h"
#include "ns_test_oracle.h"

using namespace muspec::ns;

namespace {

using ns_oracle::bare;
double f(const Schedule& s, int k, double x) { return ns_oracle::by_hand(s, k, x); }


// Independent threshold: scan upward on a fine log grid for the first x with f(x) ≥ target,
// then bisect between the previous grid point and it.
double scan_threshold(const Schedule& s, int k, double target) {
  const int per_decade = 20000;
  double prev = 1e-12;
  for (int i = 1; i <= 12 * per_decade; ++i) {
    const double x = 1e-12 * std::pow(10.0, static_cast<double>(i) / per_decade);
    if (f(s, k, x) >= target) {
      double lo = prev, hi = x;
      for (int it = 0; it < 200 && hi - lo > 1e-17 * hi; ++it) {
        const double mid = 0.5 * (lo + hi);
        (f(s, k, mid) >= target ? hi : lo) = mid;
      }
      return hi;
    }
    prev = x;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

TEST_CASE("ns: keller×5 thresholds match §10 and an independent bisection", "[ns][quality]") {
  const Schedule kj = bare("keller");
  const double targets[] = {0.5, 0.7, 0.9};
  const double published[] = {1.07e-3, 1.55e-3, 2.13e-3};
  for (int i = 0; i < 3; ++i) {
    INFO("target " << targets[i]);
    const auto t = threshold(kj, 5, Band{targets[i], 10.0});
    REQUIRE(t.has_value());
    CHECK(*t == Approx(published[i]).margin(0.005e-3));
    CHECK(*t == Approx(scan_threshold(kj, 5, targets[i])).epsilon(1e-9));
  }
}

TEST_CASE("ns: KJ×k and other schedules at target 0.7 match §10", "[ns][quality]") {
  const Schedule kj = bare("keller");
  const std::pair<int, double> table[] = {{3, 1.8e-2}, {4, 5.3e-3}, {5, 1.55e-3}, {6, 4.5e-4},
                                          {7, 1.3e-4}, {8, 3.8e-5}, {10, 3.2e-6}};
  const Band b{0.7, 10.0};
  for (const auto& [k, x] : table) {
    INFO("KJ x" << k);
    const double t = *threshold(kj, k, b);
    CHECK(t == Approx(x).epsilon(0.04));  // published to two significant digits
    CHECK(t == Approx(scan_threshold(kj, k, 0.7)).epsilon(1e-9));
  }
  CHECK(*threshold(bare("polar-express"), 5, b) == Approx(7.8e-4).epsilon(0.01));
  CHECK(*threshold(bare("you-5"), 5, b) == Approx(1.55e-3).epsilon(0.01));
  CHECK(*threshold(bare("jiacheng-6"), 6, b) == Approx(7.1e-4).epsilon(0.01));
  for (const char* n : {"polar-express", "you-5", "cubic", "deepseek-v4"}) {
    const Schedule s = bare(n);
    const int k = s.resolve_steps(std::nullopt);
    const auto t = threshold(s, k, b);
    REQUIRE(t.has_value());
    CHECK(*t == Approx(scan_threshold(s, k, 0.7)).epsilon(1e-9));
  }
  // a target no input reaches
  CHECK_FALSE(threshold(kj, 5, Band{1.5, 2.0}).has_value());
}

TEST_CASE("ns: coverage lower bound: the range from l-star to 1 lands in the band just below it does not", "[ns][quality]") {
  for (const char* n : {"keller", "polar-express", "you-5", "deepseek-v4"}) {
    const Schedule s = bare(n);
    const int k = s.resolve_steps(std::nullopt);
    const Band band = s.target_band();
    const auto l = coverage_lower(s, k, band);
    REQUIRE(l.has_value());
    INFO(n << " l* = " << *l);
    // dense independent sampling of [l*, 1]
    bool all_in = true;
    for (int i = 0; i <= 200000; ++i) {
      const double x = *l * std::pow(1.0 / *l, i / 200000.0);
      const double y = f(s, k, x);
      all_in = all_in && y >= band.lo - 1e-12 && y <= band.hi + 1e-12;
    }
    CHECK(all_in);
    // slightly below l* some input leaves the band
    bool some_out = false;
    for (int i = 1; i <= 1000 && !some_out; ++i) {
      const double y = f(s, k, *l * (1.0 - 1e-3 * i / 1000.0));
      some_out = y < band.lo || y > band.hi;
    }
    CHECK(some_out);
  }
}

TEST_CASE("ns: minimal steps are monotone in l and exact", "[ns][quality]") {
  for (const char* n : {"keller", "polar-express", "cubic", "you-5"}) {
    const Schedule s = bare(n);
    const Band band = s.target_band();
    int prev = 1 << 30;
    for (int i = 0; i <= 80; ++i) {
      const double l = std::pow(10.0, -8.0 + 0.1 * i);
      const auto k = min_steps(s, l, band, 200);
      INFO(n << " l = " << l);
      REQUIRE(k.has_value());
      CHECK(*k <= prev);  // larger l never needs more steps
      prev = *k;
      if (*k > 1) CHECK_FALSE(covers(s, *k - 1, l, band));
      // every sampled input of [l, 1] lands in the band after k steps
      bool ok = true;
      for (int j = 0; j <= 4000; ++j) {
        const double y = f(s, *k, l * std::pow(1.0 / l, j / 4000.0));
        ok = ok && y >= band.lo - 1e-12 && y <= band.hi + 1e-12;
      }
      CHECK(ok);
    }
  }
  // KJ: each extra step lowers the reach by about a = 3.44 (§10)
  const Schedule kj = bare("keller");
  CHECK(*min_steps(kj, 1e-3, kj.target_band()) < *min_steps(kj, 1e-5, kj.target_band()));
}

TEST_CASE("ns: inputs outside the unit interval are rejected with a clear message", "[ns][quality]") {
  const Schedule kj = builtin_schedule("keller");
  for (double bad : {0.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    try {
      min_steps(kj, bad, kj.target_band());
      FAIL("accepted " << bad);
    } catch (const muspec::UsageError& e) {
      CHECK(std::string(e.what()).find("outside (0, 1]") != std::string::npos);
    }
  }
  CHECK_NOTHROW(min_steps(kj, 1.0, kj.target_band()));
  // a singular value above the Frobenius norm means a normalized input above 1
  CHECK_THROWS_WITH(evaluate_spectrum(kj, 5, {1.0, 2.0}, kj.target_band(), 1.5),
                    Catch::Contains("outside (0, 1]"));
  CHECK_THROWS_AS(evaluate_spectrum(kj, 5, {1.0, -2.0}, kj.target_band()), muspec::UsageError);
  CHECK_THROWS_AS(evaluate_spectrum(kj, 5, {}, kj.target_band()), muspec::UsageError);
}

TEST_CASE("ns: spectrum quality figures", "[ns][quality]") {
  // σ = (3, 4, 0.001): F = √(9 + 16 + 1e-6); keller×5 outputs computed by hand.
  const Schedule kj = bare("keller");
  const std::vector<double> sigma = {3.0, 4.0, 0.001};
  const double F = std::sqrt(25.0 + 1e-6);
  const Band band{0.68, 1.21};
  const SpectrumQuality q = evaluate_spectrum(kj, 5, sigma, band);
  double in = 0, energy = 0, worst = 0, lo = 1e9, hi = -1e9;
  for (double s : sigma) {
    const double y = f(kj, 5, s / F);
    if (y >= band.lo && y <= band.hi) in += 1, energy += s * s;
    worst = std::max(worst, std::abs(y - 1));
    lo = std::min(lo, y), hi = std::max(hi, y);
  }
  CHECK(q.count == 3);
  CHECK(q.in_band == static_cast<int64_t>(in));
  CHECK(q.in_band == 2);  // s = 2e-4 stays far below the band (485·s ≈ 0.1)
  CHECK(q.band_fraction == Approx(2.0 / 3.0));
  CHECK(q.energy_fraction == Approx(energy / (F * F)));
  CHECK(q.worst_deviation == Approx(worst));
  CHECK(q.output_range.lo == Approx(lo));
  CHECK(q.output_range.hi == Approx(hi));
  CHECK(q.input_range.hi == Approx(0.8).epsilon(1e-6));
  CHECK(q.frobenius == Approx(F));
}
