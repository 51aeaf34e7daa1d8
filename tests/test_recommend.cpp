// recommend: per-matrix NS settings. Oracles are independent of the library's interval
// arithmetic: the configured polynomials applied by hand to normalized singular values and to a
// dense grid, and FLOPs from the hand formula of reference §2.4.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <regex>
#include <string>
#include <vector>

#include "core/error.h"
#include "laws/laws.h"
#include "ns/catalog.h"
#include "ns/design.h"
#include "configs/ns_config.h"
#include "configs/precision_check.h"
#include "configs/recommend.h"
#include "configs/recommend_laws.h"
#include "test_support.h"
#include "configs/torch_groups.h"

using namespace muspec;
using muspec_test::TempDir;

namespace {

// Applies a setting's triples by hand to a normalized singular value s (δ applied, ε ignored).
double apply_by_hand(const std::vector<ns::OddPoly>& polys, double delta, double s, size_t steps) {
  double x = s / (1.0 + delta);
  for (size_t i = 0; i < steps; ++i) {
    const ns::OddPoly& p = polys[i];
    x = p.a * x + p.b * x * x * x + p.c * x * x * x * x * x;
  }
  return x;
}

// Log-spaced grid over [lo, 1] with both ends.
std::vector<double> grid(double lo, int n = 4000) {
  std::vector<double> g;
  for (int i = 0; i <= n; ++i) g.push_back(std::exp(std::log(lo) * (1.0 - static_cast<double>(i) / n)));
  return g;
}

bool all_in_band(const std::vector<ns::OddPoly>& polys, double delta, size_t steps, const std::vector<double>& xs,
                 const ns::Band& b) {
  return std::all_of(xs.begin(), xs.end(), [&](double s) {
    const double y = apply_by_hand(polys, delta, s, steps);
    return y >= b.lo && y <= b.hi;
  });
}

// numpy 'linear' quantile, written out again for the oracle.
double np_quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double h = (v.size() - 1) * q;
  const size_t i = static_cast<size_t>(std::floor(h));
  return i + 1 < v.size() ? v[i] + (h - i) * (v[i + 1] - v[i]) : v[i];
}

// A parameter whose singular values are log-spaced between lo and hi (k of them).
NsMatrix planted(const std::string& name, const std::string& op, int layer, int64_t rows, int64_t cols, double lo,
                 double hi) {
  NsMatrix m;
  m.parameter = name, m.op_type = op, m.layer = layer, m.num_layers = 4, m.kind = "momentum", m.step = 100;
  MatrixPart p;
  p.rows = rows, p.cols = cols;
  const int64_t k = std::min(rows, cols);
  double f2 = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    const double s = lo * std::pow(hi / lo, static_cast<double>(i) / (k - 1));
    p.sigma.push_back(s);
    f2 += s * s;
  }
  p.frobenius = std::sqrt(f2);
  m.parts.push_back(p);
  return m;
}

NsInputs planted_inputs() {
  NsInputs in;
  in.matrices.push_back(planted("layers.0.q.weight", "q", 0, 64, 64, 1e-5, 1.0));
  in.matrices.push_back(planted("layers.0.up.weight", "up", 0, 96, 32, 1e-3, 2.0));
  in.matrices.push_back(planted("layers.1.down.weight", "down", 1, 32, 96, 1e-2, 1.0));
  in.matrices.push_back(planted("layers.3.o.weight", "o", 3, 48, 48, 3e-7, 0.5));
  return in;
}

// One quintic step on an m×n matrix, reference §2.4, after transposing so m ≤ n.
double quintic_flops(double m, double n) {
  if (m > n) std::swap(m, n);
  return 4 * m * m * n + 2 * m * m * m + 3 * m * m + 2 * m * n;
}

}  // namespace

TEST_CASE("recommend: fewest steps bring every value above the quantile into the band", "[recommend]") {
  const NsInputs in = planted_inputs();
  for (const std::string family : {"keller", "polar-express", "you-5", "designed"}) {
    for (const double margin : {1.0, 2.0}) {
      RecommendOptions o;
      o.family = family;
      o.margin = margin;
      o.quantile = 0.1;
      o.precision = ns::Precision::F64;  // the exact scalar map; bf16 floors are tested below
      const NsConfig c = recommend_measured(in, o);
      REQUIRE(c.parameters.size() == in.matrices.size());
      const ns::Band band = c.provenance.band;
      for (size_t i = 0; i < c.parameters.size(); ++i) {
        const NsConfigParameter& p = c.parameters[i];
        const MatrixPart& part = in.matrices[i].parts[0];
        INFO(family << " margin " << margin << " " << p.name << " steps " << p.setting.steps);
        const double qv = np_quantile(part.sigma, 0.1) / part.frobenius;
        CHECK(p.lower_bound == Approx(qv / margin).epsilon(1e-12));
        REQUIRE(p.setting.coefficients.size() == static_cast<size_t>(p.setting.steps));
        const double delta = p.setting.normalization.delta;
        if (!p.requirement_met) {  // e.g. polar-express from 3e-7: its last row lifts by only 1.875 per step
          CHECK(p.setting.steps == o.max_steps);
          CHECK_FALSE(all_in_band(p.setting.coefficients, delta, p.setting.steps, grid(p.lower_bound), band));
          continue;
        }
        std::vector<double> above;
        for (double s : part.sigma)
          if (s / part.frobenius >= qv) above.push_back(s / part.frobenius);
        CHECK(all_in_band(p.setting.coefficients, delta, p.setting.steps, above, band));
        CHECK(all_in_band(p.setting.coefficients, delta, p.setting.steps, grid(p.lower_bound), band));
        if (p.setting.steps == 1) continue;
        // Minimality: steps − 1 of the same family leave some s in [ℓ, 1] outside the band.
        std::vector<ns::OddPoly> shorter = p.setting.coefficients;
        if (family == "designed") {
          ns::DesignOptions d;
          d.lower = p.lower_bound;
          d.steps = p.setting.steps - 1;
          shorter = ns::design_schedule(d).polys();
        }
        CHECK_FALSE(all_in_band(shorter, delta, p.setting.steps - 1, grid(p.lower_bound, 20000), band));
      }
    }
  }
}

TEST_CASE("recommend: FLOPs per matrix and in total follow the hand formula", "[recommend]") {
  const NsInputs in = planted_inputs();
  const NsConfig c = recommend_measured(in, RecommendOptions{});
  double total = 0, total0 = 0;
  for (const NsConfigParameter& p : c.parameters) {
    const double m = p.shape[0], n = p.shape[1];
    CHECK(*p.flops == Approx(p.setting.steps * quintic_flops(m, n) + 3 * m * n).epsilon(1e-14));
    CHECK(*p.default_flops == Approx(5 * quintic_flops(m, n) + 3 * m * n).epsilon(1e-14));
    total += *p.flops, total0 += *p.default_flops;
  }
  const NsConfigTotals t = ns_config_totals(c);
  CHECK(*t.flops == Approx(total));
  CHECK(*t.default_flops == Approx(total0));
  const nlohmann::json j = ns_config_to_json(c);
  CHECK(ns_config_problem(j) == "");
  CHECK(j["totals"]["ratio"].get<double>() == Approx(total / total0));
  CHECK(j["totals"]["parameters"] == 4);
  // A cubic step costs 4m²n + m² + 2mn.
  NsSetting cubic{2, {{1.5, -0.5, 0.0}, {1.5, -0.5, 0.0}}, {}};
  CHECK(setting_flops(cubic, 10, 20) == 2 * (4 * 100 * 20 + 100 + 2 * 200) + 3 * 200);
}

TEST_CASE("recommend: a zero singular value at the quantile cannot be met", "[recommend]") {
  const ScheduleRule rule("keller", std::nullopt, 7);
  const auto c = rule.choose(0.0);
  CHECK_FALSE(c.met);
  CHECK(c.setting.steps == 7);
  // ℓ = 1 (+ rounding) is met; a NaN, infinite or > 1 ℓ is refused, never capped.
  CHECK(rule.choose(1.0).met);
  CHECK(rule.choose(1.0 + 0.5 * kLowerBoundTolerance).met);
  for (const double bad_lower : {1.5, 1.0 + 10 * kLowerBoundTolerance, std::nan(""), HUGE_VAL}) {
    INFO(bad_lower);
    CHECK_FALSE(lower_bound_problem(bad_lower).empty());
    CHECK_THROWS_AS(rule.choose(bad_lower), UsageError);
  }
  CHECK(lower_bound_problem(0.0).empty());
  CHECK(lower_bound_problem(-0.0).empty());
  CHECK_THROWS_AS(ScheduleRule("no-such-family", std::nullopt, 5), UsageError);
  CHECK_THROWS_AS(ScheduleRule("keller", std::nullopt, 0), UsageError);
  RecommendOptions bad;
  bad.margin = 0.0;
  CHECK_THROWS_AS(check_recommend_options(bad), UsageError);
}

namespace {

SpectrumRecord record(const std::string& param, const std::string& kind, int64_t step, const std::string& run,
                      bool muon = true) {
  SpectrumRecord r;
  r.name = kind + ":" + param + "@" + std::to_string(step);
  r.parameter = param, r.kind = kind, r.step = step, r.run = run, r.muon = muon;
  r.op_type = "q", r.layer = 0, r.num_layers = 2, r.rows = 3, r.cols = 3, r.transform = "none";
  r.sigma = {0.1, 0.5, 1.0};
  r.summary = summarize_spectrum(r.sigma, std::sqrt(0.01 + 0.25 + 1.0), 0.0, {0.05, 0.5});
  return r;
}

}  // namespace

TEST_CASE("recommend: input selection prefers momentum and the latest step", "[recommend]") {
  SpectraFile f;
  f.records = {record("a", "weight", 300, "r"), record("a", "momentum", 100, "r"), record("a", "momentum", 200, "r"),
               record("b", "weight", 50, "r"), record("b", "weight", 10, "r"), record("c", "momentum", 5, "r", false)};
  NsInputs in = select_ns_inputs(f, "f.h5", {});
  REQUIRE(in.matrices.size() == 2);
  CHECK(in.matrices[0].parameter == "a");
  CHECK(in.matrices[0].kind == "momentum");
  CHECK(in.matrices[0].step == 200);
  CHECK(in.matrices[1].kind == "weight");
  CHECK(in.matrices[1].step == 50);
  NsInputSelection sel;
  sel.kind = "weight";
  sel.step = 300;
  in = select_ns_inputs(f, "f.h5", sel);
  REQUIRE(in.matrices.size() == 1);
  CHECK(in.skipped.size() == 1);  // b has no weight at step 300
  f.records.push_back(record("a", "momentum", 1, "other-run"));
  CHECK_THROWS_AS(select_ns_inputs(f, "f.h5", {}), UsageError);
  sel = {};
  sel.run = "other-run";
  CHECK(select_ns_inputs(f, "f.h5", sel).matrices.size() == 1);
  // A quantile level that is not stored is computed from sigma.
  CHECK(*rel_frob_quantile(in.matrices[0].parts[0], 0.25) ==
        Approx((0.1 + 0.5 * (0.5 - 0.1)) / std::sqrt(1.26)));
}

TEST_CASE("recommend: torch-groups approximation meets the same requirement", "[recommend]") {
  const NsInputs in = planted_inputs();
  RecommendOptions o;
  o.family = "polar-express";
  const NsConfig c = recommend_measured(in, o);
  std::vector<std::string> notes;
  const auto groups = torch_groups(c, 30, "", &notes);
  CHECK(notes.size() == c.parameters.size());
  size_t members = 0;
  for (const TorchGroup& g : groups) {
    CHECK_FALSE(g.exact);
    CHECK_FALSE(g.approximation.empty());
    CHECK(g.requirement_met);
    for (const std::string& name : g.params) {
      const auto it = std::find_if(c.parameters.begin(), c.parameters.end(),
                                   [&](const NsConfigParameter& p) { return p.name == name; });
      REQUIRE(it != c.parameters.end());
      ++members;
      const std::vector<ns::OddPoly> repeated(g.steps, g.coefficients);
      INFO(name << ": " << g.steps << " steps");
      CHECK(all_in_band(repeated, 0.0, g.steps, grid(it->lower_bound), c.provenance.band));
    }
  }
  CHECK(members == c.parameters.size());
  const nlohmann::json j = torch_groups_to_json(c, groups);
  CHECK(j["format"] == kTorchGroupsFormat);
  // Keller Jordan's repeated triple is expressed exactly.
  const NsConfig k = recommend_measured(in, RecommendOptions{});
  for (const TorchGroup& g : torch_groups(k, 30, "", nullptr)) {
    CHECK(g.exact);
    CHECK(g.coefficients == ns::builtin_schedule("keller").polys.front());
  }
}

TEST_CASE("recommend: NaN and above-1 lower bounds skip the parameter with its record", "[recommend]") {
  for (const char* family : {"keller", "designed"}) {
    INFO(family);
    NsInputs in = planted_inputs();
    in.matrices[1].parts[0].record = "rec-up";
    in.matrices[2].parts[0].record = "rec-down";
    QuantileValue v;
    v.q = 0.05;
    v.rel_frob = std::nan("");
    in.matrices[1].parts[0].quantiles = {v};
    v.rel_frob = 5.0;
    in.matrices[2].parts[0].quantiles = {v};
    RecommendOptions o;
    o.family = family;
    std::vector<std::string> skipped;
    const NsConfig c = recommend_measured(in, o, &skipped);
    REQUIRE(skipped.size() == 2);
    CHECK_THAT(skipped[0], Catch::Contains("layers.0.up.weight") && Catch::Contains("rec-up") && Catch::Contains("NaN"));
    CHECK_THAT(skipped[1], Catch::Contains("layers.1.down.weight") && Catch::Contains("rec-down") &&
                               Catch::Contains("above 1"));
    REQUIRE(c.parameters.size() == 2);
    for (const auto& p : c.parameters) {
      CHECK(std::isfinite(p.lower_bound));
      CHECK(std::isfinite(p.image.lo));
      CHECK(std::isfinite(p.image.hi));
    }
    // A margin below 1 can push a valid quantile above 1: skipped as well.
    o.margin = 1e-9;
    skipped.clear();
    CHECK(recommend_measured(planted_inputs(), o, &skipped).parameters.empty());
    CHECK(skipped.size() == 4);
  }
}

TEST_CASE("recommend: the config validator names the problem", "[recommend]") {
  const NsConfig c = recommend_measured(planted_inputs(), RecommendOptions{});
  nlohmann::json j = ns_config_to_json(c);
  REQUIRE(ns_config_problem(j) == "");
  nlohmann::json bad = j;
  bad["format"] = "other";
  CHECK(ns_config_problem(bad).find("format") != std::string::npos);
  bad = j;
  bad["parameters"]["layers.0.q.weight"]["steps"] = 9;
  CHECK(ns_config_problem(bad).find("9 steps") != std::string::npos);
  bad = j;
  bad["default"]["coefficients"][0] = {1.0, 2.0};
  CHECK(ns_config_problem(bad).find("default") != std::string::npos);
  bad = j;
  bad["patterns"] = {{{"regex", "(?P<l>\\d+)"}, {"layers", {0, 1}}}};
  CHECK(ns_config_problem(bad).find("named groups") != std::string::npos);
  // Wrong types are problems, not json type_errors.
  for (const nlohmann::json& f : {nlohmann::json(7), nlohmann::json::array({"muspec.ns_config"}), nlohmann::json()}) {
    bad = j;
    bad["format"] = f;
    CHECK(ns_config_problem(bad).find("'format'") != std::string::npos);
  }
  bad = j;
  bad.erase("format");
  CHECK(ns_config_problem(bad).find("'format'") != std::string::npos);
  for (const nlohmann::json& m : {nlohmann::json(1), nlohmann::json::object(), nlohmann::json(true)}) {
    bad = j;
    bad["provenance"]["mode"] = m;
    CHECK(ns_config_problem(bad).find("provenance.mode") != std::string::npos);
  }
}

// ---------------------------------------------------------------- predicted mode (laws)
namespace {

analysis::FittedLaw planted_law(const std::string& name, const std::string& op, int from_end, double log_a,
                                double beta) {
  analysis::FittedLaw l;
  l.group.name = name;
  l.group.op_type = op;
  l.group.layer_from_end = from_end;
  l.quantile_level = 0.05;
  l.log_a = log_a, l.beta = beta;
  l.se_log_a = 0.05, l.se_beta = 0.005, l.residual_scale = 0.1, l.dof = 3;
  l.params_min = 1e8, l.params_max = 1e9, l.num_sizes = l.num_runs = 5;
  return l;
}

}  // namespace

TEST_CASE("recommend: predicted mode writes name patterns from the laws' lower bounds", "[recommend][laws]") {
  TempDir dir("laws");
  analysis::LawSet laws;
  laws.kind = "momentum";
  laws.quantiles = {0.05};
  laws.laws = {planted_law("q", "q", -1, std::log(0.5), -0.25),
               planted_law("down/layer-from-end:0", "down", 0, std::log(0.5), -0.6)};
  const std::string path = dir.file("laws.json");
  analysis::write_laws_json(path, laws);
  LawsTarget t;
  t.params = 7e10;
  t.layers = 8;
  RecommendOptions o;
  o.margin = 1.5;
  o.precision = ns::Precision::F64;  // the exact scalar map (the bf16 floor is tested above)
  std::vector<std::string> uncovered;
  const NsConfig c = recommend_predicted(path, t, o, &uncovered);
  CHECK(ns_config_problem(ns_config_to_json(c)) == "");
  CHECK(c.provenance.mode == "predicted");
  CHECK(*c.provenance.target_params == 7e10);
  REQUIRE(c.patterns.size() == 2);
  const auto preds = analysis::predict_laws(laws, 7e10, 0.95);
  const NsConfigPattern& q = c.patterns[0];
  CHECK(q.op_type == "q");
  CHECK(q.first_layer == 0);
  CHECK(q.last_layer == 7);
  CHECK(q.bound_kind == "predicted_lower");
  CHECK(q.lower_bound == Approx(preds[0].lower / 1.5));
  CHECK(q.extrapolated);
  const NsConfigPattern& down = c.patterns[1];
  CHECK(down.first_layer == 7);
  CHECK(down.last_layer == 7);
  CHECK(down.lower_bound == Approx(preds[1].lower / 1.5));
  REQUIRE(uncovered.size() == 6);  // k, v, o, gate, up: no law; down in blocks 0-6
  CHECK(uncovered.back().find("down in blocks 0-6") != std::string::npos);
  // The regex full-matches Llama names and captures the block index.
  std::smatch m;
  const std::string name = "model.layers.3.self_attn.q_proj.weight";
  REQUIRE(std::regex_match(name, m, std::regex(q.regex)));
  CHECK(m[1] == "3");
  CHECK_FALSE(std::regex_match(std::string("model.layers.3.self_attn.k_proj.weight"), std::regex(q.regex)));
  // The steps reach the band from the bound, and one fewer does not (by hand).
  for (const NsConfigPattern* p : {&q, &down}) {
    REQUIRE(p->requirement_met);
    CHECK(all_in_band(p->setting.coefficients, 0.0, p->setting.steps, grid(p->lower_bound), c.provenance.band));
    CHECK_FALSE(all_in_band(p->setting.coefficients, 0.0, p->setting.steps - 1, grid(p->lower_bound, 20000),
                            c.provenance.band));
  }
  CHECK(concrete_name(q.regex, 5, "model.") == "model.layers.5.self_attn.q_proj.weight");
  // A quantile without a law is refused with the available levels.
  o.quantile = 0.5;
  CHECK_THROWS_WITH(recommend_predicted(path, t, o), Catch::Contains("0.05 (rel_frob)"));
  t.layers.reset();
  o.quantile = 0.05;
  CHECK_THROWS_WITH(recommend_predicted(path, t, o), Catch::Contains("--layers"));
}

TEST_CASE("recommend: at bf16 a lower bound under the floor is not promised, the band is widened", "[recommend]") {
  const NsInputs in = planted_inputs();
  RecommendOptions exact;
  exact.quantile = 0.1;
  exact.precision = ns::Precision::F64;
  RecommendOptions bf16 = exact;
  bf16.precision = ns::Precision::BF16;
  const NsConfig a = recommend_measured(in, exact), b = recommend_measured(in, bf16);
  REQUIRE(a.parameters.size() == b.parameters.size());
  CHECK(b.provenance.precision == "bf16");
  CHECK(b.provenance.precision_band->lo == Approx(a.provenance.band.lo - kBf16BandAllowance));
  CHECK(b.provenance.precision_band->hi == Approx(a.provenance.band.hi + kBf16BandAllowance));
  int under = 0;
  for (size_t i = 0; i < a.parameters.size(); ++i) {
    const auto& pa = a.parameters[i];
    const auto& pb = b.parameters[i];
    CHECK(pa.setting.steps == pb.setting.steps);  // the same schedule; only the promise differs
    if (pa.lower_bound < kBf16Floor) {
      ++under;
      CHECK_FALSE(pb.requirement_met);
    } else {
      CHECK(pb.requirement_met == pa.requirement_met);
    }
  }
  CHECK(under > 0);  // the planted spectra reach under the floor, so the check above ran
}
