// End-to-end `muspec fit` and `muspec predict`: planted laws written as spectra.h5 scans (with
// a burn-in ramp and noise) are recovered; bad inputs give the documented exit codes and
// messages; the real training runs in sample_data/runs are scanned and fitted.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include <nlohmann/json.hpp>

#include "planted_laws.h"
#include "store/spectra_store.h"
#include "test_support.h"

using muspec_test::run_muspec;
using muspec_test::TempDir;
using nlohmann::json;

namespace {

struct PlantedSweep {
  std::vector<int64_t> sizes = {20'000'000, 60'000'000, 150'000'000, 400'000'000, 1'000'000'000};
  std::vector<int64_t> layers = {4, 6, 8, 12, 16};
  double beta_q = -0.25, beta_down = -0.96;   // q everywhere; down in the last quarter only
  std::vector<int64_t> steps = {100, 200, 300, 400, 500, 600, 800, 1000, 1200, 1400, 1600, 2000};
  double burn_in_end = 400;                   // a decaying excess that is under 0.1 from step 400 on

  double beta(const std::string& op, double rel_depth) const { return op == "down" && rel_depth >= 0.75 ? beta_down : beta_q; }
};

/// One scan file per run: q and down in every block, over all steps.
std::vector<std::string> write_sweep(const PlantedSweep& p, const TempDir& dir, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<std::string> files;
  for (size_t i = 0; i < p.sizes.size(); ++i) {
    muspec::SpectraFile f;
    const std::string run = "size" + std::to_string(i);
    for (const std::string op : {"q", "down"})
      for (int64_t layer = 0; layer < p.layers[i]; ++layer) {
        const double rel = static_cast<double>(layer) / static_cast<double>(p.layers[i] - 1);
        const double offset = 0.05 * normal(rng);
        for (int64_t step : p.steps) {
          const double excess = 1.0 * std::exp(-static_cast<double>(step) / (p.burn_in_end / std::log(10.0) / 1.05));
          const double log_q = -2.0 + p.beta(op, rel) * std::log(static_cast<double>(p.sizes[i])) + offset + excess +
                               0.02 * normal(rng);
          f.records.push_back(muspec_test::planted_record(run, p.sizes[i], step, op, layer, p.layers[i], std::exp(log_q)));
        }
      }
    files.push_back(dir.file(run + ".h5"));
    muspec::write_spectra_h5(files.back(), f);
  }
  return files;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += " '" + x + "'";
  return s;
}

const json& law_of(const json& laws, const std::string& group, double q) {
  for (const auto& l : laws["laws"])
    if (l["group"]["name"] == group && std::fabs(l["quantile"].get<double>() - q) < 1e-12) return l;
  FAIL("no law for " << group << " q=" << q);
  return laws;
}

}  // namespace

TEST_CASE("fit recovers planted laws from scans and predict extrapolates them", "[cli][fit][planted]") {
  TempDir dir("fit");
  const PlantedSweep p;
  const auto scans = write_sweep(p, dir, 17);
  const std::string laws_path = dir.file("laws.json"), csv = dir.file("fits.csv");
  auto r = run_muspec("fit" + joined(scans) + " -o " + laws_path + " --csv " + csv +
                      " --scale sigma --bootstrap 200 --seed 3");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("q/depth:0-0.25") != std::string::npos);
  const json laws = json::parse(muspec_test::read_text(laws_path));
  CHECK(laws["format"] == "muspec.laws");
  CHECK(laws["version"] == 1);
  CHECK(laws["kind"] == "momentum");
  for (const std::string g : {"q/depth:0-0.25", "q/depth:0.25-0.5", "q/depth:0.5-0.75", "q/depth:0.75-1", "down/depth:0-0.25",
                              "down/depth:0.25-0.5", "down/depth:0.5-0.75", "down/depth:0.75-1"})
    for (double q : {0.05, 0.5}) {
      const json& l = law_of(laws, g, q);
      const double truth = g == "down/depth:0.75-1" ? p.beta_down : p.beta_q;
      const double beta = l["beta"];
      INFO(g << " q=" << q << " beta " << beta << " CI " << l["beta_ci95"].dump());
      REQUIRE(l["status"] == "ok");
      CHECK(std::fabs(beta - truth) < 0.03);
      CHECK(l["beta_ci95"][0].get<double>() <= truth);
      CHECK(l["beta_ci95"][1].get<double>() >= truth);
      CHECK(l["num_sizes"] == 5);
      CHECK(l["beta_bootstrap_ci95"].is_array());
      // The burn-in ramp was cut: the settled values have no upward bias from it.
      for (const auto& run : l["runs"]) CHECK(run["unsettled"] == 0);
    }
  // One CSV row per group x quantile (2 op types x 4 depths x 2 quantiles), plus the header.
  const std::string text = muspec_test::read_text(csv);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1 + 16);

  const std::string pred = dir.file("pred.json");
  auto pr = run_muspec("predict --laws " + laws_path + " --params 7e10 -o " + pred);
  INFO(pr.err);
  REQUIRE(pr.exit_code == 0);
  CHECK(pr.out.find("down/depth:0.75-1") != std::string::npos);
  const json preds = json::parse(muspec_test::read_text(pred));
  REQUIRE(preds["predictions"].size() == 16);
  for (const auto& x : preds["predictions"]) {
    CHECK(x["extrapolated"] == true);
    CHECK(x["lower"].get<double>() < x["predicted"].get<double>());
    CHECK(x["upper"].get<double>() > x["predicted"].get<double>());
  }
  auto csv_pred = run_muspec("predict --laws " + laws_path + " --params 7e10 -q -o " + dir.file("pred.csv"));
  CHECK(csv_pred.exit_code == 0);
  CHECK(muspec_test::read_text(dir.file("pred.csv")).rfind("group,op_type,", 0) == 0);
}

TEST_CASE("fit: fixed burn-in, refused groups, skipped and bad inputs", "[cli][fit]") {
  TempDir dir("fit");
  PlantedSweep p;
  p.sizes.resize(2), p.layers.resize(2);
  const auto two = write_sweep(p, dir, 5);
  const std::string laws_path = dir.file("laws.json");
  auto r = run_muspec("fit" + joined(two) + " -o " + laws_path + " --burn-in 500 --group optype -q");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json laws = json::parse(muspec_test::read_text(laws_path));
  CHECK(laws["burn_in"] == "500");
  for (const auto& l : laws["laws"]) {
    CHECK(l["status"] == "refused");
    CHECK(l["reason"].get<std::string>().find("2 distinct model sizes") != std::string::npos);
  }
  // predict has nothing to predict from it
  CHECK(run_muspec("predict --laws " + laws_path + " --params 1e9").exit_code == 2);

  const std::string junk = dir.file("junk.h5");
  muspec_test::write_bytes(junk, "not hdf5");
  auto skipped = run_muspec("fit" + joined(two) + " " + junk + " -o " + laws_path + " -q");
  CHECK(skipped.exit_code == 1);
  CHECK(skipped.err.find(junk) != std::string::npos);
  auto fatal = run_muspec("fit " + junk + " -o " + dir.file("none.json"));
  CHECK(fatal.exit_code == 2);
  CHECK_FALSE(muspec_test::fs::exists(dir.file("none.json")));
  CHECK(run_muspec("fit" + joined(two) + " -o " + laws_path + " --burn-in 1.5").exit_code == 2);
  CHECK(run_muspec("fit" + joined(two) + " -o " + laws_path + " --group depth:0").exit_code == 2);
  CHECK(run_muspec("fit" + joined(two) + " -o " + laws_path + " --scale log").exit_code == 2);
  auto bad_laws = run_muspec("predict --laws " + junk + " --params 1e9");
  CHECK(bad_laws.exit_code == 2);
  CHECK(bad_laws.err.find(junk) != std::string::npos);
  CHECK(run_muspec("predict --laws " + laws_path + " --params -5").exit_code == 2);
}

TEST_CASE("scan then fit the real training runs in sample_data", "[cli][fit][e2e][runs]") {
  TempDir dir("fit-runs");
  const std::string h5 = dir.file("runs.h5"), laws_path = dir.file("laws.json");
  auto scan = run_muspec("scan " + muspec_test::source_dir() + "/sample_data/runs -o " + h5 + " -q");
  INFO(scan.err);
  REQUIRE(scan.exit_code == 0);
  // Checkpoints at 10, 25, 50, 100, 200, 300: steps 100-300 count as settled.
  auto r = run_muspec("fit " + h5 + " -o " + laws_path + " --quantiles 0.05,0.5 --burn-in 100 --bootstrap 100 --seed 1");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const json laws = json::parse(muspec_test::read_text(laws_path));
  const json manifest = json::parse(muspec_test::read_text(muspec_test::source_dir() + "/sample_data/runs/d80/muspec-run.json"));
  CHECK(laws["kind"] == "momentum");
  // 7 operator types x 4 depth quarters (4 blocks: one per quarter) x 2 quantiles, all fitted.
  REQUIRE(laws["laws"].size() == 56);
  for (const auto& l : laws["laws"]) {
    INFO(l["group"]["name"] << " q=" << l["quantile"]);
    REQUIRE(l["status"] == "ok");
    CHECK(l["num_sizes"] == 5);
    const double beta = l["beta"];
    CHECK(l["beta_ci95"][0].get<double>() < beta);
    CHECK(l["beta_ci95"][1].get<double>() > beta);
    CHECK(l["params_range"][1] == manifest["params"]);
    CHECK(l["r2"].get<double>() <= 1.0);
    for (const auto& run : l["runs"]) {
      CHECK(run["matrices"] == 1);  // one block per depth quarter in these 4-block models
      CHECK(run["members"].size() == 1);
    }
    CHECK(l["one_member_per_run"] == true);
    CHECK(l["null"]["done"] == true);  // every law is compared with the Gaussian null
    CHECK(l["null"]["beta_null"].get<double>() < 0);  // widths grow with M: the null exponent is negative
  }
  CHECK(r.err.find("warning: 28 of 28 fitted groups have one member matrix per run") != std::string::npos);
  CHECK(laws["params_definition"] == "total");
  CHECK(r.out.find("laws differ from it") != std::string::npos);
  // The same scan with automatic burn-in: these 300-step runs have not all settled yet, and fit
  // says which series it left out.
  auto a = run_muspec("fit " + h5 + " -o " + dir.file("auto.json") + " --quantiles 0.05 -q --list-unsettled");
  CHECK(a.exit_code == 0);
  CHECK(a.err.find("muspec: unsettled: run 'd") != std::string::npos);
}

TEST_CASE("fit and predict refuse hostile numbers: burn-in steps, model sizes, laws", "[cli][fit]") {
  TempDir dir("fit-hostile");
  const PlantedSweep p;
  const auto scans = write_sweep(p, dir, 23);
  const std::string laws_path = dir.file("laws.json");
  for (const char* step : {"9223372036854775808", "99999999999999999999"}) {
    auto r = run_muspec("fit" + joined(scans) + " -o " + laws_path + " --burn-in " + step + " -q");
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("out of range") != std::string::npos);
    CHECK_FALSE(muspec_test::fs::exists(laws_path));
  }
  // The largest step parses exactly and keeps nothing: every group is refused, nothing crashes.
  auto max = run_muspec("fit" + joined(scans) + " -o " + laws_path + " --burn-in 9223372036854775807 --group optype -q");
  INFO(max.err);
  CHECK(max.exit_code == 0);
  CHECK(json::parse(muspec_test::read_text(laws_path))["burn_in"] == "9223372036854775807");

  auto fit = run_muspec("fit" + joined(scans) + " -o " + laws_path + " --group optype --quantiles 0.05 -q");
  INFO(fit.err);
  REQUIRE(fit.exit_code == 0);
  const json laws = json::parse(muspec_test::read_text(laws_path));
  for (const auto& l : laws["laws"]) CHECK(l["member_sd"].get<double>() > 0);  // 0.05 planted per-matrix offsets
  for (const char* m : {"0", "-5", "nan", "inf", "100", "1e16"}) {
    auto r = run_muspec("predict --laws " + laws_path + " --params " + m);
    INFO(m << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--params") != std::string::npos);
  }
  auto ok = run_muspec("predict --laws " + laws_path + " --params 7e10");
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("one matrix") != std::string::npos);

  // A law whose prediction is not a normalized singular value: exit 2 naming file and law.
  json hostile = laws;
  hostile["scale"] = "rel_frob";
  for (auto& l : hostile["laws"]) l["scale"] = "rel_frob";
  hostile["laws"][1]["beta"] = 1e308;
  const std::string bad = dir.file("hostile.json");
  muspec_test::write_bytes(bad, hostile.dump());
  for (const std::string& cmd : {"predict --laws " + bad + " --params 7e10",
                                "recommend --laws " + bad + " --params 7e10 --layers 8 -o " + dir.file("ns.json")}) {
    auto r = run_muspec(cmd);
    INFO(cmd << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(bad) != std::string::npos);
    CHECK(r.err.find("laws[1]") != std::string::npos);
  }
  CHECK_FALSE(muspec_test::fs::exists(dir.file("ns.json")));
  auto layers = run_muspec("recommend --laws " + laws_path + " --params 7e10 --layers 0 -o " + dir.file("ns.json"));
  CHECK(layers.exit_code == 2);
  CHECK(layers.err.find("--layers must be in [1, 100000]") != std::string::npos);
  auto params = run_muspec("recommend --laws " + laws_path + " --params 1e300 --layers 8 -o " + dir.file("ns.json"));
  CHECK(params.exit_code == 2);
  CHECK(params.err.find("--params") != std::string::npos);
}

TEST_CASE("fit keeps runs that share a name but differ in size apart, and says so", "[cli][fit]") {
  TempDir dir("fit-names");
  const std::vector<int64_t> sizes = {20'000'000, 150'000'000, 1'000'000'000};
  std::vector<std::string> scans;
  for (size_t i = 0; i < sizes.size(); ++i) {
    muspec::SpectraFile f;
    for (int64_t layer = 0; layer < 4; ++layer)
      for (int64_t step : {100, 200, 300, 400})
        f.records.push_back(muspec_test::planted_record("run", sizes[i], step, "q", layer, 4,
                                                        std::exp(-2.0 - 0.3 * std::log(static_cast<double>(sizes[i])))));
    scans.push_back(dir.file("scan" + std::to_string(i) + ".h5"));
    muspec::write_spectra_h5(scans.back(), f);
  }
  const std::string laws_path = dir.file("laws.json");
  auto r = run_muspec("fit" + joined(scans) + " -o " + laws_path + " --group optype --quantiles 0.05 --scale sigma -q");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("run name 'run' appears with 3 model sizes (20000000, 150000000, 1000000000") != std::string::npos);
  const json laws = json::parse(muspec_test::read_text(laws_path));
  REQUIRE(laws["laws"].size() == 1);
  const json& l = laws["laws"][0];
  REQUIRE(l["status"] == "ok");
  CHECK(l["num_sizes"] == 3);
  CHECK(l["beta"].get<double>() == Approx(-0.3).margin(1e-9));
}
