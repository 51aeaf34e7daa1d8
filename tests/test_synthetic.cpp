// The synthetic generator: its matrices really have the requested singular values (checked
// with LAPACK through the CPU backend), it is deterministic, and the families are right.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/dtype.h"

#include "core/error.h"
#include "spectra/backend.h"
#include "scan/synthetic.h"

using namespace muspec;

TEST_CASE("generated matrices have exactly the requested singular values", "[synthetic]") {
  auto cpu = make_backend(BackendOptions{Device::Cpu, 1});
  for (auto [m, n] : {std::pair<int64_t, int64_t>{40, 25}, {25, 40}, {32, 32}}) {
    SynthRng rng(7);
    const auto sigma = make_spectrum(parse_spectrum_spec("logspace:1e-3,10"), std::min(m, n), 7);
    auto x = make_matrix_with_spectrum(m, n, sigma, rng);
    const auto got = cpu->singular_values(x, m, n, SpectralMethod::Svd, "synthetic");
    REQUIRE(got.sigma.size() == sigma.size());
    for (size_t i = 0; i < sigma.size(); ++i) CHECK(got.sigma[i] == Approx(sigma[i]).epsilon(1e-11));
  }
}

TEST_CASE("the generator is deterministic for a seed and differs across seeds", "[synthetic]") {
  const auto sigma = make_spectrum(parse_spectrum_spec("power:0.5"), 8, 0);
  SynthRng a(42), b(42), c(43);
  const auto xa = make_matrix_with_spectrum(8, 12, sigma, a);
  const auto xb = make_matrix_with_spectrum(8, 12, sigma, b);
  const auto xc = make_matrix_with_spectrum(8, 12, sigma, c);
  CHECK(xa == xb);
  CHECK(xa != xc);
}

TEST_CASE("spectrum families", "[synthetic]") {
  const auto p = make_spectrum(parse_spectrum_spec("power:1"), 5, 0);
  CHECK(p == std::vector<double>{0.2, 0.25, 1.0 / 3.0, 0.5, 1.0});
  const auto l = make_spectrum(parse_spectrum_spec("logspace:1e-8,1"), 9, 0);
  for (size_t i = 0; i < l.size(); ++i) CHECK(l[i] == Approx(std::pow(10.0, -8.0 + static_cast<double>(i))).epsilon(1e-12));
  const auto u = make_spectrum(parse_spectrum_spec("loguniform:1e-4,1e-1"), 1000, 3);
  CHECK(u.front() >= 1e-4);
  CHECK(u.back() <= 1e-1);
  CHECK(std::is_sorted(u.begin(), u.end()));
  // Log-uniform: the mean of log10 is the midpoint -2.5 (standard error ~0.027 for 1000 draws).
  double mean_log = 0;
  for (double v : u) mean_log += std::log10(v) / 1000.0;
  CHECK(mean_log == Approx(-2.5).margin(0.1));
  // Marchenko–Pastur with ratio r: eigenvalues of W W^T / n have mean 1 and variance r, and
  // lie in [(1 - sqrt r)^2, (1 + sqrt r)^2].
  for (double r : {0.25, 1.0}) {
    const auto s = make_spectrum(parse_spectrum_spec("mp:" + std::to_string(r)), 4000, 0);
    double mean = 0, var = 0;
    for (double v : s) mean += v * v / 4000.0;
    for (double v : s) var += (v * v - mean) * (v * v - mean) / 4000.0;
    CHECK(mean == Approx(1.0).epsilon(2e-3));
    CHECK(var == Approx(r).epsilon(1e-2));
    CHECK(s.back() <= 1.0 + std::sqrt(r) + 1e-12);
  }
  CHECK_THROWS_AS(parse_spectrum_spec("power"), UsageError);
  CHECK_THROWS_AS(parse_spectrum_spec("mp:2"), UsageError);
  CHECK_THROWS_AS(parse_spectrum_spec("loguniform:1,0.5"), UsageError);
  CHECK_THROWS_AS(parse_spectrum_spec("gauss:1"), UsageError);
}

TEST_CASE("rounding to a storage dtype reports a valid Weyl bound", "[synthetic]") {
  auto cpu = make_backend(BackendOptions{Device::Cpu, 1});
  SynthRng rng(5);
  const auto sigma = make_spectrum(parse_spectrum_spec("power:1"), 30, 0);
  const auto x = make_matrix_with_spectrum(30, 50, sigma, rng);
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    const RoundedMatrix r = round_to_dtype(x, t);
    CHECK(r.perturbation_bound > 0);
    // Decode the stored bytes and measure how far each singular value actually moved.
    std::vector<double> stored(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      if (t == DType::F32) { float f; std::memcpy(&f, r.bytes.data() + 4 * i, 4); stored[i] = f; }
      else { uint16_t h; std::memcpy(&h, r.bytes.data() + 2 * i, 2); stored[i] = t == DType::F16 ? f16_to_double(h) : bf16_to_double(h); }
    }
    const auto got = cpu->singular_values(stored, 30, 50, SpectralMethod::Svd, "rounded");
    double moved = 0;
    for (size_t i = 0; i < sigma.size(); ++i) moved = std::max(moved, std::fabs(got.sigma[i] - sigma[i]));
    CHECK(moved <= r.perturbation_bound);
    CHECK(moved >= r.perturbation_bound * 1e-3);  // the bound is not absurdly loose
  }
  CHECK(round_to_dtype(x, DType::F64).perturbation_bound == 0.0);
  CHECK_THROWS_AS(round_to_dtype(x, DType::I32), UsageError);
}
