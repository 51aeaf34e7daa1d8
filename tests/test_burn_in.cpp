// Burn-in detection: planted burn-ins (exponential decays and linear ramps onto a plateau)
// are found where the planted curve enters the tolerance band; settled values recover the
// plateau and the noise; drifting series are reported as never settling.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>

#include "laws/burn_in.h"
#include "core/error.h"

using namespace muspec::analysis;

namespace {

constexpr double kPlateau = 0.02;  // settled quantile value
constexpr int64_t kInterval = 50;  // steps between checkpoints

struct Series {
  std::vector<int64_t> steps;
  std::vector<double> values;
};

/// log value = log(plateau) + excess(step) + noise.
template <typename Excess>
Series make_series(int64_t last_step, double noise_sd, uint64_t seed, Excess excess) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, noise_sd);
  Series s;
  for (int64_t t = kInterval; t <= last_step; t += kInterval) {
    s.steps.push_back(t);
    s.values.push_back(std::exp(std::log(kPlateau) + excess(static_cast<double>(t)) + normal(rng)));
  }
  return s;
}

/// The detected end of burn-in agrees with the planted curve when the planted excess at the
/// detected checkpoint is inside the band, and at the checkpoint before it was outside, both up
/// to the noise (5 sd); and when the later median is the plateau.
template <typename Excess>
void check_detection(const SettledValue& v, double band, double noise_sd, Excess excess) {
  REQUIRE(v.settled);
  const double slack = 5 * noise_sd;
  const double t = static_cast<double>(v.burn_in_end_step);
  INFO("detected " << v.burn_in_end_step << ", planted excess there " << excess(t) << ", one checkpoint earlier "
                   << excess(t - kInterval));
  CHECK(std::fabs(excess(t)) <= band + slack);
  if (v.burn_in_end_step > kInterval) CHECK(std::fabs(excess(t - kInterval)) >= band - slack);
  CHECK(v.log_median == Approx(std::log(kPlateau)).margin(slack));
}

double exp_decay(double t, double amplitude, double tau) { return amplitude * std::exp(-t / tau); }
double ramp(double t, double end, double slope) { return t < end ? -slope * (end - t) : 0.0; }

}  // namespace

TEST_CASE("burn-in specs parse and print", "[burn_in]") {
  CHECK(parse_burn_in("auto").mode == BurnInRule::Mode::Auto);
  const BurnInRule step = parse_burn_in("500");
  CHECK(step.mode == BurnInRule::Mode::Step);
  CHECK(step.step == 500);
  const BurnInRule frac = parse_burn_in("0.25");
  CHECK(frac.mode == BurnInRule::Mode::Fraction);
  CHECK(frac.fraction == 0.25);
  CHECK(burn_in_spec(step) == "500");
  CHECK(burn_in_spec(frac) == "0.25");
  CHECK(burn_in_spec(parse_burn_in("auto")) == "auto");
  for (const char* bad : {"1.5", "-3", "abc", "", "10x", "nan", " 5", "5 ", "0x10", "1e3"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_burn_in(bad), muspec::UsageError);
  }
}

TEST_CASE("burn-in steps parse exactly over the whole int64 range and no further", "[burn_in]") {
  const BurnInRule max = parse_burn_in("9223372036854775807");
  CHECK(max.mode == BurnInRule::Mode::Step);
  CHECK(max.step == std::numeric_limits<int64_t>::max());
  CHECK(burn_in_spec(max) == "9223372036854775807");
  // 2^53 + 1 is not a double: an exact parse keeps it.
  CHECK(parse_burn_in("9007199254740993").step == 9007199254740993LL);
  for (const char* bad : {"9223372036854775808", "99999999999999999999", "18446744073709551616"}) {
    INFO(bad);
    CHECK_THROWS_WITH(parse_burn_in(bad), Catch::Contains("out of range") && Catch::Contains(bad));
  }
  CHECK(parse_burn_in("0.5e-1").fraction == Approx(0.05));
}

TEST_CASE("hostile step values do not overflow the span computation", "[burn_in]") {
  const int64_t lo = std::numeric_limits<int64_t>::min() + 1, hi = std::numeric_limits<int64_t>::max();
  const std::vector<int64_t> steps = {lo, lo / 2, -5, 0, hi / 2, hi};
  const std::vector<double> flat(steps.size(), 0.3);
  const SettledValue v = settle_series(steps, flat, BurnInRule{});
  CHECK(v.settled);
  CHECK(v.burn_in_end_step == lo);  // a flat series is settled from its first point
  CHECK(v.log_median == Approx(std::log(0.3)));
  // A late jump: only the last points settle; the span rule (20% of the range) is computed in double.
  std::vector<double> jump = flat;
  jump[0] = jump[1] = 3.0;
  const SettledValue w = settle_series(steps, jump, BurnInRule{});
  CHECK(w.settled);
  CHECK(w.burn_in_end_step == -5);
}

TEST_CASE("median and robust scale", "[burn_in]") {
  CHECK(median_of({3, 1, 2}) == 2);
  CHECK(median_of({4, 1, 3, 2}) == 2.5);
  CHECK(std::isnan(median_of({})));
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0.0, 0.3);
  std::vector<double> v;
  for (int i = 0; i < 20000; ++i) v.push_back(normal(rng));
  CHECK(robust_scale(v) == Approx(0.3).epsilon(0.03));
}

TEST_CASE("auto burn-in finds planted exponential decays", "[burn_in]") {
  const BurnInRule rule;  // auto, tolerance 0.1
  for (double amplitude : {0.5, 1.5, 3.0})
    for (double tau : {100.0, 300.0, 600.0})
      for (uint64_t seed = 1; seed <= 3; ++seed) {
        const Series s = make_series(5000, 0.01, seed, [&](double t) { return exp_decay(t, amplitude, tau); });
        const SettledValue v = settle_series(s.steps, s.values, rule);
        INFO("amplitude " << amplitude << " tau " << tau << " seed " << seed);
        check_detection(v, rule.tolerance, 0.01, [&](double t) { return exp_decay(t, amplitude, tau); });
      }
}

TEST_CASE("auto burn-in finds planted linear ramps onto a plateau", "[burn_in]") {
  const BurnInRule rule;
  for (double end : {400.0, 1200.0, 3000.0})
    for (double slope : {0.002, 0.0005}) {
      const Series s = make_series(6000, 0.01, 11, [&](double t) { return ramp(t, end, slope); });
      const SettledValue v = settle_series(s.steps, s.values, rule);
      INFO("end " << end << " slope " << slope);
      check_detection(v, rule.tolerance, 0.01, [&](double t) { return ramp(t, end, slope); });
    }
}

TEST_CASE("settled value recovers the plateau and the step noise", "[burn_in]") {
  const double noise = 0.05;
  const Series s = make_series(20000, noise, 3, [](double t) { return exp_decay(t, 2.0, 500.0); });
  const SettledValue v = settle_series(s.steps, s.values, BurnInRule{});
  REQUIRE(v.settled);
  CHECK(v.log_median == Approx(std::log(kPlateau)).margin(3 * 1.25 * noise / std::sqrt(v.settled_log_values.size())));
  CHECK(v.log_scale == Approx(noise).epsilon(0.2));
  // The band widens with the noise: 3 x noise > tolerance here.
  CHECK(v.band == Approx(3 * noise).epsilon(0.25));
}

TEST_CASE("a drifting series never settles and says why", "[burn_in]") {
  // Falls by a factor e^2 over training, never flattening.
  const Series s = make_series(3000, 0.01, 5, [](double t) { return -2.0 * t / 3000.0; });
  const SettledValue v = settle_series(s.steps, s.values, BurnInRule{});
  CHECK_FALSE(v.settled);
  CHECK(v.burn_in_end_step == -1);
  CHECK_FALSE(v.reason.empty());
}

TEST_CASE("fixed step and fraction burn-ins", "[burn_in]") {
  const Series s = make_series(2000, 0.0, 1, [](double) { return 0.0; });
  const SettledValue by_step = settle_series(s.steps, s.values, parse_burn_in("475"));
  REQUIRE(by_step.settled);
  CHECK(by_step.burn_in_end_step == 500);
  CHECK(by_step.settled_log_values.size() == 31);  // 500, 550, ..., 2000
  const SettledValue by_fraction = settle_series(s.steps, s.values, parse_burn_in("0.5"));
  CHECK(by_fraction.burn_in_end_step == 1000);
  CHECK_FALSE(settle_series(s.steps, s.values, parse_burn_in("2001")).settled);
}

TEST_CASE("short series are used whole and marked unchecked", "[burn_in]") {
  const SettledValue v = settle_series({100, 200}, {0.1, 0.2}, BurnInRule{});
  CHECK(v.settled);
  CHECK_FALSE(v.checked);
  CHECK(v.log_median == Approx(0.5 * (std::log(0.1) + std::log(0.2))));
  CHECK_THROWS_AS(settle_series({200, 100}, {0.1, 0.2}, BurnInRule{}), muspec::UsageError);
}
