// CPU route probe: where the time of muspec's float64 Gram route goes, per phase, and which
// tridiagonal reduction is faster per size and thread count (the table behind
// lapack::faster_tridiagonal, docs/spectral-methods.md "Eigensolver routes").
//
//   muspec_bench_cpu_routes [--rounds R] [--threads 1,2] N[xM] ...
//
// Per shape and thread count, R interleaved rounds of: a fresh zero-filled std::vector of the
// matrix (what each matrix cost before the workspace), filling a reused buffer, dsyrk (Gram),
// dsyevd (one-stage), dsyevd_2stage, on the same Gram matrix; the float32 route (ssyrk,
// ssyevd, ssyevd_2stage: method gram32); and one LDL^T factorization of the Gram matrix (dsytrf:
// the price of one Sylvester-inertia count, the step of a quantile-by-bisection route). Prints one
// JSON line per (shape, threads) with min and median of each phase, and the eigenvalue agreement
// of the routes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <cblas.h>
#include <lapacke.h>

#include "spectra/cpu/cpu_backend.h"
#include "spectra/cpu/lapack.h"

using namespace muspec;
using clock_type = std::chrono::steady_clock;

namespace {
double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

struct Stats {
  std::vector<double> runs;
  double min() const { return *std::min_element(runs.begin(), runs.end()); }
  nlohmann::json json() const {
    std::vector<double> s = runs;
    std::sort(s.begin(), s.end());
    return {{"min", s.front()}, {"median", s[s.size() / 2]}};
  }
};

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  size_t p = 0;
  while (p < s.size()) {
    const size_t q = s.find(',', p);
    out.push_back(std::stoi(s.substr(p, q - p)));
    p = q == std::string::npos ? s.size() : q + 1;
  }
  return out;
}

void probe(int64_t m, int64_t n, int threads, int rounds) {
  set_blas_threads(threads);
  const int64_t k = std::min(m, n);
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  std::vector<double> x(static_cast<size_t>(m * n));
  for (double& v : x) v = normal(rng);
  std::vector<double> reused(x.size()), g(static_cast<size_t>(k * k)), a(g.size()), work;
  std::vector<float> x32(x.begin(), x.end()), g32(g.size()), a32(g.size()), work32;
  std::vector<lapack_int> pivots(static_cast<size_t>(k));
  Stats fresh, refill, syrk, one, two, ssyrk, sone, stwo, sytrf, gemm;
  double disagreement = 0;
  lapack::gram_of_smaller_side(x.data(), std::min<int64_t>(m, 64), std::min<int64_t>(n, 64), g.data());  // warm-up:
  // OpenBLAS sets up its buffers on the first call (0.3 s here), which is not the product's time
  for (int r = 0; r < rounds; ++r) {
    auto t = clock_type::now();
    {
      std::vector<double> f(x.size());
      std::memcpy(f.data(), x.data(), x.size() * sizeof(double));
      fresh.runs.push_back(seconds_since(t));
    }
    t = clock_type::now();
    std::memcpy(reused.data(), x.data(), x.size() * sizeof(double));
    refill.runs.push_back(seconds_since(t));
    t = clock_type::now();
    lapack::gram_of_smaller_side(x.data(), m, n, g.data());
    syrk.runs.push_back(seconds_since(t));
    {  // the dgemm roof: the same product as a full dgemm (2 k^2 max(m, n) flops, dsyrk does half)
      const auto ik = static_cast<blasint>(k), ib = static_cast<blasint>(std::max(m, n)), ld = static_cast<blasint>(n);
      t = clock_type::now();
      if (m >= n) cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, ik, ik, ib, 1.0, x.data(), ld, x.data(), ld, 0.0, a.data(), ik);
      else cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, ik, ik, ib, 1.0, x.data(), ld, x.data(), ld, 0.0, a.data(), ik);
      gemm.runs.push_back(seconds_since(t));
    }
    a = g;
    t = clock_type::now();
    const auto w1 = lapack::symmetric_eigenvalues(a.data(), k, lapack::Tridiagonal::OneStage, work, "probe");
    one.runs.push_back(seconds_since(t));
    a = g;
    t = clock_type::now();
    const auto w2 = lapack::symmetric_eigenvalues(a.data(), k, lapack::Tridiagonal::TwoStage, work, "probe");
    two.runs.push_back(seconds_since(t));
    for (int64_t i = 0; i < k; ++i) disagreement = std::max(disagreement, std::fabs(w1[i] - w2[i]) / w1.back());
    t = clock_type::now();
    lapack::gram_of_smaller_side(x32.data(), m, n, g32.data());
    ssyrk.runs.push_back(seconds_since(t));
    for (auto [route, stats] : {std::pair{lapack::Tridiagonal::OneStage, &sone}, {lapack::Tridiagonal::TwoStage, &stwo}}) {
      a32 = g32;
      t = clock_type::now();
      lapack::symmetric_eigenvalues(a32.data(), k, route, work32, "probe");
      stats->runs.push_back(seconds_since(t));
    }
    a = g;  // G - sigma^2 I at sigma^2 = the median eigenvalue: an indefinite factorization
    for (int64_t i = 0; i < k; ++i) a[static_cast<size_t>(i * k + i)] -= w1[static_cast<size_t>(k / 2)];
    t = clock_type::now();
    LAPACKE_dsytrf(LAPACK_COL_MAJOR, 'L', static_cast<lapack_int>(k), a.data(), static_cast<lapack_int>(k), pivots.data());
    sytrf.runs.push_back(seconds_since(t));
  }
  nlohmann::json line = {{"rows", m}, {"cols", n}, {"threads", threads}, {"rounds", rounds},
                         {"fresh_vector_plus_copy", fresh.json()}, {"reused_copy", refill.json()},
                         {"dsyrk", syrk.json()}, {"dsyevd", one.json()}, {"dsyevd_2stage", two.json()},
                         {"max_eigenvalue_difference_over_lambda_max", disagreement},
                         {"ssyrk", ssyrk.json()}, {"ssyevd", sone.json()}, {"ssyevd_2stage", stwo.json()},
                         {"dsytrf_one_inertia_count", sytrf.json()}, {"dgemm_same_product", gemm.json()},
                         {"dsyrk_rate_over_dgemm_rate", gemm.min() / (2 * syrk.min())},
                         // the whole float64 Gram route (k^2 m + 4k^3/3 flops) against the dgemm rate
                         {"gram_route_over_dgemm_roof",
                          (static_cast<double>(k) * k * std::max(m, n) + 4.0 / 3 * k * k * k) /
                              (syrk.min() + std::min(one.min(), two.min())) /
                              (2.0 * k * k * std::max(m, n) / gemm.min())},
                         {"chosen", lapack::tridiagonal_name(lapack::faster_tridiagonal(k, threads))}};
  std::cout << line.dump() << std::endl;
}
}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  std::vector<int> threads = {1, hardware_threads()};
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
    else if (a == "--threads" && i + 1 < argc) threads = parse_list(argv[++i]);
    else {
      const size_t x = a.find('x');
      const int64_t r = std::stoll(a.substr(0, x));
      shapes.push_back({r, x == std::string::npos ? r : std::stoll(a.substr(x + 1))});
    }
  }
  if (shapes.empty()) {
    std::cerr << "usage: muspec_bench_cpu_routes [--rounds R] [--threads 1,2] N[xM] ...\n";
    return 2;
  }
  for (const auto& [m, n] : shapes)
    for (int t : threads) probe(m, n, t, rounds);
  return 0;
}
