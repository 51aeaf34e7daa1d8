// The CPU spectral backend against matrices with exactly known singular values spanning many
// decades (the oracle: X = U diag(s) V^T built in float64), and svd against gram.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "spectra/backend.h"
#include "scan/synthetic.h"

using namespace muspec;

namespace {

struct Known {
  std::vector<double> sigma;  // ascending truth
  std::vector<double> x;      // row-major float64
};

Known make_known(int64_t m, int64_t n, double lo, uint64_t seed) {
  SynthRng rng(seed);
  Known k;
  SpectrumSpec spec;
  spec.kind = SpectrumSpec::Kind::LogSpace;
  spec.a = lo;
  spec.b = 1.0;
  k.sigma = make_spectrum(spec, std::min(m, n), seed);
  k.x = make_matrix_with_spectrum(m, n, k.sigma, rng);
  return k;
}

/// Largest relative error among the true singular values at or above `floor`.
double worst_relative_error_above(const std::vector<double>& got, const std::vector<double>& truth, double floor) {
  double worst = 0;
  for (size_t i = 0; i < truth.size(); ++i)
    if (truth[i] >= floor) worst = std::max(worst, std::fabs(got[i] - truth[i]) / truth[i]);
  return worst;
}

}  // namespace

TEST_CASE("svd and gram meet their stated accuracy above their floors over 10 decades", "[spectra][cpu]") {
  auto cpu = make_backend(BackendOptions{Device::Cpu, 0});
  for (auto [m, n] : {std::pair<int64_t, int64_t>{300, 200}, {200, 300}, {256, 256}}) {
    const Known k = make_known(m, n, 1e-10, 11);  // 10 decades
    INFO(m << "x" << n);
    auto x1 = k.x;
    const SingularValues svd = cpu->singular_values(x1, m, n, SpectralMethod::Svd, "svd");
    auto x2 = k.x;
    const SingularValues gram = cpu->singular_values(x2, m, n, SpectralMethod::Gram, "gram");
    REQUIRE(svd.method == SpectralMethod::Svd);
    REQUIRE(gram.method == SpectralMethod::Gram);
    REQUIRE(std::is_sorted(svd.sigma.begin(), svd.sigma.end()));
    REQUIRE(std::is_sorted(gram.sigma.begin(), gram.sigma.end()));
    CHECK(svd.floor == Approx(svd_floor(1.0, m, n)).epsilon(1e-9));
    CHECK(gram.floor == Approx(gram_floor(1.0, m, n)).epsilon(1e-9));
    const double e_svd = worst_relative_error_above(svd.sigma, k.sigma, svd.floor);
    const double e_gram = worst_relative_error_above(gram.sigma, k.sigma, gram.floor);
    WARN("worst relative error above floor: svd " << e_svd << " (floor " << svd.floor << "), gram " << e_gram
                                                  << " (floor " << gram.floor << ")");
    CHECK(e_svd <= kFloorRelativeAccuracy);
    CHECK(e_gram <= kFloorRelativeAccuracy);
    // svd and gram agree with each other above gram's floor.
    CHECK(worst_relative_error_above(gram.sigma, svd.sigma, gram.floor) <= kFloorRelativeAccuracy);
    // The floor is not arbitrary: well below it, gram is wrong by far more than the target
    // (1e-10 is far under the floor; the Gram route cannot see it).
    CHECK(std::fabs(gram.sigma.front() - k.sigma.front()) / k.sigma.front() > 10 * kFloorRelativeAccuracy);
  }
}

TEST_CASE("auto uses gram when the spectrum is above gram's floor and falls back to svd otherwise", "[spectra][cpu]") {
  auto cpu = make_backend(BackendOptions{Device::Cpu, 0});
  Known easy = make_known(120, 80, 1e-3, 3);
  SingularValues r = cpu->singular_values(easy.x, 120, 80, SpectralMethod::Auto, "easy");
  CHECK(r.method == SpectralMethod::Gram);
  for (size_t i = 0; i < r.sigma.size(); ++i) CHECK(r.sigma[i] == Approx(easy.sigma[i]).epsilon(1e-8));
  Known hard = make_known(120, 80, 1e-10, 3);
  r = cpu->singular_values(hard.x, 120, 80, SpectralMethod::Auto, "hard");
  CHECK(r.method == SpectralMethod::Svd);
  CHECK(worst_relative_error_above(r.sigma, hard.sigma, r.floor) <= kFloorRelativeAccuracy);
}

TEST_CASE("rank-deficient and degenerate matrices", "[spectra][cpu]") {
  auto cpu = make_backend(BackendOptions{Device::Cpu, 1});
  // Rank one: u v^T has one singular value |u| |v| and the rest are exactly zero.
  std::vector<double> x(6 * 4);
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 4; ++j) x[i * 4 + j] = (i + 1.0) * (j - 1.5);
  const double norm = std::sqrt(91.0) * std::sqrt(5.0);
  auto y = x;
  SingularValues r = cpu->singular_values(y, 6, 4, SpectralMethod::Auto, "rank1");
  CHECK(r.method == SpectralMethod::Svd);  // zeros are under gram's floor
  CHECK(r.sigma.back() == Approx(norm).epsilon(1e-14));
  for (int i = 0; i < 3; ++i) CHECK(r.sigma[i] < r.floor);
  std::vector<double> zeros(12, 0.0);
  r = cpu->singular_values(zeros, 3, 4, SpectralMethod::Svd, "zeros");
  CHECK(r.sigma == std::vector<double>{0, 0, 0});
  std::vector<double> one = {-3.0};
  r = cpu->singular_values(one, 1, 1, SpectralMethod::Gram, "1x1");
  CHECK(r.sigma == std::vector<double>{3.0});
  std::vector<double> none;
  CHECK_THROWS_AS(cpu->singular_values(none, 0, 4, SpectralMethod::Svd, "empty"), UsageError);
}

TEST_CASE("device and method parsing", "[spectra]") {
  CHECK(parse_method("gram") == SpectralMethod::Gram);
  CHECK_THROWS_AS(parse_method("eigh"), UsageError);
  CHECK(parse_device("cpu") == Device::Cpu);
  CHECK_THROWS_AS(parse_device("tpu"), UsageError);
  std::string notice;
  auto b = make_backend(BackendOptions{Device::Auto, 1}, &notice);
  if (cuda_device_count() == 0) {
    CHECK(b->device() == Device::Cpu);
    CHECK_FALSE(notice.empty());
    CHECK_THROWS_AS(make_backend(BackendOptions{Device::Cuda, 1}), NotAvailableError);
  }
}

TEST_CASE("gram32 meets the stated accuracy above its float32 floor on planted spectra", "[spectra][cpu][gram32]") {
  auto cpu = make_backend(BackendOptions{Device::Cpu, 0});
  // Planted sigma log-spaced over 6 decades (the oracle is the planted values themselves); the
  // float32 floor (~1.5e-2 sigma_max here) lies inside the range, so values above and below it are checked.
  for (auto [m, n] : {std::pair<int64_t, int64_t>{300, 200}, {200, 700}, {256, 256}}) {
    const Known k = make_known(m, n, 1e-6, 17);
    INFO(m << "x" << n);
    auto x = k.x;
    const SingularValues g32 = cpu->singular_values(x, m, n, SpectralMethod::Gram32, "gram32");
    REQUIRE(g32.method == SpectralMethod::Gram32);
    REQUIRE(std::string(method_name(g32.method)) == "gram32");
    REQUIRE(g32.sigma.size() == k.sigma.size());
    REQUIRE(std::is_sorted(g32.sigma.begin(), g32.sigma.end()));
    CHECK(g32.floor == Approx(gram32_floor(g32.sigma.back(), m, n)).epsilon(1e-12));
    CHECK(g32.floor > 100 * gram_floor(1.0, m, n));  // a far higher floor than float64 gram's
    size_t above = 0;
    for (double s : k.sigma) above += s >= g32.floor ? 1 : 0;
    REQUIRE(above >= 20);  // the check below covers many values
    const double e = worst_relative_error_above(g32.sigma, k.sigma, g32.floor);
    WARN("gram32 " << m << "x" << n << ": floor " << g32.floor << ", " << above
                   << " values above it, worst relative error there " << e);
    CHECK(e <= kFloorRelativeAccuracy);
    // Against float64 LAPACK (svd) on the same matrix, above gram32's floor.
    auto y = k.x;
    const SingularValues svd = cpu->singular_values(y, m, n, SpectralMethod::Svd, "svd");
    CHECK(worst_relative_error_above(g32.sigma, svd.sigma, g32.floor) <= kFloorRelativeAccuracy);
    // The floor is not a formality: at 1e-6 sigma_max float32's Gram matrix has lost the value.
    CHECK(std::fabs(g32.sigma.front() - k.sigma.front()) / k.sigma.front() > 10 * kFloorRelativeAccuracy);
  }
}

TEST_CASE("gram32 scales entries out of float32's range and is never chosen by auto", "[spectra][cpu][gram32]") {
  auto cpu = make_backend(BackendOptions{Device::Cpu, 1});
  const Known k = make_known(90, 60, 1e-1, 5);
  for (double scale : {1e30, 1e-30}) {  // squares of such entries overflow / underflow float32
    INFO("scale " << scale);
    std::vector<double> x = k.x;
    for (double& v : x) v *= scale;
    const SingularValues r = cpu->singular_values(x, 90, 60, SpectralMethod::Gram32, "scaled");
    for (size_t i = 0; i < r.sigma.size(); ++i) CHECK(r.sigma[i] == Approx(k.sigma[i] * scale).epsilon(1e-2));
  }
  std::vector<double> x = k.x;  // everything above gram32's floor, yet auto stays in float64
  CHECK(cpu->singular_values(x, 90, 60, SpectralMethod::Auto, "auto").method == SpectralMethod::Gram);
  CHECK(parse_method("gram32") == SpectralMethod::Gram32);
}
