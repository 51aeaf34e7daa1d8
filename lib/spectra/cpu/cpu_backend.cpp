#include "spectra/cpu/cpu_backend.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "spectra/cpu/lapack.h"

namespace muspec {

void set_blas_threads(int n) { openblas_set_num_threads(std::max(1, n)); }
int blas_threads() { return openblas_get_num_threads(); }
int hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

namespace {

class CpuBackend final : public SpectralBackend {
 public:
  explicit CpuBackend(const BackendOptions& o) : threads_(o.blas_threads) {}

  Device device() const override { return Device::Cpu; }

  std::string description() const override {
    return std::string("cpu: ") + openblas_get_config() + ", " +
           std::to_string(threads_ > 0 ? threads_ : hardware_threads()) + " BLAS threads";
  }

 protected:
  std::vector<double> gram_values(const std::vector<double>& x, int64_t rows, int64_t cols,
                                  const std::string& label) override {
    std::vector<double> g = lapack::gram_of_smaller_side(x, rows, cols);
    std::vector<double> lambda = lapack::syevd_values(g, std::min(rows, cols), label);
    // sigma = sqrt(max(lambda, 0)); rounding can make eigenvalues of a PSD matrix negative.
    for (double& v : lambda) v = std::sqrt(std::max(v, 0.0));
    std::sort(lambda.begin(), lambda.end());
    return lambda;
  }

  std::vector<double> svd_values(std::vector<double>& x, int64_t rows, int64_t cols,
                                 const std::string& label) override {
    std::vector<double> s = lapack::gesdd_values(x, rows, cols, label);
    std::sort(s.begin(), s.end());
    return s;
  }

 private:
  int threads_;
};

}  // namespace

std::unique_ptr<SpectralBackend> make_cpu_backend(const BackendOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

}  // namespace muspec
