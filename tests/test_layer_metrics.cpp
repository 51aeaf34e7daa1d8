// Layer metrics (lib/spectra/layer_metrics.h): the power-law fit against the R package
// poweRlaw (an independent implementation of Clauset-Shalizi-Newman), closed forms on Pareto
// samples and on matrices whose spectra are known, and the scan outputs that carry them.
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "spectra/layer_metrics.h"
#include "store/spectra_store.h"
#include "test_support.h"

// Raw HDF5 reads the store's /summary columns and deletes attributes to make an older store,
// independently of the store's code (same header search as tests/test_store.cpp).
#include "raw_hdf5.h"

using muspec::compute_layer_metrics;
using muspec::fit_power_law;
using muspec::LayerMetrics;
using muspec_test::TempDir;

namespace {

// Pareto(alpha, xmin) by inversion: xmin (1 - u)^(-1 / (alpha - 1)).
std::vector<double> pareto(size_t n, double alpha, double xmin, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> x(n);
  for (double& v : x) v = xmin * std::pow(1.0 - u(rng), -1.0 / (alpha - 1.0));
  std::sort(x.begin(), x.end());
  return x;
}

// A heavy-tailed "spectrum": a bulk of squared uniforms and a Pareto tail above it.
std::vector<double> heavy_tailed_spectrum(uint64_t seed, size_t bulk, size_t tail, double alpha) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> x;
  for (size_t i = 0; i < bulk; ++i) x.push_back(0.05 + 0.9 * u(rng) * u(rng));
  for (size_t i = 0; i < tail; ++i) x.push_back(0.6 * std::pow(1.0 - u(rng), -1.0 / (alpha - 1.0)));
  std::sort(x.begin(), x.end());
  return x;
}

bool rscript_with_powerlaw() {
  return muspec_test::run_command("Rscript -e 'suppressPackageStartupMessages(library(poweRlaw))'").exit_code == 0;
}

// True when the oracle can run; in CI (CI set) a missing R fails the test instead of skipping.
bool oracle_available() {
  if (rscript_with_powerlaw()) return true;
  if (std::getenv("CI") != nullptr) FAIL("CI: Rscript with poweRlaw (Debian r-cran-powerlaw) is missing");
  WARN("Rscript with poweRlaw (Debian r-cran-powerlaw) not found: poweRlaw oracle skipped");
  return false;
}

struct OracleFit {
  double xmin, alpha, d;
  long ntail;
  double alpha_search, d_search;  // estimate_xmin's own (optimizer) values
};

// Runs tests/oracles/powerlaw_fit.R on each data set, in one R process.
std::vector<OracleFit> powerlaw_oracle(const std::vector<std::vector<double>>& sets) {
  TempDir dir("plfit");
  std::string args;
  for (size_t k = 0; k < sets.size(); ++k) {
    std::string text;
    char buf[40];
    for (double v : sets[k]) std::snprintf(buf, sizeof buf, "%.17g\n", v), text += buf;
    const std::string path = dir.file("set" + std::to_string(k) + ".txt");
    muspec_test::write_bytes(path, text);
    args += " '" + path + "'";
  }
  const auto r = muspec_test::run_command("Rscript '" + muspec_test::source_dir() + "/tests/oracles/powerlaw_fit.R'" + args);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::vector<OracleFit> out;
  std::istringstream in(r.out);
  OracleFit f{};
  while (in >> f.xmin >> f.alpha >> f.d >> f.ntail >> f.alpha_search >> f.d_search) out.push_back(f);
  REQUIRE(out.size() == sets.size());
  return out;
}

std::vector<OracleFit> check_against_oracle(const std::vector<std::vector<double>>& sets) {
  const auto oracle = powerlaw_oracle(sets);
  for (size_t k = 0; k < sets.size(); ++k) {
    const auto fit = fit_power_law(sets[k]);
    INFO("set " << k << " (" << sets[k].size() << " values): muspec xmin " << fit.xmin << " alpha " << fit.alpha
                << " D " << fit.ks_distance << "; poweRlaw xmin " << oracle[k].xmin << " alpha " << oracle[k].alpha
                << " D " << oracle[k].d);
    CHECK(fit.xmin == Approx(oracle[k].xmin).epsilon(1e-12));
    CHECK(fit.n_tail == oracle[k].ntail);
    CHECK(fit.alpha == Approx(oracle[k].alpha).epsilon(1e-6));
    CHECK(fit.ks_distance == Approx(oracle[k].d).epsilon(1e-6));
    // estimate_xmin's own numbers come from L-BFGS-B: still >= 4 significant digits.
    CHECK(fit.alpha == Approx(oracle[k].alpha_search).epsilon(1e-4));
    CHECK(fit.ks_distance == Approx(oracle[k].d_search).epsilon(1e-4));
  }
  return oracle;
}

// Eigenvalues of the reliable, non-zero singular values: what compute_layer_metrics fits.
std::vector<double> fitted_eigenvalues(const muspec::SpectrumRecord& r) {
  std::vector<double> lambda;
  for (double s : r.sigma)
    if (s > 0.0 && s >= r.floor) lambda.push_back(s * s);
  return lambda;
}

// Singular values of a tall w from the eigenvalues of w^T w (Eigen's symmetric solver: cheap
// enough for the unoptimized sanitizer build, unlike a Jacobi SVD of the whole matrix).
std::vector<double> singular_values(const Eigen::MatrixXd& w) {
  const Eigen::MatrixXd gram = w.transpose() * w;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(gram, Eigen::EigenvaluesOnly);
  std::vector<double> out;
  for (Eigen::Index i = 0; i < eig.eigenvalues().size(); ++i) out.push_back(std::sqrt(std::max(0.0, eig.eigenvalues()[i])));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("power-law alpha of Pareto samples lies within its standard error of the truth", "[layer_metrics]") {
  for (double alpha : {1.5, 2.5, 4.0}) {
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      const auto x = pareto(3000, alpha, 2.0, seed);
      const auto fit = fit_power_law(x);
      INFO("alpha " << alpha << " seed " << seed << ": fitted " << fit.alpha << " +- " << fit.std_error << " xmin "
                    << fit.xmin << " n " << fit.n_tail);
      CHECK(std::abs(fit.alpha - alpha) < 4.0 * fit.std_error + 0.02);
      CHECK(fit.std_error == Approx((fit.alpha - 1.0) / std::sqrt(static_cast<double>(fit.n_tail))));
      // Closed form at the chosen xmin: 1 + n / sum ln(x / xmin), summed directly.
      double logs = 0.0;
      for (double v : x)
        if (v >= fit.xmin) logs += std::log(v / fit.xmin);
      CHECK(fit.alpha == Approx(1.0 + static_cast<double>(fit.n_tail) / logs).epsilon(1e-10));
      CHECK(fit.xmin >= 2.0);
    }
  }
}

TEST_CASE("power-law fit equals poweRlaw's estimate_xmin on heavy-tailed spectra", "[layer_metrics][oracle]") {
  if (!oracle_available()) return;
  std::vector<std::vector<double>> sets;
  for (uint64_t seed = 1; seed <= 6; ++seed) sets.push_back(heavy_tailed_spectrum(seed, 300, 120, 2.0 + 0.4 * seed));
  sets.push_back(pareto(500, 3.0, 1.0, 99));
  // Ties, as rank-deficient or quantized spectra have: candidates are the distinct values.
  auto tied = heavy_tailed_spectrum(7, 200, 80, 2.5);
  for (size_t i = 0; i + 1 < tied.size(); i += 7) tied[i + 1] = tied[i];
  sets.push_back(tied);
  check_against_oracle(sets);
}

TEST_CASE("power-law fit equals poweRlaw's on the scanned sample data", "[layer_metrics][oracle]") {
  if (!oracle_available()) return;
  TempDir dir("lmscan");
  const std::string data = muspec_test::source_dir() + "/sample_data";
  const auto r = muspec_test::run_muspec("scan '" + data + "/runs/d40/checkpoint-300' '" + data +
                                         "/numpy/lm_head_sample.npy' '" + data + "/synthetic/power_0.5.safetensors' -o " +
                                         dir.file("s.h5") + " -q");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto store = muspec::read_spectra_h5(dir.file("s.h5"));
  std::vector<std::vector<double>> sets;
  std::vector<const muspec::SpectrumRecord*> records;
  for (const auto& rec : store.records) {
    const auto lambda = fitted_eigenvalues(rec);
    if (lambda.size() < 16 || sets.size() >= 10) continue;
    sets.push_back(lambda);
    records.push_back(&rec);
  }
  REQUIRE(sets.size() >= 6);
  const auto oracle = check_against_oracle(sets);
  // The stored metrics are the fit of exactly those eigenvalues.
  for (size_t k = 0; k < sets.size(); ++k) {
    INFO(records[k]->name);
    CHECK(records[k]->layer_metrics.alpha == Approx(oracle[k].alpha).epsilon(1e-6));
    CHECK(records[k]->layer_metrics.alpha_xmin == Approx(oracle[k].xmin).epsilon(1e-12));
    CHECK(records[k]->layer_metrics.alpha_ks_distance == Approx(oracle[k].d).epsilon(1e-6));
  }
}

TEST_CASE("truncated power-law alpha equals R's optimize() on the truncated likelihood", "[layer_metrics][oracle]") {
  std::vector<std::vector<double>> sets;
  std::vector<double> truth;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    // Truncated Pareto on [1, 50] by inversion, alpha from 0.5 (allowed when truncated) to 3.
    const double alpha = 0.5 + 0.8 * static_cast<double>(seed - 1), lo = 1.0, hi = 50.0;
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<double> x(4000);
    const double a = std::pow(lo, 1.0 - alpha), b = std::pow(hi, 1.0 - alpha);
    for (double& v : x) v = std::pow(a + u(rng) * (b - a), 1.0 / (1.0 - alpha));
    std::sort(x.begin(), x.end());
    sets.push_back(x);
    truth.push_back(alpha);
  }
  for (size_t k = 0; k < sets.size(); ++k) {
    const auto fit = muspec::fit_truncated_power_law(sets[k], sets[k].front(), sets[k].back());
    INFO("planted " << truth[k] << " fitted " << fit.alpha << " D " << fit.ks_distance);
    CHECK(std::abs(fit.alpha - truth[k]) < 0.1);
    CHECK(fit.ks_distance < 0.03);  // the right model: D ~ 1 / sqrt(n)
  }
  if (!oracle_available()) return;
  TempDir dir("tpl");
  std::string args;
  for (size_t k = 0; k < sets.size(); ++k) {
    std::string text;
    char buf[40];
    for (double v : sets[k]) std::snprintf(buf, sizeof buf, "%.17g\n", v), text += buf;
    muspec_test::write_bytes(dir.file(std::to_string(k)), text);
    args += " '" + dir.file(std::to_string(k)) + "'";
  }
  const auto r = muspec_test::run_command("Rscript '" + muspec_test::source_dir() + "/tests/oracles/powerlaw_fit.R' --truncated" + args);
  REQUIRE(r.exit_code == 0);
  std::istringstream in(r.out);
  for (size_t k = 0; k < sets.size(); ++k) {
    double oracle = 0.0;
    REQUIRE(in >> oracle);
    const auto fit = muspec::fit_truncated_power_law(sets[k], sets[k].front(), sets[k].back());
    CHECK(fit.alpha == Approx(oracle).epsilon(1e-6));
  }
}

TEST_CASE("MP fit: a Gaussian matrix is all bulk, planted spikes above the BBP threshold are counted", "[layer_metrics]") {
  // W = G / sqrt(N) + sum_k theta_k u_k v_k^T with G iid N(0, 1), N x M = 600 x 200 (Q = 3):
  // the bulk of W^T W is MP with sigma^2 = 1 and edge (1 + 1/sqrt(Q))^2 = 2.488; a rank-one
  // perturbation theta > Q^(-1/4) = 0.76 leaves the bulk (Benaych-Georges & Nadakuditi 2012).
  std::mt19937_64 rng(5);
  std::normal_distribution<double> g(0.0, 1.0);
  const int n = 600, m = 200;
  Eigen::MatrixXd w(n, m);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) w(i, j) = g(rng) / std::sqrt(static_cast<double>(n));
  const auto bulk = compute_layer_metrics(singular_values(w), n, m, 0.0);
  INFO("bulk only: softrank " << bulk.mp_softrank << " bulk_max " << bulk.mp_bulk_max << " spikes " << bulk.num_spikes);
  CHECK(bulk.num_spikes == 0);
  CHECK(bulk.mp_softrank > 0.85);
  CHECK(bulk.mp_softrank < 1.1);
  CHECK(bulk.mp_bulk_max == Approx(std::pow(1.0 + 1.0 / std::sqrt(3.0), 2.0)).epsilon(0.1));
  for (int k = 0; k < 3; ++k) {
    Eigen::VectorXd u = Eigen::VectorXd::NullaryExpr(n, [&] { return g(rng); }).normalized();
    Eigen::VectorXd v = Eigen::VectorXd::NullaryExpr(m, [&] { return g(rng); }).normalized();
    w += (3.0 + k) * u * v.transpose();
  }
  const auto spiked = compute_layer_metrics(singular_values(w), n, m, 0.0);
  INFO("3 spikes: softrank " << spiked.mp_softrank << " spikes " << spiked.num_spikes);
  CHECK(spiked.num_spikes == 3);
  // lambda_max of a spike theta: (1 + theta^2)(Q + theta^2) / (Q theta^2) for Q >= 1 here in W^T W units.
  CHECK(spiked.mp_softrank < 0.3);
}

TEST_CASE("norms and matrix entropy match their closed forms", "[layer_metrics]") {
  // Orthogonal-like spectrum: all sigma equal, p = 1/r, entropy 1.
  const std::vector<double> flat(50, 0.7);
  const auto f = compute_layer_metrics(flat, 80, 50, 0.0);
  CHECK(f.matrix_entropy == Approx(1.0).epsilon(1e-6));
  CHECK(f.log_norm == Approx(std::log10(50 * 0.49)));
  CHECK(f.log_spectral_norm == Approx(std::log10(0.49)));
  CHECK(std::isnan(f.alpha));  // one distinct value: no power law
  CHECK(f.note.find("alpha") != std::string::npos);

  const auto x = heavy_tailed_spectrum(3, 300, 100, 2.5);
  std::vector<double> sigma;
  for (double v : x) sigma.push_back(std::sqrt(v));
  const auto lm = compute_layer_metrics(sigma, 500, 400, 0.0);
  double sum = 0.0, sum_alpha = 0.0, entropy = 0.0;
  for (double v : x) sum += v, sum_alpha += std::pow(v, lm.alpha);
  for (double v : x) entropy -= (v / sum + 1e-10) * std::log(v / sum + 1e-10);
  CHECK(lm.log_norm == Approx(std::log10(sum)).epsilon(1e-12));
  CHECK(lm.log_spectral_norm == Approx(std::log10(x.back())).epsilon(1e-12));
  CHECK(lm.alpha_weighted == Approx(lm.alpha * std::log10(x.back())).epsilon(1e-12));
  CHECK(lm.log_alpha_norm == Approx(std::log10(sum_alpha)).epsilon(1e-10));
  CHECK(lm.matrix_entropy == Approx(entropy / std::log(400.0)).epsilon(1e-9));
  CHECK(lm.num_pl_spikes == std::count_if(x.begin(), x.end(), [&](double v) { return v >= lm.alpha_xmin; }));
  CHECK(lm.note.empty());
}

TEST_CASE("tiny, rank-deficient and zero matrices give NaN with a reason, never an exception", "[layer_metrics]") {
  const auto zero = compute_layer_metrics({0.0, 0.0, 0.0}, 3, 4, 0.0);
  CHECK(std::isnan(zero.alpha));
  CHECK(std::isnan(zero.log_norm));
  CHECK(zero.num_spikes == -1);
  CHECK(!zero.note.empty());
  const auto one = compute_layer_metrics({2.0}, 1, 7, 0.0);
  CHECK(one.log_spectral_norm == Approx(std::log10(4.0)));
  CHECK(std::isnan(one.alpha));
  CHECK(std::isnan(one.mp_softrank));
  CHECK(std::isnan(one.matrix_entropy));
  // Rank 1 of 5: entropy undefined (ln rank = 0), alpha undefined; MP still fits.
  const auto rank1 = compute_layer_metrics({0.0, 0.0, 0.0, 0.0, 3.0}, 5, 9, 0.0);
  CHECK(std::isnan(rank1.matrix_entropy));
  CHECK(std::isnan(rank1.alpha));
  CHECK(rank1.note.find("matrix_entropy") != std::string::npos);
  // Values below the floor are left out of the fit: 3 reliable values are the minimum.
  const auto floored = compute_layer_metrics({1e-9, 2e-9, 0.5, 1.0, 2.0}, 5, 5, 1e-6);
  CHECK(floored.num_pl_spikes >= 2);
  CHECK(floored.alpha_xmin >= 0.25);
  // sigma^2 underflowing to 0 counts as a zero eigenvalue (a fit of 0 would throw).
  LayerMetrics underflow;
  CHECK_NOTHROW(underflow = compute_layer_metrics({1e-300, 1e-200, 1e-190, 1e-100, 1e-90}, 5, 6, 0.0));
  CHECK(std::isnan(underflow.alpha));
  const auto overflow = compute_layer_metrics({1.0, 2.0, 1e200}, 3, 3, 0.0);
  CHECK(std::isnan(overflow.alpha));
  CHECK(overflow.note.find("overflow") != std::string::npos);
}

namespace {

// The cells of CSV column `name` (no quoted commas in the numeric columns read here).
std::vector<std::string> csv_column(const std::string& csv, const std::string& name) {
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  auto split = [](const std::string& l) {
    std::vector<std::string> cells;
    std::string cell;
    bool quoted = false;
    for (char c : l) {
      if (c == '"') quoted = !quoted;
      else if (c == ',' && !quoted) cells.push_back(cell), cell.clear();
      else cell += c;
    }
    cells.push_back(cell);
    return cells;
  };
  const auto header = split(line);
  const auto at = std::find(header.begin(), header.end(), name);
  REQUIRE(at != header.end());
  std::vector<std::string> out;
  while (std::getline(in, line)) out.push_back(split(line)[static_cast<size_t>(at - header.begin())]);
  return out;
}

}  // namespace

TEST_CASE("scan outputs carry the layer metrics: CSV, JSON and spectra.h5 agree", "[layer_metrics][cli]") {
  TempDir dir("lmout");
  const std::string in = muspec_test::source_dir() + "/sample_data/synthetic/power_0.5.safetensors";
  const auto r = muspec_test::run_muspec("scan '" + in + "' -o " + dir.file("s.h5") + " --summary " + dir.file("s.csv") +
                                         " --json " + dir.file("s.json") + " -q");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto store = muspec::read_spectra_h5(dir.file("s.h5"));
  const auto json = nlohmann::json::parse(muspec_test::read_text(dir.file("s.json")));
  const std::string csv = muspec_test::read_text(dir.file("s.csv"));
  REQUIRE(json["matrices"].size() == store.records.size());
  for (const auto& f : muspec::layer_metric_fields()) {
    INFO("column " << f.name);
    const auto cells = csv_column(csv, f.name);
    REQUIRE(cells.size() == store.records.size());
    for (size_t i = 0; i < cells.size(); ++i) {
      const auto& lm = store.records[i].layer_metrics;
      const auto& j = json["matrices"][i][f.name];
      if (f.real) {
        const double v = lm.*f.real;
        if (std::isnan(v)) {
          CHECK(cells[i] == "nan");
          CHECK(j.is_null());
        } else {
          CHECK(std::stod(cells[i]) == v);
          CHECK(j.get<double>() == v);
        }
      } else {
        CHECK(std::stoll(cells[i]) == lm.*f.count);
      }
    }
  }
  // The stored numbers are the metrics of the stored sigma.
  for (const auto& rec : store.records) {
    const auto again = compute_layer_metrics(rec.sigma, rec.rows, rec.cols, rec.floor);
    CHECK(rec.layer_metrics.alpha == again.alpha);
    CHECK(rec.layer_metrics.mp_softrank == again.mp_softrank);
    CHECK(rec.layer_metrics.note == again.note);
  }
#ifdef MUSPEC_TEST_HDF5
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  {  // /summary/alpha, read raw
    const hid_t f = H5Fopen(dir.file("s.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    REQUIRE(f >= 0);
    const hid_t d = H5Dopen2(f, "/summary/alpha", H5P_DEFAULT);
    REQUIRE(d >= 0);
    std::vector<double> alpha(store.records.size());
    REQUIRE(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, alpha.data()) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    for (size_t i = 0; i < alpha.size(); ++i) CHECK(alpha[i] == store.records[i].layer_metrics.alpha);
  }
  {  // An older store, without the metric attributes, still reads; the metrics are recomputed.
    const hid_t f = H5Fopen(dir.file("s.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    for (size_t i = 0; i < store.records.size(); ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "/spectra/%06zu", i);
      const hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
      REQUIRE(d >= 0);
      for (const auto& field : muspec::layer_metric_fields()) REQUIRE(H5Adelete(d, field.name) >= 0);
      REQUIRE(H5Adelete(d, "layer_metrics_note") >= 0);
      H5Dclose(d);
    }
    REQUIRE(H5Adelete_by_name(f, "/summary", "record_columns", H5P_DEFAULT) >= 0);  // older stores have no marker
    H5Fclose(f);
  }
  const auto old = muspec::read_spectra_h5(dir.file("s.h5"));
  REQUIRE(old.records.size() == store.records.size());
  for (size_t i = 0; i < old.records.size(); ++i) {
    CHECK(old.records[i].layer_metrics.alpha == store.records[i].layer_metrics.alpha);
    CHECK(old.records[i].layer_metrics.num_spikes == store.records[i].layer_metrics.num_spikes);
  }
#endif
}
