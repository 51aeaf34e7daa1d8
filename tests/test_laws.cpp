// laws.json: write/read round trip, validation errors naming the file and field, and
// prediction intervals that cover a new run's value at the planted rate.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "core/error.h"
#include "input_error_check.h"
#include "laws.h"
#include "planted_laws.h"
#include "test_support.h"

using namespace muspec::analysis;
using muspec_test::PlantedLaw;

namespace {

LawSet planted_law_set(const PlantedLaw& law, uint64_t seed) {
  std::mt19937_64 rng(seed);
  PowerLawOptions o;
  o.bootstrap = 50;
  LawSet s;
  s.kind = "momentum";
  s.grouping = "optype,depth:4";
  s.burn_in = "auto";
  s.quantiles = {0.05};
  s.inputs = {"a.h5", "b.h5"};
  s.laws.push_back(fit_power_law(GroupSelector{"q/depth:0-0.25", "q", 0, 0.25, -1}, 0.05, "rel_frob",
                                 muspec_test::planted_runs(law, rng), o));
  PlantedLaw two_sizes = law;
  two_sizes.sizes = {1e8, 1e9};
  two_sizes.matrices = {2, 2};
  s.laws.push_back(fit_power_law(GroupSelector{"down/layer-from-end:0", "down", 0, 1, 0}, 0.05, "rel_frob",
                                 muspec_test::planted_runs(two_sizes, rng), o));
  return s;
}

}  // namespace

TEST_CASE("laws.json round trip", "[laws][io]") {
  const LawSet s = planted_law_set(PlantedLaw{}, 1);
  muspec_test::TempDir dir("laws");
  const std::string path = dir.file("laws.json");
  write_laws_json(path, s);
  const LawSet r = read_laws_json(path);
  CHECK(r.kind == "momentum");
  CHECK(r.inputs == s.inputs);
  REQUIRE(r.laws.size() == 2);
  const FittedLaw &a = s.laws[0], &b = r.laws[0];
  CHECK(b.group.name == a.group.name);
  CHECK(b.group.op_type == "q");
  CHECK(b.group.depth_hi == 0.25);
  CHECK(b.beta == a.beta);
  CHECK(b.log_a == a.log_a);
  CHECK(b.se_beta == a.se_beta);
  CHECK(b.cov_log_a_beta == a.cov_log_a_beta);
  CHECK(b.beta_boot_lo == a.beta_boot_lo);
  CHECK(b.has_bootstrap);
  CHECK(b.dof == a.dof);
  CHECK(b.params_max == a.params_max);
  CHECK(b.points.size() == a.points.size());
  CHECK(b.points[2].members == a.points[2].members);
  CHECK(b.leave_largest_out.error_log == a.leave_largest_out.error_log);
  CHECK(r.laws[1].status == "refused");
  CHECK(r.laws[1].group.layer_from_end == 0);
  CHECK(r.laws[1].reason == s.laws[1].reason);
  // Writing what was read gives the same document.
  CHECK(laws_json_text(r) == laws_json_text(s));
}

TEST_CASE("bad laws files name the file and the field", "[laws][io]") {
  muspec_test::TempDir dir("laws");
  const std::string path = dir.file("laws.json");
  muspec_test::expect_input_error([&] { read_laws_json(dir.file("missing.json")); }, dir.file("missing.json"), "", {"cannot open"});
  muspec_test::write_bytes(path, "[1, 2");
  muspec_test::expect_input_error([&] { read_laws_json(path); }, path, "", {"not valid JSON"});
  muspec_test::write_bytes(path, R"({"format": "muspec-spectra", "version": 1, "laws": []})");
  muspec_test::expect_input_error([&] { read_laws_json(path); }, path, "", {"format"});
  muspec_test::write_bytes(path, R"({"format": "muspec.laws", "version": 2, "laws": []})");
  muspec_test::expect_input_error([&] { read_laws_json(path); }, path, "", {"version"});

  std::string text = laws_json_text(planted_law_set(PlantedLaw{}, 2));
  const size_t at = text.find("\"beta\":");
  REQUIRE(at != std::string::npos);
  text.replace(at, 7, "\"beta\": \"steep\", \"x\":");
  muspec_test::write_bytes(path, text);
  muspec_test::expect_input_error([&] { read_laws_json(path); }, path, "", {"laws[0].beta", "number"});
}

TEST_CASE("predictions: point, interval and extrapolation flag", "[laws]") {
  PlantedLaw law;
  law.beta = -0.96;
  const LawSet s = planted_law_set(law, 3);
  const FittedLaw& f = s.laws[0];
  const auto inside = predict_laws(s, 1e9);
  REQUIRE(inside.size() == 1);  // the refused law gives no prediction
  CHECK(inside[0].predicted == Approx(std::exp(f.log_a + f.beta * std::log(1e9))));
  CHECK_FALSE(inside[0].extrapolated);
  CHECK(inside[0].lower < inside[0].predicted);
  CHECK(inside[0].upper > inside[0].predicted);
  const auto far = predict_laws(s, 7e10);
  CHECK(far[0].extrapolated);
  CHECK(far[0].kind == "momentum");
  // Farther from the data, wider (relative) intervals; a lower level, narrower.
  CHECK(std::log(far[0].upper / far[0].lower) > std::log(inside[0].upper / inside[0].lower));
  const auto narrow = predict_laws(s, 7e10, 0.5);
  CHECK(narrow[0].upper < far[0].upper);
  CHECK(narrow[0].lower > far[0].lower);
  CHECK_THROWS_AS(predict_laws(s, 0), muspec::UsageError);
  CHECK_THROWS_AS(predict_laws(s, 1e9, 1.0), muspec::UsageError);
}

TEST_CASE("prediction intervals cover a new, larger run about 95% of the time", "[laws][planted][coverage]") {
  // Every run, the new one included, has the same number of group members so that all runs
  // share one noise level (the situation the interval describes).
  constexpr int kSeeds = 1000;
  PlantedLaw law;
  law.beta = -0.25;
  law.matrices = {4, 4, 4, 4, 4};
  PlantedLaw target = law;
  target.sizes = {7e10};
  target.matrices = {4};
  int covered = 0;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    std::mt19937_64 rng(static_cast<uint64_t>(seed));
    LawSet s;
    s.laws.push_back(fit_power_law(GroupSelector{"g", "", 0, 1, -1}, 0.05, "rel_frob", muspec_test::planted_runs(law, rng), PowerLawOptions{}));
    const double actual = aggregate_run(muspec_test::planted_runs(target, rng)[0]).log_value;
    const LawPrediction p = predict_laws(s, 7e10)[0];
    covered += std::log(p.lower) <= actual && actual <= std::log(p.upper);
  }
  const double rate = static_cast<double>(covered) / kSeeds;
  INFO("prediction-interval coverage " << rate);
  CHECK(rate >= 0.93);  // binomial sd at 1000 trials: 0.007
  CHECK(rate <= 0.97);
}
