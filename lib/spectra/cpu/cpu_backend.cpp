#include "spectra/cpu/cpu_backend.h"

#include <cblas.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "spectra/cpu/lapack.h"
#include "spectra/cpu/workspace.h"

namespace muspec {

void set_blas_threads(int n) { openblas_set_num_threads(std::max(1, n)); }
int blas_threads() { return openblas_get_num_threads(); }
int hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

std::string blas_kernel_downgrade() {
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  if (!forced || !*forced) return "";
  const std::string core = openblas_get_corename();
  std::string lower = core;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool avx512_kernel = lower.find("skylakex") != std::string::npos || lower.find("cooperlake") != std::string::npos ||
                             lower.find("sapphire") != std::string::npos;
  const bool avx2_kernel = avx512_kernel || lower.find("haswell") != std::string::npos || lower.find("zen") != std::string::npos;
  __builtin_cpu_init();
  std::string better;
  if (__builtin_cpu_supports("avx512f") && !avx512_kernel) better = "AVX-512";
  else if (__builtin_cpu_supports("avx2") && !avx2_kernel) better = "AVX2";
  if (better.empty()) return "";
  return "OPENBLAS_CORETYPE=" + std::string(forced) + " makes OpenBLAS use its " + core + " kernels on a CPU with " +
         better + ": dgemm/dsyrk run up to 1.7x slower (measured on AVX-512); unset it for full speed";
}

namespace {

/// Sets OpenBLAS to one thread for its lifetime and restores the caller's count after.
class OneBlasThread {
 public:
  OneBlasThread() : saved_(openblas_get_num_threads()) {
    if (saved_ > 1) set_blas_threads(1);
  }
  ~OneBlasThread() {
    if (saved_ > 1) set_blas_threads(saved_);
  }
  OneBlasThread(const OneBlasThread&) = delete;
  OneBlasThread& operator=(const OneBlasThread&) = delete;

 private:
  int saved_;
};

class CpuBackend final : public SpectralBackend {
 public:
  explicit CpuBackend(const BackendOptions& o) : threads_(o.blas_threads), downgrade_(blas_kernel_downgrade()) {}

  Device device() const override { return Device::Cpu; }

  std::string description() const override {
    return std::string("cpu: ") + openblas_get_config() + ", " +
           std::to_string(threads_ > 0 ? threads_ : hardware_threads()) + " BLAS threads";
  }

  std::vector<std::string> notices() const override {
    if (downgrade_.empty()) return {};
    return {downgrade_};
  }

  /// Decodes into this thread's reused buffer instead of a fresh zero-filled vector.
  StoredSpectrum spectrum_of_stored(const MatrixView& m, InputTransform transform, SpectralMethod method,
                                    const std::string& label) override {
    if (m.rows <= 0 || m.cols <= 0) return SpectralBackend::spectrum_of_stored(m, transform, method, label);
    CpuWorkspace& ws = cpu_workspace();
    double* x = ws.x.reserve(static_cast<size_t>(m.rows * m.cols));
    StoredSpectrum out;
    out.conversion = to_dense_row_major(m, transform, x);
    if (out.conversion.nonfinite != 0) return out;
    out.values = by_policy(
        method, m.rows, m.cols, [&] { return gram_route(x, m.rows, m.cols, label); },
        [&] { return svd_route(x, m.rows, m.cols, label); }, [&] { return gram32(x, m.rows, m.cols, label); });
    return out;
  }

 protected:
  std::vector<double> gram_values(const std::vector<double>& x, int64_t rows, int64_t cols,
                                  const std::string& label) override {
    return gram_route(x.data(), rows, cols, label);
  }

  std::vector<double> svd_values(std::vector<double>& x, int64_t rows, int64_t cols,
                                 const std::string& label) override {
    return svd_route(x.data(), rows, cols, label);
  }

  ValuesRoute gram32_route(const std::vector<double>& x, int64_t rows, int64_t cols,
                           const std::string& label) override {
    return [&x, rows, cols, &label] { return gram32(x.data(), rows, cols, label); };
  }

 private:
  /// sigma = sqrt(max(lambda, 0)), ascending (rounding can make eigenvalues of a PSD matrix negative).
  template <typename T>
  static std::vector<double> sigma_of_eigenvalues(const std::vector<T>& lambda) {
    std::vector<double> sigma(lambda.size());
    for (size_t i = 0; i < lambda.size(); ++i) sigma[i] = std::sqrt(std::max(static_cast<double>(lambda[i]), 0.0));
    std::sort(sigma.begin(), sigma.end());
    return sigma;
  }

  /// The float32 Gram route: x narrowed to float32, ssyrk on all BLAS threads, then ssyevd(_2stage)
  /// on one (the same split as the float64 route, for the same reasons). Its floor is
  /// gram32_floor; by_policy records it.
  static std::vector<double> gram32(const double* x, int64_t rows, int64_t cols, const std::string& label) {
    const int64_t k = std::min(rows, cols);
    CpuWorkspace& ws = cpu_workspace();
    const size_t n_x = static_cast<size_t>(rows * cols), n_g = static_cast<size_t>(k * k);
    auto* x32 = reinterpret_cast<float*>(ws.x32.reserve((n_x + n_g + 1) / 2));
    float* g32 = x32 + n_x;
    // Scaled by a power of two so that max |x| is about 1: squares of float64 entries above
    // ~1e19 or below ~1e-19 would overflow or underflow float32 in the Gram matrix.
    double max_abs = 0;
    for (size_t i = 0; i < n_x; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
    const int exponent = max_abs > 0 ? std::ilogb(max_abs) : 0;
    const double scale = std::ldexp(1.0, -exponent);  // exact: a power of two
    for (size_t i = 0; i < n_x; ++i) x32[i] = static_cast<float>(x[i] * scale);
    lapack::gram_of_smaller_side(x32, rows, cols, g32);
    OneBlasThread one;
    std::vector<double> sigma = sigma_of_eigenvalues(
        lapack::symmetric_eigenvalues(g32, k, k >= lapack::kTwoStageFromOneThreadF32 ? lapack::Tridiagonal::TwoStage
                                                                               : lapack::Tridiagonal::OneStage,
                                      ws.lapack_work32, label));
    for (double& v : sigma) v = std::ldexp(v, exponent);
    return sigma;
  }

  static std::vector<double> gram_route(const double* x, int64_t rows, int64_t cols, const std::string& label) {
    const int64_t k = std::min(rows, cols);
    CpuWorkspace& ws = cpu_workspace();
    double* g = ws.gram.reserve(static_cast<size_t>(k * k));
    lapack::gram_of_smaller_side(x, rows, cols, g);
    // The eigenvalue stage runs on one BLAS thread, whatever the caller's count: OpenBLAS's
    // threaded dsymv/dsyr2k sum in a thread-count-dependent order (dsyrk does not), so this
    // keeps a matrix's values bit-identical whether the scan runs it alone on every core or
    // beside others on one (scan/scan_scheduler.h); and measured here, the two-stage reduction on
    // one thread beats the one-stage on all (docs/spectral-methods.md, "Eigensolver routes").
    std::vector<double> lambda;
    {
      OneBlasThread one;
      lambda = lapack::symmetric_eigenvalues(g, k, lapack::faster_tridiagonal(k, 1), ws.lapack_work, label);
    }
    return sigma_of_eigenvalues(lambda);
  }

  static std::vector<double> svd_route(double* x, int64_t rows, int64_t cols, const std::string& label) {
    OneBlasThread one;  // dgebrd's threaded BLAS-2 half is thread-count dependent too (see above)
    std::vector<double> s = lapack::gesdd_values(x, rows, cols, label);
    std::sort(s.begin(), s.end());
    return s;
  }

  int threads_;
  std::string downgrade_;
};

}  // namespace

std::unique_ptr<SpectralBackend> make_cpu_backend(const BackendOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

}  // namespace muspec
