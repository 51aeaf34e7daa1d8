// The Gaussian null of the scaling laws (analysis/laws/laws_null_model.h, analysis/laws/laws_null.h):
// the bidiagonal draws agree with dense Gaussian SVDs; simulated quantiles reproduce the
// Marchenko–Pastur quantiles of an independent oracle (numeric integration, mp_oracle.h);
// beta_null is -1/4 for square matrices against M ~ n^2 and follows the MP slope for shapes of
// changing aspect; its standard error matches its spread over seeds; a planted law at the null
// is rarely called different, one far from it always; laws.json keeps the comparison.
#include <catch2/catch.hpp>

#include <Eigen/Dense>

#include <cmath>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "laws/burn_in.h"
#include "core/error.h"
#include "laws/laws.h"
#include "laws/laws_null.h"
#include "laws/laws_null_model.h"
#include "mp_oracle.h"
#include "laws/power_law.h"
#include "spectra/summary.h"
#include "test_support.h"

using namespace muspec::analysis;

namespace {

double mean_log_quantile(const std::vector<std::vector<double>>& spectra, const std::vector<double>& frob, double q) {
  double s = 0;
  for (size_t k = 0; k < spectra.size(); ++k) s += std::log(muspec::quantile_linear(spectra[k], q) / frob[k]);
  return s / static_cast<double>(spectra.size());
}

/// Runs with the given square sizes n (M = 12 n^2), `members` matrices each, whose settled
/// log-quantile is log_value(n) plus per-matrix (sd 0.05) and per-step (sd 0.02) noise.
template <class F>
std::vector<RunSample> square_runs(const std::vector<int64_t>& ns, int members, F log_value, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<RunSample> runs;
  for (int64_t n : ns) {
    RunSample run;
    run.run = "n" + std::to_string(n);
    run.model_params = 12.0 * static_cast<double>(n * n);
    for (int j = 0; j < members; ++j) {
      MatrixSample m;
      m.parameter = "layers." + std::to_string(j) + ".q";
      m.rows = m.cols = n;
      const double offset = 0.05 * normal(rng);
      for (int k = 0; k < 8; ++k) m.settled_log_values.push_back(log_value(n, run.model_params) + offset + 0.02 * normal(rng));
      m.log_median = median_of(m.settled_log_values);
      m.log_scale = robust_scale(m.settled_log_values);
      run.matrices.push_back(std::move(m));
    }
    runs.push_back(std::move(run));
  }
  return runs;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

GroupSelector group_q() { return GroupSelector{"q", "q", 0, 1, -1}; }

}  // namespace

TEST_CASE("bidiagonal Gaussian draws match dense Gaussian SVDs", "[laws][null]") {
  for (auto [rows, cols] : {std::pair<int, int>{12, 30}, {20, 20}, {40, 9}}) {
    std::mt19937_64 rng(5);
    std::normal_distribution<double> normal(0.0, 1.0);
    const int draws = 1500;
    std::vector<std::vector<double>> bidiag, dense;
    std::vector<double> f_bidiag, f_dense;
    for (int k = 0; k < draws; ++k) {
      double frob = 0;
      bidiag.push_back(gaussian_singular_values(rows, cols, rng, &frob));
      f_bidiag.push_back(frob);
      double sum2 = 0;
      for (double s : bidiag.back()) sum2 += s * s;
      REQUIRE(std::sqrt(sum2) == Approx(frob).epsilon(1e-10));  // ||X||_F^2 = sum sigma^2
      Eigen::MatrixXd x(rows, cols);
      for (int i = 0; i < rows; ++i)
        for (int j = 0; j < cols; ++j) x(i, j) = normal(rng);
      Eigen::VectorXd sv = Eigen::JacobiSVD<Eigen::MatrixXd>(x).singularValues();
      dense.emplace_back(sv.data(), sv.data() + sv.size());
      std::sort(dense.back().begin(), dense.back().end());
      f_dense.push_back(x.norm());
    }
    for (double q : {0.05, 0.25, 0.5, 0.95}) {
      // Per-draw sd of a log quantile is below 0.6 here; 4 combined standard errors.
      const double tol = 4 * 0.6 * std::sqrt(2.0 / draws);
      INFO(rows << "x" << cols << " q=" << q);
      CHECK(std::fabs(mean_log_quantile(bidiag, f_bidiag, q) - mean_log_quantile(dense, f_dense, q)) < tol);
    }
  }
}

TEST_CASE("simulated Gaussian quantiles reproduce Marchenko-Pastur quantiles", "[laws][null]") {
  // The oracle's total mass is 1 (a check on the quadrature itself).
  CHECK(muspec_test::mp_cdf_at_t(1.0, std::acos(-1.0)) == Approx(1.0).epsilon(1e-6));
  CHECK(muspec_test::mp_cdf_at_t(0.3, std::acos(-1.0)) == Approx(1.0).epsilon(1e-6));
  const std::vector<double> levels = {0.05, 0.25, 0.5, 0.75, 0.95};
  GaussianNull null(levels, "rel_frob", 20, 3);
  for (auto [rows, cols] : {std::pair<int, int>{300, 300}, {400, 800}, {1200, 300}}) {
    for (double q : levels) {
      const NullStats s = null.stats(rows, cols, q);
      REQUIRE(s.ok);
      const double mp = muspec_test::mp_rel_frob_quantile(rows, cols, q);
      INFO(rows << "x" << cols << " q=" << q << ": simulated " << std::exp(s.mean_log) << ", MP " << mp);
      // Finite-size and interpolation effects are O(1/p) (p >= 300): within 1.5 %.
      CHECK(std::fabs(std::exp(s.mean_log) / mp - 1) < 0.015);
    }
  }
}

TEST_CASE("the null is cached per shape, seeded, and independent of query order", "[laws][null]") {
  GaussianNull a({0.05, 0.5}, "rel_frob", 30, 7), b({0.05, 0.5}, "rel_frob", 30, 7), c({0.05, 0.5}, "rel_frob", 30, 8);
  const NullStats first = a.stats(64, 192, 0.5);
  CHECK(a.stats(192, 64, 0.5).mean_log == first.mean_log);  // X and X^T: one shape
  CHECK(a.shapes_simulated() == 1);
  b.stats(32, 32, 0.05);  // another shape first
  CHECK(b.stats(64, 192, 0.5).mean_log == first.mean_log);
  CHECK(c.stats(64, 192, 0.5).mean_log != first.mean_log);
  CHECK(first.se_log > 0);
  CHECK(first.draws == 30);
  // Fewer draws for large shapes (their quantiles scatter ~1/p), never below min(draws, 10).
  CHECK(null_draws_for(200, 256) == 200);
  CHECK(null_draws_for(200, 4096) == 13);
  CHECK(null_draws_for(200, 8192) == 10);
  CHECK(null_draws_for(5, 4096) == 5);
  CHECK(a.stats(512, 512, 0.5).draws == 15);
  CHECK_THROWS_AS(a.stats(64, 192, 0.25), muspec::UsageError);  // not a simulated level
  CHECK_THROWS_AS(GaussianNull({0.5}, "sigma", 30, 1), muspec::UsageError);
  // rel_max: the median over sigma_max of a square Gaussian matrix tends to sqrt(x_med / 4).
  GaussianNull m({0.5}, "rel_max", 10, 1);
  CHECK(std::exp(m.stats(400, 400, 0.5).mean_log) ==
        Approx(std::sqrt(muspec_test::mp_eigen_quantile(1.0, 0.5) / 4.0)).epsilon(0.02));
}

TEST_CASE("beta_null is -1/4 for square matrices and follows the MP slope otherwise", "[laws][null]") {
  std::mt19937_64 rng(11);
  const std::vector<int64_t> ns = {128, 192, 256, 384, 512};
  GaussianNull null({0.05, 0.5}, "rel_frob", 40, 1);
  for (double q : {0.05, 0.5}) {
    auto runs = square_runs(ns, 2, [](int64_t, double m) { return -0.4 * std::log(m); }, rng);
    FittedLaw law = fit_power_law(group_q(), q, "rel_frob", runs, PowerLawOptions{});
    compare_with_null(law, runs, &null);
    REQUIRE(law.null.done);
    INFO("q=" << q << " beta_null " << law.null.beta_null);
    CHECK(std::fabs(law.null.beta_null + 0.25) < 0.01);  // sigma_q / ||X||_F ~ c_MP n^-1/2, M ~ n^2
    CHECK(law.null.diff == Approx(law.beta - law.null.beta_null));
    for (const auto& p : law.points) CHECK(std::isfinite(p.null_log_value));
  }
  // Shapes n x (n + 192): the aspect ratio changes with size, so the null is not -1/4. The
  // oracle's slope is the same weighted fit of the MP values (equal weights: exact data).
  std::vector<RunSample> runs;
  std::vector<double> x, y;
  for (int64_t n : ns) {
    RunSample run{"n" + std::to_string(n), 12.0 * static_cast<double>(n * n), {}, {}};
    MatrixSample m{"q", {0.0}, 0.0, 0.0, n, n + 192};
    run.matrices.push_back(m);
    runs.push_back(run);
    x.push_back(std::log(run.model_params));
    y.push_back(std::log(muspec_test::mp_rel_frob_quantile(static_cast<double>(n), static_cast<double>(n + 192), 0.5)));
  }
  FittedLaw law = fit_power_law(group_q(), 0.5, "rel_frob", runs, PowerLawOptions{});
  compare_with_null(law, runs, &null);
  const double oracle = fit_line_wls(x, y, std::vector<double>(x.size(), 1.0)).slope;
  INFO("beta_null " << law.null.beta_null << ", MP slope " << oracle);
  CHECK(std::fabs(oracle + 0.25) > 0.015);  // measurably different from the square case
  CHECK(std::fabs(law.null.beta_null - oracle) < 0.01);
}

TEST_CASE("the null's standard error matches its spread over simulation seeds", "[laws][null]") {
  // Small shapes and few draws make the simulation noise visible; members share shapes.
  std::mt19937_64 rng(2);
  const std::vector<int64_t> ns = {8, 12, 16, 24, 32};
  auto runs = square_runs(ns, 3, [](int64_t, double m) { return -0.3 * std::log(m); }, rng);
  FittedLaw law = fit_power_law(group_q(), 0.05, "rel_frob", runs, PowerLawOptions{});
  std::vector<double> betas, ses;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    GaussianNull null({0.05}, "rel_frob", 10, seed);
    compare_with_null(law, runs, &null);
    betas.push_back(law.null.beta_null), ses.push_back(law.null.se_beta_null);
  }
  double mean = 0, ss = 0;
  for (double b : betas) mean += b / betas.size();
  for (double b : betas) ss += (b - mean) * (b - mean);
  const double spread = std::sqrt(ss / (betas.size() - 1)), reported = median_of(ses);
  INFO("spread over seeds " << spread << ", reported se " << reported);
  CHECK(reported / spread > 0.8);
  CHECK(reported / spread < 1.25);
}

TEST_CASE("a law at the null is not called different, one far from it is", "[laws][null][planted]") {
  const std::vector<int64_t> ns = {64, 96, 128, 192, 256};
  GaussianNull null({0.5}, "rel_frob", 100, 1);
  auto at_null = [](int64_t n, double) { return std::log(muspec_test::mp_rel_frob_quantile(n, n, 0.5)) - 1.0; };
  auto steeper = [](int64_t n, double m) {
    return std::log(muspec_test::mp_rel_frob_quantile(n, n, 0.5)) - 0.3 * std::log(m / 1e5);
  };
  int differ_at_null = 0, differ_far = 0, seeds = 300;
  for (int seed = 0; seed < seeds; ++seed) {
    std::mt19937_64 rng(100 + seed);
    for (int far = 0; far < 2; ++far) {
      auto runs = far ? square_runs(ns, 3, steeper, rng) : square_runs(ns, 3, at_null, rng);
      FittedLaw law = fit_power_law(group_q(), 0.5, "rel_frob", runs, PowerLawOptions{});
      compare_with_null(law, runs, &null);
      REQUIRE(law.null.done);
      (far ? differ_far : differ_at_null) += law.null.differs;
      if (far) CHECK(law.null.diff == Approx(-0.3).margin(0.1));
    }
  }
  INFO("at the null: " << differ_at_null << " of " << seeds << " called different; far: " << differ_far);
  CHECK(differ_at_null <= seeds / 10);  // a 95 % interval: about 5 % false alarms
  CHECK(differ_far == seeds);
}

TEST_CASE("no null without shapes, on the sigma scale, or for refused laws", "[laws][null]") {
  std::mt19937_64 rng(4);
  GaussianNull null({0.5}, "rel_frob", 10, 1);
  auto runs = square_runs({16, 32, 64}, 1, [](int64_t, double m) { return -0.3 * std::log(m); }, rng);
  FittedLaw law = fit_power_law(group_q(), 0.5, "rel_frob", runs, PowerLawOptions{});
  CHECK(law.one_member_per_run);
  runs[1].matrices[0].rows = 0;
  compare_with_null(law, runs, &null);
  CHECK_FALSE(law.null.done);
  CHECK(law.null.note.find("shape") != std::string::npos);
  FittedLaw raw = fit_power_law(group_q(), 0.5, "sigma", runs, PowerLawOptions{});
  compare_with_null(raw, runs, &null);
  CHECK_FALSE(raw.null.done);
  runs.pop_back();
  FittedLaw refused = fit_power_law(group_q(), 0.5, "rel_frob", runs, PowerLawOptions{});
  compare_with_null(refused, runs, &null);
  CHECK(refused.status == "refused");
  CHECK_FALSE(refused.null.done);
}

TEST_CASE("laws.json keeps the null comparison, older files read without it", "[laws][null][io]") {
  muspec_test::TempDir dir("laws_null");
  std::mt19937_64 rng(9);
  GaussianNull null({0.5}, "rel_frob", 20, 1);
  auto runs = square_runs({32, 64, 128, 256}, 2, [](int64_t, double m) { return -0.5 * std::log(m); }, rng);
  LawSet set;
  set.kind = "momentum", set.params_definition = "non-embedding", set.params_sources = {"weights:non-embedding"};
  set.null_model = "gaussian-simulation", set.null_draws = 20, set.null_seed = 18446744073709551615ull;
  set.laws.push_back(fit_power_law(group_q(), 0.5, "rel_frob", runs, PowerLawOptions{}));
  compare_with_null(set.laws[0], runs, &null);
  REQUIRE(set.laws[0].null.differs);  // -0.5 against -0.25
  const std::string path = dir.file("laws.json");
  write_laws_json(path, set);
  const LawSet back = read_laws_json(path);
  CHECK(back.params_definition == "non-embedding");
  CHECK(back.params_sources == set.params_sources);
  CHECK(back.null_model == "gaussian-simulation");
  CHECK(back.null_seed == set.null_seed);
  const NullComparison& n = back.laws[0].null;
  CHECK(n.done);
  CHECK(n.differs);
  CHECK(n.beta_null == Approx(set.laws[0].null.beta_null));
  CHECK(n.diff_ci_hi == Approx(set.laws[0].null.diff_ci_hi));
  CHECK(back.laws[0].points[0].null_log_value == Approx(set.laws[0].points[0].null_log_value));

  nlohmann::json doc = nlohmann::json::parse(muspec_test::read_text(path));
  for (const char* key : {"params_definition", "params_sources", "null_model"}) doc.erase(key);
  doc["laws"][0].erase("null"), doc["laws"][0].erase("one_member_per_run");
  for (auto& r : doc["laws"][0]["runs"]) r.erase("null_log_value");
  write_text(path, doc.dump());
  const LawSet old = read_laws_json(path);
  CHECK(old.null_model.empty());
  CHECK_FALSE(old.laws[0].null.done);
  CHECK(std::isnan(old.laws[0].points[0].null_log_value));
  doc["laws"][0]["null"] = {{"done", true}, {"beta_null", "x"}};
  write_text(path, doc.dump());
  CHECK_THROWS_WITH(read_laws_json(path), Catch::Contains("laws[0].null.beta_null"));
}
