// `muspec recommend --power P` (the spectral family U Σᵖ Vᵀ, ns_config version 2) on the momentum
// buffers of a real training run (sample_data/runs/d40, step 300). Oracle: the matrix-level
// iteration run on the stored matrices and compared, direction by direction, with the float64
// SVD (ns::family_directions) — independent of the scalar map the recommendation is chosen by.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <string>

#include "configs/ns_config.h"
#include "configs/precision_check.h"
#include "configs/recommend.h"
#include "configs/recommend_family.h"
#include "ns/spectral_simulate.h"
#include "spectra/summary.h"
#include "store/spectra_store.h"
#include "test_support.h"

using muspec_test::run_muspec;
using muspec_test::TempDir;
using nlohmann::json;

namespace {

// The worst per-direction error at or above the q-quantile, matrix level, float64.
double worst_direction_error(const muspec::ns::SpectralMap& m, const muspec::MatrixPart& part, double q) {
  int64_t rows = 0, cols = 0;
  std::string why;
  const auto g = muspec::load_matrix({part.file, part.tensor, part.slice}, &rows, &cols, &why);
  INFO(why);
  REQUIRE(g.has_value());
  const double at = muspec::quantile_linear(part.sigma, q);
  double worst = 0.0;
  for (const auto& d : muspec::ns::family_directions(m, muspec::ns::Precision::F64, g->data(), rows, cols, part.record))
    if (d.sigma >= at * (1.0 - 1e-12)) worst = std::max(worst, d.rel_error(m.power));
  return worst;
}

std::string scan_d40(const TempDir& dir) {
  const std::string step = muspec_test::source_dir() + "/sample_data/runs/d40/checkpoint-300";
  const std::string h5 = dir.file("s.h5");
  const auto r = run_muspec("scan '" + step + "' -o '" + h5 + "' -q");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return h5;
}

}  // namespace

TEST_CASE("recommend --power: the chosen iteration counts are minimal at matrix level", "[recommend][family][e2e]") {
  if (!std::filesystem::exists(muspec_test::source_dir() + "/sample_data/runs/d40")) return;
  TempDir dir("rec-family");
  const std::string h5 = scan_d40(dir);
  const muspec::SpectraFile file = muspec::read_spectra_h5(h5);
  const muspec::NsInputs in = muspec::select_ns_inputs(file, h5, {});
  REQUIRE(in.matrices.size() == 28);
  muspec::RecommendOptions o;
  o.max_steps = 60;
  for (const char* power : {"1/4", "1/2", "3/10"}) {
    muspec::FamilyOptions f;
    // No shift: the paper's (1e-6 + 1e-4·mean eigenvalue) biases these small momentum buffers
    // beyond 1 % (docs/spectral-family.md), so no step count meets the tolerance with it.
    f.map = muspec::ns::make_spectral_map(muspec::ns::parse_power(power), std::nullopt, 15);
    f.map.regularization = {0.0, 0.0};
    const muspec::NsConfig c = muspec::recommend_family(in, o, f);
    REQUIRE(c.parameters.size() == 28);
    for (size_t i = 0; i < c.parameters.size(); ++i) {
      const auto& p = c.parameters[i];
      INFO(power << " " << p.name << " steps " << p.setting.steps);
      REQUIRE(p.requirement_met);
      const muspec::MatrixPart& part = in.matrices[i].parts.front();
      muspec::ns::SpectralMap at = f.map;
      at.steps = p.setting.steps;
      CHECK(worst_direction_error(at, part, o.quantile) <= f.tolerance * 1.001);
      at.steps = p.setting.steps - 1;
      CHECK(worst_direction_error(at, part, o.quantile) > f.tolerance * 0.999);
    }
    const json j = muspec::ns_config_to_json(c);
    CHECK(muspec::ns_config_problem(j) == "");
    CHECK(j["version"] == 2);
  }
}

TEST_CASE("cli recommend --power: version 2 config, verified per direction, p = 1 needs nothing", "[cli][recommend][family][e2e]") {
  if (!std::filesystem::exists(muspec_test::source_dir() + "/sample_data/runs/d40")) return;
  TempDir dir("cli-rec-family");
  const std::string h5 = scan_d40(dir), out = dir.file("cfg.json");
  auto r = run_muspec("recommend --spectra '" + h5 + "' --power 1/2 --regularization 0,0 --verify -o '" + out + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  json j = json::parse(muspec_test::read_text(out));
  CHECK(muspec::ns_config_problem(j) == "");
  CHECK(j["spectral_map"]["power"] == "1/2");
  CHECK(j["spectral_map"]["iteration"] == "coupled-newton");
  CHECK(j["provenance"]["precision"] == "f32");
  REQUIRE(j["parameters"].size() == 28);
  for (const auto& [name, e] : j["parameters"].items()) {
    INFO(name);
    CHECK(e["requirement_met"] == true);
    CHECK(e["verified_max_rel_error"].get<double>() <= 1e-2);
    CHECK(e["steps"].get<int>() >= 1);
  }
  CHECK(j["totals"]["ratio"].get<double>() > 0.0);

  r = run_muspec("recommend --spectra '" + h5 + "' --power 1 -q -o '" + out + "'");
  REQUIRE(r.exit_code == 0);
  j = json::parse(muspec_test::read_text(out));
  CHECK(muspec::ns_config_problem(j) == "");
  for (const auto& [name, e] : j["parameters"].items()) CHECK(e["steps"] == 0);

  // The paper's shift (1e-6 absolute) biases these small buffers beyond 1 %: said, not hidden.
  r = run_muspec("recommend --spectra '" + h5 + "' --power 1/2 -q -o '" + out + "'");
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("--regularization") != std::string::npos);
  j = json::parse(muspec_test::read_text(out));
  CHECK(j["parameters"].begin().value()["requirement_met"] == false);
}

TEST_CASE("cli recommend --power: usage errors", "[cli][recommend][family]") {
  TempDir dir("cli-rec-family-usage");
  const std::string out = dir.file("c.json");
  auto r = run_muspec("recommend --laws laws.json --params 1e6 --power 1/2 -o '" + out + "'");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("whole spectrum") != std::string::npos);
  r = run_muspec("recommend --spectra x.h5 --power 0 -o '" + out + "'");
  CHECK(r.exit_code == 2);
  r = run_muspec("recommend --spectra x.h5 --power 1/2 --band 0.7,1.2 -o '" + out + "'");
  CHECK(r.exit_code == 2);
  CHECK(!std::filesystem::exists(out));
}
