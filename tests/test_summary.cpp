// Spectral summaries against numpy (tests/fixtures/summary/numpy_summary.json, written by
// tests/fixtures/make_summary_fixture.py with numpy's quantile, sum, exp/log).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "spectra/summary.h"
#include "test_support.h"

using namespace muspec;

namespace {
double hexf(const nlohmann::json& j) { return std::strtod(j.get<std::string>().c_str(), nullptr); }
}  // namespace

TEST_CASE("quantiles and ranks agree with numpy", "[summary]") {
  const auto doc = nlohmann::json::parse(muspec_test::read_text(muspec_test::fixture("summary/numpy_summary.json")));
  for (const auto& c : doc["cases"]) {
    INFO("case " << c["name"].get<std::string>());
    std::vector<double> sigma;
    for (const auto& v : c["sigma"]) sigma.push_back(hexf(v));
    const std::vector<double> levels = c["levels"].get<std::vector<double>>();
    const SpectralSummary s = summarize_spectrum(sigma, hexf(c["frobenius"]), 0.0, levels);
    for (size_t i = 0; i < levels.size(); ++i) {
      INFO("q = " << levels[i]);
      CHECK(s.quantiles[i].sigma == Approx(hexf(c["quantiles"][i])).epsilon(1e-14));
      CHECK(quantile_linear(sigma, levels[i]) == Approx(hexf(c["quantiles"][i])).epsilon(1e-14));
    }
    CHECK(s.nuclear == Approx(hexf(c["nuclear"])).epsilon(1e-14));
    CHECK(s.stable_rank == Approx(hexf(c["stable_rank"])).epsilon(1e-13));
    CHECK(s.effective_rank == Approx(hexf(c["effective_rank"])).epsilon(1e-12));
  }
}

TEST_CASE("summary scales and edge cases", "[summary]") {
  const std::vector<double> sigma = {0.0, 1.0, 2.0, 4.0};
  const double frob = std::sqrt(21.0);
  const SpectralSummary s = summarize_spectrum(sigma, frob, 0.5, {0.5});
  CHECK(s.sigma_max == 4.0);
  CHECK(s.sigma_min == 0.0);
  CHECK(std::isinf(s.cond));  // sigma_min = 0
  CHECK(s.below_floor == 1);
  REQUIRE(s.quantiles.size() == 1);
  CHECK(s.quantiles[0].sigma == 1.5);  // (n-1) q = 1.5: halfway between 1 and 2
  CHECK(s.quantiles[0].rel_max == 1.5 / 4.0);
  CHECK(s.quantiles[0].rel_frob == 1.5 / frob);
  CHECK(s.quantiles[0].cond == 4.0 / 1.5);
  CHECK_THROWS_AS(quantile_linear(sigma, 1.5), UsageError);
  CHECK_THROWS_AS(quantile_linear({}, 0.5), UsageError);
  CHECK_THROWS_AS(summarize_spectrum({}, 1.0, 0.0, {0.5}), UsageError);
}
