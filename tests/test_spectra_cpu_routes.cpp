// The CPU backend's eigenvalue routes (one-stage dsyevd, two-stage dsyevd_2stage, both
// column-major lower, no LAPACKE transpose) against LAPACK dgesdd and the planted truth, the
// reused per-thread workspace, and bit-identical values on any BLAS thread count.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "scan/synthetic.h"
#include "spectra/backend.h"
#include "spectra/cpu/cpu_backend.h"
#include "spectra/cpu/lapack.h"

using namespace muspec;

namespace {

struct Planted {
  std::vector<double> sigma, x;
};

Planted planted(int64_t m, int64_t n, double lo, uint64_t seed) {
  SynthRng rng(seed);
  SpectrumSpec spec;
  spec.kind = SpectrumSpec::Kind::LogSpace;
  spec.a = lo;
  spec.b = 1.0;
  Planted p;
  p.sigma = make_spectrum(spec, std::min(m, n), seed);
  p.x = make_matrix_with_spectrum(m, n, p.sigma, rng);
  return p;
}

double worst_above(const std::vector<double>& got, const std::vector<double>& truth, double floor) {
  double worst = 0;
  for (size_t i = 0; i < truth.size(); ++i)
    if (truth[i] >= floor) worst = std::max(worst, std::fabs(got[i] - truth[i]) / truth[i]);
  return worst;
}

std::vector<double> sigma_by_route(const Planted& p, int64_t m, int64_t n, lapack::Tridiagonal route) {
  const int64_t k = std::min(m, n);
  std::vector<double> g(static_cast<size_t>(k * k)), work;
  lapack::gram_of_smaller_side(p.x.data(), m, n, g.data());
  std::vector<double> lambda = lapack::symmetric_eigenvalues(g.data(), k, route, work, "test");
  for (double& v : lambda) v = std::sqrt(std::max(v, 0.0));
  std::sort(lambda.begin(), lambda.end());
  return lambda;
}

}  // namespace

TEST_CASE("both tridiagonal routes agree with dgesdd and the truth above gram's floor", "[spectra][cpu]") {
  for (auto [m, n] : {std::pair<int64_t, int64_t>{400, 250}, {250, 400}, {300, 300}}) {
    const Planted p = planted(m, n, 1e-6, 5);
    auto x = p.x;
    std::vector<double> svd = lapack::gesdd_values(x, m, n, "dgesdd");
    std::sort(svd.begin(), svd.end());
    const double floor = gram_floor(p.sigma.back(), m, n);
    for (auto route : {lapack::Tridiagonal::OneStage, lapack::Tridiagonal::TwoStage}) {
      INFO(m << "x" << n << " " << lapack::tridiagonal_name(route));
      const std::vector<double> s = sigma_by_route(p, m, n, route);
      REQUIRE(s.size() == svd.size());
      CHECK(worst_above(s, p.sigma, floor) <= kFloorRelativeAccuracy);
      CHECK(worst_above(s, svd, floor) <= kFloorRelativeAccuracy);
      // Far above the floor the error is near machine precision (eigenvalue error c lambda_max).
      CHECK(worst_above(s, svd, 1e-2 * p.sigma.back()) < 1e-10);
    }
  }
}

TEST_CASE("the workspace is reused across shapes without changing any value", "[spectra][cpu]") {
  auto cpu = make_backend(BackendOptions{Device::Cpu, 1});
  // Large, then small (inside the old buffer), then larger again (a new buffer).
  for (auto [m, n] : {std::pair<int64_t, int64_t>{300, 200}, {50, 80}, {120, 90}, {500, 350}}) {
    const Planted p = planted(m, n, 1e-3, 17);
    std::vector<float> stored(p.x.begin(), p.x.end());
    TensorView t;
    t.dtype = DType::F32;
    t.shape = {m, n};
    t.strides = TensorView::contiguous_strides(t.shape);
    t.data = reinterpret_cast<const uint8_t*>(stored.data());
    t.reachable_bytes = stored.size() * sizeof(float);
    const StoredSpectrum st = cpu->spectrum_of_stored(matrix_of(t), InputTransform::None, SpectralMethod::Gram, "w");
    REQUIRE(st.values);
    std::vector<double> dense(stored.begin(), stored.end());
    const SingularValues fresh = cpu->singular_values(dense, m, n, SpectralMethod::Gram, "w");
    INFO(m << "x" << n);
    CHECK(st.values->sigma == fresh.sigma);
    std::vector<double> ref(stored.begin(), stored.end());
    std::vector<double> svd = lapack::gesdd_values(ref, m, n, "ref");
    std::sort(svd.begin(), svd.end());
    CHECK(worst_above(st.values->sigma, svd, st.values->floor) <= kFloorRelativeAccuracy);
  }
}

TEST_CASE("gram values are bit-identical on one and on several BLAS threads", "[spectra][cpu]") {
  // OpenBLAS's threaded dsymv sums in a thread-count-dependent order; the backend runs the
  // eigenvalue stage on one thread so that the scan scheduler cannot change a record.
  const Planted p = planted(700, 450, 1e-4, 3);
  auto cpu = make_backend(BackendOptions{Device::Cpu, 0});
  const int saved = blas_threads();
  std::vector<std::vector<double>> runs;
  for (int threads : {1, 2, 4}) {
    set_blas_threads(threads);
    auto x = p.x;
    runs.push_back(cpu->singular_values(x, 700, 450, SpectralMethod::Gram, "w").sigma);
    CHECK(blas_threads() == threads);  // the caller's count is restored
  }
  set_blas_threads(saved);
  CHECK(std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * sizeof(double)) == 0);
  CHECK(std::memcmp(runs[0].data(), runs[2].data(), runs[0].size() * sizeof(double)) == 0);
}

TEST_CASE("route choice follows the measured table and the override", "[spectra][cpu]") {
  CHECK(lapack::faster_tridiagonal(lapack::kTwoStageFromOneThread - 1, 1) == lapack::Tridiagonal::OneStage);
  CHECK(lapack::faster_tridiagonal(lapack::kTwoStageFromOneThread, 1) == lapack::Tridiagonal::TwoStage);
}
