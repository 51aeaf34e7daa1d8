#include "ns/simulate.h"

#include <Eigen/Dense>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "ns/precision_rounding.h"
#include "ns/scalar_map.h"
#include "spectra/backend.h"
#include "spectra/cuda_entry.h"

namespace muspec::ns {

namespace {

using detail::Mat;
using detail::NoRound;
using detail::RoundBf16;

// The iteration on X (m ≤ n after the caller's transpose), in scalar type T, with `r` applied
// to the result of every product (r.gemm) and element-wise operation (r).
template <class T, class Round>
Mat<T> iterate(Mat<T> x, const Schedule& schedule, int steps, Round r) {
  x = r(x);  // cast to the working precision (bf16 kernels cast before normalizing)
  // ‖X‖_F accumulated in the working precision (fp32 for bf16), rounded like a kernel result.
  const T nrm = r.scalar(static_cast<T>(x.norm()));
  const T denom = r.scalar(r.scalar(static_cast<T>(nrm * static_cast<T>(1.0 + schedule.normalization.delta))) +
                           static_cast<T>(schedule.normalization.epsilon));
  x = r(Mat<T>(x / denom));
  for (int k = 0; k < steps; ++k) {
    const OddPoly& p = schedule.step(k);
    const T a = static_cast<T>(p.a), b = static_cast<T>(p.b), c = static_cast<T>(p.c);
    const Mat<T> A = r.gemm(Mat<T>(x * x.transpose()));
    Mat<T> B;
    if (p.c != 0.0) {
      const Mat<T> A2 = r.gemm(Mat<T>(A * A));
      B = r(Mat<T>(r(Mat<T>(b * A)) + r(Mat<T>(c * A2))));
    } else {
      B = r(Mat<T>(b * A));
    }
    const Mat<T> BX = r.gemm(Mat<T>(B * x));
    x = r(Mat<T>(r(Mat<T>(a * x)) + BX));
  }
  return x;
}

// The fused bf16 kernel (Bf16Kernel::Fused): the norm stays float32, each combination of
// rounded products is formed in float32 and rounded once.
template <class Round>
Mat<float> iterate_fused(Mat<float> x, const Schedule& schedule, int steps, Round r) {
  x = r(x);
  const float denom = static_cast<float>(x.norm()) * static_cast<float>(1.0 + schedule.normalization.delta) +
                      static_cast<float>(schedule.normalization.epsilon);
  x = r(Mat<float>(x / (denom == 0.0f ? 1.0f : denom)));
  for (int k = 0; k < steps; ++k) {
    const OddPoly& p = schedule.step(k);
    const float a = static_cast<float>(p.a), b = static_cast<float>(p.b), c = static_cast<float>(p.c);
    const Mat<float> A = r.gemm(Mat<float>(x * x.transpose()));
    const Mat<float> B = p.c != 0.0 ? r(Mat<float>(b * A + c * r.gemm(Mat<float>(A * A)))) : r(Mat<float>(b * A));
    x = r(Mat<float>(a * x + r.gemm(Mat<float>(B * x))));
  }
  return x;
}

Mat<float> iterate_bf16(const Mat<float>& x, const Schedule& schedule, int steps, const Bf16Rounding& rounding) {
  const bool fused = rounding.kernel == Bf16Kernel::Fused;
  if (rounding.jitter_ulps > 0) {
    const detail::RoundBf16Jittered r(rounding.jitter_ulps, rounding.seed);
    return fused ? iterate_fused(x, schedule, steps, r) : iterate<float>(x, schedule, steps, r);
  }
  return fused ? iterate_fused(x, schedule, steps, RoundBf16{}) : iterate<float>(x, schedule, steps, RoundBf16{});
}

}  // namespace

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::F64: return "f64";
    case Precision::F32: return "f32";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

const char* bf16_kernel_name(Bf16Kernel k) { return k == Bf16Kernel::Fused ? "fused" : "unfused"; }

std::vector<Bf16Rounding> bf16_realizations(int jittered) {
  std::vector<Bf16Rounding> out;
  for (Bf16Kernel k : {Bf16Kernel::Unfused, Bf16Kernel::Fused}) {
    out.push_back({k, 0, 0});
    for (int i = 1; i <= jittered; ++i) out.push_back({k, kBf16JitterUlps, static_cast<uint64_t>(i)});
  }
  return out;
}

Precision parse_precision(const std::string& s) {
  if (s == "f64" || s == "float64") return Precision::F64;
  if (s == "f32" || s == "float32") return Precision::F32;
  if (s == "bf16" || s == "bfloat16") return Precision::BF16;
  throw UsageError("unknown precision '" + s + "' (expected f64, f32 or bf16)");
}

std::vector<double> newton_schulz(const Schedule& schedule, int steps, Precision precision,
                                  const double* g, int64_t rows, int64_t cols, const Bf16Rounding& rounding) {
  if (rows <= 0 || cols <= 0) throw UsageError("newton_schulz: empty matrix");
  const bool transpose = rows > cols;
  Eigen::Map<const Mat<double>> in(g, rows, cols);
  Mat<double> x = transpose ? Mat<double>(in.transpose()) : Mat<double>(in);
  Mat<double> y;
  switch (precision) {
    case Precision::F64: y = iterate<double>(x, schedule, steps, NoRound{}); break;
    case Precision::F32: y = iterate<float>(x.cast<float>(), schedule, steps, NoRound{}).cast<double>(); break;
    case Precision::BF16: y = iterate_bf16(x.cast<float>(), schedule, steps, rounding).cast<double>(); break;
  }
  std::vector<double> out(static_cast<size_t>(rows * cols));
  Eigen::Map<Mat<double>> o(out.data(), rows, cols);
  if (transpose)
    o = y.transpose();
  else
    o = y;
  return out;
}

Agreement compare_spectra(std::vector<double> predicted, std::vector<double> measured) {
  MUSPEC_ASSERT(predicted.size() == measured.size());
  std::sort(predicted.begin(), predicted.end());
  std::sort(measured.begin(), measured.end());
  Agreement a;
  a.count = static_cast<int64_t>(predicted.size());
  const double pmax = predicted.empty() ? 0.0 : predicted.back();
  double sumsq = 0.0;
  for (size_t i = 0; i < predicted.size(); ++i) {
    const double d = std::abs(measured[i] - predicted[i]);
    a.max_abs_error = std::max(a.max_abs_error, d);
    sumsq += d * d;
    if (predicted[i] >= 1e-3 * pmax && predicted[i] > 0.0)
      a.max_rel_error = std::max(a.max_rel_error, d / predicted[i]);
  }
  a.rms_error = predicted.empty() ? 0.0 : std::sqrt(sumsq / static_cast<double>(predicted.size()));
  a.predicted = std::move(predicted);
  a.measured = std::move(measured);
  return a;
}

std::vector<double> newton_schulz_on(Device device, const Schedule& schedule, int steps, Precision precision,
                                     const double* g, int64_t rows, int64_t cols) {
  if (device != Device::Cuda) return newton_schulz(schedule, steps, precision, g, rows, cols);
  if (rows <= 0 || cols <= 0) throw UsageError("newton_schulz: empty matrix");
  std::vector<std::array<double, 3>> coefficients;
  for (const OddPoly& p : schedule.polys_for(steps)) coefficients.push_back({p.a, p.b, p.c});
  const GpuPrecision gp = precision == Precision::F64 ? GpuPrecision::F64
                          : precision == Precision::F32 ? GpuPrecision::F32
                                                        : GpuPrecision::BF16;
  return cuda_newton_schulz(coefficients, schedule.normalization.delta, schedule.normalization.epsilon, gp, g, rows,
                            cols);
}

Agreement simulate_matrix(const Schedule& schedule, int steps, Precision precision,
                          const double* g, int64_t rows, int64_t cols, SpectralBackend& backend,
                          const std::string& label, Device device) {
  const size_t n = static_cast<size_t>(rows * cols);
  double sumsq = 0.0;
  for (size_t i = 0; i < n; ++i) sumsq += g[i] * g[i];
  const double frob = std::sqrt(sumsq);
  if (!(frob > 0.0) || !std::isfinite(frob)) throw NumericalError(label + ": zero or non-finite matrix");

  std::vector<double> work(g, g + n);
  const std::vector<double> sigma = backend.singular_values(work, rows, cols, SpectralMethod::Svd, label).sigma;
  std::vector<double> s(sigma.size());
  for (size_t i = 0; i < s.size(); ++i) s[i] = sigma[i] / frob;
  std::vector<double> predicted = map_values(schedule, steps, s, frob);
  for (double& v : predicted) v = std::abs(v);  // singular values are |p(s)|

  std::vector<double> out = newton_schulz_on(device, schedule, steps, precision, g, rows, cols);
  std::vector<double> measured = backend.singular_values(out, rows, cols, SpectralMethod::Svd, label).sigma;
  return compare_spectra(std::move(predicted), std::move(measured));
}

}  // namespace muspec::ns
