// The stored-bytes route, SpectralBackend::spectrum_of_stored(): what `muspec scan` calls for
// every whole matrix. On the CPU it must equal decoding then singular_values(); on a GPU the
// stored bf16/f16/f32/f64 bytes are decoded on the device, and the result must match the CPU
// backend on the same view (||X||_F to rounding, sigma within the floor) for every layout a
// checkpoint can have: row-major, column-major, a slice of a stack, a strided view (host
// decoder), unaligned data, the sign transform, and NaN/Inf entries.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/tensor.h"
#include "cuda_cases.h"

using namespace muspec;
using namespace muspec::test;

namespace {

MatrixView row_major_view(const std::string& bytes, DType dtype, int64_t rows, int64_t cols) {
  MatrixView v;
  v.dtype = dtype;
  v.rows = rows, v.cols = cols;
  v.row_stride = cols, v.col_stride = 1;
  v.base = reinterpret_cast<const uint8_t*>(bytes.data());
  return v;
}

/// Writes a non-finite value of `dtype` over element i.
void poison(std::string& bytes, DType dtype, size_t i, bool infinite) {
  const double v = infinite ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  switch (dtype) {
    case DType::F64: std::memcpy(&bytes[8 * i], &v, 8); break;
    case DType::F32: { const float f = static_cast<float>(v); std::memcpy(&bytes[4 * i], &f, 4); break; }
    case DType::F16: { const uint16_t h = infinite ? 0x7c00 : 0x7e00; std::memcpy(&bytes[2 * i], &h, 2); break; }
    case DType::BF16: { const uint16_t h = infinite ? 0x7f80 : 0x7fc0; std::memcpy(&bytes[2 * i], &h, 2); break; }
    default: FAIL("unexpected dtype");
  }
}

/// Relative error bound of a float64 sum of `elements` non-negative terms in any order
/// (Higham, recursive summation: (n - 1) u, plus one rounding per square), halved by the square
/// root. The host adds in storage order, the device in blocks; each is within this of the exact
/// ||X||_F, so they are within twice it of each other (a 1024^2 float32 matrix differed by
/// more than 1e-13 on an H100, 2026-12-06).
double frobenius_bound(int64_t elements) { return (static_cast<double>(elements) + 2.0) * 0x1p-53; }

/// ||X||_F of the stored values, summed in long double (64-bit significand): the oracle.
double exact_frobenius(const std::vector<double>& x) {
  long double s = 0;
  for (double v : x) s += static_cast<long double>(v) * v;
  return static_cast<double>(std::sqrt(s));
}

/// The GPU result against the CPU backend's on the same view of `elements` entries.
void check_agree(const StoredSpectrum& gpu, const StoredSpectrum& cpu, int64_t elements) {
  CHECK(gpu.conversion.nonfinite == cpu.conversion.nonfinite);
  CHECK(gpu.conversion.frobenius == Approx(cpu.conversion.frobenius).epsilon(2 * frobenius_bound(elements)));
  REQUIRE(gpu.values.has_value() == cpu.values.has_value());
  if (!gpu.values) return;
  CHECK(gpu.values->device == Device::Cuda);
  const double floor = std::max(gpu.values->floor, cpu.values->floor);
  CHECK(worst_relative_difference(gpu.values->sigma, cpu.values->sigma, floor) < kFloorRelativeAccuracy);
  CHECK(worst_relative_difference(gpu.values->sigma, cpu.values->sigma,
                                  std::max(floor, 1e-3 * cpu.values->sigma.back())) < 1e-6);
}

}  // namespace

TEST_CASE("spectrum_of_stored on the CPU is decoding then singular_values", "[spectra]") {
  auto cpu = make_backend(BackendOptions{Device::Cpu});
  for (DType dtype : {DType::BF16, DType::F16, DType::F32, DType::F64}) {
    INFO(dtype_name(dtype));
    Case c = make_case(120, 80, 1e-3, dtype, 5);
    const MatrixView v = row_major_view(c.bytes, dtype, 120, 80);
    const StoredSpectrum st = cpu->spectrum_of_stored(v, InputTransform::None, SpectralMethod::Auto, "m");
    std::vector<double> x = c.x;
    const SingularValues ref = cpu->singular_values(x, 120, 80, SpectralMethod::Auto, "m");
    REQUIRE(st.values);
    CHECK(st.values->sigma == ref.sigma);
    CHECK(st.values->method == ref.method);
    double sumsq = 0;
    for (double e : c.x) sumsq += e * e;
    CHECK(st.conversion.frobenius == Approx(std::sqrt(sumsq)).epsilon(1e-14));
    CHECK(st.conversion.nonfinite == 0);

    poison(c.bytes, dtype, 5, false);
    poison(c.bytes, dtype, 77, true);
    const StoredSpectrum bad = cpu->spectrum_of_stored(v, InputTransform::None, SpectralMethod::Auto, "m");
    CHECK(bad.conversion.nonfinite == 2);
    CHECK_FALSE(bad.values);
  }
  MatrixView empty;
  CHECK_THROWS_AS(cpu->spectrum_of_stored(empty, InputTransform::None, SpectralMethod::Gram, "empty"), UsageError);
}

TEST_CASE("CUDA decodes stored bytes on the device like the host decoder", "[spectra][cuda]") {
  if (!have_gpu()) return;
  auto gpu = make_backend(BackendOptions{Device::Cuda});
  auto cpu = make_backend(BackendOptions{Device::Cpu});
  struct Shape { int64_t m, n; double lo; };
  const Shape shapes[] = {{300, 128, 1e-4}, {96, 257, 1e-2}, {1024, 1024, 1e-3}};
  uint64_t seed = 40;
  for (DType dtype : {DType::F32, DType::BF16, DType::F16, DType::F64}) {
    for (const Shape& s : shapes) {
      INFO(s.m << "x" << s.n << " " << dtype_name(dtype));
      Case c = make_case(s.m, s.n, s.lo, dtype, seed++);
      const MatrixView v = row_major_view(c.bytes, dtype, s.m, s.n);
      const StoredSpectrum ref = cpu->spectrum_of_stored(v, InputTransform::None, SpectralMethod::Svd, "cpu");
      const double truth = exact_frobenius(c.x);
      CHECK(ref.conversion.frobenius == Approx(truth).epsilon(frobenius_bound(s.m * s.n)));
      CHECK(gpu->spectrum_of_stored(v, InputTransform::None, SpectralMethod::Gram, "gpu").conversion.frobenius ==
            Approx(truth).epsilon(frobenius_bound(s.m * s.n)));
      for (SpectralMethod method : {SpectralMethod::Gram, SpectralMethod::Svd, SpectralMethod::Auto}) {
        INFO("method " << method_name(method));
        check_agree(gpu->spectrum_of_stored(v, InputTransform::None, method, "gpu"), ref, s.m * s.n);
      }
      {  // the sign transform
        const StoredSpectrum g = gpu->spectrum_of_stored(v, InputTransform::Sign, SpectralMethod::Svd, "gpu");
        const StoredSpectrum r = cpu->spectrum_of_stored(v, InputTransform::Sign, SpectralMethod::Svd, "cpu");
        CHECK(g.conversion.frobenius == r.conversion.frobenius);  // sqrt of a count of +-1 entries: exact
        check_agree(g, r, s.m * s.n);
      }
      // NaN and Inf entries are counted and nothing is analysed.
      poison(c.bytes, dtype, 3, false);
      poison(c.bytes, dtype, 10, true);
      poison(c.bytes, dtype, c.x.size() - 1, false);
      const StoredSpectrum g = gpu->spectrum_of_stored(v, InputTransform::None, SpectralMethod::Auto, "gpu");
      CHECK(g.conversion.nonfinite == 3);
      CHECK_FALSE(g.values);
    }
  }
}

TEST_CASE("CUDA stored route: gram32 is handed to the CPU backend, and the record says cpu", "[spectra][cuda]") {
  if (!have_gpu()) return;
  auto gpu = make_backend(BackendOptions{Device::Cuda});
  auto cpu = make_backend(BackendOptions{Device::Cpu});
  const Case c = make_case(640, 256, 1e-2, DType::BF16, 77);
  const MatrixView v = row_major_view(c.bytes, DType::BF16, 640, 256);
  const StoredSpectrum g = gpu->spectrum_of_stored(v, InputTransform::None, SpectralMethod::Gram32, "gpu");
  const StoredSpectrum r = cpu->spectrum_of_stored(v, InputTransform::None, SpectralMethod::Gram32, "cpu");
  REQUIRE(g.values);
  REQUIRE(r.values);
  CHECK(g.values->device == Device::Cpu);
  CHECK(g.values->method == SpectralMethod::Gram32);
  CHECK(g.values->sigma == r.values->sigma);
  // Against the truth: above gram32's floor, within bf16's rounding (Weyl) plus 1%.
  for (size_t i = 0; i < c.sigma.size(); ++i)
    if (c.sigma[i] > g.values->floor)
      CHECK(std::fabs(g.values->sigma[i] - c.sigma[i]) <= c.rounding_bound + kFloorRelativeAccuracy * c.sigma[i]);
}

TEST_CASE("CUDA stored route: column-major, stack slices, strided views, unaligned data", "[spectra][cuda]") {
  if (!have_gpu()) return;
  auto gpu = make_backend(BackendOptions{Device::Cuda});
  auto cpu = make_backend(BackendOptions{Device::Cpu});
  const int64_t m = 200, n = 150;
  const Case c = make_case(m, n, 1e-3, DType::F32, 90);

  SECTION("column-major storage (Fortran-order .npy)") {
    std::string f(c.bytes.size(), '\0');
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) std::memcpy(&f[4 * (j * m + i)], &c.bytes[4 * (i * n + j)], 4);
    MatrixView v = row_major_view(f, DType::F32, m, n);
    v.row_stride = 1, v.col_stride = m;
    check_agree(gpu->spectrum_of_stored(v, InputTransform::None, SpectralMethod::Gram, "gpu"),
                cpu->spectrum_of_stored(row_major_view(c.bytes, DType::F32, m, n), InputTransform::None,
                                        SpectralMethod::Gram, "cpu"),
                m * n);
  }
  SECTION("one slice of a [3, m, n] stack") {
    const Case a = make_case(m, n, 1e-2, DType::BF16, 91), b = make_case(m, n, 1e-4, DType::BF16, 92);
    const std::string stack = a.bytes + b.bytes + a.bytes;
    TensorView t;
    t.dtype = DType::BF16;
    t.shape = {3, m, n};
    t.strides = TensorView::contiguous_strides(t.shape);
    t.data = reinterpret_cast<const uint8_t*>(stack.data());
    t.reachable_bytes = stack.size();
    REQUIRE(t.bounds_problem().empty());
    const StoredSpectrum g = gpu->spectrum_of_stored(matrix_of(t, 1), InputTransform::None, SpectralMethod::Svd, "gpu");
    check_agree(g, cpu->spectrum_of_stored(row_major_view(b.bytes, DType::BF16, m, n), InputTransform::None,
                                           SpectralMethod::Svd, "cpu"),
                m * n);
    CHECK(worst_relative_difference(g.values->sigma, b.sigma, 1e-2) < 1e-2);  // b's spectrum, not a's
  }
  SECTION("a strided view (every other column) goes through the host decoder") {
    MatrixView v = row_major_view(c.bytes, DType::F32, m, n / 2);
    v.row_stride = n, v.col_stride = 2;
    check_agree(gpu->spectrum_of_stored(v, InputTransform::None, SpectralMethod::Gram, "gpu"),
                cpu->spectrum_of_stored(v, InputTransform::None, SpectralMethod::Gram, "cpu"), m * (n / 2));
  }
  SECTION("data at an odd address (safetensors offsets need not be aligned)") {
    const std::string shifted = std::string(3, '\0') + c.bytes;
    MatrixView v = row_major_view(shifted, DType::F32, m, n);
    v.base += 3;
    check_agree(gpu->spectrum_of_stored(v, InputTransform::None, SpectralMethod::Auto, "gpu"),
                cpu->spectrum_of_stored(row_major_view(c.bytes, DType::F32, m, n), InputTransform::None,
                                        SpectralMethod::Auto, "cpu"),
                m * n);
  }
  SECTION("auto goes on to svd on the device when sigma_min is under gram's floor") {
    const int64_t k = 512;
    const Case d = make_case(k, k, 1e-10, DType::F64, 93);
    const StoredSpectrum g = gpu->spectrum_of_stored(row_major_view(d.bytes, DType::F64, k, k), InputTransform::None,
                                                     SpectralMethod::Auto, "gpu");
    REQUIRE(g.values);
    CHECK(g.values->method == SpectralMethod::Svd);
    CHECK(g.values->device == Device::Cuda);
    for (size_t i = 0; i < d.sigma.size(); ++i)
      CHECK(std::fabs(g.values->sigma[i] - d.sigma[i]) <= d.rounding_bound + 1e-12 + g.values->floor * kFloorRelativeAccuracy);
  }
}

TEST_CASE("CUDA gram through Dsytrd + host dsterf agrees with the CPU backend", "[spectra][cuda]") {
  if (!have_gpu()) return;
  ::setenv("MUSPEC_GPU_EIGENSOLVER", "sytrd", 1);
  auto gpu = make_backend(BackendOptions{Device::Cuda});
  ::unsetenv("MUSPEC_GPU_EIGENSOLVER");
  CHECK_THAT(gpu->description(), Catch::Contains("Dsytrd"));
  auto cpu = make_backend(BackendOptions{Device::Cpu});
  uint64_t seed = 200;
  for (int64_t m : {64, 333, 1024}) {
    const Case c = make_case(m, 2 * m - 7, 1e-3, DType::BF16, seed++);
    const MatrixView v = row_major_view(c.bytes, DType::BF16, m, 2 * m - 7);
    INFO(m);
    check_agree(gpu->spectrum_of_stored(v, InputTransform::None, SpectralMethod::Gram, "gpu"),
                cpu->spectrum_of_stored(v, InputTransform::None, SpectralMethod::Svd, "cpu"), m * (2 * m - 7));
  }
  ::setenv("MUSPEC_GPU_EIGENSOLVER", "magic", 1);
  CHECK_THROWS_WITH(make_backend(BackendOptions{Device::Cuda}), Catch::Contains("MUSPEC_GPU_EIGENSOLVER"));
  ::unsetenv("MUSPEC_GPU_EIGENSOLVER");
}
