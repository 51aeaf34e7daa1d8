// Shared by the [cuda] test files: matrices with known spectra rounded to a stored dtype, the
// GPU check that skips (with a message) on machines without one, and spectrum comparison.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "spectra/backend.h"
#include "scan/synthetic.h"

namespace muspec::test {

/// True when a CUDA device is usable; otherwise says why the GPU checks are skipped and checks
/// that --device cuda is refused with a clear error.
inline bool have_gpu() {
  if (cuda_device_count() > 0) return true;
  WARN("no CUDA device (or built without CUDA): GPU checks skipped");
  CHECK_THROWS_AS(make_backend(BackendOptions{Device::Cuda}), NotAvailableError);
  return false;
}

inline double stored_value(const std::string& bytes, DType dtype, size_t i) {
  switch (dtype) {
    case DType::F64: { double v; std::memcpy(&v, bytes.data() + 8 * i, 8); return v; }
    case DType::F32: { float v; std::memcpy(&v, bytes.data() + 4 * i, 4); return v; }
    case DType::F16: { uint16_t h; std::memcpy(&h, bytes.data() + 2 * i, 2); return f16_to_double(h); }
    case DType::BF16: { uint16_t h; std::memcpy(&h, bytes.data() + 2 * i, 2); return bf16_to_double(h); }
    default: FAIL("unexpected dtype"); return 0;
  }
}

/// A matrix with a known log-spaced spectrum (sigma from `lo` to 1), rounded to `dtype`: the
/// stored bytes, the stored values as float64 (the object both backends see), the truth, and
/// the Weyl bound on how far the rounding moved each singular value.
struct Case {
  std::string bytes;
  std::vector<double> x, sigma;
  double rounding_bound;
};

inline Case make_case(int64_t m, int64_t n, double lo, DType dtype, uint64_t seed) {
  SynthRng rng(seed);
  SpectrumSpec spec;
  spec.kind = SpectrumSpec::Kind::LogSpace;
  spec.a = lo;
  spec.b = 1.0;
  Case c;
  c.sigma = make_spectrum(spec, std::min(m, n), seed);
  const std::vector<double> exact = make_matrix_with_spectrum(m, n, c.sigma, rng);
  RoundedMatrix r = round_to_dtype(exact, dtype);
  c.rounding_bound = r.perturbation_bound;
  c.x.resize(exact.size());
  for (size_t i = 0; i < exact.size(); ++i) c.x[i] = stored_value(r.bytes, dtype, i);
  c.bytes = std::move(r.bytes);
  return c;
}

/// Largest relative difference between two ascending spectra over the values at or above floor.
inline double worst_relative_difference(const std::vector<double>& got, const std::vector<double>& ref, double floor) {
  REQUIRE(got.size() == ref.size());
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    if (ref[i] >= floor) worst = std::max(worst, std::fabs(got[i] - ref[i]) / ref[i]);
  return worst;
}

}  // namespace muspec::test
